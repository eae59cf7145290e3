"""Interviews made straight in a real SQLite file for the outcome and score-export tests:
sessions (ended by default), submitted scorecard versions and blinding. Plain code, no pytest."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlite_utils

from server.db import open_migrated
from server.settings import Settings
from workspaces.sessions import create_session, set_state

START = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
LINK_SECRET = "interviews-test-link-secret-" * 2
"""The key these sessions' candidate links are made with (no server runs them)."""


def make_session(
    db: sqlite_utils.Database,
    rev_id: str,
    interviewer_ids: list[int],
    *,
    task_id: str = "demo-task",
    candidate: str = "Ada Lovelace",
    email: str = "",
    role: str = "ml-engineer",
    starts_at: datetime = START,
    state: str = "ended",
) -> str:
    """A session of ``rev_id`` moved to ``state`` (``scheduled``, ``live`` or ``ended``)."""
    session, _ = create_session(
        db, revision_id=rev_id, task_id=task_id, candidate_name=candidate,
        candidate_email=email, role=role, duration_minutes=60, starts_at=starts_at,
        interviewer_ids=interviewer_ids, created_by=interviewer_ids[0], link_secret=LINK_SECRET,
    )
    if state in ("live", "ended"):
        set_state(db, session.id, "live", expect=("scheduled",))
    if state == "ended":
        set_state(db, session.id, "ended", expect=("live",))
    return session.id


def add_session(settings: Settings, rev_id: str, interviewer_ids: list[int], **kw: Any) -> str:
    """``make_session`` through its own connection (for tests with a running app)."""
    db = open_migrated(settings.db_path)
    try:
        with db.atomic():
            return make_session(db, rev_id, interviewer_ids, **kw)
    finally:
        db.conn.close()


def add_rubric(db: sqlite_utils.Database, rubric_id: str = "core", version: int = 1) -> None:
    db.execute(
        "INSERT INTO rubrics (id, version, title, definition, builtin, created_at)"
        " VALUES (?, ?, ?, '{}', 0, '2026-01-01T00:00:00+00:00')",
        [rubric_id, version, f"Rubric {rubric_id}"],
    )


def blind(
    db: sqlite_utils.Database, session_id: str, pseudonym: str, *, revealed: bool = False,
    rubric_id: str = "core", version: int = 1,
) -> None:
    db.execute(
        "INSERT INTO session_scoring (session_id, rubric_id, rubric_version, blind, pseudonym,"
        " revealed_at) VALUES (?, ?, ?, 1, ?, ?)",
        [session_id, rubric_id, version, pseudonym,
         "2026-03-03T10:00:00+00:00" if revealed else None],
    )


def submit_card(
    db: sqlite_utils.Database,
    session_id: str,
    user_id: int,
    levels: dict[str, int],
    *,
    version: int = 1,
    recommendation: str = "hire",
    weighted_score: float = 3.0,
    rubric_id: str = "core",
    rubric_version: int = 1,
    submitted_at: str = "2026-03-02T16:00:00+00:00",
) -> None:
    """One submitted scorecard version with ``levels`` per dimension, in that order."""
    body = {
        "scores": {d: {"level": lv, "evidence": "saw it", "moments": [1]}
                   for d, lv in levels.items()},
        "recommendation": recommendation,
        "summary": "",
    }
    db.execute(
        "INSERT INTO scorecard_versions (session_id, user_id, version, rubric_id,"
        " rubric_version, body, weighted_score, recommendation, submitted_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [session_id, user_id, version, rubric_id, rubric_version, json.dumps(body),
         weighted_score, recommendation, submitted_at],
    )
