"""Schema of hiring outcomes and the report baselines an admin enters."""

from __future__ import annotations

import sqlite_utils
from sqlite_utils.migrations import Migrations

migrations = Migrations("outcomes")


@migrations()
def m001_outcomes(db: sqlite_utils.Database) -> None:
    # One row per interviewed candidate (their session); NULL means "not known yet".
    db.execute(
        """
        CREATE TABLE outcomes (
            session_id TEXT PRIMARY KEY REFERENCES interview_sessions(id),
            hired INTEGER CHECK (hired IN (0, 1)),
            employed_6m INTEGER CHECK (employed_6m IN (0, 1)),
            performance REAL CHECK (performance BETWEEN 1 AND 5),
            note TEXT NOT NULL DEFAULT '',
            recorded_by INTEGER REFERENCES users(id),
            recorded_at TEXT NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE report_baselines (
            name TEXT PRIMARY KEY,
            value REAL NOT NULL,
            set_by INTEGER REFERENCES users(id),
            set_at TEXT NOT NULL
        )
        """
    )
