"""A contents-API write is known to the recording from before the proxy forwards it: the file
watcher can see the file the workspace wrote before the answer has come back through the proxy
(a race a parallel test run lost: an interviewer's save was named the candidate's). Through the
real proxy (``server/workspace/proxy.py``) to an upstream on a Unix socket that stands for the
workspace's jupyter-server and whose "watcher" asks who made the change before it answers."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from server.workspace.proxy import proxy_http
from workspaces.recording import attribution
from workspaces.recording.events import Event
from workspaces.recording.taps import SessionTaps
from workspaces.sandbox.peer import Peer
from workspaces.upstream import Principal, Upstream, UpstreamClients

LEAD = Principal("interviewer-7", "Lee Lead", "interviewer")
CONTENTS = {"via": "contents", "authors": {"interviewer:7": {}}}
Asked = tuple[str, dict[str, Any]]


@dataclass
class Rig:
    """The proxy in front of a stand-in workspace whose watcher sees each write before the
    answer leaves (``seen``: what attribution answered for each, in order)."""

    client: TestClient[Any, Any]
    taps: SessionTaps
    status: int = 200
    seen: list[asyncio.Task[Asked]] = field(default_factory=list)

    async def send(self, method: str, path: str) -> int:
        response = await self.client.request(method, f"/w/ws1/api/contents/{path}")
        await response.read()
        return response.status


@pytest.fixture
async def rig(aiohttp_client: AiohttpClient, tmp_path: Path) -> AsyncIterator[Rig]:
    events: list[Event] = []

    async def record(event: Event) -> None:
        events.append(event)

    socket = str(tmp_path / "jupyter.sock")
    upstream = Upstream("ws1", socket, "token", Peer(os.getpid(), os.getuid()))  # the stand-in
    clients = UpstreamClients()
    taps = SessionTaps({"ws1": (upstream, "s1")}, clients, record, None)
    made: list[Rig] = []

    async def workspace(request: web.Request) -> web.Response:
        """Writes the file, and its watcher asks who did it before the answer is sent."""
        path = request.match_info["path"]
        rig = made[0]
        # a POST names the folder; the file the server made in it is what the watcher sees
        changed = f"{path}/untitled.py" if request.method == "POST" else path
        rig.seen.append(asyncio.ensure_future(taps.attribute("s1", changed, "ab" * 32)))
        await asyncio.sleep(0.2)  # the answer is slower than the watcher (a busy host)
        return web.json_response({"path": path}, status=rig.status)

    upstream_app = web.Application()
    upstream_app.router.add_route("*", "/w/ws1/api/contents/{path:.*}", workspace)
    runner = web.AppRunner(upstream_app)
    await runner.setup()
    await web.UnixSite(runner, socket).start()

    async def proxy(request: web.Request) -> web.StreamResponse:
        return await proxy_http(request, upstream, LEAD, clients, None, taps.http_tap)

    app = web.Application()
    app.router.add_route("*", "/w/{tail:.*}", proxy)
    made.append(Rig(await aiohttp_client(app), taps))
    yield made[0]
    await taps.finish_all()
    await clients.close()
    await runner.cleanup()


async def answer_of(task: Awaitable[Asked]) -> Asked:
    """What attribution answered (a guard against a wait that never ends, not a timing)."""
    return await asyncio.wait_for(task, 60)


async def test_a_write_seen_before_its_answer_is_the_writer_s(rig: Rig) -> None:
    assert await rig.send("PUT", "main.py") == 200
    assert await answer_of(rig.seen[0]) == ("interviewer:7", CONTENTS)


async def test_a_refused_write_claims_nothing(rig: Rig) -> None:
    rig.status = 403
    assert await rig.send("DELETE", "main.py") == 403
    assert await answer_of(rig.seen[0]) == ("candidate", {"via": "process"})


async def test_a_new_file_posted_to_its_folder_is_the_poster_s(rig: Rig) -> None:
    rig.status = 201
    assert await rig.send("POST", "src") == 201
    # the watcher saw the new file the server named, in the folder the request named
    assert await answer_of(rig.seen[0]) == ("interviewer:7", CONTENTS)


async def test_a_workspace_that_is_not_there_leaves_nothing_under_way(
        rig: Rig, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(attribution, "REQUEST_WAIT_S", 3600.0)
    (tmp_path / "jupyter.sock").unlink()  # the workspace's server is gone: the proxy says 502
    assert await rig.send("PUT", "main.py") == 502
    assert await answer_of(rig.taps.attribute("s1", "main.py", "ef" * 32)) == (
        "candidate", {"via": "process"})
