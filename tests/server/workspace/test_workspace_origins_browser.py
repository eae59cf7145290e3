"""Each workspace its own origin, in a real Chromium: an interviewer joined to two sessions,
a script on workspace A's page (what a notebook's HTML output or a planted page would run)
tries to read and open a WebSocket to workspace B. The real app and proxy on loopback ports
(``w-<id>.localhost`` resolves to loopback in Chromium), a fake jupyter-server per workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import async_playwright
from yarl import URL

from server.settings import Settings
from tests.browser import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import PASSWORD, MakeSettings, create_user
from tests.fixture_tasks import publish_fake_task
from tests.harness import LEAD, interviewer, serving

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

READ = """async (url) => {
  try {
    const r = await fetch(url, {credentials: "include"});
    return "read " + r.status + " " + (await r.text()).slice(0, 80);
  } catch (e) { return "blocked: " + e.name; }
}"""
SOCKET = """(url) => new Promise((done) => {
  const s = new WebSocket(url);
  s.onopen = () => { s.close(); done("open"); };
  s.onerror = () => done("refused");
  s.onclose = () => done("refused");
})"""


def _prepare(settings: Settings) -> None:
    publish_fake_task(settings)
    create_user(settings, LEAD, "interviewer")


async def _two_live_sessions(settings: Settings) -> list[dict[str, Any]]:
    """Schedule and start two sessions as the interviewer: candidate link, handoff, workspace."""
    out = []
    async with interviewer(settings.app_url) as (http, csrf):
        for name in ("Ada", "Grace"):
            created = await (await http.post("/api/v1/sessions", headers=csrf, json={
                "task": "demo-task", "candidate_name": name})).json()
            sid = created["session_id"]
            started = await (await http.post(f"/api/v1/sessions/{sid}/start",
                                             headers=csrf)).json()
            handoff = await (await http.post(f"/api/v1/sessions/{sid}/handoff",
                                             headers=csrf)).json()
            workspace = URL(started["session"]["workspace_url"]).path.split("/")[2]
            out.append({"session": sid, "workspace": workspace, "handoff": handoff["url"],
                        "lab": started["session"]["workspace_url"]})
    return out


async def test_a_script_on_workspace_a_cannot_reach_workspace_b(
        make_settings: MakeSettings, tmp_path: Path) -> None:
    async with serving(make_settings, tmp_path, _prepare) as served:
        settings = served.settings
        a, b = await _two_live_sessions(settings)
        origin_a = settings.workspace_origin(a["workspace"])
        origin_b = settings.workspace_origin(b["workspace"])
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                context = await browser.new_context()
                page = await context.new_page()
                for one in (b, a):  # the interviewer joins both (Join = the handoff link)
                    await page.goto(one["handoff"])
                    assert page.url == one["lab"]  # on the workspace's own host
                    assert "fake lab" in await page.content()
                hosts = {c["name"]: c["domain"] for c in await context.cookies()}
                assert hosts == {f"pairlab_w_{w}": f"w-{w}.localhost"
                                 for w in (a["workspace"], b["workspace"])}  # host-only
                # Now on A's page, as A's candidate's script.
                own = await page.evaluate(READ, f"/w/{a['workspace']}/api/status")
                assert own.startswith("read 200")
                cross = await page.evaluate(READ, f"{origin_b}/w/{b['workspace']}/api/status")
                assert cross.startswith("blocked"), cross  # no data from B
                same_path = await page.evaluate(READ, f"/w/{b['workspace']}/api/status")
                assert same_path.startswith("read 421"), same_path
                ws_url = "ws" + origin_b.removeprefix("http") + \
                    f"/w/{b['workspace']}/api/kernels/k1/channels"
                assert await page.evaluate(SOCKET, ws_url) == "refused"
                own_ws = "ws" + origin_a.removeprefix("http") + \
                    f"/w/{a['workspace']}/api/kernels/k1/channels"
                assert await page.evaluate(SOCKET, own_ws) == "open"
                # The same socket from B's own page opens: it was A's origin that was refused.
                await page.goto(b["lab"])
                assert await page.evaluate(SOCKET, ws_url) == "open"
            finally:
                await browser.close()


async def test_the_candidate_lands_in_the_workspace_on_its_own_host(
        make_settings: MakeSettings, tmp_path: Path) -> None:
    async with serving(make_settings, tmp_path, _prepare) as served:
        settings = served.settings
        async with interviewer(settings.app_url) as (http, csrf):
            created = await (await http.post(
                "/api/v1/sessions", json={"task": "demo-task", "candidate_name": "Ada"},
                headers=csrf)).json()
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = await (await browser.new_context()).new_page()
                await page.goto(created["candidate_link"])
                assert page.url == f"{settings.workspace_url}/s/{created['session_id']}"
                await page.click("#start")
                await page.wait_for_url("**/lab")
                workspace = URL(page.url).path.split("/")[2]
                assert page.url == f"{settings.workspace_origin(workspace)}/w/{workspace}/lab"
                assert "fake lab" in await page.content()
                # Back on the landing page, "Open your workspace" enters again (a new code).
                await page.goto(f"{settings.workspace_url}/s/{created['session_id']}")
                await page.click("#open-workspace")
                await page.wait_for_url("**/lab")
                assert URL(page.url).host == f"w-{workspace}.localhost"
            finally:
                await browser.close()


WHO = """async (path) => {
  const r = await fetch(path, {credentials: "include"});
  if (r.status !== 200) return "status " + r.status;
  return JSON.parse((await r.json()).headers["X-Pairlab-User"]).username;
}"""
CLICK = """(href) => {
  const a = document.createElement("a");  // a markdown link in a notebook renders as this
  a.href = href; a.textContent = "see my notes"; a.id = "planted";
  document.body.appendChild(a);
}"""


async def _candidate_entry_codes(settings: Settings, candidate_link: str, session_id: str,
                                 count: int) -> list[str]:
    """What the candidate can mint: fresh entry URLs (``/s/<id>/open``, redirect not followed)."""
    urls = []
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        landed = await http.get(candidate_link, allow_redirects=False)
        assert landed.status == 303
        for _ in range(count):
            opened = await http.get(f"{settings.workspace_url}/s/{session_id}/open",
                                    allow_redirects=False)
            assert opened.status == 303, await opened.text()
            urls.append(opened.headers["Location"])
    assert all("/enter/" in url for url in urls)
    return urls


async def test_a_link_in_the_workspace_cannot_make_the_interviewer_the_candidate(
        make_settings: MakeSettings, tmp_path: Path) -> None:
    """Entry-code fixation: the candidate mints a code for themselves and gets the
    interviewer's browser to open it inside the workspace (a link, a script): the interviewer
    must stay the interviewer (else their edits are recorded as the candidate's)."""
    async with serving(make_settings, tmp_path, _prepare) as served:
        settings = served.settings
        async with interviewer(settings.app_url) as (http, csrf):
            created = await (await http.post("/api/v1/sessions", headers=csrf, json={
                "task": "demo-task", "candidate_name": "Ada"})).json()
            sid = created["session_id"]
            started = await http.post(f"/api/v1/sessions/{sid}/start", headers=csrf)
            lab = (await started.json())["session"]["workspace_url"]
        workspace = URL(lab).path.split("/")[2]
        echo = f"/w/{workspace}/echo/who"
        link, script, fetched, pasted = await _candidate_entry_codes(
            settings, created["candidate_link"], sid, 4)
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = await (await browser.new_context()).new_page()
                # The interviewer logs in and presses Join on the session's page.
                await page.goto(f"{settings.app_url}/login")
                await page.fill("#email", LEAD)
                await page.fill("#password", PASSWORD)
                await page.press("#password", "Enter")
                await page.wait_for_url(f"{settings.app_url}/")
                await page.goto(f"{settings.app_url}/sessions/{sid}")
                await page.click("#join")
                await page.wait_for_url(lab)
                me = await page.evaluate(WHO, echo)
                assert me.startswith("interviewer-"), me
                # 1. A link in the candidate's notebook, clicked.
                await page.evaluate(CLICK, link)
                async with page.expect_navigation() as clicked:
                    await page.click("#planted")
                assert (await clicked.value).status == 403
                assert "opened from inside the workspace is refused" in await page.content()
                await page.goto(lab)
                assert await page.evaluate(WHO, echo) == me
                # 2. A script's navigation, 3. a script's fetch (its Set-Cookie would apply).
                async with page.expect_navigation() as navigated:
                    await page.evaluate("(url) => { window.location.href = url; }", script)
                assert (await navigated.value).status == 403
                await page.goto(lab)
                assert await page.evaluate(WHO, echo) == me
                assert (await page.evaluate(READ, fetched)).startswith("read 403")
                assert await page.evaluate(WHO, echo) == me
                # 4. The code's URL sent some other way (chat, mail) and opened: the browser
                # is the interviewer's already, and stays so.
                refused = await page.goto(pasted)
                assert refused is not None and refused.status == 403
                assert "already in this workspace as" in await page.content()
                await page.goto(lab)
                assert await page.evaluate(WHO, echo) == me
                # Join again still works (a fresh code through the app and the shared host).
                await page.goto(f"{settings.app_url}/sessions/{sid}")
                await page.click("#join")
                await page.wait_for_url(lab)
                assert await page.evaluate(WHO, echo) == me
            finally:
                await browser.close()
