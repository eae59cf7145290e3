"""The candidate's landing page in a real Chromium (the real app on loopback, a fake
workspace): times in the viewer's own zone by the staff pages' ``times.js`` (its UTC text kept
as the tooltip), and the time left as the server words it — after an extension, the page's
script shows the session API's new ``time_left`` without a reload (its 15 s poll, run by
Playwright's clock)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import async_playwright, expect

from server.settings import Settings
from tests.browser import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import MakeSettings, create_user
from tests.fixture_tasks import publish_fake_task
from tests.harness import LEAD, interviewer, serving

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

ZONE = "Asia/Kolkata"  # +05:30: a local time never reads as the UTC one


def _prepare(settings: Settings) -> None:
    publish_fake_task(settings)
    create_user(settings, LEAD, "interviewer")


def minutes(text: str) -> int:
    found = re.fullmatch(r"(\d+) minutes", text)
    assert found, text
    return int(found.group(1))


async def test_the_landing_page_shows_local_times_and_the_servers_time_left(
        make_settings: MakeSettings, tmp_path: Path) -> None:
    async with serving(make_settings, tmp_path, _prepare) as served:
        async with interviewer(served.settings.app_url) as (http, csrf):
            created = await (await http.post("/api/v1/sessions", headers=csrf, json={
                "task": "demo-task", "candidate_name": "Ada", "duration_minutes": 45})).json()
            sid = created["session_id"]
            async with async_playwright() as p:
                browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    context = await browser.new_context(timezone_id=ZONE)
                    page = await context.new_page()
                    await page.clock.install()
                    await page.goto(created["candidate_link"])
                    await expect(page.locator("#start")).to_be_visible()

                    # The end: shown in the viewer's zone, the server's UTC text the tooltip.
                    ends_at = created["session"]["ends_at"]
                    ends = page.locator("#ends-at")
                    await expect(ends).to_have_attribute("title", datetime.fromisoformat(
                        ends_at).astimezone(UTC).strftime("%a %-d %b %Y, %H:%M UTC"))
                    local = datetime.fromisoformat(ends_at).astimezone(ZoneInfo(ZONE))
                    shown = await ends.inner_text()
                    faces = (local.strftime("%H:%M"), local.strftime("%I:%M %p"))
                    assert any(face in shown for face in faces), (shown, faces)
                    utc = datetime.fromisoformat(ends_at).astimezone(UTC)
                    assert utc.strftime("%H:%M") not in shown and " UTC" not in shown, shown

                    before = minutes(await page.locator("#time-left").inner_text())
                    assert 43 <= before <= 45, before
                    extended = await http.post(f"/api/v1/sessions/{sid}/extend", headers=csrf,
                                               json={"minutes": 30})
                    assert extended.status == 200
                    await page.clock.run_for(16_000)  # the page's next poll
                    await expect(page.locator("#time-left")).to_have_text(
                        re.compile(r"^(7[3-5]) minutes$"))
                    assert await page.locator("#ends-at").inner_text() == shown  # as loaded
                finally:
                    await browser.close()
