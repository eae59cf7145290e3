"""Fixtures for the recording server tests: a published task with hidden checks, the real app
with a fake (or real) workspace provisioner, and helpers to drive and read a session."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient

from server.recording.keys import RECORDING
from server.settings import Settings
from tests.conftest import MakeSettings, create_user
from tests.fixture_tasks import publish_fake_task
from tests.harness import LEAD, OTHER, QUIET, Env, start_env
from tests.server.recording.fake_jupyter import RecordingFakeProvisioner
from workspaces.recording.recorder import RecordingService

HIDDEN_CHECK = '''\
from pathlib import Path


def test_main_still_prints():
    assert "print(" in Path("main.py").read_text()


def test_main_was_fixed():
    assert "fixed" in Path("main.py").read_text(), "main.py was not fixed"
'''


def publish_task(settings: Settings, task_id: str = "rec-task") -> str:
    """A published revision with a two-file tree and hidden checks (one passes, one fails on
    the starting state)."""
    report = {"blockers": [], "checks": {"hidden_on_starter": {
        "command": "python -m pytest -q hidden_checks", "passed": False}}}
    return publish_fake_task(
        settings, task_id, files={"main.py": "print('hello')\n", "notes.md": "# Notes\n"},
        hidden={"test_hidden.py": HIDDEN_CHECK}, report=report, brief="Fix main.py\n",
    )


@dataclass
class Rec(Env):
    """The harness's running app (both origins, a logged-in interviewer) over the recording
    task, with helpers to drive and read its sessions."""

    sessions: dict[str, str] = field(default_factory=dict)
    """session id → workspace id of the sessions started."""

    @property
    def service(self) -> RecordingService:
        return self.app[RECORDING]

    def origin(self, session_id: str) -> str:
        """The session's workspace's own origin (its Origin checks accept no other)."""
        return self.settings.workspace_origin(self.sessions[session_id])

    async def schedule(self, **body: Any) -> dict[str, Any]:
        return await super().schedule(**{"task": "rec-task", **body})

    async def start(self) -> tuple[str, str]:
        """Schedule a session, open its link as the candidate, start it: (session, workspace)."""
        created = await self.schedule()
        await self.open_link(created["candidate_link"])
        session_id = created["session_id"]
        workspace = (await self.start_as_candidate(session_id)).split("/")[2]
        self.sessions[session_id] = workspace
        return session_id, workspace

    def url(self, session_id: str, tail: str) -> str:
        return f"/w/{self.sessions[session_id]}/{tail}"

    async def call(self, session_id: str, method: str, tail: str, body: Any = None) -> Any:
        """A workspace REST call through the proxy, as whoever the ws client's cookie is."""
        response = await self.ws.request(method, self.url(session_id, tail), json=body,
                                         headers={"Origin": self.origin(session_id)})
        text = await response.text()
        assert response.status < 300, text
        return json.loads(text) if text else None

    async def api(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        response = await self.client.request(method, path, json=body,
                                             headers={"X-CSRF-Token": self.csrf})
        text = await response.text()
        assert response.status == status, text
        return json.loads(text) if response.content_type == "application/json" else text

    async def events(self, session_id: str, after: int = 0) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        while True:
            page = await self.api("GET", f"/api/v1/sessions/{session_id}/events"
                                         f"?after={after}&limit=2000")
            found += page["events"]
            after = page["last_seq"]
            if not page["more"]:
                return found

    async def wait_for(self, session_id: str, test: Callable[[list[dict[str, Any]]], bool],
                       within: float = 30.0) -> list[dict[str, Any]]:
        """Poll the events API with backoff until ``test(events)`` holds (or fail)."""
        deadline = time.monotonic() + within
        delay = 0.02
        while True:
            found = await self.events(session_id)
            if test(found):
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; events: {[e['kind'] for e in found]}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)


def kinds(found: list[dict[str, Any]], *wanted: str) -> list[dict[str, Any]]:
    return [e for e in found if e["kind"] in wanted]


def assert_gap_free(found: list[dict[str, Any]]) -> None:
    assert [e["seq"] for e in found] == list(range(1, len(found) + 1))


RecFactory = Callable[..., Awaitable[Rec]]
UID_BASE = 52000
"""Sandbox uids of these tests (checks run as UID_BASE + 1000), apart from other suites' so that
test runs on one machine never meet in a uid."""


@pytest.fixture
def make_rec(make_settings: MakeSettings, aiohttp_client: AiohttpClient,
             tmp_path: Path) -> RecFactory:
    async def make(**overrides: Any) -> Rec:
        settings = make_settings(**{**QUIET, "sandbox_uid_base": UID_BASE, **overrides})
        publish_task(settings)
        create_user(settings, LEAD, "interviewer")
        create_user(settings, OTHER, "interviewer")
        provisioner = RecordingFakeProvisioner(tmp_path / "fake-ws")
        return await start_env(aiohttp_client, settings, provisioner, Rec)

    return make
