"""Scorecards and outcomes for the calibration and validity reports, put in a real database.

Plain code (no pytest), shared by the analytics and the report page tests. Five sessions on two
tasks, three interviewers (display names ann, bo, cy), two dimensions; the expected figures are
worked out by hand in ``tests/scoring/test_analytics.py``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlite_utils

from server.db import open_migrated
from server.settings import Settings
from tests.conftest import create_user
from tests.fixture_tasks import publish_fake_task
from workspaces.sessions import create_session

INTERVIEWERS = ("ann", "bo", "cy")
SUBMITTED_AT = "2025-01-15T10:00:00+00:00"

# session -> task, then per interviewer (debugging, questions, weighted score); an interviewer
# may have submitted earlier versions, listed first (only the last one counts).
CARDS: dict[str, tuple[str, dict[str, list[tuple[int, int, float]]]]] = {
    "S1": ("task-a", {"ann": [(1, 1, 1.0), (3, 2, 2.5)], "bo": [(2, 2, 2.0)]}),
    "S2": ("task-a", {"ann": [(4, 3, 3.5)], "bo": [(3, 3, 3.0)], "cy": [(4, 4, 4.0)]}),
    "S3": ("task-a", {"ann": [(2, 1, 1.5)], "cy": [(1, 1, 1.0)]}),
    "S4": ("task-b", {"bo": [(1, 2, 1.5)], "cy": [(2, 2, 2.0)]}),
    "S5": ("task-b", {"ann": [(4, 4, 4.0)]}),
}
# session -> (hired, employed_6m, performance)
OUTCOMES: dict[str, tuple[int | None, int | None, float | None]] = {
    "S1": (1, 1, 3.0),
    "S2": (1, 1, 4.0),
    "S3": (1, 0, 2.0),
    "S4": (0, None, None),
    "S5": (1, 1, 5.0),
}
BASELINE = 0.6


@dataclass(frozen=True)
class Seeded:
    session_ids: dict[str, str]
    """Fixture name (S1..S5) -> real session id."""
    user_ids: dict[str, int]


def _body(debugging: int, questions: int) -> str:
    return json.dumps({
        "scores": {
            "debugging": {"level": debugging, "evidence": "ran a failing test first",
                          "moments": [1]},
            "questions": {"level": questions, "evidence": "asked about the data", "moments": []},
        },
        "recommendation": "yes",
        "summary": "fixture",
    })


def _insert_cards(db: sqlite_utils.Database, session_id: str, user_id: int,
                  versions: list[tuple[int, int, float]]) -> None:
    for version, (debugging, questions, weighted) in enumerate(versions, start=1):
        db.execute(
            "INSERT INTO scorecard_versions (session_id, user_id, version, rubric_id,"
            " rubric_version, body, weighted_score, recommendation, submitted_at)"
            " VALUES (?, ?, ?, 'fixture', 1, ?, ?, 'yes', ?)",
            [session_id, user_id, version, _body(debugging, questions), weighted, SUBMITTED_AT],
        )


def seed(settings: Settings, *, outcomes: bool = True, baseline: bool = True) -> Seeded:
    users = {name: create_user(settings, f"{name}@example.com", "interviewer").id
             for name in INTERVIEWERS}
    revisions = {task: publish_fake_task(settings, task) for task in ("task-a", "task-b")}
    db = open_migrated(settings.db_path)
    sessions: dict[str, str] = {}
    try:
        with db.atomic():
            for name, (task, cards) in CARDS.items():
                session, _ = create_session(
                    db, revision_id=revisions[task], task_id=task, candidate_name=f"cand {name}",
                    candidate_email="", role="ml-engineer", duration_minutes=60,
                    starts_at=datetime(2025, 1, 15, 9, tzinfo=UTC),
                    interviewer_ids=[users[u] for u in cards], created_by=users["ann"],
                    link_secret=settings.cookie_secret.reveal(),
                )
                sessions[name] = session.id
                for interviewer, versions in cards.items():
                    _insert_cards(db, session.id, users[interviewer], versions)
            if outcomes:
                for name, (hired, employed, performance) in OUTCOMES.items():
                    db.execute(
                        "INSERT INTO outcomes (session_id, hired, employed_6m, performance,"
                        " recorded_at) VALUES (?, ?, ?, ?, ?)",
                        [sessions[name], hired, employed, performance, SUBMITTED_AT],
                    )
            if baseline:
                db.execute(
                    "INSERT INTO report_baselines (name, value, set_at) VALUES"
                    " ('retention_6m', ?, ?)", [BASELINE, SUBMITTED_AT],
                )
    finally:
        db.conn.close()
    return Seeded(sessions, users)
