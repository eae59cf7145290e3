"""The candidate's countdown badge notices the session's end promptly, in a real Chromium on
the workspace's own origin (the app on loopback ports, a fake jupyter-server): every 5 s in the
last two minutes, and at once when the tab becomes visible again; the page then says so."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.async_api import Page, Request, async_playwright, expect

from common.clock import iso, now
from server.http.keys import DB
from server.settings import Settings
from tests.browser import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import MakeSettings, create_user
from tests.fixture_tasks import publish_fake_task
from tests.harness import LEAD, Served, interviewer, serving

pytestmark = [pytest.mark.browser, pytest.mark.integration]


def _prepare(settings: Settings) -> None:
    publish_fake_task(settings)
    create_user(settings, LEAD, "interviewer")


@pytest.fixture
async def served(make_settings: MakeSettings, tmp_path: Path) -> AsyncIterator[Served]:
    async with serving(make_settings, tmp_path, _prepare) as running:
        yield running


async def candidate_in_workspace(served: Served, page: Page) -> str:
    """Schedule a session, open its link as the candidate, press Start: on the lab page."""
    async with interviewer(served.settings.app_url) as (http, csrf):
        created = await (await http.post("/api/v1/sessions", headers=csrf, json={
            "task": "demo-task", "candidate_name": "Ada"})).json()
    await page.goto(created["candidate_link"])
    await page.click("#start")
    await page.wait_for_url("**/lab")
    await expect(page.locator("#pairlab-countdown")).to_contain_text("left")
    await expect(page.locator("#pairlab-ended")).to_be_hidden()
    session_id: str = created["session_id"]
    return session_id


async def end(served: Served, session_id: str) -> float:
    async with interviewer(served.settings.app_url) as (http, csrf):
        response = await http.post(f"/api/v1/sessions/{session_id}/end", headers=csrf)
        assert response.status == 200, await response.text()
    return time.monotonic()


@pytest.mark.slow
async def test_in_the_last_two_minutes_the_end_shows_within_seconds(served: Served) -> None:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            polls: list[Request] = []
            page.on("request", lambda r: polls.append(r) if "/api/v1/sessions/" in r.url
                    else None)
            sid = await candidate_in_workspace(served, page)
            soon = iso(now() + timedelta(seconds=100))  # as if 58 of its 60 minutes were gone
            await served.app[DB].write(lambda d: d.execute(
                "UPDATE interview_sessions SET ends_at = ? WHERE id = ?", [soon, sid]))
            # The badge learns the new end when the tab is shown again, then polls every 5 s.
            await page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
            await expect(page.locator("#pairlab-countdown")).to_have_text(
                re.compile(r"^1:\d\d left$"),
                timeout=5_000)
            before = len(polls)
            await page.wait_for_timeout(5_600)
            assert len(polls) - before >= 1, "no poll within 5 s in the last two minutes"
            ended_at = await end(served, sid)
            await expect(page.locator("#pairlab-ended")).to_be_visible(timeout=7_000)
            noticed = time.monotonic() - ended_at
            print(f"\nthe candidate's page showed the end {noticed:.1f} s after it")
            await expect(page.locator("#pairlab-countdown")).to_have_text(
                "Session ended: the workspace is read-only")
            await expect(page.locator("#pairlab-ended")).to_contain_text("This session has ended")
            after_end = len(polls)
            await page.wait_for_timeout(6_000)
            assert len(polls) == after_end  # polling stops at the end
        finally:
            await browser.close()


async def test_the_end_shows_when_the_tab_becomes_visible(served: Served) -> None:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            sid = await candidate_in_workspace(served, page)
            await page.wait_for_timeout(500)  # the first poll is answered
            ended_at = await end(served, sid)
            # Far from the end the badge polls every 15 s; coming back to the tab asks now.
            await page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
            await expect(page.locator("#pairlab-ended")).to_be_visible(timeout=5_000)
            assert time.monotonic() - ended_at < 10
        finally:
            await browser.close()
