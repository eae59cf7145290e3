"""Each workspace its own origin (issue 10), written as the attacks: a script in workspace A
(or anything holding A's cookie, a used handoff token or a used entry code) trying to reach
workspace B, the shared origin, or A again. The real app and proxy, a fake jupyter-server per
workspace (tests/fake_workspace.py), requests sent to the host a browser would use."""

from __future__ import annotations

from http.cookies import SimpleCookie
from typing import Any

import aiohttp
import pytest
from yarl import URL

from server.http.accesslog import scrub_path
from server.http.keys import DB
from server.settings import SettingsError, load_settings
from tests.conftest import CliResult
from tests.harness import Env, EnvFactory
from tests.host_routing import enter
from workspaces import entry_codes


def host(workspace: str) -> dict[str, str]:
    return {"Host": f"w-{workspace}.localhost"}


async def started(env: Env, name: str) -> tuple[str, str]:
    """A live session (started by the interviewer): (session id, workspace id)."""
    created = await env.schedule(candidate_name=name)
    response = await env.client.post(f"/api/v1/sessions/{created['session_id']}/start",
                                     headers={"X-CSRF-Token": env.csrf})
    assert response.status == 200, await response.text()
    workspace_url = (await response.json())["session"]["workspace_url"]
    workspace = URL(workspace_url).path.split("/")[2]
    assert workspace_url == f"{env.settings.workspace_origin(workspace)}/w/{workspace}/lab"
    return created["session_id"], workspace


async def handoff(env: Env, session_id: str) -> str:
    """The interviewer's one-time join link (path on the shared host)."""
    response = await env.client.post(f"/api/v1/sessions/{session_id}/handoff",
                                     headers={"X-CSRF-Token": env.csrf})
    url: str = (await response.json())["url"]
    assert url.startswith(env.settings.workspace_url + "/handoff/")
    return url.removeprefix(env.settings.workspace_url)


async def join(env: Env, session_id: str) -> str:
    """Join as the interviewer (in ``env.ws``'s jar); returns the entry URL that was used."""
    joined = await env.ws.get(await handoff(env, session_id), allow_redirects=False)
    assert joined.status == 303, await joined.text()
    entry = joined.headers["Location"]
    await enter(env.ws, entry)
    return entry


async def bare(env: Env, method: str, path: str, cookies: dict[str, str],
               headers: dict[str, str]) -> tuple[int, str]:
    """A request with exactly these cookies and headers (a fresh jar: nothing else is sent)."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
        async with http.request(method, str(env.ws.make_url(path)), allow_redirects=False,
                                headers={**headers, **({"Cookie": cookie} if cookie else {})},
                                ) as response:
            return response.status, await response.text()


async def test_a_used_handoff_token_is_never_a_cookie(make_env: EnvFactory) -> None:
    env = await make_env()
    session_id, workspace = await started(env, "Ada")
    token_path = await handoff(env, session_id)
    token = token_path.rsplit("/", 1)[1]
    unused_status, _ = await bare(env, "GET", f"/w/{workspace}/api/status",
                                  {f"pairlab_s_{session_id}": token,
                                   f"pairlab_w_{workspace}": token}, host(workspace))
    used = await env.ws.get(token_path, allow_redirects=False)
    assert used.status == 303
    # The attack: the token (now used, still within its 60 s) set as the cookie directly.
    for path, where in ((f"/w/{workspace}/api/status", host(workspace)),
                        (f"/w/{workspace}/lab", host(workspace)),
                        (f"/api/v1/sessions/{session_id}", host(workspace)),
                        (f"/s/{session_id}", {"Host": "localhost"})):
        status, body = await bare(env, "GET", path, {f"pairlab_s_{session_id}": token,
                                                     f"pairlab_w_{workspace}": token}, where)
        assert status == 403, (path, status, body)
    assert unused_status == 403  # not before its use either
    again = await env.ws.get(token_path, allow_redirects=False)
    assert again.status == 410 and "already used or has expired" in await again.text()


async def test_a_used_entry_code_is_refused_and_is_never_a_cookie(make_env: EnvFactory) -> None:
    env = await make_env()
    session_id, workspace = await started(env, "Ada")
    joined = await env.ws.get(await handoff(env, session_id), allow_redirects=False)
    entry = URL(joined.headers["Location"])
    assert entry.host == f"w-{workspace}.localhost" and entry.path.startswith("/enter/")
    assert joined.headers["Referrer-Policy"] == "no-referrer"
    code = entry.path.rsplit("/", 1)[1]
    assert (await enter(env.ws, str(entry))) == f"/w/{workspace}/lab"
    assert scrub_path(entry.path) == "/enter/[token]"  # never in the access log
    status, body = await bare(env, "GET", entry.path, {}, host(workspace))
    assert status == 410 and "already used or has expired" in body
    status, _ = await bare(env, "GET", f"/w/{workspace}/api/status",
                           {f"pairlab_w_{workspace}": code, f"pairlab_s_{session_id}": code},
                           host(workspace))
    assert status == 403
    # The code's holder got a cookie of its own, which works.
    assert (await env.ws.get(f"/w/{workspace}/api/status")).status == 200


async def test_an_entry_code_works_only_on_its_own_host_and_in_time(make_env: EnvFactory) -> None:
    env = await make_env()
    session_a, ws_a = await started(env, "Ada")
    session_b, ws_b = await started(env, "Grace")
    joined = await env.ws.get(await handoff(env, session_a), allow_redirects=False)
    path = URL(joined.headers["Location"]).path
    for where in (host(ws_b), {"Host": "localhost"}, {"Host": "127.0.0.1"}):
        status, body = await bare(env, "GET", path, {}, where)
        assert status in (404, 410, 421), (where, status, body)
    # A code past its time is refused (its row made as the handoff makes one, then aged).
    code = await env.app[DB].write(
        lambda d: entry_codes.issue(d, session_b, ws_b, "candidate", None))
    await env.app[DB].write(lambda d: d.execute(
        "UPDATE workspace_entry_codes SET expires_at = '2000-01-01T00:00:00+00:00'"))
    status, body = await bare(env, "GET", f"/enter/{code}", {}, host(ws_b))
    assert status == 410 and "expired" in body


async def test_workspace_a_cannot_reach_workspace_b(make_env: EnvFactory) -> None:
    """An interviewer joined to both: a request from A's pages (A's host, A's Origin, every
    cookie the interviewer has) gets nothing of B's; A's own requests work."""
    env = await make_env()
    session_a, ws_a = await started(env, "Ada")
    session_b, ws_b = await started(env, "Grace")
    await join(env, session_a)
    await join(env, session_b)
    a_origin = {"Origin": env.settings.workspace_origin(ws_a)}
    assert (await env.ws.get(f"/w/{ws_a}/api/status", headers={**host(ws_a)})).status == 200
    # B's path on A's host: refused before the proxy, whatever cookies come along.
    for method in ("GET", "PUT", "POST"):
        response = await env.ws.request(method, f"/w/{ws_b}/api/contents/x.txt",
                                        headers={**host(ws_a), **a_origin}, json={})
        assert response.status == 421, method
        assert "own host" in await response.text()
    # Workspaces are not served on the shared host, nor on a bare address.
    for other in ("localhost", "127.0.0.1", f"w-{ws_a}.localhost.evil.example"):
        response = await env.ws.get(f"/w/{ws_a}/api/status", headers={"Host": other})
        assert response.status == 421, other
    # A write to B from A's page (its Origin) is refused by B.
    put = await env.ws.put(f"/w/{ws_b}/api/contents/planted.txt", json={"content": "x"},
                           headers=a_origin)
    assert put.status == 403
    assert not (env.provisioner.running[ws_b].info.root / "planted.txt").exists()
    # A's cookie value, replayed under B's cookie name on B's host, is not a grant for B.
    cookies = {c.key: c.value for c in env.ws.session.cookie_jar}
    status, _ = await bare(env, "GET", f"/w/{ws_b}/api/status",
                           {f"pairlab_w_{ws_b}": cookies[f"pairlab_w_{ws_a}"]}, host(ws_b))
    assert status == 403
    status, _ = await bare(env, "GET", f"/w/{ws_b}/api/status",
                           {f"pairlab_w_{ws_b}": cookies[f"pairlab_w_{ws_b}"]}, host(ws_b))
    assert status == 200  # the interviewer's own cookie for B works on B


async def test_a_websocket_to_b_from_a_is_refused(make_env: EnvFactory) -> None:
    env = await make_env()
    session_a, ws_a = await started(env, "Ada")
    session_b, ws_b = await started(env, "Grace")
    await join(env, session_a)
    await join(env, session_b)
    channels = f"/w/{ws_b}/api/kernels/k1/channels"
    for origin in (env.settings.workspace_origin(ws_a), env.settings.workspace_url):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            async with env.ws.ws_connect(channels, origin=origin):
                pass
        assert refused.value.status == 403, origin
    with pytest.raises(aiohttp.WSServerHandshakeError) as misdirected:
        async with env.ws.ws_connect(channels, headers=host(ws_a),
                                     origin=env.settings.workspace_origin(ws_a)):
            pass
    assert misdirected.value.status == 421
    async with env.ws.ws_connect(channels, origin=env.settings.workspace_origin(ws_b)) as sock:
        assert "lead" in (await sock.receive(timeout=5)).data  # B's own page may


async def test_workspace_cookies_are_host_only_and_pages_framed_only_by_themselves(
        make_env: EnvFactory) -> None:
    env = await make_env()
    session_id, workspace = await started(env, "Ada")
    joined = await env.ws.get(await handoff(env, session_id), allow_redirects=False)
    entered = await env.ws.get(URL(joined.headers["Location"]).path, headers=host(workspace),
                               allow_redirects=False)
    (raw,) = entered.headers.getall("Set-Cookie")
    morsel = next(iter(SimpleCookie(raw).values()))
    assert morsel.key == f"pairlab_w_{workspace}"
    assert not morsel["domain"] and morsel["path"] == "/"
    assert morsel["httponly"] and morsel["samesite"] == "Lax"
    lab = await env.ws.get(f"/w/{workspace}/lab")
    assert "frame-ancestors 'self'" in lab.headers.getall("Content-Security-Policy")
    assert lab.headers["X-Content-Type-Options"] == "nosniff"


async def test_over_https_workspace_cookies_are_secure_host_cookies(
        make_env: EnvFactory) -> None:
    env = await make_env(workspace_public_url="https://localhost")
    session_id, workspace = await started(env, "Ada")
    joined = await env.ws.get(await handoff(env, session_id), allow_redirects=False)
    assert joined.headers["Location"].startswith(f"https://w-{workspace}.localhost/enter/")
    entered = await env.ws.get(URL(joined.headers["Location"]).path, headers=host(workspace),
                               allow_redirects=False)
    morsel = next(iter(SimpleCookie(entered.headers["Set-Cookie"]).values()))
    assert morsel.key == f"__Host-pairlab_w_{workspace}"  # no sibling host can plant one
    assert morsel["secure"] and not morsel["domain"]


def test_a_workspace_domain_that_is_not_a_host_name_stops_the_start(
        run_cli: Any) -> None:
    for bad, reason in (("bad_name", "not a valid host name"), ("127.0.0.1", "IP address"),
                        ("-x.example", "not a valid host name")):
        with pytest.raises(SettingsError, match=reason):
            load_settings(environ={"PAIRLAB_WORKSPACE_DOMAIN": bad})
    result: CliResult = run_cli("serve", "--workspace-domain", "exa mple")
    assert result.returncode == 2
    assert "workspace_domain: 'exa mple' is not a valid host name" in result.stderr
    with pytest.raises(SettingsError, match="must be workspace_domain"):
        load_settings(environ={"PAIRLAB_WORKSPACE_PUBLIC_URL": "https://ws.example.com"})
    with pytest.raises(SettingsError, match="share cookies"):
        load_settings(environ={"PAIRLAB_PUBLIC_URL": "https://app.ws.example.com",
                               "PAIRLAB_WORKSPACE_DOMAIN": "ws.example.com"})
    ok = load_settings(environ={"PAIRLAB_WORKSPACE_DOMAIN": "WS.Example.com",
                                "PAIRLAB_WORKSPACE_PUBLIC_URL": "https://ws.example.com"})
    assert ok.workspace_origin("w0a1") == "https://w-w0a1.ws.example.com"


async def test_an_entry_code_from_inside_the_workspace_or_for_another_person_is_refused(
        make_env: EnvFactory) -> None:
    """Entry-code fixation without a browser (Chromium: test_workspace_origins_browser.py):
    a code opened by the workspace's own page, or fetched by its script, is refused before it
    is used; an interviewer's code may replace a candidate's grant, never the other way."""
    env = await make_env()
    created = await env.schedule()
    await env.open_link(created["candidate_link"])
    lab = await env.start_as_candidate(created["session_id"])  # env.ws: the candidate's browser
    workspace = lab.split("/")[2]
    joined = await env.ws.get(await handoff(env, created["session_id"]), allow_redirects=False)
    entry = URL(joined.headers["Location"])
    inside = [{"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "navigate",
               "Sec-Fetch-Dest": "document"},
              {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors",
               "Sec-Fetch-Dest": "empty"}]
    for headers in inside:
        refused = await env.ws.get(entry.path, allow_redirects=False,
                                   headers={"Host": entry.host or "", **headers})
        assert refused.status == 403
        assert "opened from inside the workspace is refused" in await refused.text()
    # Not used by those: from a real navigation it works, and an interviewer's code (which
    # only a logged-in interviewer gets) may replace the candidate's grant in this browser: an
    # interviewer who first tried the candidate link in their own browser can still join. The
    # other way round (a candidate's code in an interviewer's browser) is refused: see the
    # Chromium test.
    switched = await env.ws.get(entry.path, allow_redirects=False, headers={
        "Host": entry.host or "", "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate",
        "Sec-Fetch-Dest": "document"})
    assert switched.status == 303, await switched.text()
    echo = await env.ws.get(f"/w/{workspace}/echo/who")
    assert '"username": "interviewer-' in (await echo.json())["headers"]["X-Pairlab-User"]
