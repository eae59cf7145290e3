"""An interviewer's "Today" is their own day, on the demo that README command 1 starts.

The same interviewer on two browsers, one in UTC and one in Kiritimati (UTC+14, so its day
never ends when UTC's does): they schedule a session, picking its start in Kiritimati's local
time, between the two days' ends. The Kiritimati browser's home page says "Today
(Pacific/Kiritimati)" and lists the session where Kiritimati's day puts it; the UTC browser's
says "Today (UTC)" and lists it in the other list.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, expect

from tests.journeys.conftest import WAIT_MS, Product, browsing
from tests.journeys.test_admin import INTERVIEWER, unique_id

pytestmark = [pytest.mark.journey, pytest.mark.integration, pytest.mark.browser,
              pytest.mark.timeout(600)]

ZONE = "Pacific/Kiritimati"
TASK = "daily-features-bug"


def day_end(moment: datetime) -> datetime:
    """The end of ``moment``'s day in its own zone, in UTC."""
    return datetime.combine(moment.date() + timedelta(days=1), time(),
                            tzinfo=moment.tzinfo).astimezone(UTC)


async def test_today_is_the_viewers_own_day(product: Product, browser: Browser) -> None:
    async with browsing(browser, product, "home-zone") as people:
        away = await people.as_user(INTERVIEWER, "kiritimati", timezone_id=ZONE)
        home = await people.as_user(INTERVIEWER, "utc", timezone_id="UTC")

        # A start between the two days' ends (at least 20 minutes from both, and from now).
        moment = datetime.now(UTC)
        ends = sorted([day_end(moment), day_end(moment.astimezone(ZoneInfo(ZONE)))])
        start = ends[0] + (ends[1] - ends[0]) / 2
        start = start.replace(second=0, microsecond=0)
        assert ends[0] + timedelta(minutes=20) < start < ends[1] - timedelta(minutes=20)
        in_zone_today = start < day_end(moment.astimezone(ZoneInfo(ZONE)))

        candidate = unique_id("Zone")
        await away.goto(f"{product.app_url}/sessions")
        await away.select_option("#task", TASK)
        await away.fill("#candidate_name", candidate)
        await away.fill("#starts_local", start.astimezone(ZoneInfo(ZONE)).strftime(
            "%Y-%m-%dT%H:%M"))
        await away.click('form[action="/sessions"] button[type=submit]')
        await expect(away.locator("#candidate-link")).to_be_visible(timeout=WAIT_MS)
        session_id = away.url.split("/sessions/", 1)[1].split("?", 1)[0]
        await expect(away.locator(f'time[datetime^="{start:%Y-%m-%dT%H:%M}"]').first
                     ).to_be_visible()

        for page, zone, today in ((away, ZONE, in_zone_today), (home, "UTC", not in_zone_today)):
            await page.goto(f"{product.app_url}/")
            heading = page.locator("#home-today h2")
            await expect(heading).to_have_text(f"Today ({zone.replace('_', ' ')})",
                                               timeout=WAIT_MS)
            listed, other = ("#today", "#upcoming") if today else ("#upcoming", "#today")
            await expect(page.locator(f'{listed} tr[data-session="{session_id}"]')
                         ).to_contain_text(candidate)
            await expect(page.locator(f'{other} tr[data-session="{session_id}"]')
                         ).to_have_count(0)
