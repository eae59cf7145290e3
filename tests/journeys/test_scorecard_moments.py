"""The interviewer's scorecard, its moments picked from the timeline, on the demo that README
command 1 starts.

An interviewer schedules a session of their own, the candidate runs the notebook's cells, the
interviewer notes a moment and ends the interview. On the scorecard the session's timeline
stands beside the questions: the interviewer filters it, adds the note and a cell run to the
first question (chips with a short label appear; the autosave stores them), removes the note,
adds it to the second question from the keyboard, fills in the rest and submits. The debrief
links each moment into the replay, and following the link opens the replay at that event.

The interviewer's system asks for the dark colour scheme while they observe and replay: both
pages are dark (page, panels) and pass axe filled with the interview's events.
"""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Browser, Page, expect

from tests.journeys.a11y import assert_accessible, luminance
from tests.journeys.conftest import (
    WAIT_MS,
    Product,
    browsing,
    document,
    end_session,
    observe_scheduled,
    schedule_through_the_page,
    start_workspace,
)
from tests.journeys.test_interview import run_first_cells

pytestmark = [pytest.mark.journey, pytest.mark.integration, pytest.mark.browser,
              pytest.mark.timeout(900)]

INTERVIEWER = "interviewer@example.com"
TASK = "daily-features-bug"
NOTE = "Looked at the raw rows before touching the pipeline"


async def assert_dark_and_accessible(page: Page, what: str) -> None:
    """The page in the dark scheme (page and panel backgrounds dark), passing axe."""
    for selector in ("body", ".pl-panel"):
        background = await page.locator(selector).first.evaluate(
            "e => getComputedStyle(e).backgroundColor")
        assert luminance(background) < 0.05, (what, selector, background)
    await assert_accessible(page, what, scheme="dark")


async def test_moments_picked_from_the_timeline(product: Product, browser: Browser) -> None:
    async with browsing(browser, product, "scorecard-moments") as people:
        # The interviewer schedules a session now and watches it.
        observe = await people.as_user(INTERVIEWER, "observe")
        await observe.emulate_media(color_scheme="dark")
        link = await schedule_through_the_page(observe, product, TASK, "Mo Moments")
        session_url = await observe_scheduled(observe)
        session_path = session_url.split("://", 1)[1].split("/", 1)[1]

        # The candidate starts and runs the notebook's first cells.
        lab_page = await people.anonymous("candidate")
        lab = await start_workspace(lab_page, link)
        await run_first_cells(lab_page, lab)
        await expect(observe.locator("#pl-cells")).to_contain_text("features revenue",
                                                                  timeout=WAIT_MS)

        # The interviewer notes a moment, then ends the interview.
        await observe.fill("#pl-note-text", NOTE)
        await observe.click("#pl-note-save")
        await expect(observe.locator("#pl-notes")).to_contain_text(NOTE, timeout=WAIT_MS)
        await assert_dark_and_accessible(observe, "the observe page")
        await end_session(observe)

        # The scorecard: the timeline beside the questions, each event with its number, its
        # time in the viewer's zone and a way into the replay; the typed field is put aside.
        card = await people.another_tab(observe, "scorecard")
        errors: list[str] = []
        card.on("pageerror", lambda exc: errors.append(str(exc)))
        await card.goto(f"{session_url}/scorecard")
        timeline = card.locator("#moment-timeline")
        note_row = timeline.locator('li[data-kind="note"]', has_text=NOTE)
        await expect(note_row).to_have_count(1)
        cell_rows = timeline.locator('li[data-kind="cell.executed"]')
        await expect(cell_rows.first).to_be_visible()
        cell_row = cell_rows.filter(has_text="billing").first
        await expect(cell_row).to_be_visible()
        note_seq = int(await note_row.get_attribute("data-seq") or "0")
        cell_seq = int(await cell_row.get_attribute("data-seq") or "0")
        assert 0 < cell_seq < note_seq
        await expect(cell_row.locator(".moment-seq")).to_have_text(f"#{cell_seq}")
        # the summary is the observe page's own (timeline.js): "[1] ok · <code>"
        await expect(cell_row.locator(".moment-summary")).to_contain_text(re.compile(r"\[\d+\] ok"))
        when = cell_row.locator("time[datetime][data-local]")
        assert await when.get_attribute("title")  # localised by times.js, UTC kept as tooltip
        await expect(cell_row.locator("a.moment-replay")).to_have_attribute(
            "href", f"/{session_path}/replay#seq={cell_seq}")
        assert not await card.locator(".moments-typed").first.is_visible()

        dimensions = card.locator("fieldset.dimension")
        first, second = dimensions.nth(0), dimensions.nth(1)
        first_id = await first.get_attribute("data-dimension") or ""
        second_id = await second.get_attribute("data-dimension") or ""
        first_title = (await card.locator("#moment-target option").nth(0).inner_text()).strip()
        second_title = (await card.locator("#moment-target option").nth(1).inner_text()).strip()

        # Filter: notes only, then text; the note's Add button names the question.
        await card.select_option("#timeline-kind", "notes")
        await expect(cell_row).to_be_hidden()
        await expect(note_row).to_be_visible()
        add_note = note_row.get_by_role("button", name=f"Add #{note_seq} to {first_title}")
        await add_note.click()
        await card.select_option("#timeline-kind", "")
        await card.fill("#timeline-q", "billing")
        await expect(note_row).to_be_hidden()
        await expect(cell_row).to_be_visible()
        await cell_row.get_by_role("button", name=f"Add #{cell_seq} to {first_title}").click()
        await expect(card.locator("#moment-status")).to_contain_text(
            f"Added #{cell_seq} Cell run")

        # Chips with a short label (kind and summary), each a link into the replay.
        chips = first.locator("li.moment-chip")
        await expect(chips).to_have_count(2)
        await expect(chips.nth(0)).to_contain_text(f"#{note_seq} Note: {NOTE[:30]}")
        await expect(chips.nth(1)).to_contain_text(f"#{cell_seq} Cell run: [")
        await expect(card.locator("#autosave-status")).to_contain_text("Draft saved",
                                                                       timeout=WAIT_MS)
        await document(card, "scorecard")

        # Removes the note from the first question; adds it to the second from the keyboard
        # (focus in the second question makes it the one moments go to).
        await first.get_by_role("button", name=re.compile(
            rf"^Remove #{note_seq} Note: .* from {re.escape(first_title)}$")).click()
        await expect(chips).to_have_count(1)
        await expect(chips.first).to_have_attribute("data-seq", str(cell_seq))
        await second.locator("textarea").focus()
        await expect(card.locator("#moment-target")).to_have_value(second_id)
        await card.fill("#timeline-q", "")
        add_to_second = note_row.get_by_role("button", name=f"Add #{note_seq} to {second_title}")
        await add_to_second.focus()
        await card.keyboard.press("Enter")
        await expect(second.locator("li.moment-chip")).to_have_count(1)
        await expect(second.locator("li.moment-chip")).to_have_attribute("data-seq",
                                                                         str(note_seq))

        # A reload keeps them (the autosave stored them as the draft).
        await expect(card.locator("#autosave-status")).to_contain_text("Draft saved",
                                                                       timeout=WAIT_MS)
        await card.wait_for_timeout(1500)  # the autosave's debounce after the last change
        await card.reload()
        await expect(first.locator("li.moment-chip")).to_have_count(1)
        await expect(second.locator("li.moment-chip")).to_have_attribute("data-seq",
                                                                         str(note_seq))
        await expect(card.locator(f"#moments-{first_id}")).to_have_value(str(cell_seq))

        # Fills the rest and submits.
        for i in range(await dimensions.count()):
            fieldset = dimensions.nth(i)
            await fieldset.locator('input[type=radio][value="3"]').check()
            await fieldset.locator("textarea").fill("Read the data before the code.")
        await card.locator('input[name=recommendation][value="yes"]').check()
        await card.fill("#summary", "Careful; moments picked from the timeline.")
        await card.click("#submit-scorecard")
        await card.wait_for_url("**/debrief", timeout=WAIT_MS)
        assert errors == []  # the scorecard's scripts ran without an error

        # The debrief links each moment into the replay; the removed one is not there.
        first_links = card.locator(f'section.evidence[data-dimension="{first_id}"] a.moment')
        await expect(first_links).to_have_count(1)
        await expect(first_links).to_have_text(f"#{cell_seq}")
        await expect(card.locator(f'section.evidence[data-dimension="{second_id}"] a.moment')
                     ).to_have_text(f"#{note_seq}")

        # Following the link opens the replay at that event (in the dark scheme).
        await card.emulate_media(color_scheme="dark")
        await first_links.click()
        await card.wait_for_url(f"**/replay#seq={cell_seq}", timeout=WAIT_MS)
        await expect(card.locator("body")).to_have_attribute("data-replay-ready", "1",
                                                             timeout=WAIT_MS)
        await expect(card.locator(f'#pl-events li.pl-current[data-seq="{cell_seq}"]')
                     ).to_have_count(1)
        await expect(card.locator("#pl-range")).to_have_value(str(cell_seq))
        await assert_dark_and_accessible(card, "the replay page")
