"""The calibration and validity pages and their JSON, through the real app on 127.0.0.1."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET  # noqa: N817
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from server.db import open_migrated
from server.http.keys import SETTINGS
from server.settings import Settings
from tests.conftest import (
    MakeSettings,
    assert_no_traceback,
    create_user,
    login,
    make_app,
    query,
)
from tests.fixture_tasks import SHARED_ENVS
from tests.scoring.analytics_data import seed

Client = TestClient[Any, Any]
SVG = "{http://www.w3.org/2000/svg}"


OWN_SCRIPTS = ('<script src="/static/times.js" defer></script>',)


def without_own_scripts(html: str) -> str:
    """The page without pairlab's own static scripts (every page shows times locally): what is
    left must hold no script at all."""
    for tag in OWN_SCRIPTS:
        html = html.replace(tag, "")
    return html


def _settings(client: Client) -> Settings:
    settings: Settings = client.app[SETTINGS]
    return settings


async def _admin(client: Client) -> None:
    create_user(_settings(client), "root@example.com", "admin")
    await login(client, "root@example.com")


MakeClient = Callable[..., Awaitable[Client]]


@pytest.fixture
def make_client(make_settings: MakeSettings, aiohttp_client: AiohttpClient) -> MakeClient:
    """``make_client(**settings)``: the real app over a seeded database, no warm pool (no
    environment gets built for the fixture's published tasks)."""

    async def make(**overrides: Any) -> Client:
        settings = make_settings(warm_pool_size=0, environments_dir=str(SHARED_ENVS),
                                 continuous_checks=False, **overrides)
        seed(settings)
        return await aiohttp_client(make_app(settings))

    return make


def _words(html: str) -> str:
    return " ".join(html.split())


def _svgs(html: str) -> list[ET.Element]:
    # Our own markup, inlined in the page; ElementTree resolves no external entities.
    return [ET.fromstring(m) for m in re.findall(r"<svg .*?</svg>", html, re.S)]  # noqa: S314


async def test_interviewers_are_refused(make_client: MakeClient) -> None:
    client = await make_client()
    await login(client, "ann@example.com")
    for path in ("/calibration", "/reports/validity",
                 "/api/v1/reports/calibration", "/api/v1/reports/validity"):
        response = await client.get(path)
        assert response.status == 403, path
        assert "debugging" not in await response.text()


async def test_anonymous_callers_are_refused(client: Client) -> None:
    for path in ("/api/v1/reports/calibration", "/api/v1/reports/validity"):
        assert (await client.get(path)).status == 401


async def test_calibration_page_and_json_with_the_default_minimum(
    make_client: MakeClient,
) -> None:
    # Default min_agreement_sessions is 5: the fixture has 4 sessions with 2+ interviewers per
    # dimension and 3 shared sessions per interviewer, so every figure is "not enough data".
    client = await make_client()
    await _admin(client)
    response = await client.get("/calibration")
    assert response.status == 200
    html = await response.text()
    assert_no_traceback(html)
    assert "not enough data: 4 sessions rated by 2+ interviewers, 5 needed" in html
    assert "not enough data: 3 sessions shared with other interviewers, 5 needed" in html
    assert "n = 4" in html and "n = 3" in html
    (chart,) = _svgs(html)
    assert not [r for r in chart.iter(f"{SVG}rect") if r.get("class") == "bar"]
    assert "<script" not in without_own_scripts(html).lower()

    body = await (await client.get("/api/v1/reports/calibration")).json()
    assert body["min_sessions"] == 5
    assert {d["dimension"] for d in body["by_dimension"]} == {"debugging", "questions"}
    for d in body["by_dimension"]:
        assert d["task_id"] is None
        assert d["agreement"]["alpha"] is None
        assert d["agreement"]["sessions"] == 4
        assert d["agreement"]["enough"] is False
    assert {(d["task_id"], d["dimension"]) for d in body["by_task"]} == {
        ("task-a", "debugging"), ("task-a", "questions"),
        ("task-b", "debugging"), ("task-b", "questions"),
    }
    assert len(body["offsets"]) == 6
    assert {o["interviewer"] for o in body["offsets"]} == {"ann", "bo", "cy"}
    assert all(o["offset"] is None and o["sessions"] == 3 for o in body["offsets"])


async def test_calibration_with_enough_sessions(make_client: MakeClient) -> None:
    client = await make_client(min_agreement_sessions=3)
    await _admin(client)
    body = await (await client.get("/api/v1/reports/calibration")).json()
    by_dim = {d["dimension"]: d["agreement"] for d in body["by_dimension"]}
    # 26/27, worked out in tests/scoring/test_analytics.py
    assert abs(by_dim["questions"]["alpha"] - 26 / 27) < 1e-9
    offsets = {(o["interviewer"], o["dimension"]): o["offset"] for o in body["offsets"]}
    assert abs(offsets[("bo", "debugging")] - -1.0) < 1e-9
    html = await (await client.get("/calibration")).text()
    assert f"{26 / 27:.3f}" in html
    assert "-1.00" in html
    assert "<td>Asking useful questions</td>" in html  # tables name dimensions by their title
    (chart,) = _svgs(html)
    assert len([r for r in chart.iter(f"{SVG}rect") if r.get("class") == "bar"]) == 2


async def test_validity_page_and_json(make_client: MakeClient) -> None:
    client = await make_client(min_validity_sample=5)
    await _admin(client)
    response = await client.get("/reports/validity")
    assert response.status == 200
    html = await response.text()
    assert_no_traceback(html)
    # 4 sessions with a performance rating, 5 with a hiring decision, 4 hires with an outcome
    assert "not enough data: 4 pairs, 5 needed" in html
    assert "n = 5" in html
    assert "not enough data: 4 hired candidates with a six-month outcome, 5 needed" in html
    charts = _svgs(html)
    # one scatter (overall score vs hired, n = 5) and the retention chart
    assert len(charts) == 2
    scatter = charts[0]
    assert len([c for c in scatter.iter(f"{SVG}circle") if c.get("class") == "point"]) == 5
    assert "n = 5" in [t.text for t in scatter.iter(f"{SVG}text")]

    body = await (await client.get("/api/v1/reports/validity")).json()
    assert body["min_n"] == 5
    assert body["sessions_scored"] == 5
    got = {(c["score"], c["outcome"]): c["correlation"] for c in body["correlations"]}
    assert got[("overall", "performance")]["r"] is None
    assert got[("overall", "performance")]["n"] == 4
    assert got[("overall", "hired")]["n"] == 5
    assert got[("overall", "hired")]["r"] is not None
    retention = body["retention"]
    assert (retention["n"], retention["retained"], retention["rate"]) == (4, 3, None)
    assert retention["baseline"] == 0.6


async def test_validity_with_enough_data_shows_retention_against_the_baseline(
    make_client: MakeClient,
) -> None:
    client = await make_client(min_validity_sample=4)
    await _admin(client)
    html = _words(await (await client.get("/reports/validity")).text())
    # 3 of 4 hires retained: 75% against a 60% baseline, +15 points
    assert "3 of 4 hires still employed: 75%" in html
    assert "Baseline 60%: a difference of +15 points" in html
    retention_chart = _svgs(html)[-1]
    (line,) = [x for x in retention_chart.iter(f"{SVG}line") if x.get("class") == "reference"]
    texts = [t.text for t in retention_chart.iter(f"{SVG}text")]
    assert "- - baseline 60%" in texts and "n = 4" in texts
    assert line.get("y1") is not None


async def test_stored_labels_are_escaped_in_tables_and_charts(make_client: MakeClient) -> None:
    client = await make_client(min_agreement_sessions=1)
    settings = _settings(client)
    (s2,) = [r[0] for r in query(settings, "SELECT id FROM interview_sessions"
                                 " WHERE candidate_name = 'cand S2'")]
    hostile = '<script>alert("x")</script>'
    db = open_migrated(settings.db_path)
    try:
        with db.atomic():
            db.execute("UPDATE users SET display_name = ? WHERE email = 'bo@example.com'",
                       [hostile])
            for user, level in (("bo", 1), ("cy", 4)):
                body = json.dumps({"scores": {hostile: {"level": level, "evidence": "e"}}})
                db.execute(
                    "INSERT INTO scorecard_versions (session_id, user_id, version, rubric_id,"
                    " rubric_version, body, weighted_score, recommendation, submitted_at)"
                    " SELECT ?, id, 9, 'fixture', 1, ?, 2.0, 'no', '2025-01-16' FROM users"
                    " WHERE email = ?", [s2, body, f"{user}@example.com"])
    finally:
        db.conn.close()
    await _admin(client)
    html = await (await client.get("/calibration")).text()
    assert "<script" not in without_own_scripts(html).lower()
    assert "&lt;script&gt;" in html
    (chart,) = _svgs(html)
    assert hostile in [t.text for t in chart.iter(f"{SVG}text")]
    validity = await (await client.get("/reports/validity")).text()
    assert "<script" not in without_own_scripts(validity).lower()
