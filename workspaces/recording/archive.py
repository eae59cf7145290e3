"""A session archive, shared by ``pairlab session export ID DEST`` and the export API:

- ``DEST/events.jsonl``: every recorded event in ``seq`` order, one JSON object a line;
- ``DEST/history.bundle``: the session's snapshot history as a git bundle (``git clone`` it);
- ``DEST/final/``: the workspace's final state (from its folder, else the last snapshot);
- ``DEST/casts/``: each terminal connection's asciicast v2 file and ``index.json`` (``casts``).
- ``DEST/docs/``: the collaboration log, every edit of each shared document (``doc_export``).

The workspace belongs to the candidate, so its final state is copied with
``workspaces.recording.tree_copy`` (never following a link, never blocking on a FIFO). Also where a
session's history repository lives (``history_path``) and its workspace folder, if still there
(``workspace_root``).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import sqlite_utils

from common.errors import DomainError
from workspaces import records
from workspaces import sessions as S
from workspaces.recording.casts import export_casts
from workspaces.recording.doc_export import write_docs
from workspaces.recording.events import query_events
from workspaces.recording.history import History, HistoryError
from workspaces.recording.tree_copy import CopyReport, copy_tree, materialize

log = logging.getLogger(__name__)
SESSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
EVENTS_PAGE = 2000


class ArchiveRefused(DomainError):
    """A bad session id or export folder (answered 400, printed by the CLI, as before)."""

    status = 400
    code = "bad_request"


def history_path(data_dir: Path, session_id: str) -> Path:
    """Where a session's history repository lives (outside every workspace and sandbox)."""
    if not SESSION_ID.fullmatch(session_id):
        raise ArchiveRefused("That is not a session id.")
    return data_dir / "history" / f"{session_id}.git"


def workspace_root(db: sqlite_utils.Database, session: S.Session) -> Path | None:
    """The session's workspace folder on this host, if it still exists."""
    if not session.workspace_id:
        return None
    row = records.get(db, session.workspace_id)
    if row is None:
        return None
    root = Path(row["root"])
    return root if root.is_dir() and not root.is_symlink() else None


def write_events(db: sqlite_utils.Database, session_id: str, target: Path) -> int:
    count, after = 0, 0
    with target.open("w", encoding="utf-8") as out:
        while page := query_events(db, session_id, after, EVENTS_PAGE):
            for event in page:
                out.write(event.to_json() + "\n")
            count += len(page)
            after = page[-1].seq
    return count


def _prepare_dest(dest: Path) -> None:
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        raise ArchiveRefused(f"{dest} exists and is not a folder")
    if dest.exists() and any(dest.iterdir()):
        raise ArchiveRefused(f"{dest} is not empty; export into a new or empty folder")
    try:
        dest.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ArchiveRefused(f"cannot create {dest}: {exc.strerror}") from None


def export_session(db: sqlite_utils.Database, data_dir: Path, session_id: str,
                   dest: Path) -> dict[str, Any]:
    """Write the archive of ``session_id`` into ``dest`` (new or empty); returns a summary.

    Raises ``SessionNotFound`` for an unknown session and ``ArchiveRefused`` for a bad ``dest``."""
    session = S.get_session(db, session_id)
    _prepare_dest(dest)
    summary: dict[str, Any] = {"session_id": session.id, "state": session.state,
                               "events": write_events(db, session.id, dest / "events.jsonl")}
    summary["docs"] = write_docs(db, session.id, dest / "docs")
    history = History(history_path(data_dir, session.id))
    commits: list[tuple[str, Any, str]] = []
    try:
        commits = history.commits()
        if commits:
            history.bundle(dest / "history.bundle")
    except HistoryError:
        log.exception("could not bundle the history of session %s", session.id)
    summary["snapshots"] = len(commits)
    summary["history_bundle"] = (dest / "history.bundle").exists()
    root = workspace_root(db, session)
    final = dest / "final"
    if root is not None:
        copied, source = copy_tree(root, final, links=False), "workspace"
    elif commits:
        copied, source = materialize(history, commits[-1][0], final), "history"
    else:
        final.mkdir(mode=0o755)
        copied, source = CopyReport(), "none"
    summary["final"] = {"source": source, "files": copied.files, "bytes": copied.bytes,
                        "skipped": copied.skipped[:200]}
    if copied.skipped:
        (dest / "final-skipped.json").write_text(json.dumps(copied.skipped, indent=1) + "\n")
    summary["casts"] = export_casts(db, data_dir, session.id, dest / "casts")
    return summary


