"""Sessions end to end over both origins, with a fake workspace server behind the real proxy."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime, timedelta

import aiohttp
from aiohttp import WSMsgType

from server.http.keys import DB
from server.recording.keys import RECORDING
from tests.conftest import audit_actions, create_user, form_csrf_token, login, query
from tests.harness import Env, EnvFactory
from workspaces import lifecycle
from workspaces import sessions as S
from workspaces.recording import events as E


async def test_schedule_link_start_proxy_end(make_env: EnvFactory) -> None:
    env = await make_env()
    created = await env.schedule(candidate_email="ada@example.org")
    session_id = created["session_id"]
    link = created["candidate_link"]
    token = link.rsplit("/", 1)[1]
    assert link.startswith(env.settings.workspace_url + "/c/")
    assert len(token) >= 22  # >= 128 bits of randomness, url-safe
    assert created["interviewer_url"].endswith(f"/sessions/{session_id}")
    # stored only hashed
    assert not query(env.settings, "SELECT 1 FROM interview_sessions WHERE link_hash = ?", (token,))

    exchange = await env.ws.get("/" + link.split("/", 3)[3], allow_redirects=False)
    assert exchange.headers["Referrer-Policy"] == "no-referrer"
    landing = exchange.headers["Location"]
    assert landing == f"/s/{session_id}" and token not in landing
    page = await env.ws.get(landing)
    html = await page.text()
    assert page.headers["Referrer-Policy"] in ("no-referrer", "same-origin")
    assert "Ada Lovelace" in html and "recorded" in html
    assert re.search(r'id="time-left">(59|60) minutes<', html)  # scheduled now, 60 minutes
    assert "alert(1)" not in html  # the brief's <script> is dropped

    location = await env.start_as_candidate(session_id)
    assert location.startswith("/w/") and location.endswith("/lab")
    lab = await env.ws.get(location)
    body = await lab.text()
    assert lab.status == 200 and "fake lab" in body
    assert 'src="/_pairlab/countdown.js"' in body and f'data-session="{session_id}"' in body

    workspace = location.split("/")[2]
    upstream, _ = env.manager.upstreams[workspace]
    echo = await env.ws.post(
        f"/w/{workspace}/echo/x?y=1", data=b"abc",
        headers={"X-Pairlab-User": '{"name": "spoofed"}', "Authorization": "token stolen"},
    )
    seen = await echo.json()
    assert seen["headers"]["Authorization"] == f"token {upstream.token}"
    assert "Ada Lovelace" in seen["headers"]["X-Pairlab-User"]
    assert "spoofed" not in seen["headers"]["X-Pairlab-User"]
    assert "pairlab_" not in seen["headers"].get("Cookie", "")
    assert seen["body_length"] == 3 and seen["query"] == "y=1"
    assert echo.headers.get("Connection", "") != "keep-alive"  # hop-by-hop not relayed
    assert upstream.token not in str(lab.headers) and upstream.token not in body

    put = await env.ws.put(f"/w/{workspace}/api/contents/a.txt", json={"content": "hi"})
    assert put.status == 201
    got = await env.ws.get(f"/w/{workspace}/api/contents/a.txt")
    assert (await got.json())["content"] == "hi"
    big = await env.ws.get(f"/w/{workspace}/big")
    assert len(await big.read()) == 64 * 65536

    api = await env.client.get(f"/api/v1/sessions/{session_id}")
    data = await api.json()
    assert data["session"]["state"] == "live"
    assert data["session"]["workspace_url"].endswith(f"/w/{workspace}/lab")
    assert any(c["kind"] == "link opened" for c in data["connections"])

    end = await env.client.post(
        f"/api/v1/sessions/{session_id}/end", headers={"X-CSRF-Token": env.csrf}
    )
    assert (await end.json())["session"]["state"] == "ended"
    assert workspace in env.provisioner.stopped
    # The closed workspace and the used link answer the thank-you page (410 Gone), with the
    # header the candidate's open JupyterLab recognises the end by.
    after = await env.ws.get(f"/w/{workspace}/lab")
    assert after.status == 410 and "thank you" in await after.text()
    assert after.headers["X-Pairlab-Session"] == "ended"
    again = await env.ws.get("/" + link.split("/", 3)[3], allow_redirects=False)
    assert again.status == 410 and "thank you" in await again.text()
    actions = audit_actions(env.settings)
    assert {"session.schedule", "session.start", "session.end"} <= set(actions)


async def test_websocket_relay_and_origin_checks(make_env: EnvFactory) -> None:
    env = await make_env()
    created = await env.schedule()
    await env.open_link(created["candidate_link"])
    workspace = (await env.start_as_candidate(created["session_id"])).split("/")[2]
    url = f"/w/{workspace}/api/kernels/k1/channels"
    origin = env.settings.workspace_origin(workspace)
    async with env.ws.ws_connect(
        url, protocols=["v1.kernel.websocket.jupyter.org"], origin=origin
    ) as ws:
        assert ws.protocol == "v1.kernel.websocket.jupyter.org"
        hello = await ws.receive()
        assert hello.type == WSMsgType.TEXT and "Ada Lovelace" in hello.data
        await ws.send_str("ping")
        assert (await ws.receive()).data == "ping"
        await ws.send_bytes(b"\x00\x01binary")
        echoed = await ws.receive()
        assert echoed.type == WSMsgType.BINARY and echoed.data == b"\x00\x01binary"
    for bad in ("http://evil.example", env.settings.workspace_url, None):
        try:
            async with env.ws.ws_connect(url, origin=bad):
                raise AssertionError("a cross-origin WebSocket was accepted")
        except aiohttp.WSServerHandshakeError as exc:
            assert exc.status == 403


async def test_access_control_between_sessions(make_env: EnvFactory) -> None:
    env = await make_env()
    first = await env.schedule(candidate_name="Ada")
    second = await env.schedule(candidate_name="Grace")
    await env.open_link(first["candidate_link"])
    ws_a = (await env.start_as_candidate(first["session_id"])).split("/")[2]
    started = await env.client.post(
        f"/api/v1/sessions/{second['session_id']}/start", headers={"X-CSRF-Token": env.csrf}
    )
    assert started.status == 200
    ws_b = (await started.json())["session"]["workspace_url"].split("/")[4]
    # Ada's cookie works on her workspace and not on Grace's.
    assert (await env.ws.get(f"/w/{ws_a}/lab")).status == 200
    denied = await env.ws.get(f"/w/{ws_b}/lab")
    assert denied.status == 403
    assert (await env.ws.get(f"/s/{second['session_id']}")).status == 403
    # No cookie at all.
    async with aiohttp.ClientSession() as anonymous:
        response = await anonymous.get(str(env.ws.make_url(f"/w/{ws_a}/lab")),
                                       headers={"Host": f"w-{ws_a}.localhost"})
        assert response.status == 403
    # An interviewer who is not assigned cannot see the session.
    create_user(env.settings, "other@example.com", "interviewer")
    await env.client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": env.csrf})
    await login(env.client, "other@example.com")
    assert (await env.client.get(f"/api/v1/sessions/{first['session_id']}")).status == 403


async def test_link_window(make_env: EnvFactory) -> None:
    env = await make_env()
    later = (datetime.now(UTC) + timedelta(hours=3)).isoformat()
    early = await env.schedule(starts_at=later)
    path = "/" + early["candidate_link"].split("/", 3)[3]
    response = await env.ws.get(path, allow_redirects=False)
    assert response.status == 403
    assert "not started yet" in await response.text()
    soon = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
    ok = await env.schedule(starts_at=soon)
    assert (await env.ws.get("/" + ok["candidate_link"].split("/", 3)[3],
                             allow_redirects=False)).status == 303
    unknown = await env.ws.get("/c/not-a-real-token", allow_redirects=False)
    assert unknown.status == 404


async def test_role_mismatch_warning(make_env: EnvFactory) -> None:
    env = await make_env()
    # demo-task is an eval-script: it fits a data scientist; an MLOps engineer gets a warning.
    response = await env.client.post(
        "/api/v1/sessions", json={"task": "demo-task", "candidate_name": "Lin",
                                  "role": "mlops-engineer"},
        headers={"X-CSRF-Token": env.csrf},
    )
    assert response.status == 409
    assert (await response.json())["error"]["code"] == "role_mismatch"
    confirmed = await env.schedule(role="mlops-engineer", confirm_role_mismatch=True)
    assert confirmed["warnings"]


async def test_handoff_is_one_time(make_env: EnvFactory) -> None:
    env = await make_env()
    created = await env.schedule()
    await env.open_link(created["candidate_link"])
    await env.start_as_candidate(created["session_id"])
    handoff = await env.client.post(
        f"/api/v1/sessions/{created['session_id']}/handoff", headers={"X-CSRF-Token": env.csrf}
    )
    url = (await handoff.json())["url"]
    assert url.startswith(env.settings.workspace_url + "/handoff/")
    url = str(env.ws.make_url(url.removeprefix(env.settings.workspace_url)))
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        first = await browser.get(url, allow_redirects=False, headers={"Host": "localhost"})
        assert first.status == 303 and "/enter/" in first.headers["Location"]
        env.ws.session.cookie_jar.clear()  # the interviewer's browser, not the candidate's
        lab_path = await env.enter(first.headers["Location"])
        assert lab_path.endswith("/lab")
        lab = await env.ws.get(lab_path)
        assert lab.status == 200
        echo = await env.ws.get(lab_path.replace("/lab", "/echo/me"))
        assert "lead" in (await echo.json())["headers"]["X-Pairlab-User"]
        second = await browser.get(url, allow_redirects=False, headers={"Host": "localhost"})
        assert second.status == 410


async def test_extend_and_deadline(make_env: EnvFactory) -> None:
    env = await make_env()
    created = await env.schedule(duration_minutes=10)
    session_id = created["session_id"]
    before = created["session"]["ends_at"]
    response = await env.client.post(
        f"/api/v1/sessions/{session_id}/extend", json={"minutes": 15},
        headers={"X-CSRF-Token": env.csrf},
    )
    after = (await response.json())["session"]["ends_at"]
    assert datetime.fromisoformat(after) - datetime.fromisoformat(before) >= timedelta(minutes=15)
    bad = await env.client.post(
        f"/api/v1/sessions/{session_id}/extend", json={"minutes": "lots"},
        headers={"X-CSRF-Token": env.csrf},
    )
    assert bad.status == 422


async def test_crashed_workspace_is_restarted(make_env: EnvFactory) -> None:
    env = await make_env()
    created = await env.schedule()
    await env.open_link(created["candidate_link"])
    workspace = (await env.start_as_candidate(created["session_id"])).split("/")[2]
    await env.provisioner.crash(workspace)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if "workspace.restarted" in audit_actions(env.settings):
            break
        await asyncio.sleep(0.2)
    assert workspace in env.provisioner.running
    lab = await env.ws.get(f"/w/{workspace}/lab")
    assert lab.status == 200
    assert "workspace.restarted" in audit_actions(env.settings)


async def test_failed_start_is_reported(make_env: EnvFactory) -> None:
    env = await make_env()
    provisioner = env.provisioner
    provisioner.fail_next_start = "the sandbox could not be built: bwrap is missing"
    created = await env.schedule()
    response = await env.client.post(
        f"/api/v1/sessions/{created['session_id']}/start", headers={"X-CSRF-Token": env.csrf}
    )
    assert response.status == 422
    assert "bwrap is missing" in (await response.json())["error"]["message"]
    state = await env.client.get(f"/api/v1/sessions/{created['session_id']}")
    session = (await state.json())["session"]
    assert session["state"] == "failed" and "bwrap" in session["failure_reason"]


async def test_warm_pool_is_claimed(make_env: EnvFactory) -> None:
    env = await make_env(warm_pool_size=1)
    await pool_started(env)
    assert len(env.provisioner.started) == 1
    warm = env.provisioner.started[0]
    created = await env.schedule()
    await env.open_link(created["candidate_link"])
    location = await env.start_as_candidate(created["session_id"])
    assert location == f"/w/{warm}/lab"  # the warm server was claimed, not a new cold one

    def states() -> list[str]:
        return [r[0] for r in query(env.settings,
                                    "SELECT state FROM workspaces ORDER BY created_at")]

    # No refill while the candidate has not run a cell (it would compete with the first one).
    await asyncio.sleep(2)
    assert states() == ["live"] and len(env.provisioner.started) == 1
    await env.app[RECORDING].record_stored(E.Event(
        created["session_id"], E.ACTOR_CANDIDATE, E.CELL_EXECUTED, "nb.ipynb",
        {"code": "1+1"}, datetime.now(UTC)))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and states() != ["live", "warm"]:
        await asyncio.sleep(0.1)
    assert states() == ["live", "warm"]  # refilled once the first cell ran
    assert len(env.provisioner.started) == 2


async def pool_started(env: Env) -> None:
    """Until the pool's first workspace has been started (the first run builds the task
    environment)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(env.provisioner.started) < 1:
        await asyncio.sleep(0.1)


async def test_the_pool_is_refilled_without_a_cell_after_a_while(make_env: EnvFactory) -> None:
    env = await make_env(warm_pool_size=1)
    env.manager.refill_after_s = 3.0
    await pool_started(env)
    created = await env.schedule()
    await env.open_link(created["candidate_link"])
    await env.start_as_candidate(created["session_id"])
    await asyncio.sleep(1.0)
    assert len(env.provisioner.started) == 1  # not at once: it waits for a cell first
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(env.provisioner.started) < 2:
        await asyncio.sleep(0.1)
    assert len(env.provisioner.started) == 2  # no cell ran: refilled after the wait


async def test_live_session_survives_a_restart(make_env: EnvFactory) -> None:
    env = await make_env()
    created = await env.schedule()
    await env.open_link(created["candidate_link"])
    workspace = (await env.start_as_candidate(created["session_id"])).split("/")[2]
    put = await env.ws.put(f"/w/{workspace}/api/contents/kept.txt", json={"content": "mine"})
    assert put.status == 201
    cookies = env.ws.session.cookie_jar
    # The server goes away (its workspaces die with it, as bwrap's --die-with-parent does).
    await env.provisioner.crash(workspace)
    await env.ws.close()
    await env.client.close()
    again = await make_env(publish=False)
    again.ws.session.cookie_jar.update_cookies(
        {c.key: c.value for c in cookies}, again.ws.make_url("/")
    )
    assert workspace in again.provisioner.running  # restored on the same folder
    got = await again.ws.get(f"/w/{workspace}/api/contents/kept.txt")
    assert got.status == 200 and (await got.json())["content"] == "mine"
    state = await again.client.get(f"/api/v1/sessions/{created['session_id']}")
    assert (await state.json())["session"]["state"] == "live"


async def test_a_live_workspace_not_running_is_restarting_not_ended(make_env: EnvFactory) -> None:
    """While a live session's server is not registered (between a crash and its restart), the
    proxy says it is restarting (503), never that the interview ended: the candidate's page
    would turn read-only and thank them in the middle of their interview."""
    env = await make_env()
    created = await env.schedule()
    await env.open_link(created["candidate_link"])
    workspace = (await env.start_as_candidate(created["session_id"])).split("/")[2]
    registered = env.manager.upstreams.pop(workspace)
    try:
        lab = await env.ws.get(f"/w/{workspace}/lab")
        assert lab.status == 503 and "restarting" in await lab.text()
        assert "X-Pairlab-Session" not in lab.headers
    finally:
        env.manager.upstreams[workspace] = registered
    assert (await env.ws.get(f"/w/{workspace}/lab")).status == 200


async def test_the_deadline_loop_leaves_a_workspace_whose_session_is_still_starting(
        make_env: EnvFactory) -> None:
    """A start registers the workspace's upstream a moment before the session is live in the
    database; a deadline check that read the live sessions just before must not take it for a
    session ended elsewhere and stop it (it did: the candidate landed on a workspace stopped
    under them, seen in tests/journeys/test_candidate_end.py). Here the session is held in that
    moment (upstream registered, state "provisioning") for more than two checks."""
    env = await make_env()
    created = await env.schedule()
    sid = created["session_id"]
    await env.open_link(created["candidate_link"])
    workspace = (await env.start_as_candidate(sid)).split("/")[2]
    db = env.app[DB]
    await db.write(lambda d: S.set_state(d, sid, "provisioning", expect=("live",)))
    await asyncio.sleep(lifecycle.WATCH_INTERVAL_S * 2.5)
    assert workspace in env.manager.upstreams
    assert workspace not in env.provisioner.stopped
    # Ended elsewhere (as `pairlab session end` does) it is stopped at the next check.
    await db.write(lambda d: S.set_state(d, sid, "ended", expect=("provisioning",)))
    deadline = time.monotonic() + lifecycle.WATCH_INTERVAL_S * 5
    while workspace in env.manager.upstreams and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert workspace not in env.manager.upstreams
    assert workspace in env.provisioner.stopped


async def test_no_refill_starts_while_pairlab_shuts_down(make_env: EnvFactory) -> None:
    """The recorder closes first at shutdown: a session waiting for its first cell then starts
    no new warm workspace (it would be cancelled half-way)."""
    env = await make_env(warm_pool_size=1)
    env.manager.refill_after_s = 1.0  # without the close, a refill would start after 1 s
    await pool_started(env)
    created = await env.schedule()
    await env.open_link(created["candidate_link"])
    await env.start_as_candidate(created["session_id"])
    await env.app[RECORDING].close()
    await asyncio.sleep(2.5)
    assert len(env.provisioner.started) == 1


async def test_the_link_opened_again_keeps_the_first_pages_start(make_env: EnvFactory) -> None:
    """The candidate link opened twice in one browser (a double click in the e-mail, a second
    tab): the first landing page's Start still starts the workspace. A new grant on each visit
    expired the first page's form (403), and the error page's "reload" re-sent it."""
    env = await make_env()
    created = await env.schedule()
    sid = created["session_id"]
    await env.open_link(created["candidate_link"])
    first = form_csrf_token(await (await env.ws.get(f"/s/{sid}")).text())
    cookies = {c.key: c.value for c in env.ws.session.cookie_jar}
    assert await env.open_link(created["candidate_link"]) == f"/s/{sid}"  # the second tab
    assert {c.key: c.value for c in env.ws.session.cookie_jar} == cookies
    start = await env.ws.post(f"/s/{sid}/start", data={"csrf_token": first},
                              allow_redirects=False)
    assert start.status == 303, await start.text()
    assert "/enter/" in start.headers["Location"]
    opened = query(env.settings, "SELECT kind FROM session_connections WHERE session_id = ?",
                   (sid,))
    assert [row[0] for row in opened].count("link opened") == 2  # both visits recorded


async def test_a_stale_start_form_leads_back_to_a_fresh_page(make_env: EnvFactory) -> None:
    """A Start form older than the browser's grant (two tabs that opened the link at the same
    moment, a link re-issued since, a cross-site form) starts nothing and leads back to a fresh
    landing page that says so, where Start works (it was a 403 page that said to reload, which
    re-sent the stale form)."""
    env = await make_env()
    created = await env.schedule()
    sid = created["session_id"]
    await env.open_link(created["candidate_link"])
    refused = await env.ws.post(f"/s/{sid}/start", data={"csrf_token": "stale"},
                                allow_redirects=False)
    assert refused.status == 303, await refused.text()
    assert refused.headers["Location"] == f"/s/{sid}?stale=1#start-form"
    assert query(env.settings, "SELECT state FROM interview_sessions WHERE id = ?",
                 (sid,)) == [("scheduled",)]
    page = await (await env.ws.get(f"/s/{sid}?stale=1")).text()
    assert "That Start came from an older copy of this page, so nothing started: press Start" \
        " again." in page
    assert (await env.press_start(sid)).status == 303  # and from there, Start works
