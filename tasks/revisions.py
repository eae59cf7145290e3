"""Task revisions and imports in SQLite: plain functions over a ``sqlite_utils.Database``.

A revision is immutable (triggers refuse changes to its content); its review status moves once
from ``review`` to ``published`` or ``rejected``. Publishing makes it the task's current one.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from common.clock import now_iso
from tasks import acceptances
from tasks.errors import NotPublishable, RevisionNotFound, TaskError, TaskNotFound


@dataclass(frozen=True)
class NewRevision:
    task_id: str
    title: str
    kind: str
    roles: tuple[str, ...]
    duration_minutes: int
    requirements: tuple[str, ...]
    visible_check: str
    source_url: str
    source_ref: str
    source_subdir: str
    source_commit: str
    tree_commit: str
    blockers: tuple[str, ...]
    created_by: str


@dataclass(frozen=True)
class Revision:
    id: str
    task_id: str
    number: int
    title: str
    kind: str
    roles: tuple[str, ...]
    duration_minutes: int
    requirements: tuple[str, ...]
    visible_check: str
    source_url: str
    source_ref: str
    source_subdir: str
    source_commit: str
    tree_commit: str
    blockers: tuple[str, ...]
    flags_acknowledged_by: str | None
    status: str
    created_by: str
    created_at: str
    decided_at: str | None
    is_current: bool = field(default=False)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "task_id": self.task_id,
            "number": self.number,
            "title": self.title,
            "kind": self.kind,
            "roles": list(self.roles),
            "duration_minutes": self.duration_minutes,
            "requirements": list(self.requirements),
            "visible_check": self.visible_check,
            "source": {
                "url": self.source_url,
                "ref": self.source_ref,
                "subdir": self.source_subdir,
                "commit": self.source_commit,
            },
            "tree_commit": self.tree_commit,
            "blockers": list(self.blockers),
            "flags_acknowledged_by": self.flags_acknowledged_by,
            "status": self.status,
            "created_by": self.created_by,
            "created_at": self.created_at,
            "decided_at": self.decided_at,
            "current": self.is_current,
        }


def _revision(row: dict[str, Any]) -> Revision:
    return Revision(
        id=row["id"],
        task_id=row["task_id"],
        number=row["number"],
        title=row["title"],
        kind=row["kind"],
        roles=tuple(json.loads(row["roles"])),
        duration_minutes=row["duration_minutes"],
        requirements=tuple(json.loads(row["requirements"])),
        visible_check=row["visible_check"],
        source_url=row["source_url"],
        source_ref=row["source_ref"],
        source_subdir=row["source_subdir"],
        source_commit=row["source_commit"],
        tree_commit=row["tree_commit"],
        blockers=tuple(json.loads(row["blockers"])),
        flags_acknowledged_by=row["flags_acknowledged_by"],
        status=row["status"],
        created_by=row["created_by"],
        created_at=row["created_at"],
        decided_at=row["decided_at"],
        is_current=bool(row.get("is_current")),
    )


_SELECT = (
    "SELECT r.*, (t.current_revision = r.id) AS is_current FROM task_revisions r"
    " JOIN tasks t ON t.id = r.task_id"
)


def next_revision_id(db: sqlite_utils.Database, task_id: str) -> tuple[str, int]:
    row = db.execute(
        "SELECT COALESCE(MAX(number), 0) FROM task_revisions WHERE task_id = ?", [task_id]
    ).fetchone()
    number = int(row[0]) + 1
    return f"{task_id}-r{number}", number


def insert_revision(db: sqlite_utils.Database, rev: NewRevision) -> Revision:
    """Insert a new revision in review (call inside the writer's transaction)."""
    if not db.execute("SELECT 1 FROM tasks WHERE id = ?", [rev.task_id]).fetchone():
        db.execute(
            "INSERT INTO tasks (id, title, kind, roles, duration_minutes, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [rev.task_id, rev.title, rev.kind, json.dumps(list(rev.roles)),
             rev.duration_minutes, now_iso()],
        )
    rev_id, number = next_revision_id(db, rev.task_id)
    db.execute(
        "INSERT INTO task_revisions (id, task_id, number, title, kind, roles, duration_minutes,"
        " requirements, visible_check, source_url, source_ref, source_subdir, source_commit,"
        " tree_commit, blockers, status, created_by, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'review', ?, ?)",
        [rev_id, rev.task_id, number, rev.title, rev.kind, json.dumps(list(rev.roles)),
         rev.duration_minutes, json.dumps(list(rev.requirements)), rev.visible_check,
         rev.source_url, rev.source_ref, rev.source_subdir, rev.source_commit, rev.tree_commit,
         json.dumps(list(rev.blockers)), rev.created_by, now_iso()],
    )
    return get_revision(db, rev_id)


def get_revision(db: sqlite_utils.Database, rev_id: str) -> Revision:
    rows = db.execute_returning_dicts(_SELECT + " WHERE r.id = ?", [rev_id])
    if not rows:
        raise RevisionNotFound(f"there is no task revision {rev_id[:80]!r}")
    return _revision(rows[0])


def list_revisions(db: sqlite_utils.Database, task_id: str | None = None) -> list[Revision]:
    if task_id is None:
        rows = db.execute_returning_dicts(_SELECT + " ORDER BY r.task_id, r.number")
    else:
        rows = db.execute_returning_dicts(
            _SELECT + " WHERE r.task_id = ? ORDER BY r.number", [task_id]
        )
    return [_revision(r) for r in rows]


def list_tasks(db: sqlite_utils.Database, task_id: str | None = None) -> list[dict[str, Any]]:
    """Tasks (or the one ``task_id``) with their revision count, by id."""
    rows = db.execute_returning_dicts(
        "SELECT t.*, (SELECT COUNT(*) FROM task_revisions r WHERE r.task_id = t.id) AS revisions"
        " FROM tasks t WHERE ? IS NULL OR t.id = ? ORDER BY t.id", [task_id, task_id]
    )
    for row in rows:
        row["roles"] = json.loads(row["roles"])
    return rows


def get_task(db: sqlite_utils.Database, task_id: str) -> dict[str, Any]:
    rows = list_tasks(db, task_id)
    if not rows:
        raise TaskNotFound(f"there is no task {task_id[:80]!r}")
    task = rows[0]
    task["revision_list"] = [r.public() for r in list_revisions(db, task_id)]
    return task


def still_blocking(rev: Revision, unaccepted: int | None = None) -> list[str]:
    """What still blocks publishing ``rev`` now: its import's blockers less the flagged files an
    admin acknowledged and, once every post-scan finding was accepted, the post-scan's.

    ``unaccepted``: how many of its post-scan findings no admin accepted (None: not known, so
    the post-scan still blocks); acknowledging flagged files never clears the post-scan."""
    acknowledged = rev.flags_acknowledged_by is not None
    reasons = []
    for b in rev.blockers:
        kind, _, text = b.partition(":")
        if kind == "flag" and acknowledged:
            continue
        if kind == "postscan" and unaccepted is not None:
            if unaccepted == 0:
                continue
            text = f"{text}, {unaccepted} of them not accepted"
        reasons.append(text)
    return reasons


def check_publishable(rev: Revision, unaccepted: int | None = None) -> None:
    """Refuse a rejected revision, or one something still blocks (:func:`still_blocking`)."""
    if rev.status == "rejected":
        raise NotPublishable(f"{rev.id} was rejected; import the task again to publish it")
    reasons = still_blocking(rev, unaccepted)
    if reasons:
        raise NotPublishable(f"{rev.id} cannot be published: " + "; ".join(reasons))


def publish(db: sqlite_utils.Database, rev_id: str,
            findings: Sequence[Mapping[str, Any]] | None = None) -> Revision:
    """Publish ``rev_id``; ``findings`` (its report's post-scan findings) lets acceptances
    (:mod:`tasks.acceptances`) clear the post-scan's blocker."""
    rev = get_revision(db, rev_id)
    left = None if findings is None else len(acceptances.unaccepted(db, rev_id, findings))
    check_publishable(rev, left)
    if rev.status == "review":
        db.execute(
            "UPDATE task_revisions SET status = 'published', decided_at = ? WHERE id = ?",
            [now_iso(), rev_id],
        )
    db.execute("UPDATE tasks SET current_revision = ?, title = ?, kind = ?, roles = ?,"
               " duration_minutes = ? WHERE id = ?",
               [rev_id, rev.title, rev.kind, json.dumps(list(rev.roles)), rev.duration_minutes,
                rev.task_id])
    return get_revision(db, rev_id)


def reject(db: sqlite_utils.Database, rev_id: str) -> Revision:
    rev = get_revision(db, rev_id)
    if rev.status != "review":
        raise TaskError(f"{rev_id} is already {rev.status}")
    db.execute(
        "UPDATE task_revisions SET status = 'rejected', decided_at = ? WHERE id = ?",
        [now_iso(), rev_id],
    )
    return get_revision(db, rev_id)


def acknowledge_flags(db: sqlite_utils.Database, rev_id: str, who: str) -> Revision:
    rev = get_revision(db, rev_id)
    if not any(b.startswith("flag:") for b in rev.blockers):
        raise TaskError(f"{rev_id} has no flagged files to acknowledge")
    db.execute(
        "UPDATE task_revisions SET flags_acknowledged_by = ? WHERE id = ?", [who, rev_id]
    )
    return get_revision(db, rev_id)


def published_revision(db: sqlite_utils.Database, task_or_rev: str) -> Revision:
    """The revision a session would use: a revision id, or a task id's current revision."""
    rows = db.execute_returning_dicts(_SELECT + " WHERE r.id = ?", [task_or_rev])
    if not rows:
        rows = db.execute_returning_dicts(
            _SELECT + " WHERE r.id = t.current_revision AND t.id = ?", [task_or_rev]
        )
    if not rows:
        raise RevisionNotFound(f"there is no published task or revision {task_or_rev[:80]!r}")
    rev = _revision(rows[0])
    if rev.status != "published":
        raise NotPublishable(f"{rev.id} is not published (status: {rev.status})")
    return rev


# ---- imports ------------------------------------------------------------------------------


def start_import(
    db: sqlite_utils.Database, url: str, ref: str, subdir: str, who: str
) -> str:
    import_id = "imp_" + secrets.token_hex(8)
    db.execute(
        "INSERT INTO task_imports (id, source_url, source_ref, source_subdir, status, step,"
        " created_by, created_at) VALUES (?, ?, ?, ?, 'running', 'queued', ?, ?)",
        [import_id, url, ref, subdir, who, now_iso()],
    )
    return import_id


def set_import_step(db: sqlite_utils.Database, import_id: str, step: str) -> None:
    """The import is at ``step`` now (added to the steps it took); a finished import's steps
    stay as they were (a late progress report changes nothing)."""
    db.execute(
        "UPDATE task_imports SET step = ?, steps = json_insert(steps, '$[#]', ?)"
        " WHERE id = ? AND status = 'running'",
        [step, step, import_id],
    )


def finish_import(
    db: sqlite_utils.Database, import_id: str, revision_id: str | None, error: str | None
) -> None:
    """Succeeded (step ``done``) or failed with ``error``: a failed import keeps the step it
    failed in."""
    db.execute(
        "UPDATE task_imports SET status = ?, step = CASE WHEN ? THEN step ELSE 'done' END,"
        " error = ?, revision_id = ?, finished_at = ? WHERE id = ?",
        ["failed" if error else "succeeded", error is not None, error, revision_id, now_iso(),
         import_id],
    )


def _import_row(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "steps": json.loads(row.get("steps") or "[]")}


def get_import(db: sqlite_utils.Database, import_id: str) -> dict[str, Any]:
    """The import's row; ``steps`` is the list of steps it took, in order."""
    rows = db.execute_returning_dicts("SELECT * FROM task_imports WHERE id = ?", [import_id])
    if not rows:
        raise TaskNotFound(f"there is no import {import_id[:40]!r}")
    return _import_row(rows[0])


def list_imports(db: sqlite_utils.Database, limit: int = 50) -> list[dict[str, Any]]:
    return [_import_row(row) for row in db.execute_returning_dicts(
        "SELECT * FROM task_imports ORDER BY created_at DESC LIMIT ?", [limit]
    )]


def fail_interrupted_imports(db: sqlite_utils.Database) -> int:
    """Imports left running by a stopped server are marked failed at start (in the step they
    were in)."""
    cursor = db.execute(
        "UPDATE task_imports SET status = 'failed', finished_at = ?,"
        " error = 'the server stopped during the import; start it again' WHERE status = 'running'",
        [now_iso()],
    )
    return int(cursor.rowcount)
