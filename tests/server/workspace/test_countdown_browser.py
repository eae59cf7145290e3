"""The candidate's countdown badge notices the session's end promptly, in a real Chromium on
the workspace's own origin (the app on loopback ports, a fake jupyter-server): every 5 s in the
last two minutes, at once when the tab becomes visible again, and at the first request the
closed workspace answers; the page then says so and turns read-only, a save after the end fails
quietly (no error for JupyterLab to put over the banner), a reload gives the thank-you page and
a made-up link a page saying it is not valid (JupyterLab itself: tests/journeys/
test_candidate_end.py)."""

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
                "Interview ended: the workspace is read-only")
            await expect(page.locator("#pairlab-ended")).to_contain_text(
                "The interview has ended — thank you; your work is saved")
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


async def _closing_page(page: Page, status: int, heading: str, says: str) -> None:
    """A workspace-origin page for candidates: the status, the candidate stylesheet applied,
    a human sentence and no link at all (none into the staff's app, none to itself)."""
    await expect(page.locator("h1")).to_have_text(heading)
    await expect(page.locator("p.message")).to_contain_text(says)
    assert await page.locator("p.message").get_attribute("data-status") == str(status)
    align = await page.evaluate("getComputedStyle(document.querySelector('main')).textAlign")
    assert align == "center"  # candidate.css's rule: the stylesheet was served and applied
    assert await page.locator("a").count() == 0


SAVE = """async (path) => {
  const put = fetch(path, {method: "PUT", headers: {"Content-Type": "application/json"},
                           body: JSON.stringify({content: "after the end"})});
  const outcome = await Promise.race([
    put.then(r => "answered " + r.status, e => "failed " + e),
    new Promise(done => setTimeout(() => done("unsettled"), 3000))]);
  return outcome;
}"""


async def test_after_the_end_the_page_is_read_only_a_save_fails_quietly_and_reload_thanks(
        served: Served) -> None:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            link_holder: dict[str, str] = {}
            page.on("request", lambda r: link_holder.setdefault("link", r.url)
                    if "/c/" in r.url else None)
            sid = await candidate_in_workspace(served, page)
            workspace = page.url.split("/w/", 1)[1].split("/", 1)[0]
            contents = f"/w/{workspace}/api/contents/notes.txt"
            # A text field of the page (the fake lab has no editor): typing works while live.
            await page.evaluate("() => { const t = document.createElement('textarea');"
                                " t.id = 'field'; document.body.prepend(t); }")
            await page.click("#field")
            await page.keyboard.type("live")
            assert await page.evaluate(SAVE, contents) == "answered 201"
            ended_at = await end(served, sid)
            # The first request after the end is answered 410 "ended": the page ends at once
            # (no poll, no tab switch), and that save neither succeeds nor fails.
            answers: list[tuple[int, str | None]] = []
            page.on("response", lambda r: answers.append(
                (r.status, r.headers.get("x-pairlab-session"))) if "/api/contents/" in r.url
                else None)
            assert await page.evaluate(SAVE, contents) == "unsettled"
            assert answers == [(410, "ended")]
            await expect(page.locator("#pairlab-ended")).to_be_visible(timeout=2_000)
            assert time.monotonic() - ended_at < 8
            await expect(page.locator("#pairlab-ended")).to_contain_text(
                "The interview has ended — thank you; your work is saved")
            # Read-only: the field takes no more keys or pastes, and is inert.
            await page.locator("#field").click(force=True)
            await page.keyboard.type("after")
            await page.keyboard.press("Control+s")
            assert await page.input_value("#field") == "live"
            assert await page.evaluate("document.querySelector('#field').closest('[inert]')"
                                       " !== null")
            # Later saves are not even sent.
            assert await page.evaluate(SAVE, contents) == "unsettled"
            assert answers == [(410, "ended")]
            # The banner's link and a reload: the thank-you page.
            await page.click("#pairlab-leave")
            await page.wait_for_url(f"**/w/{workspace}/lab")
            await _closing_page(page, 410, "Thank you", "thank you for your time")
            reload = await page.reload()
            assert reload is not None and reload.status == 410
            await _closing_page(page, 410, "Thank you", "Your work is saved")
            # The candidate link again: the same thank-you.
            again = await page.goto(link_holder["link"])
            assert again is not None and again.status == 410
            await _closing_page(page, 410, "Thank you", "you can close this tab")
            # A made-up link: not valid, and who to ask.
            shared = served.settings.workspace_url
            bogus = await page.goto(f"{shared}/c/this-is-not-a-real-link")
            assert bogus is not None and bogus.status == 404
            await _closing_page(page, 404, "This link is not valid",
                                "ask the person who invited you")
        finally:
            await browser.close()
