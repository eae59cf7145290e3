"""Journey: an interviewer schedules on the real demo and sends the candidate link.

On the Sessions page, in a browser whose time zone is India's (UTC+05:30, set through the
DevTools protocol as a traveller's laptop would have it), the interviewer picks a start five
minutes from now in the datetime-local picker and schedules. The form redirects to the
session's page: reloading it, and going Back to the form and reloading that, schedules nothing
again (counted on the page, through the API and in the database). The session starts at the
picked local time in UTC and the page shows it in the viewer's zone. The interviewer copies the
link with the Copy button (read back from Chromium's clipboard), then re-issues it: the old
link's page says it was replaced (410), the new one opens the candidate's landing page.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, Page, expect

from tests.journeys.conftest import WAIT_MS, Product, browsing, db_rows

pytestmark = [pytest.mark.journey, pytest.mark.integration, pytest.mark.browser,
              pytest.mark.timeout(1500)]
INTERVIEWER = "interviewer@example.com"
TASK = "daily-features-bug"
CANDIDATE = "Mira Picker"
ZONE = "Asia/Kolkata"
ZONE_NAMES = ("Asia/Kolkata", "Asia/Calcutta")
"""Chromium's ICU reports the zone by its older canonical name."""


def sessions_in_db(product: Product) -> int:
    return int(db_rows(product, "SELECT count(*) FROM interview_sessions")[0][0])


async def counted(page: Page, product: Product) -> tuple[int, int, int]:
    """Sessions as the Sessions page lists them, as the API lists them, and in the database."""
    listing = await page.context.new_page()
    try:
        await listing.goto(f"{product.app_url}/sessions")
        on_page = await listing.locator("table.sessions tr[data-session]").count()
        api = await listing.request.get(f"{product.app_url}/api/v1/sessions")
        assert api.ok
        in_api = len((await api.json())["sessions"])
    finally:
        await listing.close()
    return on_page, in_api, sessions_in_db(product)


async def test_schedule_with_the_picker_reload_copy_and_reissue_the_link(
        product: Product, browser: Browser) -> None:
    async with browsing(browser, product, "scheduling") as people:
        page = await people.as_user(INTERVIEWER, "interviewer")
        cdp = await page.context.new_cdp_session(page)
        await cdp.send("Emulation.setTimezoneOverride", {"timezoneId": ZONE})
        before = await counted(page, product)
        assert before[0] == before[1] == before[2]

        await page.goto(f"{product.app_url}/sessions")
        assert await page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone") \
            in ZONE_NAMES
        local = (datetime.now(ZoneInfo(ZONE)) + timedelta(minutes=5)).replace(second=0,
                                                                             microsecond=0)
        await page.select_option("#task", TASK)
        await page.fill("#candidate_name", CANDIDATE)
        await page.fill("#starts_local", local.strftime("%Y-%m-%dT%H:%M"))
        await expect(page.locator("#starts_local-zone")).to_contain_text("Asia/")
        await page.click('form[action="/sessions"] button[type=submit]')
        await page.wait_for_url("**/sessions/s_*?scheduled=1", timeout=WAIT_MS)
        session_url = page.url.split("?")[0]
        session_id = session_url.rsplit("/", 1)[1]
        await expect(page.locator("#scheduled-notice")).to_be_visible()

        # The start is the picked local time, stored in UTC, and shown back in the local zone.
        stored = db_rows(product, "SELECT starts_at FROM interview_sessions WHERE id = ?",
                         session_id)[0][0]
        assert datetime.fromisoformat(stored) == local.astimezone(UTC)
        shown = page.locator("time[datetime]").first
        assert await shown.get_attribute("datetime") == local.astimezone(UTC).isoformat(
            timespec="seconds")
        # the viewer's clock face, 24-hour or 12-hour as their locale writes it
        await expect(shown).to_contain_text(re.compile(
            f"{local:%H:%M}|{local:%I:%M %p}".replace(" ", r"\s")))
        await expect(shown).to_contain_text("GMT+5:30")
        assert (await shown.get_attribute("title") or "").endswith("UTC")  # server's fallback

        # Reload the page after scheduling; Back to the form and reload that too.
        await page.reload()
        await expect(page.locator("#candidate-link")).to_be_visible(timeout=WAIT_MS)
        await page.go_back()
        await page.reload()
        await page.go_forward()
        after = await counted(page, product)
        assert after == (before[0] + 1, before[1] + 1, before[2] + 1)
        assert len(db_rows(product, "SELECT id FROM interview_sessions WHERE candidate_name = ?",
                           CANDIDATE)) == 1

        # Copy the link: the button says so and the clipboard holds it.
        await page.context.grant_permissions(["clipboard-read", "clipboard-write"],
                                             origin=product.app_url)
        old_link = await page.locator("#candidate-link").input_value()
        assert old_link.startswith(product.workspace_url + "/c/")
        await page.click("#copy-link")
        await expect(page.locator("#copy-link")).to_have_text("Copied")
        assert await page.evaluate("navigator.clipboard.readText()") == old_link

        # Re-issue it (confirming the browser's dialog): a new link, the old one replaced.
        page.once("dialog", lambda dialog: dialog.accept())
        await page.click("#reissue-link")
        await page.wait_for_url("**?link=new*", timeout=WAIT_MS)
        await expect(page.locator("#reissued-notice")).to_be_visible()
        new_link = await page.locator("#candidate-link").input_value()
        assert new_link != old_link and new_link.startswith(product.workspace_url + "/c/")
        audited = db_rows(product, "SELECT count(*) FROM audit_log WHERE action = ?"
                          " AND object_id = ?", "session.link_reissue", session_id)
        assert audited[0][0] == 1

        candidate = await people.anonymous("candidate")
        response = await candidate.goto(old_link)
        assert response is not None and response.status == 410
        await expect(candidate.locator("h1")).to_have_text("This link was replaced")
        await expect(candidate.locator("p.message")).to_contain_text(
            "replaced by a newer one and no longer works")
        await candidate.goto(new_link)
        await expect(candidate.locator("h1")).to_be_visible(timeout=WAIT_MS)
        await expect(candidate.locator("main")).to_contain_text(f"Hello {CANDIDATE}")
        await expect(candidate.locator("#start")).to_be_visible()
