"""The real app over the recording task with its real provisioner, for the tests that start
sandboxed jupyter-servers (kernels, terminals, real-time collaboration) behind pairlab's proxy:

- ``real_rec``: the app through aiohttp test clients, as a ``Rec`` (the lead logged in), and
  its notebooks' kernels (``open_notebook``, ``run_cell``);
- ``real_in_browser``: the app on loopback ports, the lead's HTTP client, one scheduled session
  and Chromium, as a ``RealSession`` (the candidate in JupyterLab, the session's events).

Each test file passes its own sandbox uid range and data folder prefix, so that two files never
meet in a uid or a folder; the folder is short, under /tmp (AF_UNIX socket paths must stay under
108 bytes), and removed afterwards, as is every session a test started.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import Browser, Page, async_playwright

from common.audit import SYSTEM
from server.app import create_app
from server.sessions.keys import SESSIONS
from server.sessions.wiring import WORKSPACE_APP
from server.settings import Settings, prepare_data_dir
from tests.browser import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import create_user, login
from tests.fixture_tasks import SHARED_ENVS
from tests.harness import LEAD, Loopback, interviewer
from tests.host_routing import HostRoutingClient
from tests.server.recording.conftest import Rec, publish_task

WAIT_MS = 120_000
"""How long a page may take to show what a real workspace sends (a cold jupyter-server)."""


def uid_base(offset: int, default: int) -> int:
    """A test file's first sandbox uid: ``$PAIRLAB_SANDBOX_UID_BASE`` + ``offset`` when it is
    set (one range per engineer), else ``default``."""
    given = os.environ.get("PAIRLAB_SANDBOX_UID_BASE")
    return int(given) + offset if given else default


@contextlib.asynccontextmanager
async def real_settings(prefix: str, uid_base: int, **fields: Any) -> AsyncIterator[Settings]:
    """Settings over a fresh data folder ``/tmp/<prefix>…``: no warm pool, the shared task
    environments, sandbox uids from ``uid_base``, ``fields`` on top; the recording task is
    published and the lead interviewer created. The folder is removed afterwards."""
    data = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    try:
        settings = prepare_data_dir(Settings(
            data_dir=data, warm_pool_size=0, environments_dir=str(SHARED_ENVS),
            sandbox_uid_base=uid_base, **fields))
        publish_task(settings)
        create_user(settings, LEAD, "interviewer")
        yield settings
    finally:
        shutil.rmtree(data, ignore_errors=True)


async def end_sessions(app: web.Application, session_ids: Iterable[str]) -> None:
    """End each session, so that nothing of a test's sandboxes outlives it."""
    for session_id in session_ids:
        with contextlib.suppress(Exception):
            await app[SESSIONS].end_session(session_id, SYSTEM, "the test is over")


@contextlib.asynccontextmanager
async def real_rec(prefix: str, uid_base: int) -> AsyncIterator[Rec]:
    """The real app (real provisioner and sandbox) through a test client for each origin, the
    lead interviewer logged in on the app's; the sessions it started are ended afterwards."""
    async with real_settings(prefix, uid_base) as settings, app_over(settings) as rec:
        yield rec


@contextlib.asynccontextmanager
async def app_over(settings: Settings) -> AsyncIterator[Rec]:
    """``real_rec``'s app over ``settings``; once this exits the app has shut down (its
    clean-up contexts have run), while the data folder is still there to be looked at."""
    app = create_app(settings)
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    ws: TestClient[Any, Any] = HostRoutingClient(TestServer(app[WORKSPACE_APP]))
    await client.start_server()
    await ws.start_server()
    rec = Rec(settings, app, client, ws, await login(client, LEAD))
    try:
        yield rec
    finally:
        await end_sessions(app, list(rec.sessions))
        await ws.close()
        await client.close()


async def open_notebook(rec: Rec, session_id: str, path: str) -> str:
    """Open the notebook ``path`` with a new python3 kernel through the proxy (as JupyterLab
    does); returns the kernel's id."""
    session = await rec.call(session_id, "POST", "api/sessions", {
        "path": path, "type": "notebook", "name": path, "kernel": {"name": "python3"}})
    kernel_id: str = session["kernel"]["id"]
    return kernel_id


def execute_request(code: str) -> dict[str, Any]:
    """A kernel's ``execute_request`` in the WebSocket's JSON framing (shell channel)."""
    return {"header": {"msg_id": uuid.uuid4().hex, "username": "", "session": uuid.uuid4().hex,
                       "msg_type": "execute_request", "version": "5.3",
                       "date": datetime.now(UTC).isoformat()},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": True,
                        "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}}


async def run_cell(rec: Rec, session_id: str, kernel_id: str, code: str) -> tuple[str, str]:
    """Run ``code`` over the kernel WebSocket through the proxy (legacy JSON framing):
    (the reply's status, the output: streams and the error's name and value)."""
    async with rec.ws.ws_connect(rec.url(session_id, f"api/kernels/{kernel_id}/channels"),
                                 origin=rec.origin(session_id), max_msg_size=0) as sock:
        request = execute_request(code)
        await sock.send_str(json.dumps(request))
        out, status, idle = "", "", False
        # The shell reply and the iopub idle status arrive in either order: wait for both, or
        # the socket closes before the proxy saw the reply (the cell would be "unknown").
        while not (status and idle):
            msg = await sock.receive(timeout=120)
            assert msg.type == WSMsgType.TEXT, msg
            data = json.loads(msg.data)
            if data["parent_header"].get("msg_id") != request["header"]["msg_id"]:
                continue
            kind, content = data["header"]["msg_type"], data["content"]
            if kind == "stream":
                out += content["text"]
            elif kind == "error":
                out += f"{content['ename']}: {content['evalue']}\n"
            elif kind == "execute_reply":
                status = content["status"]
            idle = idle or (kind == "status" and content["execution_state"] == "idle")
        return status, out


@dataclass
class RealSession:
    """One session scheduled on the real app on loopback, and a browser to use it."""

    settings: Settings
    http: aiohttp.ClientSession
    """The lead interviewer's client of the app, logged in."""
    browser: Browser
    session_id: str
    created: dict[str, Any]
    """What scheduling it answered (``candidate_link``, …)."""

    async def candidate_in_lab(self) -> Page:
        """The candidate, in a browser context of their own: link → Start → JupyterLab."""
        candidate = await (await self.browser.new_context()).new_page()
        await candidate.goto(self.created["candidate_link"])
        await candidate.click("#start")
        await candidate.wait_for_url("**/lab**", timeout=WAIT_MS, wait_until="commit")
        return candidate

    async def events(self) -> list[dict[str, Any]]:
        """Every event of the session, through the events API (page by page)."""
        found: list[dict[str, Any]] = []
        after = 0
        while True:
            page = await (await self.http.get(
                f"/api/v1/sessions/{self.session_id}/events?after={after}&limit=2000")).json()
            found += page["events"]
            after = page["last_seq"]
            if not page["more"]:
                return found


@contextlib.asynccontextmanager
async def real_in_browser(prefix: str, uid_base: int) -> AsyncIterator[RealSession]:
    """The real app (real provisioner and sandbox, no continuous checks) and its workspace
    origin on loopback ports, a session of the recording task scheduled by the lead interviewer
    for Casey Candidate, and headless Chromium; the session is ended afterwards."""
    ports = Loopback()
    async with real_settings(prefix, uid_base, continuous_checks=False,
                             **ports.fields) as settings:
        app = create_app(settings)
        async with ports.serve(app), interviewer(settings.app_url) as (http, csrf):
            created = await (await http.post("/api/v1/sessions", headers=csrf, json={
                "task": "rec-task", "candidate_name": "Casey Candidate"})).json()
            session_id = created["session_id"]
            try:
                async with async_playwright() as p:
                    browser = await p.chromium.launch(executable_path=CHROMIUM,
                                                      args=CHROMIUM_ARGS)
                    try:
                        yield RealSession(settings, http, browser, session_id, created)
                    finally:
                        await browser.close()
            finally:
                await end_sessions(app, [session_id])
