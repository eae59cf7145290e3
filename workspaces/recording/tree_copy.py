"""Copy a tree out of a workspace or a snapshot into a new folder, safely.

The workspace belongs to the candidate, so ``copy_tree`` reads it as
``workspaces.recording.watcher`` reads it: through directory descriptors, never following a link,
never blocking on a FIFO, with size and count limits (what is left out is listed in the
``CopyReport``). ``materialize`` writes a history commit's files. Used by the session archive
(``workspaces.recording.archive``) and by the check runner (``workspaces.grading.hidden``), which
copies the final state to grade it.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workspaces.recording.history import History
from workspaces.recording.watcher import Entry, Ignore, is_ignored, walk
from workspaces.sandbox.limits import MiB

_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


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
