"""The candidate inside JupyterLab and at the end of the interview, on the demo that README
command 1 starts.

An interviewer schedules a session of their own (the demo's printed link is other journeys'),
the candidate opens it and lands in JupyterLab: no "official Jupyter news?" prompt, no
Extension Manager, no request to the language-server API that nothing serves (no 404 in the
console while it loads). The candidate edits and saves a file. The interviewer ends the
session: the candidate's page says so (thank you, your work is saved) and turns read-only, and
typing and Ctrl-S then raise no "File Save Error". A reload gives the thank-you page; a made-up
link a page that says it is not valid and whom to ask; both styled, with no dead link.
"""

from __future__ import annotations

import re
import time

import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, Response, expect

from tests.journeys.conftest import (
    WAIT_MS,
    Product,
    browsing,
    end_session,
    observe_scheduled,
    schedule_through_the_page,
    start_workspace,
)
from tests.journeys.test_interview import open_lab_path, type_at_end

pytestmark = [pytest.mark.journey, pytest.mark.integration, pytest.mark.browser,
              pytest.mark.timeout(900)]

INTERVIEWER = "interviewer@example.com"
TASK = "daily-features-bug"
FILE = "acme_features/transform.py"
SAVED_LIVE = "# candidate: saved before the end"
TYPED_AFTER = "# typed after the end"
THANKS = "The interview has ended — thank you; your work is saved"


async def closing_page(page: Page, status: int, heading: str, says: str) -> None:
    """A workspace-origin page for the candidate: styled by the candidate stylesheet, a human
    sentence, and no link (none into the staff's app, none to itself)."""
    await expect(page.locator("h1")).to_have_text(heading)
    await expect(page.locator("p.message")).to_contain_text(says)
    assert await page.locator("p.message").get_attribute("data-status") == str(status)
    sheet = await page.evaluate("[...document.styleSheets].map(s => s.href)")
    assert any(href and href.endswith("/_pairlab/candidate.css") for href in sheet), sheet
    assert await page.evaluate(
        "getComputedStyle(document.querySelector('main')).textAlign") == "center"
    assert await page.locator("a").count() == 0


async def test_the_candidate_in_jupyterlab_and_at_the_end(product: Product,
                                                          browser: Browser) -> None:
    async with browsing(browser, product, "candidate-end") as people:
        # The interviewer schedules a session now and opens its observe page.
        observe = await people.as_user(INTERVIEWER, "observe")
        link = await schedule_through_the_page(observe, product, TASK, "Lin Closing")
        await observe_scheduled(observe)

        # The candidate: link -> Start -> JupyterLab, every answer and console line watched.
        lab_page = await people.anonymous("candidate")
        refused: list[str] = []
        console: list[str] = []
        asked: list[str] = []

        def answered(response: Response) -> None:
            if response.status >= 400:
                refused.append(f"{response.status} {response.url}")

        def said(message: ConsoleMessage) -> None:
            console.append(f"{message.type}: {message.text} ({message.location.get('url')})")

        lab_page.on("response", answered)
        lab_page.on("console", said)
        lab_page.on("request", lambda request: asked.append(request.url))
        lab = await start_workspace(lab_page, link)
        await expect(lab_page.locator('.jp-SideBar [data-id="filebrowser"]')).to_be_visible(
            timeout=WAIT_MS)

        # Edits and saves a file while the interview is live.
        await open_lab_path(lab_page, lab, FILE)
        await type_at_end(lab_page, SAVED_LIVE)
        await expect(lab_page.locator(".lm-TabBar-tab.jp-mod-dirty")).to_have_count(
            0, timeout=WAIT_MS)

        # No news prompt, no Extension Manager, nothing asked of /lsp/, no 404 while loading.
        await expect(lab_page.get_by_text("official Jupyter news")).to_have_count(0)
        await expect(lab_page.locator('[data-id="extensionmanager.main-view"]')).to_have_count(0)
        await expect(lab_page.locator('.jp-SideBar [title*="Extension Manager"]')).to_have_count(0)
        assert not [url for url in asked if "/lsp/" in url or "/lab/api/news" in url], asked
        assert not [line for line in refused if line.startswith("404 ")], refused
        # "404" as a word: workspace ids are random hex and may hold the digits 404.
        assert not [line for line in console
                    if re.search(r"\b404\b", line) or "/lsp/" in line.lower()], console
        assert "Would you like to get notified" not in await lab_page.content()

        # The interviewer ends the interview.
        await end_session(observe)
        ended_at = time.monotonic()

        # The candidate's JupyterLab says so and turns read-only.
        banner = lab_page.locator("#pairlab-ended")
        await expect(banner).to_be_visible(timeout=WAIT_MS)
        print(f"\nthe candidate's JupyterLab showed the end {time.monotonic() - ended_at:.1f} s"
              " after the observe page did")
        await expect(banner).to_contain_text(THANKS)
        editor = lab_page.locator(".jp-MainAreaWidget:visible .cm-content").first
        await editor.click(force=True)
        await lab_page.keyboard.press("Control+End")
        await lab_page.keyboard.type(TYPED_AFTER)
        await lab_page.keyboard.press("Control+s")
        await lab_page.wait_for_timeout(3000)  # what a save error would take to show
        await expect(lab_page.get_by_text("File Save Error")).to_have_count(0)
        await expect(lab_page.locator(".jp-Dialog")).to_have_count(0)
        assert TYPED_AFTER not in await editor.inner_text()
        assert SAVED_LIVE in await editor.inner_text()

        # A reload: the thank-you page.
        reloaded = await lab_page.reload()
        assert reloaded is not None and reloaded.status == 410
        await closing_page(lab_page, 410, "Thank you", "Your work is saved")

        # A made-up link: not valid, and whom to ask.
        bogus = await lab_page.goto(f"{product.workspace_url}/c/not-a-real-interview-link")
        assert bogus is not None and bogus.status == 404
        await closing_page(lab_page, 404, "This link is not valid",
                           "ask the person who invited you")
