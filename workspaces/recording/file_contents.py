"""The exact content of a workspace file at any event: the bytes the watcher hashed for each
``file.*`` event, kept per session in ``file_blobs`` (zlib, deduplicated by sha256, at most
``SESSION_BUDGET`` bytes stored per session, then hash only), and the lookups the replay API
makes with them.

The file at event ``N`` is the newest ``file.*`` event of its path at or before ``N`` (a rename
away or a delete means it is gone), unless a snapshot was taken after that event. Snapshots come
about 1.5 s after a change, so they alone show the file before its change at the change's own
``seq``; events do not. Events before a
pairlab restart are not used (what changed while it was down has no event; the snapshot taken
on restart has it).
"""

from __future__ import annotations

import asyncio
import json
import logging
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from common.db import Database
from workspaces.recording import events as E
from workspaces.recording.watcher import FileChange

log = logging.getLogger(__name__)

MiB = 1024 * 1024
SESSION_BUDGET = 64 * MiB
"""Compressed bytes of file content kept per session; later versions are recorded by hash."""
KEEP_PER_BATCH = 32 * MiB
"""Bytes of content the watcher keeps in memory for one batch of changes."""
FILE_KINDS = (E.FILE_CREATED, E.FILE_CHANGED, E.FILE_RENAMED, E.FILE_DELETED)
_KINDS_SQL = ", ".join(f"'{k}'" for k in FILE_KINDS)


def compress(contents: Iterable[tuple[str, bytes]]) -> dict[str, bytes]:
    """``{sha256: zlib data}`` of ``(sha256, content)`` pairs (run it off the event loop)."""
    return {sha: zlib.compress(content, 6) for sha, content in dict(contents).items()}


def missing(db: sqlite_utils.Database, session_id: str, shas: Iterable[str]) -> set[str]:
    """The hashes among ``shas`` this session has no content for yet."""
    wanted = set(shas)
    if not wanted:
        return set()
    marks = ", ".join("?" for _ in wanted)
    have = {row[0] for row in db.execute(
        f"SELECT sha256 FROM file_blobs WHERE session_id = ? AND sha256 IN ({marks})",  # noqa: S608
        [session_id, *wanted]).fetchall()}
    return wanted - have


def store(db: sqlite_utils.Database, session_id: str, blobs: Mapping[str, bytes],
          budget: int | None = None) -> int:
    """Keep compressed ``blobs`` (``{sha256: zlib data}``) while the session's stored bytes
    stay within ``budget`` (``SESSION_BUDGET``); returns how many were stored (the rest are
    left out)."""
    budget = SESSION_BUDGET if budget is None else budget
    (used,) = db.execute("SELECT COALESCE(SUM(LENGTH(data)), 0) FROM file_blobs "
                         "WHERE session_id = ?", [session_id]).fetchone()
    stored = 0
    for sha, data in blobs.items():
        if used + len(data) > budget:
            continue
        cursor = db.execute("INSERT OR IGNORE INTO file_blobs (session_id, sha256, data) "
                            "VALUES (?, ?, ?)", [session_id, sha, data])
        if cursor.rowcount:
            used += len(data)
            stored += 1
    return stored


async def keep(db: Database, session_id: str, batch: Iterable[FileChange]) -> None:
    """Store the content the watcher read for ``batch`` (call it before recording its events,
    so an event's content is there once the event is). A failure is logged, never raised."""
    try:
        pairs = {c.sha256: c.content for c in batch if c.content is not None and c.sha256}
        if not pairs:
            return
        new = await db.read(lambda d: missing(d, session_id, pairs))
        blobs = await asyncio.to_thread(
            compress, [(sha, data) for sha, data in pairs.items() if sha in new])
        if blobs:
            await db.write(lambda d: store(d, session_id, blobs))
    except Exception:
        log.exception("could not keep the file contents of session %s", session_id)


def content(db: sqlite_utils.Database, session_id: str, sha256: str) -> bytes | None:
    row = db.execute("SELECT data FROM file_blobs WHERE session_id = ? AND sha256 = ?",
                     [session_id, sha256]).fetchone()
    return None if row is None else zlib.decompress(row[0])


@dataclass(frozen=True)
class FileState:
    """A path as its newest ``file.*`` event at or before a position left it."""

    path: str
    seq: int
    """The event that says so."""
    exists: bool
    size: int | None
    sha256: str
    link: bool

    @property
    def large(self) -> bool:
        """Recorded by size only (over the watcher's 2 MiB, or sparse)."""
        return self.exists and not self.link and not self.sha256


def _floor(db: sqlite_utils.Database, session_id: str, at: int) -> int:
    """The last pairlab restart at or before ``at``: file events before it are not trusted."""
    (seq,) = db.execute(
        "SELECT COALESCE(MAX(seq), 0) FROM events WHERE session_id = ? AND kind = ? AND seq <= ?"
        " AND json_extract(payload, '$.after') = 'server restart'",
        [session_id, E.WORKSPACE_RESTARTED, at]).fetchone()
    return int(seq)


def _state(path: str, seq: int, kind: str, payload: dict[str, Any]) -> FileState:
    if kind == E.FILE_DELETED:
        return FileState(path, seq, False, None, "", False)
    size = payload.get("size")
    return FileState(path, seq, True, size if isinstance(size, int) else None,
                     str(payload.get("sha256", "")), bool(payload.get("link")))


def states_at(db: sqlite_utils.Database, session_id: str, at: int,
              path: str | None = None, after: int = 0) -> dict[str, FileState]:
    """Every path (or only ``path``) some trusted ``file.*`` event after ``after`` and at or
    before ``at`` names, as the newest such event left it (renamed-away paths included, as
    gone)."""
    floor = max(after, _floor(db, session_id, at))
    where, args = "session_id = ? AND seq > ? AND seq <= ?", [session_id, floor, at]
    if path is None:
        rows = db.execute(f"SELECT seq, kind, path, payload FROM events WHERE {where} "  # noqa: S608
                          f"AND kind IN ({_KINDS_SQL}) ORDER BY seq", args).fetchall()
    else:
        rows = db.execute(
            f"SELECT * FROM (SELECT seq, kind, path, payload FROM events WHERE {where} "  # noqa: S608
            f"AND path = ? AND kind IN ({_KINDS_SQL}) ORDER BY seq DESC LIMIT 1) "
            f"UNION ALL SELECT seq, kind, path, payload FROM events WHERE {where} AND kind = ? "
            "AND json_extract(payload, '$.old_path') = ? ORDER BY seq",
            [*args, path, *args, E.FILE_RENAMED, path]).fetchall()
    found: dict[str, FileState] = {}
    for seq, kind, new_path, raw in rows:
        payload = json.loads(raw)
        old = payload.get("old_path") if kind == E.FILE_RENAMED else None
        if isinstance(old, str) and old and old != new_path:
            found[old] = FileState(old, seq, False, None, "", False)
        found[new_path] = _state(new_path, seq, kind, payload)
    return found if path is None else {p: s for p, s in found.items() if p == path}
