"""Schema of the people/login tables, as ``sqlite_utils.Migrations`` functions.

Each function is one change and is never edited after it lands: add a new one instead.
Each area owns its tables and its migration set; ``MIGRATION_SETS`` lists them in order.
"""

from __future__ import annotations

import sqlite_utils
from sqlite_utils.migrations import Migrations

migrations = Migrations("server")


@migrations()
def m001_people_and_login(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            email TEXT NOT NULL UNIQUE COLLATE NOCASE,
            display_name TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('admin', 'interviewer')),
            password_hash TEXT NOT NULL,
            disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
            created_at TEXT NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE login_sessions (
            id INTEGER PRIMARY KEY,
            token_hash TEXT NOT NULL UNIQUE,
            user_id INTEGER NOT NULL REFERENCES users(id),
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            address TEXT NOT NULL DEFAULT '',
            ended_at TEXT
        )
        """
    )
    db.execute("CREATE INDEX login_sessions_user ON login_sessions(user_id)")
    db.execute(
        """
        CREATE TABLE api_tokens (
            id INTEGER PRIMARY KEY,
            token_hash TEXT NOT NULL UNIQUE,
            prefix TEXT NOT NULL,
            name TEXT NOT NULL,
            user_id INTEGER NOT NULL REFERENCES users(id),
            created_by INTEGER NOT NULL REFERENCES users(id),
            created_at TEXT NOT NULL,
            last_used_at TEXT,
            revoked_at TEXT
        )
        """
    )
    db.execute(
        """
        CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            actor_id INTEGER,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            object_type TEXT NOT NULL DEFAULT '',
            object_id TEXT NOT NULL DEFAULT '',
            address TEXT NOT NULL DEFAULT '',
            detail TEXT NOT NULL DEFAULT '{}'
        )
        """
    )
    db.execute("CREATE INDEX audit_log_action ON audit_log(action, at)")
    # Append-only: the database itself refuses to change or remove audit rows.
    db.execute(
        """
        CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END
        """
    )
    db.execute(
        """
        CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END
        """
    )


def MIGRATION_SETS() -> list[Migrations]:  # noqa: N802 - reads as a constant at call sites
    """Every area's migration set, in the order they apply."""
    from scoring.migrations import migrations as scoring_migrations
    from scoring.outcome_migrations import migrations as outcome_migrations
    from scoring.webhook_migrations import migrations as webhook_migrations
    from tasks.migrations import migrations as tasks_migrations
    from workspaces.migrations import migrations as workspaces_migrations
    from workspaces.recording.event_migrations import migrations as recording_migrations

    return [migrations, tasks_migrations, workspaces_migrations, recording_migrations,
            scoring_migrations, outcome_migrations, webhook_migrations]
