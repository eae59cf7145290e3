"""The running app for tests (fixtures exposed from tests/conftest.py): a published task
revision made straight in the store, the app with a fake provisioner, and clients for both
origins with a logged-in interviewer."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from server.app import create_app
from server.sessions.keys import SESSIONS
from server.sessions.service import SessionManager
from server.sessions.wiring import WORKSPACE_APP
from server.settings import Settings
from tests.conftest import MakeSettings, create_user, login
from tests.fake_workspace import FakeProvisioner
from tests.fixture_tasks import SHARED_ENVS, publish_fake_task
from tests.host_routing import enter, routing


@dataclass
class Env:
    settings: Settings
    app: web.Application
    client: TestClient[Any, Any]
    ws: TestClient[Any, Any]
    provisioner: FakeProvisioner
    csrf: str

    @property
    def manager(self) -> SessionManager:
        return self.app[SESSIONS]

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

    async def start_as_candidate(self, session_id: str) -> str:
        """Press Start on the landing page and follow the entry code onto the workspace's
        own host; returns the workspace path (``/w/<id>/lab``)."""
        page = await self.ws.get(f"/s/{session_id}")
        assert page.status == 200
        html = await page.text()
        token = html.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        response = await self.ws.post(
            f"/s/{session_id}/start", data={"csrf_token": token}, allow_redirects=False
        )
        assert response.status == 303, await response.text()
        return await self.enter(response.headers["Location"])

    async def enter(self, url: str) -> str:
        """Follow an entry URL onto the workspace's own host; returns ``/w/<id>/lab``."""
        assert url.startswith(self.settings.workspace_origin(url.split("/")[2][2:].split(".")[0]))
        return await enter(self.ws, url)


EnvFactory = Callable[..., Awaitable[Env]]


@pytest.fixture
def make_env(
    make_settings: MakeSettings, aiohttp_client: AiohttpClient, tmp_path: Path
) -> EnvFactory:
    return env_factory(make_settings, aiohttp_client, tmp_path)


def env_factory(
    make_settings: MakeSettings, aiohttp_client: AiohttpClient, tmp_path: Path
) -> EnvFactory:
    """``make_env``'s body, for test modules elsewhere that want the same environment."""
    async def make(provisioner: FakeProvisioner | None = None, publish: bool = True,
                   **overrides: Any) -> Env:
        values: dict[str, Any] = {"warm_pool_size": 0, "environments_dir": str(SHARED_ENVS),
                                  "continuous_checks": False}
        values.update(overrides)
        settings = make_settings(**values)
        if publish and not (settings.data_dir / "tasks" / "demo-task").exists():
            publish_fake_task(settings)
        try:
            create_user(settings, "lead@example.com", "interviewer")
        except Exception:  # noqa: S110 - already there when an env is made twice
            pass
        provisioner = provisioner or FakeProvisioner(tmp_path / "fake-workspaces")
        app = create_app(settings, provisioner=provisioner)
        client = await aiohttp_client(app)
        ws = await aiohttp_client(app[WORKSPACE_APP])
        ws = routing(ws)
        csrf = await login(client, "lead@example.com")
        return Env(settings, app, client, ws, provisioner, csrf)

    return make
