"""Schema of session recording: the event log and the map from event positions to snapshot
commits, as ``sqlite_utils.Migrations`` functions (each one change, never edited after it lands).
"""

from __future__ import annotations

import sqlite_utils
from sqlite_utils.migrations import Migrations

migrations = Migrations("recording")


@migrations()
def m001_events_and_snapshots(db: sqlite_utils.Database) -> None:
    # One row per recorded event. ``seq`` is gap-free per session, starting at 1; ``at`` is an
    # ISO-8601 UTC timestamp with microseconds; ``payload`` is a JSON object of bounded size.
    db.execute(
        """
        CREATE TABLE events (
            session_id TEXT NOT NULL,
            seq INTEGER NOT NULL CHECK (seq >= 1),
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            kind TEXT NOT NULL,
            path TEXT NOT NULL DEFAULT '',
            payload TEXT NOT NULL DEFAULT '{}',
            PRIMARY KEY (session_id, seq)
        ) WITHOUT ROWID
        """
    )
    # Events are a record: once stored they never change (deleting a session's rows stays
    # possible, for retention).
    db.execute(
        """
        CREATE TRIGGER events_no_update BEFORE UPDATE ON events
        BEGIN SELECT RAISE(ABORT, 'events are append-only'); END
        """
    )
    # Which history commit holds the workspace as it was when event ``seq`` had been recorded.
    db.execute(
        """
        CREATE TABLE snapshots (
            session_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            commit_sha TEXT NOT NULL,
            at TEXT NOT NULL,
            PRIMARY KEY (session_id, seq, commit_sha)
        ) WITHOUT ROWID
        """
    )


@migrations()
def m004_terminal_casts(db: sqlite_utils.Database) -> None:
    # One row per recorded terminal connection: its asciicast v2 file
    # ``DATA_DIR/casts/<session_id>/<file>`` (workspaces/recording/casts.py). ``conn`` counts the
    # session's terminal connections from 1; ``bytes``/``dropped_bytes``: output kept and not
    # kept (bounds), known once the connection ended (``ended_at``).
    db.execute(
        """
        CREATE TABLE casts (
            session_id TEXT NOT NULL,
            id TEXT NOT NULL,
            terminal TEXT NOT NULL,
            conn INTEGER NOT NULL,
            actor TEXT NOT NULL,
            file TEXT NOT NULL,
            started_at TEXT NOT NULL,
            ended_at TEXT,
            width INTEGER,
            height INTEGER,
            bytes INTEGER NOT NULL DEFAULT 0,
            dropped_bytes INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (session_id, id)
        ) WITHOUT ROWID
        """
    )
