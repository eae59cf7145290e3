"""Schema of interview sessions, their access grants and workspaces (owned by this area)."""

from __future__ import annotations

import sqlite_utils
from sqlite_utils.migrations import Migrations

migrations = Migrations("workspaces")


@migrations()
def m001_sessions_and_workspaces(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE interview_sessions (
            id TEXT PRIMARY KEY,
            revision_id TEXT NOT NULL REFERENCES task_revisions(id),
            task_id TEXT NOT NULL,
            candidate_name TEXT NOT NULL,
            candidate_email TEXT NOT NULL DEFAULT '',
            role TEXT NOT NULL DEFAULT '',
            duration_minutes INTEGER NOT NULL,
            starts_at TEXT NOT NULL,
            ends_at TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN
                ('scheduled', 'provisioning', 'live', 'ended', 'failed')),
            failure_reason TEXT NOT NULL DEFAULT '',
            link_hash TEXT NOT NULL UNIQUE,
            workspace_id TEXT,
            created_by INTEGER NOT NULL REFERENCES users(id),
            created_at TEXT NOT NULL,
            started_at TEXT,
            ended_at TEXT
        )
        """
    )
    db.execute(
        """
        CREATE TABLE session_interviewers (
            session_id TEXT NOT NULL REFERENCES interview_sessions(id),
            user_id INTEGER NOT NULL REFERENCES users(id),
            PRIMARY KEY (session_id, user_id)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE session_access (
            token_hash TEXT PRIMARY KEY,
            session_id TEXT NOT NULL REFERENCES interview_sessions(id),
            kind TEXT NOT NULL CHECK (kind IN ('candidate', 'interviewer', 'handoff')),
            user_id INTEGER REFERENCES users(id),
            created_at TEXT NOT NULL,
            expires_at TEXT,
            used_at TEXT,
            address TEXT NOT NULL DEFAULT '',
            user_agent TEXT NOT NULL DEFAULT ''
        )
        """
    )
    db.execute(
        """
        CREATE TABLE session_connections (
            id INTEGER PRIMARY KEY,
            session_id TEXT NOT NULL REFERENCES interview_sessions(id),
            who TEXT NOT NULL,
            kind TEXT NOT NULL,
            address TEXT NOT NULL DEFAULT '',
            user_agent TEXT NOT NULL DEFAULT '',
            at TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX session_connections_session ON session_connections(session_id, at)")
    db.execute(
        """
        CREATE TABLE workspaces (
            id TEXT PRIMARY KEY,
            session_id TEXT REFERENCES interview_sessions(id),
            env_key TEXT NOT NULL,
            env_python TEXT NOT NULL,
            uid INTEGER NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('warm', 'live', 'stopped', 'failed')),
            root TEXT NOT NULL,
            socket_path TEXT NOT NULL,
            token TEXT NOT NULL,
            pid INTEGER NOT NULL,
            restarts INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            stopped_at TEXT
        )
        """
    )
    db.execute("CREATE INDEX workspaces_state ON workspaces(state)")


@migrations()
def m002_workspace_origins(db: sqlite_utils.Database) -> None:
    # A grant with a workspace id is a cookie of that workspace's own host; without one, of
    # the shared workspace origin (landing page). One-time entry codes are kept apart from
    # grants, so that a code is never accepted as a cookie.
    db.execute("ALTER TABLE session_access ADD COLUMN workspace_id TEXT")
    db.execute(
        """
        CREATE TABLE workspace_entry_codes (
            code_hash TEXT PRIMARY KEY,
            session_id TEXT NOT NULL REFERENCES interview_sessions(id),
            workspace_id TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('candidate', 'interviewer')),
            user_id INTEGER REFERENCES users(id),
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            used_at TEXT
        )
        """
    )


@migrations()
def m003_showable_candidate_links(db: sqlite_utils.Database) -> None:
    # The candidate link's token is never stored: ``link_nonce`` lets the server rebuild it
    # with its secret (workspaces/candidate_links.py); NULL for links made before this, which
    # can only be re-issued. A re-issued link's hash is kept so its page can say "replaced".
    db.execute("ALTER TABLE interview_sessions ADD COLUMN link_nonce TEXT")
    db.execute(
        """
        CREATE TABLE replaced_candidate_links (
            link_hash TEXT PRIMARY KEY,
            session_id TEXT NOT NULL REFERENCES interview_sessions(id),
            replaced_at TEXT NOT NULL
        )
        """
    )


@migrations()
def m004_candidate_link_emails(db: sqlite_utils.Database) -> None:
    # Each try to email a session's candidate link: counted for the per-session rate limit
    # (reserved before the SMTP exchange, in the write transaction) and shown as "Sent to ...
    # at ..." on the session's page. Never the link itself.
    db.execute(
        """
        CREATE TABLE candidate_link_emails (
            id INTEGER PRIMARY KEY,
            session_id TEXT NOT NULL REFERENCES interview_sessions(id),
            recipient TEXT NOT NULL,
            requested_by INTEGER REFERENCES users(id),
            requested_at TEXT NOT NULL,
            sent_at TEXT,
            error TEXT NOT NULL DEFAULT ''
        )
        """
    )
    db.execute("CREATE INDEX candidate_link_emails_by_session ON candidate_link_emails"
               " (session_id, requested_at)")
