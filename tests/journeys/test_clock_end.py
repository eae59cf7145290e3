"""The interview ends by the clock, with nobody pressing End, on the demo that README command 1
starts.

An interviewer who is late puts the session on the Sessions page as it was meant to be, ten
minutes starting eight minutes ago (the shortest an interview may last), and watches it on the
observe page; the candidate starts, sees the time left count down in JupyterLab, edits and
saves a file. Nobody ends anything: when the time is up the server ends the session itself
(``deadline_loop``), the candidate's JupyterLab says so and turns read-only (typing and Ctrl-S
raise no "File Save Error"), the observe page follows to "ended" and drops its live controls, a
reload gives the candidate the thank-you page, and the product's audit log says the system
ended it because the time was up. A second session over at the same time, which nobody ever
opened, is ended by the clock as well, and its link is closed.
"""

from __future__ import annotations

import json
import re
import time

import pytest
from playwright.async_api import Browser, Page, expect

from tests.journeys.conftest import (
    WAIT_MS,
    Product,
    browsing,
    db_rows,
    schedule_through_the_page,
    start_workspace,
)
from tests.journeys.test_candidate_end import THANKS, closing_page
from tests.journeys.test_interview import open_lab_path, type_at_end

pytestmark = [pytest.mark.journey, pytest.mark.integration, pytest.mark.browser,
              pytest.mark.timeout(900)]

INTERVIEWER = "interviewer@example.com"
TASK = "daily-features-bug"
FILE = "acme_features/transform.py"
SAVED_LIVE = "# candidate: saved before the clock ran out"
TYPED_AFTER = "# typed after the clock ran out"
MINUTES = 10  # the shortest a session may last
STARTED_AGO = 8  # minutes: the picker has minutes only, so the end is 1 to 2 minutes away
# The end comes from the clock: the session's end, then the server's deadline check (every
# few seconds) and the candidate's page learning it (it polls every few seconds near the end).
END_WAIT_MS = (MINUTES - STARTED_AGO + 1) * 60_000 + 60_000


async def schedule_short(page: Page, product: Product, candidate: str) -> tuple[str, str]:
    """Schedule a ``MINUTES``-minute session that started ``STARTED_AGO`` minutes ago on the
    Sessions page, the start picked in the browser's own time zone; returns the candidate link
    and the session's page URL."""
    local = await page.evaluate("""(ago) => {
        const d = new Date(Date.now() - ago * 60000), two = (n) => String(n).padStart(2, "0");
        return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}` +
               `T${two(d.getHours())}:${two(d.getMinutes())}`;
    }""", STARTED_AGO)
    link = await schedule_through_the_page(page, product, TASK, candidate, starts_local=local,
                                           minutes=MINUTES)
    await expect(page.locator("main")).to_contain_text(f"({MINUTES} minutes)")
    return link, page.url.split("?", 1)[0]


def seconds(badge_text: str) -> int:
    """``"1:42 left"`` -> 102."""
    m = re.fullmatch(r"(\d+):(\d\d) left", badge_text.strip())
    assert m, badge_text
    return int(m.group(1)) * 60 + int(m.group(2))


def end_rows(product: Product, session_id: str) -> list[tuple[str, dict[str, object]]]:
    """``(actor, detail)`` of the product's ``session.end`` audit rows for the session."""
    return [(row["actor"], json.loads(row["detail"])) for row in db_rows(
        product, "SELECT actor, detail FROM audit_log WHERE action = 'session.end'"
        " AND object_id = ? ORDER BY id", session_id)]


async def test_the_interview_ends_when_its_time_is_up(product: Product,
                                                      browser: Browser) -> None:
    async with browsing(browser, product, "clock-end") as people:
        observe = await people.as_user(INTERVIEWER, "observe")
        # A session nobody will open, over at the same time (or a minute before).
        nobody_link, nobody_url = await schedule_short(observe, product, "Nora Noshow")
        link, session_url = await schedule_short(observe, product, "Kit Clockwise")
        session_id = session_url.rsplit("/", 1)[1]
        assert re.fullmatch(r"s_\w+", session_id), session_url
        await observe.goto(f"{session_url}/observe")
        await expect(observe.locator("#pl-stream")).to_have_text("live", timeout=WAIT_MS)

        # The candidate starts and lands in JupyterLab with the time left counting down.
        lab_page = await people.anonymous("candidate")
        lab = await start_workspace(lab_page, link)
        badge = lab_page.locator("#pairlab-countdown")
        await expect(badge).to_have_text(re.compile(r"^\d+:\d\d left$"), timeout=WAIT_MS)
        first = seconds(await badge.inner_text())
        assert 0 < first <= (MINUTES - STARTED_AGO) * 60, first
        await lab_page.wait_for_timeout(2500)
        later = seconds(await badge.inner_text())
        assert later < first, (first, later)

        # Works while there is time: edits and saves a file.
        await open_lab_path(lab_page, lab, FILE)
        await type_at_end(lab_page, SAVED_LIVE)
        await expect(lab_page.locator(".lm-TabBar-tab.jp-mod-dirty")).to_have_count(
            0, timeout=WAIT_MS)
        assert end_rows(product, session_id) == []

        # Nobody presses End. The clock runs out: the candidate's JupyterLab says so.
        waited_from = time.monotonic()
        banner = lab_page.locator("#pairlab-ended")
        await expect(banner).to_be_visible(timeout=END_WAIT_MS)
        print(f"\nthe end showed {time.monotonic() - waited_from:.0f} s after the save, with"
              f" {later} s left on the badge before it")
        await expect(banner).to_contain_text(THANKS)
        await expect(badge).to_contain_text("Interview ended")

        # Read-only: what is typed now goes nowhere and saving raises no error.
        editor = lab_page.locator(".jp-MainAreaWidget:visible .cm-content").first
        await editor.click(force=True)
        await lab_page.keyboard.press("Control+End")
        await lab_page.keyboard.type(TYPED_AFTER)
        await lab_page.keyboard.press("Control+s")
        await lab_page.wait_for_timeout(3000)  # what a save error would take to show
        await expect(lab_page.get_by_text("File Save Error")).to_have_count(0)
        assert TYPED_AFTER not in await editor.inner_text()
        assert SAVED_LIVE in await editor.inner_text()

        # The interviewer's observe page followed without a click: ended, no live controls.
        await expect(observe.locator("#pl-state")).to_have_text("ended", timeout=WAIT_MS)
        await expect(observe.locator("#pl-end")).to_be_hidden()
        await expect(observe.locator("#pl-join-form")).to_be_hidden()

        # The server ended it, because the time was up, and said so in the audit log.
        rows = end_rows(product, session_id)
        assert rows == [("system", {"why": "time is up"})], rows

        # The session nobody opened was ended by the clock too; its link is closed.
        nobody = nobody_url.rsplit("/", 1)[1]
        for _ in range(60):
            if end_rows(product, nobody):
                break
            await lab_page.wait_for_timeout(500)
        assert end_rows(product, nobody) == [("system", {"why": "time is up"})]
        late = await people.anonymous("late candidate")
        closed = await late.goto(nobody_link)
        assert closed is not None and closed.status == 410, closed and closed.status
        await expect(late.locator("#start")).to_have_count(0)

        # A reload: the candidate's thank-you page.
        reloaded = await lab_page.reload()
        assert reloaded is not None and reloaded.status == 410
        await closing_page(lab_page, 410, "Thank you", "Your work is saved")
