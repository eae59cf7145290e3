"""The replay API's file and tree at an event, exact: what the ``file.*`` events and their kept
content (``workspaces/recording/file_contents.py``) say, laid over the snapshot history (which
trails the events by about 1.5 s).

Of a path's newest ``file.*`` event at or before the position and the latest snapshot there, the
newer one says: a snapshot taken after the event has the event's change (or a later one whose
event came late, as when the watcher read a file between its truncation and its writing)."""

from __future__ import annotations

import hashlib
from typing import Any

from common.db import Database
from workspaces.recording import file_contents
from workspaces.recording.file_contents import FileState
from workspaces.recording.history import History


def describe(content: bytes) -> dict[str, Any]:
    """``kind`` (text or binary), ``size``, ``sha256`` and ``text`` of a file's bytes."""
    body: dict[str, Any] = {"kind": "text", "size": len(content),
                            "sha256": hashlib.sha256(content).hexdigest(), "text": None}
    try:
        if b"\0" in content[:8000]:
            raise UnicodeDecodeError("utf-8", content[:1], 0, 1, "NUL byte")
        body["text"] = content.decode("utf-8")
    except UnicodeDecodeError:
        body["kind"] = "binary"
    return body


async def _first_snapshot_after(db: Database, session_id: str, seq: int) -> str | None:
    row = await db.read(lambda d: d.execute(
        "SELECT commit_sha FROM snapshots WHERE session_id = ? AND seq >= ? "
        "ORDER BY seq, at LIMIT 1", [session_id, seq]).fetchone())
    return None if row is None else str(row[0])


async def file_at(db: Database, history: History, session_id: str, at: int, path: str,
                  snapshot_seq: int) -> dict[str, Any] | None:
    """The ``/file`` fields for ``path`` as of event ``at`` from its newest ``file.*`` event
    (``"source": "event", "seq"``), or None when the latest snapshot (``snapshot_seq``) says."""
    states = await db.read(lambda d: file_contents.states_at(d, session_id, at, path))
    state = states.get(path)
    if state is None or state.link or state.seq < snapshot_seq:
        return None
    base: dict[str, Any] = {"source": "event", "seq": state.seq, "exists": state.exists,
                            "size": state.size, "sha256": None, "text": None}
    if not state.exists:
        return {**base, "kind": "missing"}
    if state.large:
        return {**base, "kind": "large"}
    content = await db.read(lambda d: file_contents.content(d, session_id, state.sha256))
    if content is None:  # not kept (over the session's budget): the next snapshot, if the same
        commit = await _first_snapshot_after(db, session_id, state.seq)
        content = None if commit is None else await history.afile_at(commit, path)
        if content is None or hashlib.sha256(content).hexdigest() != state.sha256:
            return None
    return {**base, **describe(content)}


async def tree_at(db: Database, session_id: str, at: int, snapshot_seq: int,
                  files: list[tuple[str, int]], large: set[str], status: dict[str, str],
                  start: set[str]) -> tuple[list[tuple[str, int]], set[str], dict[str, str],
                                            list[str], int | None]:
    """The snapshot's ``files`` (``(path, size)``), ``large`` paths and ``status`` per path
    (added/modified/unchanged, against the task's ``start`` paths) with every path a ``file.*``
    event at or before ``at`` changed laid over them: ``(files, large, status, deleted,
    newest overlaid event seq or None)``."""
    states: dict[str, FileState] = await db.read(
        lambda d: file_contents.states_at(d, session_id, at, after=snapshot_seq - 1))
    sizes = dict(files)
    large = set(large)
    status = dict(status)
    newest: int | None = None
    for path, state in states.items():
        if state.seq < snapshot_seq:
            continue  # the snapshot, taken after this event, shows it (or newer)
        newest = max(newest or 0, state.seq)
        large.discard(path)
        if not state.exists:
            sizes.pop(path, None)
            status.pop(path, None)
            continue
        sizes[path] = state.size or 0
        status[path] = "modified" if path in start else "added"
        if state.large:
            large.add(path)
    deleted = sorted(p for p in start if p not in sizes)
    return sorted(sizes.items()), large, status, deleted, newest
