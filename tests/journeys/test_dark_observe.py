"""The observe and replay pages in the dark colour scheme, on the demo that README command 1
starts, in Chromium.

An interviewer whose system asks for dark schedules a session and watches it: the candidate
runs the notebook's first cells, edits a file and the interviewer notes the moment. The observe
page is dark (page, panels, code blocks) and passes axe with its timeline, cells and notes
filled in; after the end the replay page, at the note, passes too.
"""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Browser, Page, expect

from tests.journeys.a11y import assert_accessible
from tests.journeys.conftest import (
    WAIT_MS,
    Product,
    browsing,
    end_session,
    observe_scheduled,
    schedule_through_the_page,
    start_workspace,
    timeline_has,
)
from tests.journeys.test_interview import open_lab_path, run_first_cells, type_at_end

pytestmark = [pytest.mark.journey, pytest.mark.integration, pytest.mark.browser,
              pytest.mark.timeout(900)]

INTERVIEWER = "interviewer@example.com"
TASK = "daily-features-bug"
NOTE = "Checks the join keys before touching the code."
EDIT = "# candidate: looking at the join"


def luminance(css: str) -> float:
    """Relative luminance of ``rgb(r, g, b)`` (WCAG)."""
    values = [int(v) / 255 for v in re.findall(r"\d+", css)[:3]]
    linear = [v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4 for v in values]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


async def assert_dark_and_accessible(page: Page, what: str) -> None:
    for selector in ("body", ".pl-panel"):
        background = await page.locator(selector).first.evaluate(
            "e => getComputedStyle(e).backgroundColor")
        assert luminance(background) < 0.05, (what, selector, background)
    await assert_accessible(page, what, scheme="dark")


async def test_observe_and_replay_in_the_dark(product: Product, browser: Browser) -> None:
    async with browsing(browser, product, "dark-observe") as people:
        observe = await people.as_user(INTERVIEWER, "observe")
        await observe.emulate_media(color_scheme="dark")
        link = await schedule_through_the_page(observe, product, TASK, "Dana Dusk")
        session_url = await observe_scheduled(observe)

        lab_page = await people.anonymous("candidate")
        lab = await start_workspace(lab_page, link)
        await run_first_cells(lab_page, lab)
        await open_lab_path(lab_page, lab, "acme_features/transform.py")
        await type_at_end(lab_page, EDIT)

        await expect(observe.locator("#pl-cells")).to_contain_text("features revenue",
                                                                  timeout=WAIT_MS)
        await timeline_has(observe, "file.changed", "acme_features/transform.py")
        await observe.fill("#pl-note-text", NOTE)
        await observe.click("#pl-note-save")
        await expect(observe.locator("#pl-notes")).to_contain_text(NOTE, timeout=WAIT_MS)
        await assert_dark_and_accessible(observe, "the observe page")

        await end_session(observe)
        replay = await people.another_tab(observe, "replay")
        await replay.emulate_media(color_scheme="dark")  # per page, as the system's would be
        await replay.goto(f"{session_url}/replay")
        note = replay.locator("#pl-events li.pl-kind-note", has_text=NOTE).first
        await expect(note).to_be_visible(timeout=WAIT_MS)
        await note.locator("summary").first.click()
        await expect(replay.locator("#pl-pos")).not_to_be_empty(timeout=WAIT_MS)
        await assert_dark_and_accessible(replay, "the replay page")
