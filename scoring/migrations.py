"""Schema of rubrics, the rubric each session is scored on, blinding and scorecards.

Each function is one change and is never edited after it lands: add a new one instead.
"""

from __future__ import annotations

import sqlite_utils
from sqlite_utils.migrations import Migrations

migrations = Migrations("scoring")


@migrations()
def m001_rubrics_and_scorecards(db: sqlite_utils.Database) -> None:
    # One row per rubric version; versions are immutable (new edits are new rows).
    db.execute(
        """
        CREATE TABLE rubrics (
            id TEXT NOT NULL,
            version INTEGER NOT NULL,
            title TEXT NOT NULL,
            definition TEXT NOT NULL,
            builtin INTEGER NOT NULL DEFAULT 0 CHECK (builtin IN (0, 1)),
            created_by INTEGER REFERENCES users(id),
            created_at TEXT NOT NULL,
            PRIMARY KEY (id, version)
        )
        """
    )
    db.execute(
        """
        CREATE TRIGGER rubrics_no_update BEFORE UPDATE ON rubrics
        BEGIN SELECT RAISE(ABORT, 'rubric versions are immutable'); END
        """
    )
    db.execute(
        """
        CREATE TABLE task_rubrics (
            task_id TEXT PRIMARY KEY,
            rubric_id TEXT NOT NULL,
            attached_by INTEGER REFERENCES users(id),
            attached_at TEXT NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE session_scoring (
            session_id TEXT PRIMARY KEY REFERENCES interview_sessions(id),
            rubric_id TEXT NOT NULL,
            rubric_version INTEGER NOT NULL,
            blind INTEGER NOT NULL DEFAULT 0 CHECK (blind IN (0, 1)),
            pseudonym TEXT NOT NULL,
            revealed_at TEXT,
            revealed_by INTEGER REFERENCES users(id),
            FOREIGN KEY (rubric_id, rubric_version) REFERENCES rubrics(id, version)
        )
        """
    )
    # The interviewer's working copy (draft); ``version`` counts submissions (0: never).
    db.execute(
        """
        CREATE TABLE scorecards (
            session_id TEXT NOT NULL REFERENCES interview_sessions(id),
            user_id INTEGER NOT NULL REFERENCES users(id),
            body TEXT NOT NULL,
            version INTEGER NOT NULL DEFAULT 0,
            updated_at TEXT NOT NULL,
            submitted_at TEXT,
            PRIMARY KEY (session_id, user_id)
        )
        """
    )
    # Every submission, append-only: what others, reports and statistics read.
    db.execute(
        """
        CREATE TABLE scorecard_versions (
            session_id TEXT NOT NULL REFERENCES interview_sessions(id),
            user_id INTEGER NOT NULL REFERENCES users(id),
            version INTEGER NOT NULL,
            rubric_id TEXT NOT NULL,
            rubric_version INTEGER NOT NULL,
            body TEXT NOT NULL,
            weighted_score REAL NOT NULL,
            recommendation TEXT NOT NULL,
            submitted_at TEXT NOT NULL,
            PRIMARY KEY (session_id, user_id, version)
        )
        """
    )
    for verb in ("UPDATE", "DELETE"):
        db.execute(
            f"""
            CREATE TRIGGER scorecard_versions_no_{verb.lower()} BEFORE {verb}
            ON scorecard_versions
            BEGIN SELECT RAISE(ABORT, 'submitted scorecards are append-only'); END
            """
        )


@migrations()
def m002_current_scorecards(db: sqlite_utils.Database) -> None:
    # Each interviewer's latest submitted version: what reports, exports and the debrief read.
    db.execute(
        """
        CREATE VIEW current_scorecards AS
        SELECT v.* FROM scorecard_versions v
        WHERE v.version = (SELECT MAX(w.version) FROM scorecard_versions w
                           WHERE w.session_id = v.session_id AND w.user_id = v.user_id)
        """
    )
