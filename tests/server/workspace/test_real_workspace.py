"""Through pairlab's proxy to a real, sandboxed jupyter-server (JupyterLab + RTC).

These start real bubblewrap sandboxes; one live session is shared by the module's tests.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from common.audit import SYSTEM
from server.app import create_app
from server.http.keys import SETTINGS
from server.sessions.keys import SESSIONS
from server.sessions.wiring import WORKSPACE_APP
from server.settings import Settings, prepare_data_dir
from tests.conftest import create_user, query
from tests.fixture_tasks import SHARED_ENVS, publish_fake_task
from tests.host_routing import HostRoutingClient, enter
from workspaces.sandbox.bwrap import pids_of_uid

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


class Live:
    def __init__(self, settings: Settings, app: web.Application, client: TestClient[Any, Any],
                 ws: TestClient[Any, Any], workspace: str, session_id: str) -> None:
        self.settings, self.app, self.client, self.ws = settings, app, client, ws
        self.workspace, self.session_id = workspace, session_id
        self.seen: list[str] = []

    @property
    def origin(self) -> str:
        return self.settings.workspace_origin(self.workspace)

    def url(self, tail: str) -> str:
        return f"/w/{self.workspace}/{tail}"

    async def get(self, tail: str) -> aiohttp.ClientResponse:
        response = await self.ws.get(self.url(tail))
        self.seen.append(str(response.headers) + await response.text())
        return response

    async def call(self, method: str, tail: str, body: Any = None) -> Any:
        response = await self.ws.request(method, self.url(tail), json=body,
                                         headers={"Origin": self.origin})
        text = await response.text()
        self.seen.append(str(response.headers) + text)
        assert response.status < 300, text
        return json.loads(text) if text else None


@pytest.fixture
async def live() -> AsyncIterator[Live]:
    # A short data folder: AF_UNIX socket paths must stay under 108 bytes.
    data = Path(tempfile.mkdtemp(prefix="plit-", dir="/tmp"))
    settings = prepare_data_dir(Settings(
        data_dir=data, warm_pool_size=0, environments_dir=str(SHARED_ENVS),
        # Test runs may overlap on this machine: each takes its own range of sandbox uids.
        sandbox_uid_base=random.randrange(100_000, 4_000_000, 1000),
    ))
    publish_fake_task(settings)
    create_user(settings, "lead@example.com", "interviewer")
    app = create_app(settings)
    client = TestClient(TestServer(app))
    await client.start_server()
    ws = HostRoutingClient(TestServer(app[WORKSPACE_APP]))
    await ws.start_server()
    try:
        login = await client.post("/api/v1/auth/login", json={
            "email": "lead@example.com", "password": "correct horse battery"})
        csrf = (await login.json())["csrf_token"]
        created = await (await client.post(
            "/api/v1/sessions", json={"task": "demo-task", "candidate_name": "Ada Lovelace"},
            headers={"X-CSRF-Token": csrf})).json()
        path = "/" + created["candidate_link"].split("/", 3)[3]
        await ws.get(path)  # the cookie lands in the jar
        started = time.monotonic()
        response = await ws.post(f"/api/v1/sessions/{created['session_id']}/start",
                                 headers={"X-CSRF-Token": _ws_csrf(ws, app, created)})
        assert response.status == 200, await response.text()
        logging.getLogger(__name__).info("cold start took %.2f s", time.monotonic() - started)
        state = (await response.json())["session"]
        workspace = URL(state["workspace_url"]).path.split("/")[2]
        opened = await ws.get(URL(state["open_url"]).path, allow_redirects=False)
        assert opened.status == 303, await opened.text()
        await enter(ws, opened.headers["Location"])  # the workspace host's own cookie
        yield Live(settings, app, client, ws, workspace, created["session_id"])
    finally:
        await ws.close()
        await client.close()
        shutil.rmtree(data, ignore_errors=True)


def _ws_csrf(ws: TestClient[Any, Any], app: web.Application, created: dict[str, Any]) -> str:
    """The workspace origin's CSRF token for this session, as its landing page embeds it."""
    settings = app[SETTINGS]
    grant = next(c.value for c in ws.session.cookie_jar
                 if c.key == "pairlab_s_" + created["session_id"])
    key = settings.cookie_secret.reveal().encode()
    return hmac.new(key, b"ws-csrf:" + grant.encode(), hashlib.sha256).hexdigest()


def _execute_request(code: str) -> dict[str, Any]:
    return {
        "header": {"msg_id": uuid.uuid4().hex, "username": "", "session": uuid.uuid4().hex,
                   "msg_type": "execute_request", "version": "5.3",
                   "date": datetime.now(UTC).isoformat()},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": True,
                    "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
    }


async def run_cell(live: Live, kernel_id: str, code: str) -> str:
    """Execute ``code`` over the kernel WebSocket through the proxy; return text/plain."""
    # compress=15: permessage-deflate offered, as Chromium always does
    async with live.ws.ws_connect(live.url(f"api/kernels/{kernel_id}/channels"),
                                  origin=live.origin, compress=15) as sock:
        # the proxy declines it (no deflate of every frame on its event loop)
        assert sock.compress == 0
        request = _execute_request(code)
        await sock.send_str(json.dumps(request))
        result = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            msg = await sock.receive(timeout=60)
            assert msg.type == WSMsgType.TEXT
            data = json.loads(msg.data)
            if data["parent_header"].get("msg_id") != request["header"]["msg_id"]:
                continue
            kind = data["header"]["msg_type"]
            if kind in ("execute_result", "display_data"):
                result += data["content"]["data"].get("text/plain", "")
            elif kind == "stream":
                result += data["content"]["text"]
            elif kind == "error":
                result += f"{data['content']['ename']}: {data['content']['evalue']}"
            elif kind == "status" and data["content"]["execution_state"] == "idle":
                return result
        raise AssertionError("no reply from the kernel")


async def test_contents_kernel_terminal_rtc_through_the_proxy(
    live: Live, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    lab = await live.get("lab")
    assert lab.status == 200 and "JupyterLab" in await lab.text()

    await live.call("PUT", "api/contents/hello.py",
                    {"type": "file", "format": "text", "content": "print('hi')\n"})
    got = await live.call("GET", "api/contents/hello.py")
    assert got["content"] == "print('hi')\n"
    listing = await live.call("GET", "api/contents/")
    names = {item["name"] for item in listing["content"]}
    assert {"main.py", "notes.md", "hello.py"} <= names

    kernel = await live.call("POST", "api/kernels", {"name": "python3"})
    assert await run_cell(live, kernel["id"], "1+1") == "2"

    term = await live.call("POST", "api/terminals")
    async with live.ws.ws_connect(live.url(f"terminals/websocket/{term['name']}"),
                                  origin=live.origin) as sock:
        await sock.send_str(json.dumps(["stdin", "echo pl$((40+2))\r"]))
        output = ""
        deadline = time.monotonic() + 30
        while "pl42" not in output and time.monotonic() < deadline:
            msg = await sock.receive(timeout=30)
            if msg.type == WSMsgType.TEXT:
                kind, *rest = json.loads(msg.data)
                if kind == "stdout":
                    output += rest[0]
        assert "pl42" in output

    session = await live.call("PUT", "api/collaboration/session/notes.md",
                              {"format": "text", "type": "file"})
    room = f"api/collaboration/room/text:file:{session['fileId']}"
    async with live.ws.ws_connect(live.url(room) + f"?sessionId={session['sessionId']}",
                                  origin=live.origin) as sock:
        first = await sock.receive(timeout=30)
        assert first.type == WSMsgType.BINARY and len(first.data) > 0

    me = await live.call("GET", "api/me")
    assert me["identity"]["display_name"] == "Ada Lovelace"

    token = live.app[SESSIONS].upstreams[live.workspace][0].token
    leaks = [text[:300] for text in live.seen if token in text]
    assert not leaks, leaks
    assert token not in caplog.text
    log_file = live.settings.data_dir / "workspaces" / live.workspace / "server.log"
    if log_file.exists():
        assert token not in log_file.read_text(errors="replace")


async def test_end_stops_processes_and_freezes_the_folder(live: Live) -> None:
    manager = live.app[SESSIONS]
    upstream, _ = manager.upstreams[live.workspace]
    uid = query(live.settings, "SELECT uid FROM workspaces WHERE id = ?", (live.workspace,))[0][0]
    assert pids_of_uid(uid)  # the server (and whatever the candidate started) runs as uid
    await manager.end_session(live.session_id, SYSTEM, "test")
    assert not Path(upstream.socket_path).exists()
    assert pids_of_uid(uid) == []  # nothing of the candidate's outlives the session
    blocked = await live.ws.get(live.url("lab"))  # the thank-you page, and the end's header
    assert blocked.status == 410 and blocked.headers["X-Pairlab-Session"] == "ended"
    work = live.settings.data_dir / "workspaces" / live.workspace / "work"
    assert (work / "main.py").read_text() == "print('hello')\n"  # final state kept
    assert not (work.stat().st_mode & 0o222)
