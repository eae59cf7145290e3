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
def m002_file_contents(db: sqlite_utils.Database) -> None:
    # The content of each file version the watcher read (files up to 2 MiB), zlib-compressed
    # and deduplicated per session by sha256: the file at any event, exactly. Rows never change.
    db.execute(
        """
        CREATE TABLE file_blobs (
            session_id TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            data BLOB NOT NULL,
            PRIMARY KEY (session_id, sha256)
        ) WITHOUT ROWID
        """
    )
    db.execute(
        """
        CREATE TRIGGER file_blobs_no_update BEFORE UPDATE ON file_blobs
        BEGIN SELECT RAISE(ABORT, 'file contents are append-only'); END
        """
    )
    # The newest event of a path at or before a position.
    db.execute("CREATE INDEX events_by_path ON events (session_id, path, seq)")


@migrations()
def m003_collaboration_log(db: sqlite_utils.Database) -> None:
    # One row per collaboration room (``<format>:<type>:<fileId>``) seen in a session. ``doc_type``
    # is 'file' (YUnicode) or 'notebook' (YNotebook); ``path`` follows the document's ``state``
    # map and ``capped_at`` is set once the session's or an update's size bound is reached
    # (later updates are then not stored): only those two columns may change.
    db.execute(
        """
        CREATE TABLE docs (
            id INTEGER PRIMARY KEY,
            session_id TEXT NOT NULL,
            room TEXT NOT NULL,
            file_id TEXT NOT NULL,
            doc_type TEXT NOT NULL,
            path TEXT NOT NULL DEFAULT '',
            opened_at TEXT NOT NULL,
            capped_at TEXT,
            UNIQUE (session_id, room)
        )
        """
    )
    db.execute(
        """
        CREATE TRIGGER docs_fixed BEFORE UPDATE OF id, session_id, room, file_id, doc_type,
            opened_at ON docs
        BEGIN SELECT RAISE(ABORT, 'docs are append-only except path and capped_at'); END
        """
    )
    # Every update that changed a document, as applied to pairlab's mirror of it: ``n`` is
    # gap-free per document from 1; ``data`` is the Yjs v1 update. ``kind`` 'update' is a
    # person's edit (``actor`` their event actor, ``conn`` the session's connection number,
    # >= 1); 'server' is the server's own change (load, reload from disk, state map; actor
    # 'system', conn 0).
    db.execute(
        """
        CREATE TABLE doc_updates (
            doc_id INTEGER NOT NULL,
            n INTEGER NOT NULL CHECK (n >= 1),
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            conn INTEGER NOT NULL,
            kind TEXT NOT NULL,
            data BLOB NOT NULL,
            PRIMARY KEY (doc_id, n)
        ) WITHOUT ROWID
        """
    )
    db.execute(
        """
        CREATE TRIGGER doc_updates_no_update BEFORE UPDATE ON doc_updates
        BEGIN SELECT RAISE(ABORT, 'doc_updates are append-only'); END
        """
    )
    # The full document state (a Yjs v1 update from the empty doc) after update ``n``, every
    # 500 updates, so playback never replays a whole session.
    db.execute(
        """
        CREATE TABLE doc_checkpoints (
            doc_id INTEGER NOT NULL,
            n INTEGER NOT NULL,
            state BLOB NOT NULL,
            PRIMARY KEY (doc_id, n)
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


@migrations()
def m005_events_by_kind(db: sqlite_utils.Database) -> None:
    # A session's events of some kinds, in order: the scorecard's timeline and its filter
    # (scoring/moment_timeline.py; 0.6 s → ms for a 20,000-event session), the latest checks.
    db.execute("CREATE INDEX events_by_kind ON events (session_id, kind, seq)")
