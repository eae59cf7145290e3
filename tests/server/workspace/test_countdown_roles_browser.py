"""The end of the interview inside the workspace, beyond ``fetch`` and for each person, in a real
Chromium (the app on loopback ports, a fake jupyter-server): an ``XMLHttpRequest`` answered
"ended" ends the page, and afterwards neither a request nor a WebSocket to the workspace goes
out or fails (JupyterLab would put its errors over the banner); an interviewer pairing in the
workspace is told the interview ended and where it is now, never the candidate's thank-you.
The countdown also publishes its clock for pairlab's side panel."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import async_playwright, expect

from tests.browser import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import MakeSettings
from tests.harness import Served, interviewer, serving
from tests.server.workspace.test_countdown_browser import _prepare, candidate_in_workspace, end

pytestmark = [pytest.mark.browser, pytest.mark.integration]

XHR = """(path) => new Promise(done => {
  const x = new XMLHttpRequest();
  x.open("PUT", path);
  x.setRequestHeader("Content-Type", "application/json");
  x.onload = () => done("loaded " + x.status);
  x.onerror = () => done("error");
  x.send(JSON.stringify({content: "after the end"}));
  setTimeout(() => done("unsettled"), 2500);
})"""
SOCKET = """(path) => new Promise(done => {
  const s = new WebSocket(location.origin.replace(/^http/, "ws") + path);
  s.onopen = () => done("open"); s.onerror = () => done("error");
  s.onclose = () => done("closed");
  setTimeout(() => done("quiet " + (s instanceof WebSocket)), 2500);
})"""
CLOCK = """() => new Promise(done => {
  document.addEventListener("pairlab:session", e => done([e.detail, window.pairlab]),
                            {once: true});
})"""
CANDIDATE_THANKS = "thank you"


@pytest.fixture
async def served(make_settings: MakeSettings, tmp_path: Path) -> AsyncIterator[Served]:
    async with serving(make_settings, tmp_path, _prepare) as running:
        yield running


async def test_after_the_end_xhr_and_websockets_stay_quiet(served: Served) -> None:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            sid = await candidate_in_workspace(served, page)
            workspace = page.url.split("/w/", 1)[1].split("/", 1)[0]
            contents = f"/w/{workspace}/api/contents/notes.txt"
            # The clock the side panel reads: a snapshot on window and an event per tick.
            detail, snapshot = await page.evaluate(CLOCK)
            assert detail == snapshot and detail["sessionId"] == sid
            assert detail["person"] == "candidate" and detail["ended"] is False
            assert detail["secondsLeft"] > 0 and detail["endsAt"]

            assert await page.evaluate(XHR, contents) == "loaded 201"  # live: saved
            await end(served, sid)
            sent: list[str] = []
            page.on("request", lambda r: sent.append(r.url) if f"/w/{workspace}/" in r.url
                    else None)
            # The first XHR after the end is answered 410 "ended": the page ends at once.
            assert await page.evaluate(XHR, contents) == "loaded 410"
            await expect(page.locator("#pairlab-ended")).to_be_visible(timeout=2_000)
            assert len(sent) == 1
            # Then: no request, no socket goes out; nothing fails for JupyterLab to show.
            assert await page.evaluate(XHR, contents) == "unsettled"
            assert await page.evaluate(SOCKET, f"/w/{workspace}/api/kernels/k1/channels") \
                == "quiet true"
            assert len(sent) == 1, sent
            assert (await page.evaluate("window.pairlab"))["ended"] is True
        finally:
            await browser.close()


async def test_an_interviewer_in_the_workspace_is_told_the_end_not_thanked(
        served: Served) -> None:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            candidate = await browser.new_page()
            sid = await candidate_in_workspace(served, candidate)
            joined = await (await browser.new_context()).new_page()
            async with interviewer(served.settings.app_url) as (http, csrf):
                response = await http.post(f"/api/v1/sessions/{sid}/handoff", headers=csrf)
                assert response.status == 200, await response.text()
                handoff = (await response.json())["url"]
            await joined.goto(handoff)
            await joined.wait_for_url("**/lab")
            await expect(joined.locator("#pairlab-countdown")).to_contain_text("left")
            await end(served, sid)
            await joined.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
            banner = joined.locator("#pairlab-ended")
            await expect(banner).to_be_visible(timeout=5_000)
            await expect(banner).to_contain_text("The interview has ended")
            assert CANDIDATE_THANKS not in (await banner.inner_text()).lower()
            leave = joined.locator("#pairlab-leave")
            await expect(leave).to_have_text("Go to the session's page")
            assert await leave.get_attribute("href") == \
                f"{served.settings.app_url}/sessions/{sid}"
            # A reload of the closed workspace: the interviewer's words, not the thank-you.
            reload = await joined.reload()
            assert reload is not None and reload.status == 410
            await expect(joined.locator("p.message")).to_contain_text("session's page")
            assert CANDIDATE_THANKS not in (await joined.locator("main").inner_text()).lower()
            # The candidate, meanwhile, is thanked.
            await candidate.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
            await expect(candidate.locator("#pairlab-ended")).to_contain_text(
                "The interview has ended — thank you; your work is saved")
        finally:
            await browser.close()
