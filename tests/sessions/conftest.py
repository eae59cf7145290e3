"""Fixtures for session tests: a published task revision made straight in the store, the app
with a fake provisioner, and clients for both origins."""

from __future__ import annotations

import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from server.app import create_app
from server.session_ctx import WORKSPACE_APP
from server.session_keys import SESSIONS
from server.session_service import SessionManager
from server.settings import Settings
from tasks import revisions
from tasks.store import TaskStore
from tasks.treerepo import commit_tree
from tests.conftest import MakeSettings, create_user, login, open_db
from tests.fake_workspace import FakeProvisioner

# Environments are keyed by their requirements and built atomically, so one folder can serve
# every test run on this machine (the first run builds the empty-requirements one).
SHARED_ENVS = Path(tempfile.gettempdir()) / "pairlab-test-envs"


NOTEBOOK = """{
 "cells": [
  {"cell_type": "code", "execution_count": null, "id": "c1", "metadata": {}, "outputs": [],
   "source": ["print('answer', 6 * 7)"]}
 ],
 "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                             "name": "python3"}},
 "nbformat": 4, "nbformat_minor": 5
}
"""


def publish_fake_task(settings: Settings, task_id: str = "demo-task", kind: str = "eval-script",
                      requirements: tuple[str, ...] = ()) -> str:
    """A published revision whose tree is a tiny git repo, installed as an import would."""
    store = TaskStore(settings.data_dir / "tasks")
    staged = Path(tempfile.mkdtemp(dir=settings.data_dir))
    tree = staged / "tree"
    tree.mkdir()
    (tree / "main.py").write_text("print('hello')\n")
    (tree / "notes.md").write_text("# Notes\n")
    (tree / "explore.ipynb").write_text(NOTEBOOK)
    commit = commit_tree(tree, f"Task {task_id}")
    (staged / "brief.md").write_text(f"Brief of {task_id}: <script>alert(1)</script>\n")
    (staged / "guide.md").write_text("## Hint ladder\n1. Look at main.py\n")
    (staged / "report.json").write_text('{"blockers": []}')
    (staged / "diff.json").write_text("[]")
    db = open_db(settings)
    try:
        with db.atomic():
            rev = revisions.insert_revision(db, revisions.NewRevision(
                task_id=task_id, title=f"Title of {task_id}", kind=kind,
                roles=("ml-engineer",), duration_minutes=60, requirements=requirements,
                visible_check="python -m pytest -q", source_url="file:///fixture",
                source_ref="", source_subdir="", source_commit="0" * 40, tree_commit=commit,
                blockers=(), created_by="test",
            ))
            store.install(staged, task_id, rev.id)
            revisions.publish(db, rev.id)
    finally:
        db.conn.close()
    return rev.id


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
        page = await self.ws.get(f"/s/{session_id}")
        assert page.status == 200
        html = await page.text()
        token = html.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        response = await self.ws.post(
            f"/s/{session_id}/start", data={"csrf_token": token}, allow_redirects=False
        )
        assert response.status == 303, await response.text()
        return response.headers["Location"]


EnvFactory = Callable[..., Awaitable[Env]]


@pytest.fixture
def make_env(
    make_settings: MakeSettings, aiohttp_client: AiohttpClient, tmp_path: Path
) -> EnvFactory:
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
        csrf = await login(client, "lead@example.com")
        return Env(settings, app, client, ws, provisioner, csrf)

    return make
