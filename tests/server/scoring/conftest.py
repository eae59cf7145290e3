"""A scoring panel through the real app for the scorecard tests: an admin, two interviewers
on a pipeline-bug task (Alice and Bob) and Carol who is not on the panel, each with an API
token; sessions scheduled through the API (the ``panel`` fixture); and the outcome tests'
sessions (the ``setup`` fixture). ``settings`` here has no warm pool, so no task environment
is built for these tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.http.keys import SETTINGS
from server.settings import Settings
from tests.conftest import MakeSettings, create_token, create_user, login
from tests.fixture_tasks import SHARED_ENVS, publish_fake_task
from tests.scoring.interviews import START, add_session

PIPELINE_DIMS = ["navigating-code", "questions", "debugging", "data-quality",
                 "working-solution", "communication"]
WEIGHTS = {"navigating-code": 15, "questions": 10, "debugging": 25, "data-quality": 20,
           "working-solution": 20, "communication": 10}


@dataclass
class Panel:
    client: TestClient[Any, Any]
    settings: Settings
    tokens: dict[str, str]

    def h(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    async def call(self, who: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        response = await self.client.request(method, path, headers=self.h(who),
                                             json=body if body is not None else None)
        text = await response.text()
        try:
            return response.status, json.loads(text)
        except ValueError:
            return response.status, text

    async def page(self, who: str, path: str) -> tuple[int, str]:
        response = await self.client.get(path, headers={**self.h(who), "Accept": "text/html"})
        return response.status, await response.text()

    async def schedule(self, **extra: Any) -> str:
        status, data = await self.call("admin", "POST", "/api/v1/sessions", {
            "task": "pipe-task", "candidate_name": "Grace Hopper",
            "candidate_email": "grace@example.org",
            "interviewers": ["alice@example.com", "bob@example.com"], **extra})
        assert status == 201, data
        return str(data["session_id"])

    async def note(self, session_id: str, text: str) -> int:
        status, data = await self.call("alice", "POST", f"/api/v1/sessions/{session_id}/notes",
                                       {"text": text})
        assert status == 201, data
        return int(data["event"]["seq"])


def full_card(level: int, marker: str, moments: list[int] | None = None) -> dict[str, Any]:
    return {"scores": {d: {"level": level, "evidence": f"{marker} saw {d}",
                           "moments": moments or []} for d in PIPELINE_DIMS},
            "recommendation": "yes" if level >= 3 else "no", "summary": f"{marker} summary"}


@pytest.fixture
def settings(make_settings: MakeSettings) -> Settings:
    # No warm pool: no task environment is built, no workspace starts (the fake is enough).
    return make_settings(warm_pool_size=0, environments_dir=str(SHARED_ENVS))


@pytest.fixture
async def panel(client: TestClient[Any, Any], settings: Settings) -> Panel:
    create_user(settings, "admin@example.com", "admin")
    create_user(settings, "alice@example.com", "interviewer")
    create_user(settings, "bob@example.com", "interviewer")
    create_user(settings, "carol@example.com", "interviewer")
    publish_fake_task(settings, "pipe-task", kind="pipeline-bug")
    tokens = {who: create_token(settings, f"{who}@example.com")
              for who in ("admin", "alice", "bob", "carol")}
    return Panel(client, settings, tokens)


@dataclass
class OutcomeSetup:
    headers: dict[str, str]
    ended: str
    later: str
    live: str
    ivy_id: int


@pytest.fixture
async def setup(client: TestClient[Any, Any]) -> OutcomeSetup:
    """For the outcome tests (API and pages): an admin logged in (cookie + CSRF header), two
    ended sessions (Ada's, with an email, and Bob's ten days later) and a live one."""
    settings = client.app[SETTINGS]
    create_user(settings, "admin@example.com", "admin")
    ivy = create_user(settings, "ivy@example.com", "interviewer")
    rev = publish_fake_task(settings)
    ended = add_session(settings, rev, [ivy.id], candidate="Ada Lovelace",
                        email="ada@example.com")
    later = add_session(settings, rev, [ivy.id], candidate="Bob Baker", role="data-scientist",
                        starts_at=START + timedelta(days=10))
    live = add_session(settings, rev, [ivy.id], candidate="Cy Live", state="live")
    headers = {"X-CSRF-Token": await login(client, "admin@example.com")}
    return OutcomeSetup(headers, ended, later, live, ivy.id)
