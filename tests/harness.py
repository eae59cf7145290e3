"""The running app for tests, one harness for every folder (its fixtures are exposed from
tests/conftest.py):

- ``start_env``/``make_env``: the real app with a fake provisioner, an aiohttp test client for
  each origin (the workspace one sends each request to the host a browser would) and an
  interviewer logged in on the app's, as an ``Env`` that schedules and starts sessions;
- ``serving``/``live``: the same app listening on loopback ports (``Loopback``), for a real
  browser or a real HTTP client (``interviewer``), with one live, recording session (``Live``).

Settings are ``QUIET``: no warm pool (no task environment is built) and no continuous checks;
the task is published straight into the store (tests/fixture_tasks.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from server.app import create_app
from server.http.keys import DB
from server.recording.keys import RECORDING
from server.sessions.keys import SESSIONS
from server.sessions.wiring import WORKSPACE_APP
from server.settings import Settings
from tests.conftest import PASSWORD, MakeSettings, create_user, form_csrf_token, login
from tests.fake_workspace import FakeProvisioner, closing
from tests.fixture_tasks import SHARED_ENVS, publish_fake_task
from tests.host_routing import enter, routing
from workspaces import sessions as S
from workspaces.lifecycle import SessionManager
from workspaces.provisioner import Provisioner
from workspaces.recording import events as E
from workspaces.recording.recorder import RecordingService

LEAD = "lead@example.com"
OTHER = "other@example.com"
WAIT_S = 15.0
QUIET: dict[str, Any] = {"warm_pool_size": 0, "environments_dir": str(SHARED_ENVS),
                         "continuous_checks": False}


# ---- the app through aiohttp test clients ----------------------------------------------------


@dataclass
class Env:
    """The app, a test client for each origin, and the logged-in user's CSRF token."""

    settings: Settings
    app: web.Application
    client: TestClient[Any, Any]
    ws: TestClient[Any, Any]
    csrf: str

    @property
    def manager(self) -> SessionManager:
        return self.app[SESSIONS]

    @property
    def provisioner(self) -> FakeProvisioner:
        """The app's fake provisioner (its running workspaces, crashes)."""
        provisioner = self.manager.provisioner
        assert isinstance(provisioner, FakeProvisioner)
        return provisioner

    async def schedule(self, **body: Any) -> dict[str, Any]:
        payload = {"task": "demo-task", "candidate_name": "Ada Lovelace", **body}
        response = await self.client.post(
            "/api/v1/sessions", json=payload, headers={"X-CSRF-Token": self.csrf}
        )
        assert response.status == 201, await response.text()
        data: dict[str, Any] = await response.json()
        return data

    async def open_link(self, link: str) -> str:
        """Follow the candidate link on the workspace origin; returns the landing path."""
        path = link.split("://", 1)[1].split("/", 1)[1]
        response = await self.ws.get("/" + path, allow_redirects=False)
        assert response.status == 303, await response.text()
        return response.headers["Location"]

    async def press_start(self, session_id: str) -> ClientResponse:
        """Press Start on the landing page (with its form's CSRF token), as the candidate;
        the response, not followed."""
        page = await self.ws.get(f"/s/{session_id}")
        assert page.status == 200
        token = form_csrf_token(await page.text())
        return await self.ws.post(
            f"/s/{session_id}/start", data={"csrf_token": token}, allow_redirects=False
        )

    async def start_as_candidate(self, session_id: str) -> str:
        """Press Start on the landing page and follow the entry code onto the workspace's
        own host; returns the workspace path (``/w/<id>/lab``)."""
        response = await self.press_start(session_id)
        assert response.status == 303, await response.text()
        return await self.enter(response.headers["Location"])

    async def enter(self, url: str) -> str:
        """Follow an entry URL onto the workspace's own host; returns ``/w/<id>/lab``."""
        assert url.startswith(self.settings.workspace_origin(url.split("/")[2][2:].split(".")[0]))
        return await enter(self.ws, url)


EnvT = TypeVar("EnvT", bound=Env)
EnvFactory = Callable[..., Awaitable[Env]]


async def start_env(aiohttp_client: AiohttpClient, settings: Settings, provisioner: Provisioner,
                    cls: type[EnvT], email: str = LEAD) -> EnvT:
    """The real app over ``settings``: a test client for each origin (the workspace one routes
    by host), ``email`` logged in on the app's."""
    app = closing(create_app(settings, provisioner=provisioner), provisioner)
    client = await aiohttp_client(app)
    ws = routing(await aiohttp_client(app[WORKSPACE_APP]))
    return cls(settings, app, client, ws, await login(client, email))


@pytest.fixture
def make_env(
    make_settings: MakeSettings, aiohttp_client: AiohttpClient, tmp_path: Path
) -> EnvFactory:
    """``make_env(provisioner=None, publish=True, **settings)``: an ``Env`` over the demo task,
    the lead interviewer logged in; a second call shares the first's data dir."""
    async def make(provisioner: FakeProvisioner | None = None, publish: bool = True,
                   **overrides: Any) -> Env:
        settings = make_settings(**{**QUIET, **overrides})
        if publish and not (settings.data_dir / "tasks" / "demo-task").exists():
            publish_fake_task(settings)
        try:
            create_user(settings, LEAD, "interviewer")
        except Exception:  # noqa: S110 - already there when an env is made twice
            pass
        provisioner = provisioner or FakeProvisioner(tmp_path / "fake-workspaces")
        return await start_env(aiohttp_client, settings, provisioner, Env)

    return make


# ---- the app on loopback ports ---------------------------------------------------------------


def _bound() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


@dataclass
class Loopback:
    """Two sockets bound to free loopback ports: the app's and its workspace origin's."""

    app_sock: socket.socket = field(default_factory=_bound)
    ws_sock: socket.socket = field(default_factory=_bound)

    @property
    def fields(self) -> dict[str, Any]:
        """The settings that put the app and its workspace origin on these ports."""
        return {"host": "127.0.0.1", "port": self.app_sock.getsockname()[1],
                "workspace_host": "127.0.0.1", "workspace_port": self.ws_sock.getsockname()[1]}

    @contextlib.asynccontextmanager
    async def serve(self, app: web.Application) -> AsyncIterator[web.AppRunner]:
        """``app`` and its workspace origin listening on the two sockets until the block ends;
        yields the app's runner."""
        runner, ws_runner = web.AppRunner(app), web.AppRunner(app[WORKSPACE_APP])
        await runner.setup()
        await ws_runner.setup()
        try:
            await web.SockSite(runner, self.app_sock).start()
            await web.SockSite(ws_runner, self.ws_sock).start()
            yield runner
        finally:
            await ws_runner.cleanup()
            await runner.cleanup()


@dataclass
class Served:
    """The app serving on loopback (both origins) with its fake provisioner."""

    settings: Settings
    app: web.Application
    runner: web.AppRunner
    provisioner: FakeProvisioner


@dataclass
class Live:
    """The running app, one live session, and helpers to act as its candidate."""

    app: web.Application
    runner: web.AppRunner
    url: str
    session_id: str
    workspace: Path

    @property
    def service(self) -> RecordingService:
        return self.app[RECORDING]

    async def record(self, kind: str, path: str = "", actor: str = E.ACTOR_CANDIDATE,
                     at: datetime | None = None, **payload: Any) -> int:
        """Record one event through the recording service; returns its seq once stored."""
        stored = await self.service.record_stored(E.Event(
            self.session_id, actor, kind, path, payload, at or datetime.now(UTC)))
        return stored.seq

    async def last_seq(self) -> int:
        return await self.app[DB].read(lambda d: E.last_seq(d, self.session_id))

    async def snapshots(self) -> list[tuple[int, str]]:
        rows = await self.app[DB].read(lambda d: d.execute(
            "SELECT seq, commit_sha FROM snapshots WHERE session_id = ? ORDER BY seq",
            [self.session_id]).fetchall())
        return [(row[0], row[1]) for row in rows]

    async def wait_for_snapshot(self, after: int) -> int:
        """The seq of the first snapshot the service records after event ``after``."""
        async with asyncio.timeout(WAIT_S):
            while True:
                later = [seq for seq, _ in await self.snapshots() if seq > after]
                if later:
                    return later[0]
                await asyncio.sleep(0.05)

    async def write(self, files: dict[str, str]) -> int:
        """Write files into the workspace as the candidate would; returns the seq of the
        snapshot that holds them (the watcher and the debounced snapshot are the real ones)."""
        before = await self.last_seq()
        for name, text in files.items():
            target = self.workspace / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        return await self.wait_for_snapshot(before)

    def cut_streams(self) -> int:
        """Close every open client connection from the server side (as a restart would)."""
        server = self.runner.server
        assert server is not None
        count = 0
        for handler in list(server.connections):
            transport = handler.transport
            if transport is not None:
                transport.close()
                count += 1
        return count


async def _wait_until_recording(app: web.Application, session_id: str) -> None:
    """The session is live and its history has the task's start (snapshot at seq 0)."""
    async with asyncio.timeout(WAIT_S):
        while not await app[DB].read(lambda d: E.snapshot_at(d, session_id, 0)):
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def serving(make_settings: MakeSettings, tmp_path: Path,
                  prepare: Callable[[Settings], None]) -> AsyncIterator[Served]:
    """The real app and its workspace origin on loopback ports, with the fake provisioner.
    ``prepare(settings)`` runs before the app starts (publish tasks, create people)."""
    ports = Loopback()
    settings = make_settings(**QUIET, **ports.fields)
    prepare(settings)
    provisioner = FakeProvisioner(tmp_path / "fake-workspaces")
    app = closing(create_app(settings, provisioner=provisioner), provisioner)
    async with ports.serve(app) as runner:
        yield Served(settings, app, runner, provisioner)


async def live_session(served: Served, session_id: str) -> Live:
    """Once the session is started: its workspace folder, after recording has begun."""
    session = await served.app[DB].read(lambda d: S.get_session(d, session_id))
    assert session.workspace_id is not None
    workspace = served.provisioner.running[session.workspace_id].info.root
    await _wait_until_recording(served.app, session_id)
    return Live(served.app, served.runner, served.settings.app_url, session_id, workspace)


@pytest.fixture
async def live(make_settings: MakeSettings, tmp_path: Path) -> AsyncIterator[Live]:
    def prepare(settings: Settings) -> None:
        publish_fake_task(settings)
        create_user(settings, LEAD, "interviewer")
        create_user(settings, OTHER, "interviewer")

    async with serving(make_settings, tmp_path, prepare) as served:
        async with interviewer(served.settings.app_url) as (http, csrf):
            created = await http.post("/api/v1/sessions", headers=csrf, json={
                "task": "demo-task", "candidate_name": "Ada <b>Lovelace</b>"})
            assert created.status == 201, await created.text()
            session_id = (await created.json())["session_id"]
            started = await http.post(f"/api/v1/sessions/{session_id}/start", headers=csrf)
            assert started.status == 200, await started.text()
        yield await live_session(served, session_id)


@contextlib.asynccontextmanager
async def interviewer(app_url: str, email: str = LEAD
                      ) -> AsyncIterator[tuple[aiohttp.ClientSession, dict[str, str]]]:
    """A client of the app served at ``app_url``, logged in as ``email`` through
    ``POST /api/v1/auth/login``: (the client, the CSRF header for state changes)."""
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(app_url, cookie_jar=jar) as http:
        response = await http.post("/api/v1/auth/login",
                                   json={"email": email, "password": PASSWORD})
        assert response.status == 200, await response.text()
        yield http, {"X-CSRF-Token": (await response.json())["csrf_token"]}
