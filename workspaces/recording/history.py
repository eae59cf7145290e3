"""Per-session snapshot history: a bare git repository kept outside the workspace and the sandbox.

Every snapshot is one commit (fixed author, the given moment as author and committer date) on
``refs/heads/main``, so any moment can be rebuilt exactly and any two diffed. The first commit
is the task's starting state.

The workspace belongs to the candidate, and pairlab is privileged, so git never reads it: pairlab
walks it itself (directory descriptors, ``O_NOFOLLOW``, no FIFOs,
``workspaces.recording.watcher.walk``), and hands the content to one ``git fast-import`` per
snapshot. That needs no work tree and no index, and a symbolic link is recorded as a link, never
followed. Files that did not change since the last snapshot (same size, times and inode) are not
read again.

Files larger than ``max_file_bytes`` (or binary ones larger than ``max_binary_bytes``) are not
committed: ``.pairlab-large.json`` in the commit lists them with size, reason and, for the binary
ones, sha256. Files over ``max_file_bytes`` and sparse files (mostly holes, by ``st_size`` and
``st_blocks``) are listed by size alone, never read nor hashed: 10 GiB of holes cost their
writer nothing and would cost the server seconds of CPU at every snapshot (and at every
``touch``). Size and holes are judged on the opened file, and no more than ``max_file_bytes``
+ 1 bytes of it are ever read, however it grows meanwhile.

New blobs are written to fast-import's stream (an unnamed temporary file) as they are read, so a
snapshot holds one file in memory at a time (``workspaces.recording.history_spool``). A snapshot
may store new blobs up to half of what is left of ``max_total_bytes`` (less a sixteenth kept for
the listings), smallest changed files first; the changed files that do not fit are listed in the
manifest by size, "the session's history is full", without being read, and are never remembered as
such, so the next snapshot tries them again. Only when even a listing would take the blobs stored
past ``max_total_bytes`` do snapshots stop for good (a flag file in the repository keeps it so
across restarts) and ``limit_reached`` says so.

git runs as a subprocess with an allow-listed environment and an empty configuration, in its own
process group, with a time limit. Every method blocks; the ``a``-prefixed ones run it in a thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from common.clock import now, now_iso
from common.gitenv import find_git, git_config_args, git_env
from common.processes import DeadlineExceeded, run_bounded
from workspaces.errors import WorkspaceError
from workspaces.recording.history_spool import Spool as _Spool
from workspaces.recording.watcher import Entry, Ignore, is_ignored, read_file, walk

__all__ = ["MANIFEST", "History", "HistoryError", "HistoryLimits", "LargeFile"]

log = logging.getLogger(__name__)
MiB = 1024 * 1024
MANIFEST = ".pairlab-large.json"
LIMIT_FLAG = "pairlab-limit-reached"
_FULL = "the session's history is full"
BRANCH = "refs/heads/main"
AUTHOR = ("pairlab", "recorder@pairlab.invalid")
MAX_GIT_OUTPUT = 256 * MiB
"""What one git command may print (a listing of every object, a blob, a diff)."""
_REV_RE = re.compile(r"^(?:[0-9a-f]{4,64}|main|HEAD)(?:~[0-9]{1,6})?$")
_CONFIG = ["core.symlinks=true", "diff.renames=true", "core.quotePath=false"]
"""Settings of the history's own, on top of ``common.gitenv``'s hardening."""


class HistoryError(WorkspaceError):
    """git failed or timed out on the history repository, or a revision was refused."""

    code = "history_error"


@dataclass(frozen=True)
class HistoryLimits:
    max_file_bytes: int = 2 * MiB
    max_binary_bytes: int = 2 * MiB
    max_total_bytes: int = 512 * MiB
    """Sum of the sizes of all distinct blobs stored for the session."""
    max_files: int = 20_000
    max_diff_chars: int = 200_000
    timeout_s: float = 120.0


@dataclass(frozen=True)
class LargeFile:
    path: str
    size: int
    sha256: str
    """Empty when the file was not read (over ``max_file_bytes``, or sparse)."""
    reason: str


@dataclass(frozen=True)
class _Item:
    """One path of a snapshot: its git mode and blob id, or its large-file record."""

    mode: str
    sha: str
    large: LargeFile | None = None


_Stamps = dict[str, tuple[tuple[object, ...], _Item]]


def _blob_sha(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content, usedforsecurity=False).hexdigest()


def _quote(path: str) -> bytes:
    """A path in fast-import's C-style quoting (every byte outside printable ASCII escaped)."""
    out = bytearray(b'"')
    for byte in os.fsencode(path):
        if byte in (0x22, 0x5C):
            out += b"\\" + bytes([byte])
        elif 0x20 <= byte < 0x7F:
            out.append(byte)
        else:
            out += b"\\%03o" % byte
    return bytes(out + b'"')


def _check_rev(rev: str) -> str:
    if not _REV_RE.match(rev):
        raise HistoryError(f"not a commit of this history: {rev!r}")
    return rev


class History:
    """One session's history repository at ``path`` (a bare git dir, e.g. ``<id>.git``)."""

    def __init__(self, path: Path, *, limits: HistoryLimits | None = None,
                 ignore: Ignore = is_ignored) -> None:
        self.path = Path(path)
        self.limits = limits or HistoryLimits()
        self.ignore = ignore
        self.limit_reached = False
        self._lock = threading.Lock()
        self._git = find_git() or "git"
        self._loaded = False
        self._tree: dict[str, _Item] = {}
        self._stamps: _Stamps = {}
        self._blobs: set[str] = set()
        self._total = 0
        self._head = ""

    # -- git --------------------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        return git_env(self.path, git_dir=self.path, identity=AUTHOR)

    def _run(self, args: Sequence[str], *, stdin: bytes | BinaryIO | None = None,
             ok: Sequence[int] = (0,)) -> tuple[int, bytes]:
        """git ``args``; ``stdin`` is bytes to send or a file git reads itself."""
        config = git_config_args(extra=_CONFIG)
        try:
            done = run_bounded(
                [self._git, *config, *args], timeout_s=self.limits.timeout_s, env=self._env(),
                input=stdin if isinstance(stdin, bytes) else None,
                stdin=None if isinstance(stdin, bytes) else stdin, max_output=MAX_GIT_OUTPUT,
                grace_s=0)  # killed at once at its deadline, as before
        except DeadlineExceeded:
            raise HistoryError(f"git {args[0]} timed out on {self.path}") from None
        if done.truncated:
            raise HistoryError(f"git {args[0]} printed more than {MAX_GIT_OUTPUT} bytes")
        if done.returncode not in ok:
            message = done.stderr[:2000].decode("utf-8", "replace").strip()
            raise HistoryError(f"git {args[0]} failed ({done.returncode}): {message}")
        return done.returncode, done.stdout

    def _load(self) -> None:
        """Read the branch tip, its tree and the blobs stored (once, or after a restart)."""
        if self._loaded:
            return
        if not (self.path / "HEAD").exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.mkdir(mode=0o700, exist_ok=True)
            self._run(["init", "--quiet", "--bare", "--object-format=sha1",
                       "--initial-branch=main"])
        code, out = self._run(["rev-parse", "--verify", "--quiet", BRANCH], ok=(0, 1))
        self._head = out.decode().strip() if code == 0 else ""
        self._tree = {}
        if self._head:
            _, raw = self._run(["ls-tree", "-r", "-z", "--full-tree", self._head])
            for record in raw.split(b"\0"):
                if record:
                    meta, _, name = record.partition(b"\t")
                    mode, _, sha = meta.decode().split(" ")
                    self._tree[os.fsdecode(name)] = _Item(mode, sha)
            manifest = self._tree.pop(MANIFEST, None)
            if manifest is not None:
                for large in self._manifest(self._head):
                    self._tree[large.path] = _Item("large", large.sha256, large)
        _, raw = self._run(["cat-file", "--batch-all-objects", "--batch-check",
                            "--unordered"], stdin=b"")
        self._blobs, self._total = set(), 0
        for line in raw.decode().splitlines():
            sha, kind, size = line.split(" ")
            if kind == "blob":
                self._blobs.add(sha)
                self._total += int(size)
        self.limit_reached = (self.path / LIMIT_FLAG).exists() or \
            self._total >= self.limits.max_total_bytes
        self._loaded = True

    # -- writing ----------------------------------------------------------------------------

    def init(self, base_tree: Path, when: datetime | None = None,
             label: str = "task start") -> str:
        """Create the repository with the task's starting state as its first commit.

        Idempotent: on an existing history it returns the first commit unchanged."""
        with self._lock:
            self._load()
            if self._head:
                return self.commits()[0][0]
            sha = self._commit(base_tree, when or now(), label, allow_empty=True)
            if sha is None:
                raise HistoryError(f"could not write the first commit of {self.path}")
            return sha

    def snapshot(self, workspace: Path, when: datetime, label: str = "snapshot") -> str | None:
        """Commit the workspace as it is; None when nothing changed or the limit was reached."""
        with self._lock:
            self._load()
            if not self._head:
                raise HistoryError("the history has no starting commit: call init() first")
            if self.limit_reached:
                return None
            return self._commit(workspace, when, label, allow_empty=False)

    def _room(self) -> int | None:
        """Bytes of new blobs the next snapshot may store: half of the session's budget left
        (less a sixteenth of the budget, kept for the listings of what is not stored), so that
        one burst of files (a dataset unzipped) leaves room for the snapshots after it; None for
        the first commit (the task's own tree)."""
        if not self._head:
            return None
        limits = self.limits
        return max(0, limits.max_total_bytes - limits.max_total_bytes // 16 - self._total) // 2

    def _spool(self) -> _Spool:
        return _Spool(self.path, self._room())

    def _scan(self, tree: Path, spool: _Spool) -> tuple[dict[str, _Item], _Stamps, bool]:
        """Walk the tree, storing what fits; when some changed file did not fit the room,
        walk again storing the smallest ones first (``_Spool.choose``)."""
        found = self._walk(tree, spool)
        chosen = spool.choose()
        if chosen is not None:
            spool.reset()
            spool.chosen = chosen
            found = self._walk(tree, spool)
        return found

    def _walk(self, tree: Path, spool: _Spool) -> tuple[dict[str, _Item], _Stamps, bool]:
        limits = self.limits
        items: dict[str, _Item] = {}
        stamps: _Stamps = {}

        def on_file(entry: Entry, dir_fd: int, name: str) -> None:
            cached = self._stamps.get(entry.path)
            if cached is not None and cached[0] == entry.stamp:
                items[entry.path] = cached[1]
                stamps[entry.path] = cached
                return
            try:
                item = self._unread(entry)
                if item is None and entry.path != MANIFEST and \
                        not spool.admits(entry.path, entry.size):
                    item = self._full(entry, entry.size, "")
                item = item or self._read(entry, dir_fd, name, spool)
            except OSError:
                return
            items[entry.path] = item
            # a file left out for want of room is tried again by the next snapshot
            if entry.path != MANIFEST and not self._is_full(item):
                stamps[entry.path] = (entry.stamp, item)

        files, _ = walk(tree, self.ignore, max_entries=limits.max_files, on_file=on_file)
        return items, stamps, len(files) >= limits.max_files

    def _unread(self, entry: Entry) -> _Item | None:
        """The record of a file that is not read at all (too large or sparse), else None."""
        if entry.kind != "file":
            return None
        if entry.size > self.limits.max_file_bytes:
            reason = f"larger than {self.limits.max_file_bytes} bytes (not read)"
        elif entry.sparse:
            reason = f"sparse: {entry.blocks * 512} of {entry.size} bytes on disk (not read)"
        else:
            return None
        return _Item("large", "", LargeFile(entry.path, entry.size, "", reason))

    def _full(self, entry: Entry, size: int, sha256: str) -> _Item:
        """The record of a changed file that does not fit the room left for the snapshot's new
        blobs (``_room``): listed by size, not read (or, grown after its stat, read but not
        stored)."""
        done = "not stored" if sha256 else "not read"
        reason = f"{done}: {_FULL} ({self.limits.max_total_bytes} bytes)"
        return _Item("large", sha256, LargeFile(entry.path, size, sha256, reason))

    @staticmethod
    def _is_full(item: _Item) -> bool:
        return item.large is not None and _FULL in item.large.reason

    def _read(self, entry: Entry, dir_fd: int, name: str, spool: _Spool) -> _Item:
        limits = self.limits
        if entry.kind == "link":
            content = os.fsencode(os.readlink(name, dir_fd=dir_fd))
            mode = "120000"
        else:
            found = read_file(dir_fd, name, limit=limits.max_file_bytes, sha256=True)
            if found.unread:  # over the limit or holes once opened, or grown while read
                now = replace(entry, size=found.size, blocks=found.blocks)
                return self._unread(now) or _Item("large", "", LargeFile(
                    entry.path, found.size, "", "changed while read (not read)"))
            content, sha256 = found.content, found.sha256
            reason = ""
            if found.size > limits.max_binary_bytes and b"\0" in content[:8000]:
                reason = f"binary and larger than {limits.max_binary_bytes} bytes"
            if reason:
                return _Item("large", sha256, LargeFile(entry.path, found.size, sha256, reason))
            mode = "100755" if entry.mode & 0o111 else "100644"
        if entry.path == MANIFEST:  # a file of the candidate's with that name: listed only
            sha256 = hashlib.sha256(content).hexdigest()
            return _Item("large", sha256, LargeFile(MANIFEST, len(content), sha256,
                                                    "reserved name"))
        sha = _blob_sha(content)
        if sha in self._blobs or spool.add(sha, content):
            return _Item(mode, sha)
        return self._full(entry, len(content), hashlib.sha256(content).hexdigest())

    def _commit(self, tree: Path, when: datetime, label: str, *, allow_empty: bool) -> str | None:
        with self._spool() as spool:
            items, stamps, capped = self._scan(tree, spool)
            if items == self._tree and not allow_empty:
                self._stamps = stamps
                return None
            large = sorted((i.large for i in items.values() if i.large), key=lambda f: f.path)
            entries = {path: (i.mode, i.sha) for path, i in items.items() if i.large is None}
            if large or capped:
                manifest: dict[str, Any] = {"files": [vars(f) for f in large]}
                if capped:
                    manifest["file_limit_reached"] = self.limits.max_files
                content = (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode()
                entries[MANIFEST] = ("100644", _blob_sha(content))
                if entries[MANIFEST][1] not in self._blobs:
                    spool.add(entries[MANIFEST][1], content, room=False)
            added = spool.bytes
            if self._head and self._total + added > self.limits.max_total_bytes:
                self.limit_reached = True
                (self.path / LIMIT_FLAG).write_text(
                    f"{now_iso()}: {self._total} + {added} bytes > "
                    f"{self.limits.max_total_bytes}\n")
                log.warning("history %s: the size limit (%d bytes) is reached; snapshots stop",
                            self.path, self.limits.max_total_bytes)
                return None
            self._run(["fast-import", "--quiet", "--date-format=raw"],
                      stdin=spool.finish(self._commit_command(entries, when, label)))
        _, out = self._run(["rev-parse", "--verify", BRANCH])
        self._head = out.decode().strip()
        self._tree = items
        self._stamps = stamps
        self._blobs |= spool.sizes.keys()
        self._total += added
        return self._head

    def _commit_command(self, entries: dict[str, tuple[str, str]], when: datetime,
                        label: str) -> bytes:
        message = (label or "snapshot").encode("utf-8", "replace") + b"\n"
        stamp = f"{int(when.timestamp())} +0000".encode()
        who = f"{AUTHOR[0]} <{AUTHOR[1]}>".encode()
        parts = [b"commit " + BRANCH.encode() + b"\n",
                 b"author " + who + b" " + stamp + b"\n",
                 b"committer " + who + b" " + stamp + b"\n",
                 b"data %d\n" % len(message), message]
        if self._head:
            parts.append(b"from " + self._head.encode() + b"\n")
        parts.append(b"deleteall\n")
        for path in sorted(entries):
            mode, sha = entries[path]
            parts.append(b"M %s %s %s\n" % (mode.encode(), sha.encode(), _quote(path)))
        parts.append(b"\ndone\n")
        return b"".join(parts)

    # -- reading ----------------------------------------------------------------------------

    def commits(self) -> list[tuple[str, datetime, str]]:
        """``(sha, when, label)`` of every snapshot, oldest first."""
        if not (self.path / "HEAD").exists():
            return []
        code, out = self._run(["log", "--reverse", "-z", "--format=%H%x1f%at%x1f%s", BRANCH,
                               "--"], ok=(0, 128))
        if code:
            return []
        result = []
        for record in out.split(b"\0"):
            if record:
                sha, at, label = record.decode("utf-8", "replace").split("\x1f", 2)
                result.append((sha, datetime.fromtimestamp(int(at), UTC), label))
        return result

    def file_at(self, commit: str, path: str) -> bytes | None:
        """Exact content of ``path`` at ``commit`` (link target for a link); None if absent or
        not stored (see ``large_files``)."""
        if path == MANIFEST or not path or path.startswith("/"):
            return None
        code, out = self._run(["cat-file", "blob", f"{_check_rev(commit)}:{path}"],
                              ok=(0, 128))
        return out if code == 0 else None

    def _manifest(self, commit: str) -> list[LargeFile]:
        code, out = self._run(["cat-file", "blob", f"{_check_rev(commit)}:{MANIFEST}"],
                              ok=(0, 128))
        if code:
            return []
        return [LargeFile(**f) for f in json.loads(out).get("files", [])]

    def large_files(self, commit: str) -> list[LargeFile]:
        """Files present at ``commit`` that were recorded by size and sha256 only."""
        return self._manifest(commit)

    def tree_at(self, commit: str) -> list[tuple[str, int]]:
        """``(path, size)`` of every file at ``commit``, large ones included, sorted."""
        _, raw = self._run(["ls-tree", "-r", "-z", "-l", "--full-tree", _check_rev(commit)])
        found: dict[str, int] = {}
        for record in raw.split(b"\0"):
            if record:
                meta, _, name = record.partition(b"\t")
                size = meta.split()[3]
                found[os.fsdecode(name)] = int(size) if size.isdigit() else 0
        if found.pop(MANIFEST, None) is not None:
            found.update({f.path: f.size for f in self._manifest(commit)})
        return sorted(found.items())

    def changed_paths(self, a: str, b: str) -> list[tuple[str, str]]:
        """``(status letter, path)`` of what differs between two commits (A, M, D, T)."""
        _, raw = self._run(["diff", "--no-renames", "--name-status", "-z", _check_rev(a),
                            _check_rev(b), "--"])
        fields = raw.split(b"\0")
        pairs = [(fields[i].decode(), os.fsdecode(fields[i + 1]))
                 for i in range(0, len(fields) - 1, 2)]
        return [(status, path) for status, path in pairs if path != MANIFEST]

    def diff(self, a: str, b: str, *, paths: Sequence[str] = ()) -> str:
        """Unified diff from ``a`` to ``b`` (bounded by ``max_diff_chars``, with a marker)."""
        _, raw = self._run(["diff", "--no-color", "--no-ext-diff", "--no-textconv", "-M",
                            _check_rev(a), _check_rev(b), "--", *paths])
        text = raw.decode("utf-8", "replace")
        limit = self.limits.max_diff_chars
        if len(text) > limit:
            text = text[:limit] + f"\n…[truncated {len(text) - limit} chars]\n"
        return text

    def bundle(self, dest: Path) -> None:
        """Write the whole history as a git bundle (``git clone dest`` restores it)."""
        self._run(["bundle", "create", "--quiet", str(Path(dest).absolute()), "HEAD", BRANCH])

    # -- async ------------------------------------------------------------------------------

    async def ainit(self, base_tree: Path, when: datetime | None = None,
                    label: str = "task start") -> str:
        return await asyncio.to_thread(self.init, base_tree, when, label)

    async def asnapshot(self, workspace: Path, when: datetime,
                        label: str = "snapshot") -> str | None:
        return await asyncio.to_thread(self.snapshot, workspace, when, label)

    async def acommits(self) -> list[tuple[str, datetime, str]]:
        return await asyncio.to_thread(self.commits)

    async def afile_at(self, commit: str, path: str) -> bytes | None:
        return await asyncio.to_thread(self.file_at, commit, path)

    async def atree_at(self, commit: str) -> list[tuple[str, int]]:
        return await asyncio.to_thread(self.tree_at, commit)

    async def adiff(self, a: str, b: str, *, paths: Sequence[str] = ()) -> str:
        return await asyncio.to_thread(self.diff, a, b, paths=paths)

    async def abundle(self, dest: Path) -> None:
        await asyncio.to_thread(self.bundle, dest)
