"""The collaboration log's tables (``docs``, ``doc_updates``, ``doc_checkpoints``, migration
``m003_collaboration_log``): plain functions of a connection to read and append them.

Every update that changed a collaborative document is stored exactly as it was applied to
pairlab's mirror of the document, numbered ``n`` from 1 without gaps per document, with who made
it. Replaying a document's updates in order (from the newest checkpoint at or before ``n``)
rebuilds it as it was after update ``n``. Web-free: callers pass a ``sqlite_utils.Database``
(inside ``Database.read``/``write``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlite_utils

from common.clock import iso

__all__ = [
    "CHECKPOINT_EVERY",
    "KIND_SERVER",
    "KIND_UPDATE",
    "Doc",
    "DocUpdate",
    "add_checkpoint",
    "append_updates",
    "checkpoint_at",
    "doc_by_id",
    "docs_of_session",
    "last_n",
    "open_doc",
    "set_capped",
    "set_path",
    "updates_from",
]

CHECKPOINT_EVERY = 500
KIND_UPDATE = "update"  # a person's edit: actor = their event actor, conn >= 1
KIND_SERVER = "server"  # load, reload from disk, state map: actor 'system', conn 0
PAGE = 1000


@dataclass(frozen=True, slots=True)
class Doc:
    """One collaboration room of a session (``room`` = ``<format>:<type>:<fileId>``)."""

    id: int
    session_id: str
    room: str
    file_id: str
    doc_type: str  # 'file' (YUnicode) | 'notebook' (YNotebook)
    path: str
    opened_at: datetime
    capped_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "room": self.room, "file_id": self.file_id,
                "doc_type": self.doc_type, "path": self.path, "opened_at": iso(self.opened_at),
                "capped_at": None if self.capped_at is None else iso(self.capped_at)}


@dataclass(frozen=True, slots=True)
class DocUpdate:
    """One stored update: ``data`` is the Yjs v1 update as applied to the mirror."""

    doc_id: int
    n: int
    at: datetime
    actor: str
    conn: int
    kind: str
    data: bytes


_DOC_COLUMNS = "id, session_id, room, file_id, doc_type, path, opened_at, capped_at"


def _doc(row: tuple[Any, ...]) -> Doc:
    return Doc(row[0], row[1], row[2], row[3], row[4], row[5], datetime.fromisoformat(row[6]),
               None if row[7] is None else datetime.fromisoformat(row[7]))


def docs_of_session(db: sqlite_utils.Database, session_id: str) -> list[Doc]:
    """The documents of a session, in the order they were first opened."""
    rows = db.execute(f"SELECT {_DOC_COLUMNS} FROM docs WHERE session_id = ? "  # noqa: S608
                      "ORDER BY opened_at, id", [session_id]).fetchall()
    return [_doc(row) for row in rows]


def doc_by_id(db: sqlite_utils.Database, session_id: str, doc_id: int) -> Doc | None:
    row = db.execute(f"SELECT {_DOC_COLUMNS} FROM docs WHERE session_id = ? AND id = ?",  # noqa: S608
                     [session_id, doc_id]).fetchone()
    return None if row is None else _doc(row)


def last_n(db: sqlite_utils.Database, doc_id: int) -> int:
    """The number of the document's newest stored update (0 when none)."""
    (top,) = db.execute("SELECT COALESCE(MAX(n), 0) FROM doc_updates WHERE doc_id = ?",
                        [doc_id]).fetchone()
    return int(top)


def updates_from(db: sqlite_utils.Database, doc_id: int, n: int = 1,
                 limit: int = PAGE) -> list[DocUpdate]:
    """The document's updates with number ``>= n``, in order, at most ``limit``."""
    rows = db.execute("SELECT doc_id, n, at, actor, conn, kind, data FROM doc_updates "
                      "WHERE doc_id = ? AND n >= ? ORDER BY n LIMIT ?",
                      [doc_id, n, limit]).fetchall()
    return [DocUpdate(r[0], r[1], datetime.fromisoformat(r[2]), r[3], r[4], r[5], bytes(r[6]))
            for r in rows]


def checkpoint_at(db: sqlite_utils.Database, doc_id: int, n: int) -> tuple[int, bytes] | None:
    """The newest checkpoint ``(n, state)`` taken after an update numbered at most ``n``."""
    row = db.execute("SELECT n, state FROM doc_checkpoints WHERE doc_id = ? AND n <= ? "
                     "ORDER BY n DESC LIMIT 1", [doc_id, n]).fetchone()
    return None if row is None else (int(row[0]), bytes(row[1]))


# -- writing (inside ``Database.write``) ---------------------------------------------------------


def open_doc(db: sqlite_utils.Database, session_id: str, room: str, file_id: str,
             doc_type: str, path: str, opened_at: datetime) -> int:
    """The id of the session's row for ``room``, made on first sight."""
    db.execute("INSERT OR IGNORE INTO docs (session_id, room, file_id, doc_type, path, opened_at) "
               "VALUES (?, ?, ?, ?, ?, ?)",
               [session_id, room, file_id, doc_type, path, iso(opened_at)])
    (doc_id,) = db.execute("SELECT id FROM docs WHERE session_id = ? AND room = ?",
                           [session_id, room]).fetchone()
    return int(doc_id)


def set_path(db: sqlite_utils.Database, doc_id: int, path: str) -> None:
    db.execute("UPDATE docs SET path = ? WHERE id = ?", [path, doc_id])


def set_capped(db: sqlite_utils.Database, doc_id: int, at: datetime) -> None:
    """Mark the document as no longer fully recorded (the first time only)."""
    db.execute("UPDATE docs SET capped_at = ? WHERE id = ? AND capped_at IS NULL",
               [iso(at), doc_id])


def append_updates(db: sqlite_utils.Database, updates: Iterable[DocUpdate]) -> None:
    """Store updates whose ``n`` the caller has assigned (gap-free per document)."""
    db.conn.executemany(
        "INSERT INTO doc_updates (doc_id, n, at, actor, conn, kind, data) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(u.doc_id, u.n, iso(u.at), u.actor, u.conn, u.kind, u.data) for u in updates])


def add_checkpoint(db: sqlite_utils.Database, doc_id: int, n: int, state: bytes) -> None:
    db.execute("INSERT OR IGNORE INTO doc_checkpoints (doc_id, n, state) VALUES (?, ?, ?)",
               [doc_id, n, state])
