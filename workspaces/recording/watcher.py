"""Watch a workspace folder and report file changes, whatever made them.

``watch_workspace`` yields batches of ``FileChange`` (created / changed / deleted / renamed,
POSIX paths relative to the workspace). It never follows a symbolic link: the folder is walked
with directory file descriptors opened ``O_NOFOLLOW``, and ``watchfiles`` watches each real
directory non-recursively (its recursive mode follows links, which would let a candidate make
pairlab walk the host). When directories appear or go, the watch is re-established and the tree
rescanned, so nothing is missed in between. Each batch is the difference between the remembered
state and the state on disk of the paths touched, so editor temp files that come and go within
one debounce window produce nothing, and a delete plus a create of the same inode, or of the
same content, is reported as one rename.

``walk`` and ``read_file`` (safe reading of a tree owned by someone else) and the ignore rules
are shared with ``workspaces.recording.history``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import hashlib
import logging
import os
import stat
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import anyio.to_thread
from watchfiles import awatch

from workspaces.recording import events

__all__ = [
    "Entry",
    "FileChange",
    "FileRead",
    "Ignore",
    "is_ignored",
    "is_sparse",
    "read_file",
    "walk",
    "watch_workspace",
]

log = logging.getLogger(__name__)
MiB = 1024 * 1024
SPARSE_MIN_BYTES = 4096
IGNORED_DIRS = frozenset({
    ".git", ".ipynb_checkpoints", "__pycache__", ".virtual_documents", ".mypy_cache",
    ".pytest_cache", ".ruff_cache", ".cache", ".local", ".venv",
    "node_modules", ".Trash-1000",
})
IGNORED_FILES = frozenset({".bash_history", ".python_history", ".lesshst", ".viminfo",
                           ".wget-hsts", ".sqlite_history"})
IGNORED_SUFFIXES = (".pyc", ".pyo", ".swp", ".swx")
Ignore = Callable[[str, bool], bool]
"""``ignore(relative_posix_path, is_dir)``: True to leave the path (and what is under it) out."""

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def is_ignored(path: str, is_dir: bool) -> bool:
    """pairlab's default: VCS, checkpoint, cache and HOME clutter folders, bytecode, swap files."""
    parts = path.split("/")
    for part in parts[:-1] if not is_dir else parts:
        if part in IGNORED_DIRS or part.startswith(".jupyter"):
            return True
    name = parts[-1]
    if is_dir:
        return False
    return name in IGNORED_FILES or name.endswith(IGNORED_SUFFIXES) or name.startswith(".~")


@dataclass(frozen=True)
class Entry:
    """A regular file or a symbolic link (never followed) in the tree."""

    path: str
    kind: Literal["file", "link"]
    size: int
    mode: int
    mtime_ns: int
    ctime_ns: int
    ino: int
    dev: int
    blocks: int = 0
    """``st_blocks``: 512-byte units allocated on disk."""

    @property
    def sparse(self) -> bool:
        """Mostly holes: more than half of a file's size is not allocated (``st_size`` against
        ``st_blocks``, nothing read). Such a file costs its writer no disk and its reader all
        the CPU of its size, so it is never read (only a file under one block is, always)."""
        return self.kind == "file" and is_sparse(self.size, self.blocks)

    @property
    def stamp(self) -> tuple[object, ...]:
        return (self.kind, self.size, self.mtime_ns, self.ctime_ns, self.ino, self.dev)

    @classmethod
    def of(cls, path: str, st: os.stat_result) -> Entry | None:
        if stat.S_ISREG(st.st_mode):
            kind: Literal["file", "link"] = "file"
        elif stat.S_ISLNK(st.st_mode):
            kind = "link"
        else:
            return None
        return cls(path, kind, st.st_size, st.st_mode, st.st_mtime_ns, st.st_ctime_ns,
                   st.st_ino, st.st_dev, st.st_blocks)


def is_sparse(size: int, blocks: int) -> bool:
    """More than half of ``size`` bytes not allocated (``blocks``: 512-byte units)."""
    return size > SPARSE_MIN_BYTES and blocks * 512 * 2 < size


def _open_dir(root: Path, rel: str) -> int:
    """A descriptor of ``root/rel``; raises OSError if any part of ``rel`` is not a real dir."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    for part in [p for p in rel.split("/") if p]:
        try:
            child = os.open(part, _DIR_FLAGS, dir_fd=fd)
        finally:
            os.close(fd)
        fd = child
    return fd


@dataclass(frozen=True)
class FileRead:
    """What ``read_file`` found. ``unread``: the file was over ``limit`` or sparse when opened, or
    grew past ``limit`` while read, so nothing of it is returned (not even its sha256)."""

    content: bytes
    sha256: str
    size: int
    """The opened file's size (or, if it grew while read, at least what was read)."""
    blocks: int
    unread: bool


def read_file(dir_fd: int, name: str, *, limit: int, keep: bool = True,
              sha256: bool = False) -> FileRead:
    """A regular file, never through a link, never blocking on a FIFO, and never more than
    ``limit + 1`` bytes of it: the size and holes are judged on the stat of the opened file, not
    on an earlier one, since the candidate can grow it in between (``truncate -s 1G`` costs them
    nothing and would cost pairlab reading and hashing 1 GiB)."""
    fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", name)
        if st.st_size > limit or is_sparse(st.st_size, st.st_blocks):
            return FileRead(b"", "", st.st_size, st.st_blocks, unread=True)
        chunks: list[bytes] = []
        size = 0
        while size <= limit and (chunk := os.read(fd, min(MiB, limit + 1 - size))):
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:  # grown since the fstat: large, unread
            now = os.fstat(fd)
            return FileRead(b"", "", max(size, now.st_size), now.st_blocks, unread=True)
        content = b"".join(chunks)
        digest = hashlib.sha256(content).hexdigest() if sha256 else ""
        return FileRead(content if keep else b"", digest, size, st.st_blocks, unread=False)
    finally:
        os.close(fd)


def walk(root: Path, ignore: Ignore = is_ignored, *, under: str = "",
         max_entries: int = 100_000,
         on_file: Callable[[Entry, int, str], None] | None = None,
         ) -> tuple[dict[str, Entry], set[str]]:
    """Files/links and directories below ``root/under`` (``under`` itself included if a dir),
    never following a link. ``on_file(entry, dir_fd, name)`` may read the file meanwhile."""
    files: dict[str, Entry] = {}
    dirs: set[str] = set()
    try:
        first = _open_dir(root, under)
    except OSError:
        return files, dirs
    if under:
        dirs.add(under)
    stack = [(first, f"{under}/" if under else "")]
    try:
        while stack:
            fd, prefix = stack.pop()
            try:
                with os.scandir(fd) as scan:
                    found = list(scan)
                for item in found:
                    rel = prefix + item.name
                    try:
                        st = item.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    if stat.S_ISDIR(st.st_mode):
                        if ignore(rel, True):
                            continue
                        try:
                            child = os.open(item.name, _DIR_FLAGS, dir_fd=fd)
                        except OSError:
                            continue
                        dirs.add(rel)
                        stack.append((child, rel + "/"))
                        continue
                    entry = Entry.of(rel, st)
                    if entry is None or ignore(rel, False):
                        continue
                    if len(files) >= max_entries:
                        log.warning("%s: more than %d files; the rest is not tracked",
                                    root, max_entries)
                        return files, dirs
                    files[rel] = entry
                    if on_file is not None:
                        on_file(entry, fd, item.name)
            finally:
                os.close(fd)
    finally:
        for fd, _ in stack:
            os.close(fd)
    return files, dirs


@dataclass(frozen=True)
class FileChange:
    kind: Literal["created", "changed", "deleted", "renamed"]
    path: str
    old_path: str = ""
    size: int | None = None
    sha256: str = ""
    link: bool = False
    content: bytes | None = field(default=None, compare=False, repr=False)
    """The bytes hashed, when the watcher was asked to keep them (``keep_content``)."""

    @property
    def event_kind(self) -> str:
        return {"created": events.FILE_CREATED, "changed": events.FILE_CHANGED,
                "deleted": events.FILE_DELETED, "renamed": events.FILE_RENAMED}[self.kind]

    def payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {}
        if self.old_path:
            payload["old_path"] = self.old_path
        if self.size is not None:
            payload["size"] = self.size
        if self.sha256:
            payload["sha256"] = self.sha256
        if self.link:
            payload["link"] = True
        return payload


class _Tree:
    """The remembered state of the workspace and the diff against the disk."""

    def __init__(self, root: Path, ignore: Ignore, hash_limit: int, max_files: int) -> None:
        self.root = root
        self.ignore = ignore
        self.hash_limit = hash_limit
        self.max_files = max_files
        self.files: dict[str, Entry] = {}
        self.hashes: dict[str, str] = {}
        self.dirs: set[str] = set()
        self.keep_limit = 0
        """Bytes of file content kept per look at the disk (for ``FileChange.content``)."""
        self._kept: dict[str, tuple[str, bytes]] = {}
        self._kept_bytes = 0

    def _hash(self, entry: Entry, dir_fd: int, name: str) -> str:
        old = self.files.get(entry.path)
        if old is not None and old.stamp == entry.stamp and entry.path in self.hashes:
            return self.hashes[entry.path]
        try:
            if entry.kind == "link":
                target = os.readlink(name, dir_fd=dir_fd)
                return hashlib.sha256(os.fsencode(target)).hexdigest()
            if entry.size > self.hash_limit or entry.sparse:
                return ""
            keep = self._kept_bytes + entry.size <= self.keep_limit
            found = read_file(dir_fd, name, limit=self.hash_limit, keep=keep, sha256=True)
            if keep and not found.unread and self._kept_bytes + found.size <= self.keep_limit:
                self._kept[entry.path] = (found.sha256, found.content)
                self._kept_bytes += found.size
            return found.sha256
        except OSError:
            return ""

    def _look(self, under: str, single: bool) -> tuple[dict[str, Entry], set[str], dict[str, str]]:
        hashes: dict[str, str] = {}

        def on_file(entry: Entry, dir_fd: int, name: str) -> None:
            hashes[entry.path] = self._hash(entry, dir_fd, name)

        if not single and under and not _is_dir(self.root, under):
            single = True
        if not single:
            files, dirs = walk(self.root, self.ignore, under=under, max_entries=self.max_files,
                               on_file=on_file)
            return files, dirs, hashes
        parent, _, name = under.rpartition("/")
        try:
            fd = _open_dir(self.root, parent)
        except OSError:
            return {}, set(), hashes
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            entry = Entry.of(under, st)
            if entry is None:
                return {}, set(), hashes
            hashes[under] = self._hash(entry, fd, name)
            return {under: entry}, set(), hashes
        except OSError:
            return {}, set(), hashes
        finally:
            os.close(fd)

    def scan(self) -> list[FileChange]:
        return self._apply(self._targets([""]))

    def update(self, touched: Iterable[str]) -> tuple[list[FileChange], bool]:
        before = set(self.dirs)
        rels = []
        base = str(self.root)
        for path in touched:
            if path != base and not path.startswith(base + os.sep):
                continue
            rel = os.path.relpath(path, base).replace(os.sep, "/")
            rels.append("" if rel == "." else rel)
        changes = self._apply(self._targets(rels))
        return changes, self.dirs != before

    def _targets(self, rels: list[str]) -> list[tuple[str, bool]]:
        """Paths to look at again: ``(rel, is a single file)``; folders swallow their content."""
        dirs: set[str] = set()
        files: set[str] = set()
        for rel in set(rels):
            is_dir = rel == "" or rel in self.dirs or _is_dir(self.root, rel)
            if rel and self.ignore(rel, is_dir):
                continue
            (dirs if is_dir else files).add(rel)
        top = {d for d in dirs if not any(d != o and _under(d, o) for o in dirs)}
        targets = [(d, False) for d in sorted(top)]
        targets += [(r, True) for r in sorted(files) if not any(_under(r, d) for d in top)]
        return targets

    def _apply(self, targets: list[tuple[str, bool]]) -> list[FileChange]:
        self._kept, self._kept_bytes = {}, 0
        try:
            return [_with_content(c, self._kept) for c in self._diff(targets)]
        finally:
            self._kept, self._kept_bytes = {}, 0

    def _diff(self, targets: list[tuple[str, bool]]) -> list[FileChange]:
        created: list[tuple[Entry, str]] = []
        deleted: list[tuple[Entry, str]] = []
        changes: list[FileChange] = []
        for rel, single in targets:
            files, dirs, hashes = self._look(rel, single)
            if single:
                old_files = {rel: self.files[rel]} if rel in self.files else {}
            else:
                old_files = {p: e for p, e in self.files.items() if _under(p, rel)}
                self.dirs = {d for d in self.dirs if not _under(d, rel)} | dirs
            for path, entry in old_files.items():
                if path not in files:
                    deleted.append((entry, self.hashes.pop(path, "")))
                    del self.files[path]
            for path, entry in files.items():
                sha = hashes.get(path, "")
                old = old_files.get(path)
                if old is None:
                    if len(self.files) >= self.max_files:
                        continue
                    created.append((entry, sha))
                elif old.stamp != entry.stamp and not (
                        sha and sha == self.hashes.get(path) and old.kind == entry.kind):
                    changes.append(_change("changed", entry, sha))
                self.files[path] = entry
                if sha:
                    self.hashes[path] = sha
                else:
                    self.hashes.pop(path, None)
        for entry, sha in created:
            match = next((d for d in deleted if _same(d, (entry, sha))), None)
            if match is not None:
                deleted.remove(match)
                changes.append(_change("renamed", entry, sha, old_path=match[0].path))
            else:
                changes.append(_change("created", entry, sha))
        changes += [_change("deleted", entry, "", size=False) for entry, _ in deleted]
        return sorted(changes, key=lambda c: (c.path, c.kind))


def _with_content(change: FileChange, kept: dict[str, tuple[str, bytes]]) -> FileChange:
    found = kept.get(change.path) if change.kind != "deleted" and not change.link else None
    if found is None or not change.sha256 or found[0] != change.sha256:
        return change
    return dataclasses.replace(change, content=found[1])


def _under(path: str, folder: str) -> bool:
    return folder == "" or path == folder or path.startswith(folder + "/")


def _is_dir(root: Path, rel: str) -> bool:
    try:
        os.close(_open_dir(root, rel))
    except OSError:
        return False
    return True


def _same(old: tuple[Entry, str], new: tuple[Entry, str]) -> bool:
    (a, sha_a), (b, sha_b) = old, new
    if a.kind != b.kind or a.size != b.size:
        return False
    return (a.ino, a.dev) == (b.ino, b.dev) or bool(sha_a and sha_a == sha_b)


def _change(kind: Literal["created", "changed", "deleted", "renamed"], entry: Entry, sha: str,
            *, old_path: str = "", size: bool = True) -> FileChange:
    return FileChange(kind, entry.path, old_path, entry.size if size else None, sha,
                      entry.kind == "link")


class _Stop:
    """Stops one ``awatch`` (``set``) or all of them (the caller's event), seen by its thread."""

    def __init__(self, outer: asyncio.Event | None) -> None:
        self.outer = outer
        self.inner = False

    def is_set(self) -> bool:
        return self.inner or (self.outer is not None and self.outer.is_set())

    def set(self) -> None:
        self.inner = True


async def watch_workspace(root: Path, *, ignore: Ignore = is_ignored, debounce_ms: int = 300,
                          step_ms: int = 50, stop_event: asyncio.Event | None = None,
                          ready: asyncio.Event | None = None, hash_limit: int = 2 * MiB,
                          max_files: int = 50_000, max_dirs: int = 4000,
                          rust_timeout_ms: int = 1000,
                          keep_content: int = 0) -> AsyncIterator[list[FileChange]]:
    """Batches of changes under ``root`` until ``stop_event`` is set (see the module doc).

    ``ready`` is set once the watch is established (changes made after that are reported).
    Stop with ``stop_event`` (the watching thread notices within ``step_ms``); cancelling the
    consumer also works but may take up to ``rust_timeout_ms``. ``keep_content``: up to that
    many bytes of the files read for a batch come with it (``FileChange.content``), so the
    content that was hashed can be stored without reading the file again.
    """
    base = await asyncio.to_thread(Path(root).resolve)
    tree = _Tree(base, ignore, hash_limit, max_files)
    await asyncio.to_thread(tree.scan)
    tree.keep_limit = keep_content
    stop = _Stop(stop_event)
    # awatch blocks one anyio worker thread per watch: make room for it in anyio's limiter so
    # that many workspaces never starve each other (or anything else using anyio threads).
    limiter = anyio.to_thread.current_default_thread_limiter()
    limiter.total_tokens += 1
    try:
        while not (stop_event is not None and stop_event.is_set()):
            watched = sorted(tree.dirs, key=lambda d: (d.count("/"), d))[:max_dirs - 1]
            if len(tree.dirs) >= max_dirs:
                log.warning("%s: more than %d folders; only %d are watched", base, max_dirs,
                            max_dirs)
            stop.inner = False
            watcher = awatch(base, *(base / d for d in watched), recursive=False,
                             debounce=debounce_ms, step=step_ms,
                             stop_event=cast(asyncio.Event, stop),
                             rust_timeout=rust_timeout_ms, ignore_permission_denied=True)
            pending = asyncio.ensure_future(anext(watcher))
            await asyncio.sleep(0)  # its first step creates the inotify watches
            try:
                changes = await asyncio.to_thread(tree.scan)  # whatever happened meanwhile
                if ready is not None:
                    ready.set()
                if changes:
                    yield changes
                while True:
                    try:
                        raw = await pending
                    except StopAsyncIteration:
                        return
                    changes, dirs_changed = await asyncio.to_thread(
                        tree.update, {path for _, path in raw})
                    if changes:
                        yield changes
                    if dirs_changed:
                        break
                    pending = asyncio.ensure_future(anext(watcher))
            finally:
                if not pending.done():
                    stop.set()
                    pending.cancel()
                    with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                        await pending
                await watcher.aclose()
    finally:
        limiter.total_tokens = max(1, limiter.total_tokens - 1)
