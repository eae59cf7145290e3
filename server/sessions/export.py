"""A session archive, shared by ``pairlab session export ID DEST`` and the export API:

- ``DEST/events.jsonl``: every recorded event in ``seq`` order, one JSON object a line;
- ``DEST/history.bundle``: the session's snapshot history as a git bundle (``git clone`` it);
- ``DEST/final/``: the workspace's final state (from its folder, else the last snapshot).

The workspace belongs to the candidate, so it is read as ``workspaces.watcher`` reads it: through
directory descriptors, never following a link, never blocking on a FIFO. ``copy_tree`` is also
what the hidden checks copy the final state with.
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from common.errors import BadRequest
from workspaces import records
from workspaces import sessions as S
from workspaces.events import query_events
from workspaces.history import History, HistoryError
from workspaces.watcher import Entry, Ignore, is_ignored, walk

log = logging.getLogger(__name__)
MiB = 1024 * 1024
SESSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
EVENTS_PAGE = 2000


def history_path(data_dir: Path, session_id: str) -> Path:
    """Where a session's history repository lives (outside every workspace and sandbox)."""
    if not SESSION_ID.fullmatch(session_id):
        raise BadRequest("That is not a session id.")
    return data_dir / "history" / f"{session_id}.git"


@dataclass
class CopyReport:
    files: int = 0
    bytes: int = 0
    links: int = 0
    skipped: list[dict[str, Any]] = field(default_factory=list)


def _copy_file(dir_fd: int, name: str, target: Path, entry: Entry, room: int) -> int:
    """Copy one regular file (never through a link); returns the bytes written."""
    src = os.open(name, _READ_FLAGS, dir_fd=dir_fd)
    try:
        st = os.fstat(src)
        if not stat.S_ISREG(st.st_mode):
            raise OSError("not a regular file")
        if st.st_size > room:
            raise OSError(f"larger than the {room} bytes left")
        mode = 0o755 if entry.mode & 0o111 else 0o644
        dst = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
        written = 0
        try:
            while chunk := os.read(src, MiB):
                written += len(chunk)
                if written > room:
                    raise OSError("grew past the size limit while being copied")
                os.write(dst, chunk)
        finally:
            os.close(dst)
        return written
    finally:
        os.close(src)


def copy_tree(src: Path, dest: Path, *, links: bool, ignore: Ignore = is_ignored,
              max_file_bytes: int = 256 * MiB, max_total_bytes: int = 1024 * MiB,
              max_files: int = 50_000) -> CopyReport:
    """Copy the files of ``src`` (never following a link) into the new folder ``dest``.

    Symbolic links are recreated as links when ``links`` (a sandbox resolves them inside
    itself), else left out and listed; files over the limits are left out and listed."""
    report = CopyReport()
    dest.mkdir(mode=0o755, parents=True, exist_ok=False)
    pending_links: list[tuple[str, str]] = []

    def on_file(entry: Entry, dir_fd: int, name: str) -> None:
        target = dest / entry.path
        try:
            target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            if entry.kind == "link":
                if links:
                    pending_links.append((entry.path, os.readlink(name, dir_fd=dir_fd)))
                else:
                    report.skipped.append({"path": entry.path, "reason": "symbolic link"})
                return
            if entry.size > max_file_bytes:
                report.skipped.append({"path": entry.path, "size": entry.size,
                                       "reason": f"larger than {max_file_bytes} bytes"})
                return
            report.bytes += _copy_file(dir_fd, name, target, entry,
                                       min(max_file_bytes, max_total_bytes - report.bytes))
            report.files += 1
        except OSError as exc:
            target.unlink(missing_ok=True)
            report.skipped.append({"path": entry.path, "size": entry.size,
                                   "reason": exc.strerror or str(exc)})

    walk(src, ignore, max_entries=max_files, on_file=on_file)
    for rel, target in pending_links:  # after the files: no folder is ever made through one
        try:
            os.symlink(target, dest / rel)
            report.links += 1
        except OSError as exc:
            report.skipped.append({"path": rel, "reason": exc.strerror or str(exc)})
    return report


def materialize(history: History, commit: str, dest: Path) -> CopyReport:
    """Write the files of a history commit into the new folder ``dest`` (links left out)."""
    report = CopyReport()
    dest.mkdir(mode=0o755, parents=True, exist_ok=False)
    large = {f.path: f for f in history.large_files(commit)}
    for path, size in history.tree_at(commit):
        if path in large:
            report.skipped.append({"path": path, "size": size, "sha256": large[path].sha256,
                                   "reason": large[path].reason})
            continue
        content = history.file_at(commit, path)
        target = dest / path
        if content is None or not target.resolve().is_relative_to(dest.resolve()):
            report.skipped.append({"path": path, "reason": "not stored"})
            continue
        target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        target.write_bytes(content)
        report.files += 1
        report.bytes += len(content)
    return report


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
        raise BadRequest(f"{dest} exists and is not a folder")
    if dest.exists() and any(dest.iterdir()):
        raise BadRequest(f"{dest} is not empty; export into a new or empty folder")
    try:
        dest.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise BadRequest(f"cannot create {dest}: {exc.strerror}") from None


def export_session(db: sqlite_utils.Database, data_dir: Path, session_id: str,
                   dest: Path) -> dict[str, Any]:
    """Write the archive of ``session_id`` into ``dest`` (new or empty); returns a summary.

    Raises ``SessionNotFound`` for an unknown session and ``BadRequest`` for a bad ``dest``."""
    session = S.get_session(db, session_id)
    _prepare_dest(dest)
    summary: dict[str, Any] = {"session_id": session.id, "state": session.state,
                               "events": write_events(db, session.id, dest / "events.jsonl")}
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
    return summary


