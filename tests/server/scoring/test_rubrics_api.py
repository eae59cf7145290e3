"""Rubrics through the real app: the built-ins with anchors, admin create/edit with
validation that stores nothing, attaching to a task, and sessions keeping their version."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.settings import Settings
from tests.conftest import (
    MakeSettings,
    audit_actions,
    create_token,
    create_user,
    form_csrf_token,
    login,
    query,
)
from tests.fixture_tasks import SHARED_ENVS, publish_fake_task

ANCHORS = {str(n): f"level {n}: what the interviewer saw" for n in (1, 2, 3, 4)}
CUSTOM = {
    "id": "team-core", "title": "Team core", "description": "ours",
    "kinds": ["pipeline-bug"], "roles": ["ml-engineer", "data-scientist"],
    "dimensions": [
        {"id": "debugging", "title": "Debugging", "weight": 70, "anchors": ANCHORS},
        {"id": "communication", "title": "Communication", "weight": 30, "anchors": ANCHORS},
    ],
}


@pytest.fixture
def settings(make_settings: MakeSettings) -> Settings:
    return make_settings(warm_pool_size=0, environments_dir=str(SHARED_ENVS))


@pytest.fixture
def tokens(settings: Settings) -> dict[str, dict[str, str]]:
    create_user(settings, "admin@example.com", "admin")
    create_user(settings, "alice@example.com", "interviewer")
    publish_fake_task(settings, "pipe-task", kind="pipeline-bug")
    return {who: {"Authorization": f"Bearer {create_token(settings, f'{who}@example.com')}"}
            for who in ("admin", "alice")}


async def test_builtins_are_listed_with_anchors(client: TestClient[Any, Any],
                                                tokens: dict[str, dict[str, str]]) -> None:
    response = await client.get("/api/v1/rubrics", headers=tokens["alice"])
    data = await response.json()
    assert response.status == 200
    assert [r["id"] for r in data["rubrics"]] == ["eval-script", "pipeline-bug",
                                                  "serving-feature"]
    serving = next(r for r in data["rubrics"] if r["id"] == "serving-feature")
    assert serving["builtin"] and serving["version"] == 1
    production = next(d for d in serving["dimensions"] if d["id"] == "production-mindset")
    assert production["weight"] == 25 and set(production["anchors"]) == {"1", "2", "3", "4"}
    one = await client.get("/api/v1/rubrics/serving-feature", headers=tokens["alice"])
    assert (await one.json())["versions"][0]["version"] == 1
    missing = await client.get("/api/v1/rubrics/nope", headers=tokens["alice"])
    assert missing.status == 404 and "no rubric 'nope'" in (await missing.json())[
        "error"]["message"]
    assert (await client.get("/api/v1/rubrics")).status == 401


async def test_admin_creates_edits_and_attaches(client: TestClient[Any, Any],
                                                settings: Settings,
                                                tokens: dict[str, dict[str, str]]) -> None:
    admin, alice = tokens["admin"], tokens["alice"]
    bad = json.loads(json.dumps(CUSTOM))
    bad["dimensions"][0]["weight"] = 50
    del bad["dimensions"][1]["anchors"]["4"]
    response = await client.post("/api/v1/rubrics", json=bad, headers=admin)
    data = await response.json()
    assert response.status == 422
    assert "weights: add up to 80, they must add up to 100" in data["error"]["message"]
    assert "dimension 'communication'.anchors.4: missing" in data["error"]["message"]
    assert query(settings, "SELECT COUNT(*) FROM rubrics WHERE id = 'team-core'") == [(0,)]
    assert (await client.post("/api/v1/rubrics", json=CUSTOM, headers=alice)).status == 403

    created = await client.post("/api/v1/rubrics", json=CUSTOM, headers=admin)
    assert created.status == 201 and (await created.json())["rubric"]["version"] == 1
    attach = await client.put("/api/v1/tasks/pipe-task/rubric", json={"rubric_id": "team-core"},
                              headers=admin)
    assert attach.status == 200
    unknown = await client.put("/api/v1/tasks/nope/rubric", json={"rubric_id": "team-core"},
                               headers=admin)
    assert unknown.status == 404

    async def schedule() -> str:
        r = await client.post("/api/v1/sessions", headers=alice, json={
            "task": "pipe-task", "candidate_name": "Ada"})
        assert r.status == 201, await r.text()
        return str((await r.json())["session_id"])

    early = await schedule()
    # scoring has begun on the early session: it keeps version 1 through the edit and start
    draft = await client.put(f"/api/v1/sessions/{early}/scorecards/mine", headers=alice,
                             json={"scores": {"debugging": {"level": 3, "evidence": "x"}}})
    assert draft.status == 200
    edited = {**CUSTOM, "title": "Team core v2"}
    edited["dimensions"] = [{**CUSTOM["dimensions"][0], "weight": 60},
                            {**CUSTOM["dimensions"][1], "weight": 40}]
    response = await client.put("/api/v1/rubrics/team-core", json=edited, headers=admin)
    assert response.status == 200 and (await response.json())["rubric"]["version"] == 2
    mismatch = await client.put("/api/v1/rubrics/team-core", json={**edited, "id": "other"},
                                headers=admin)
    assert mismatch.status == 422
    start = await client.post(f"/api/v1/sessions/{early}/start", headers=alice)
    assert start.status == 200, await start.text()
    late = await schedule()
    versions = {}
    for sid in (early, late):
        mine = await (await client.get(f"/api/v1/sessions/{sid}/scorecards/mine",
                                       headers=alice)).json()
        versions[sid] = (mine["rubric"]["version"], [d["weight"] for d in mine["dimensions"]])
    assert versions == {early: (1, [70, 30]), late: (2, [60, 40])}
    actions = audit_actions(settings)
    assert {"rubric.created", "rubric.edited", "rubric.attached"} <= set(actions)


async def test_rubric_pages_show_problems_and_save(client: TestClient[Any, Any],
                                                   settings: Settings,
                                                   tokens: dict[str, dict[str, str]]) -> None:
    await login(client, "admin@example.com")
    page = await client.get("/rubrics")
    html = await page.text()
    assert page.status == 200 and "Data pipeline debugging" in html
    csrf = form_csrf_token(html)
    bad = await client.post("/rubrics", data={"csrf_token": csrf, "definition": "{nope"})
    assert bad.status == 422 and "not valid JSON" in await bad.text()
    missing = {**CUSTOM, "dimensions": [{**CUSTOM["dimensions"][0], "weight": 100,
                                         "anchors": {"1": "only one level given"}}]}
    bad = await client.post("/rubrics", data={"csrf_token": csrf,
                                              "definition": json.dumps(missing)})
    text = await bad.text()
    assert bad.status == 422 and "anchors.2: missing" in text and "anchors.4: missing" in text
    good = await client.post("/rubrics", data={"csrf_token": csrf,
                                               "definition": json.dumps(CUSTOM)},
                             allow_redirects=False)
    assert good.status == 303 and good.headers["Location"] == "/rubrics/team-core"
    page = await client.get("/rubrics/team-core")
    html = await page.text()
    assert "Team core" in html and "level 4: what the interviewer saw" in html
    attach = await client.post("/rubrics/team-core", data={
        "csrf_token": csrf, "task_id": "pipe-task"}, allow_redirects=False)
    assert attach.status == 303
    assert query(settings, "SELECT rubric_id FROM task_rubrics WHERE task_id = 'pipe-task'") == [
        ("team-core",)]
    no_csrf = await client.post("/rubrics", data={"definition": json.dumps(CUSTOM)})
    assert no_csrf.status == 403
