"""Schema of the task catalogue's tables (owned by this area), as ``sqlite_utils.Migrations``."""

from __future__ import annotations

import sqlite_utils
from sqlite_utils.migrations import Migrations

migrations = Migrations("tasks")


@migrations()
def m001_tasks_revisions_imports(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE tasks (
            id TEXT PRIMARY KEY,
            title TEXT NOT NULL,
            kind TEXT NOT NULL,
            roles TEXT NOT NULL,
            duration_minutes INTEGER NOT NULL,
            current_revision TEXT,
            created_at TEXT NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE task_revisions (
            id TEXT PRIMARY KEY,
            task_id TEXT NOT NULL REFERENCES tasks(id),
            number INTEGER NOT NULL,
            title TEXT NOT NULL,
            kind TEXT NOT NULL,
            roles TEXT NOT NULL,
            duration_minutes INTEGER NOT NULL,
            requirements TEXT NOT NULL,
            visible_check TEXT NOT NULL,
            source_url TEXT NOT NULL,
            source_ref TEXT NOT NULL,
            source_subdir TEXT NOT NULL,
            source_commit TEXT NOT NULL,
            tree_commit TEXT NOT NULL,
            blockers TEXT NOT NULL,
            flags_acknowledged_by TEXT,
            status TEXT NOT NULL CHECK (status IN ('review', 'published', 'rejected')),
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL,
            decided_at TEXT,
            UNIQUE (task_id, number)
        )
        """
    )
    # A revision's content is immutable: only its review status may change, once.
    db.execute(
        """
        CREATE TRIGGER task_revisions_immutable BEFORE UPDATE ON task_revisions
        WHEN NEW.id IS NOT OLD.id OR NEW.task_id IS NOT OLD.task_id
          OR NEW.source_commit IS NOT OLD.source_commit OR NEW.tree_commit IS NOT OLD.tree_commit
          OR NEW.requirements IS NOT OLD.requirements OR NEW.number IS NOT OLD.number
          OR NEW.visible_check IS NOT OLD.visible_check
        BEGIN SELECT RAISE(ABORT, 'task revisions are immutable'); END
        """
    )
    db.execute(
        """
        CREATE TRIGGER task_revisions_no_delete BEFORE DELETE ON task_revisions
        BEGIN SELECT RAISE(ABORT, 'task revisions are immutable'); END
        """
    )
    db.execute(
        """
        CREATE TABLE task_imports (
            id TEXT PRIMARY KEY,
            source_url TEXT NOT NULL,
            source_ref TEXT NOT NULL,
            source_subdir TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
            step TEXT NOT NULL,
            error TEXT,
            revision_id TEXT REFERENCES task_revisions(id),
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL,
            finished_at TEXT
        )
        """
    )


@migrations()
def m002_finding_acceptances(db: sqlite_utils.Database) -> None:
    # Beside the immutable revision: which post-scan finding an admin accepted, why, who, when.
    db.execute(
        """
        CREATE TABLE task_finding_acceptances (
            revision_id TEXT NOT NULL REFERENCES task_revisions(id),
            finding_id TEXT NOT NULL,
            path TEXT NOT NULL,
            line INTEGER,
            kind TEXT NOT NULL,
            excerpt TEXT NOT NULL,
            reason TEXT NOT NULL CHECK (length(trim(reason)) > 0),
            accepted_by TEXT NOT NULL,
            accepted_at TEXT NOT NULL,
            PRIMARY KEY (revision_id, finding_id)
        )
        """
    )
    for op in ("UPDATE", "DELETE"):
        db.execute(
            f"CREATE TRIGGER task_finding_acceptances_no_{op.lower()} BEFORE {op}"
            " ON task_finding_acceptances"
            " BEGIN SELECT RAISE(ABORT, 'acceptances are append-only'); END"
        )


@migrations()
def m003_import_steps_taken(db: sqlite_utils.Database) -> None:
    # Every step an import took, in order (a JSON list), for the import page's list of steps.
    db.execute("ALTER TABLE task_imports ADD COLUMN steps TEXT NOT NULL DEFAULT '[]'")
