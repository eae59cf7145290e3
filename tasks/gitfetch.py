"""Fetch ONE snapshot of a validated :class:`~tasks.source.Source`, safely.

A hardened ``git`` subprocess (empty config, allow-listed environment, own process group, time
limit, download cap) makes a shallow clone in a private temp folder; ``git ls-tree`` lists the
tree, which is checked (entry count, sizes, hostile names) before anything is written; then the
regular blobs are streamed out of ``git cat-file --batch`` into ``dest``. Symlinks and gitlinks are
reported, never followed. The temp folder is removed on every path. Blocking: run it with
``asyncio.to_thread``.
"""

from __future__ import annotations

import logging
import os
import posixpath
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

from common.gitenv import find_git, git_config_args, git_env
from common.processes import Bounded, DeadlineExceeded, wait_exited
from tasks.errors import FetchFailed, InvalidSource, TreeRefused
from tasks.source import Source, path_component_problem, ref_problem, scrub_url

__all__ = [
    "FetchLimits",
    "FetchResult",
    "TreeEntry",
    "check_tree",
    "fetch_snapshot",
    "parse_ls_tree",
]

logger = logging.getLogger(__name__)

MiB = 1024 * 1024
_FULL_SHA_RE = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
_SHORT_SHA_RE = re.compile(r"^[0-9a-f]{7,39}$")
# fsck message ids that mean "a tree holds a hostile name or mode": reported as TreeRefused.
_FSCK_TREE_RE = re.compile(
    r"\b(hasDot\w*|hasEmptyName|fullPathname|badFilemode|zeroPaddedFilemode|duplicateEntries"
    r"|treeNotSorted|gitmodules\w*|gitattributes\w*)\b"
)


@dataclass(frozen=True)
class FetchLimits:
    max_entries: int = 5000
    """Entries in the (sub)tree, counting symlinks and submodules."""
    max_total_bytes: int = 50 * MiB
    """Sum of the sizes of the files that would be written."""
    max_blob_bytes: int = 10 * MiB
    """Size of the largest single file."""
    max_fetch_bytes: int = 200 * MiB
    """What git may write to disk while fetching (pack, index, messages)."""


@dataclass(frozen=True)
class FetchResult:
    commit_sha: str
    files: list[str] = field(default_factory=list)
    """POSIX paths relative to ``dest`` that were written, in tree order."""
    skipped: list[tuple[str, str]] = field(default_factory=list)
    """``(path, reason)`` for symlinks, gitlinks and ``.gitmodules``: reported, not written."""
    total_bytes: int = 0
    people: list[tuple[str, str]] = field(default_factory=list)
    """Distinct ``(name, email)`` of the authors and committers of the last ``history_commits``
    commits (asked for with ``fetch_snapshot(history_commits=N)``), newest first."""
    history_commits: int = 0
    """How many commits ``people`` was read from."""
    history_problem: str | None = None
    """Why the history could not be read (the snapshot itself is unaffected), or None."""


@dataclass(frozen=True)
class TreeEntry:
    mode: str
    kind: str
    oid: str
    size: int | None
    path: str


def parse_ls_tree(raw: bytes) -> list[TreeEntry]:
    """Parse ``git ls-tree -r -l -z`` output; a name that is not UTF-8 is refused."""
    entries = []
    for record in raw.split(b"\0"):
        if not record:
            continue
        meta, tab, name = record.partition(b"\t")
        fields = meta.split()
        if not tab or len(fields) != 4:
            raise TreeRefused("git ls-tree printed a line we cannot parse")
        mode, kind, oid, size = (f.decode("ascii", "replace") for f in fields)
        try:
            path = name.decode("utf-8")
        except UnicodeDecodeError:
            raise TreeRefused(f"the path {name!r} is refused: not valid UTF-8") from None
        entries.append(TreeEntry(mode, kind, oid, None if size == "-" else int(size), path))
    return entries


def check_tree(
    entries: list[TreeEntry], limits: FetchLimits
) -> tuple[list[TreeEntry], list[tuple[str, str]]]:
    """Split entries into files to write and ``(path, reason)`` skipped; raise TreeRefused."""
    if len(entries) > limits.max_entries:
        raise TreeRefused(
            f"the tree has {len(entries)} entries, over the limit max_entries="
            f"{limits.max_entries}; raise max_entries to import it"
        )
    files: list[TreeEntry] = []
    skipped: list[tuple[str, str]] = []
    total = 0
    for entry in entries:
        if entry.path.startswith("/") or len(entry.path.encode()) > 4096:
            raise TreeRefused(f"the path {entry.path!r} is refused: absolute or too long")
        for part in entry.path.split("/"):
            problem = path_component_problem(part)
            if problem:
                raise TreeRefused(f"the path {entry.path!r} is refused: {problem}")
        if entry.mode == "120000":
            skipped.append((entry.path, "symlink: not followed, not written"))
        elif entry.mode == "160000":
            skipped.append((entry.path, "submodule (gitlink): not followed, not written"))
        elif entry.mode not in ("100644", "100755") or entry.kind != "blob" or entry.size is None:
            raise TreeRefused(f"the path {entry.path!r} has an unexpected mode {entry.mode}")
        elif posixpath.basename(entry.path).lower() == ".gitmodules":
            skipped.append((entry.path, "submodule configuration: not written"))
        elif entry.size > limits.max_blob_bytes:
            raise TreeRefused(
                f"the file {entry.path!r} is {entry.size} bytes, over the limit max_blob_bytes="
                f"{limits.max_blob_bytes}; raise max_blob_bytes to import it"
            )
        else:
            total += entry.size
            files.append(entry)
    if total > limits.max_total_bytes:
        raise TreeRefused(
            f"the files total {total} bytes, over the limit max_total_bytes="
            f"{limits.max_total_bytes}; raise max_total_bytes to import them"
        )
    seen: set[str] = set()
    dirs = {posixpath.dirname(f.path) for f in files}
    dirs |= {d for path in list(dirs) for d in _ancestors(path)}
    for entry in files:
        if entry.path in seen or entry.path in dirs:
            raise TreeRefused(f"the path {entry.path!r} appears twice in the tree")
        seen.add(entry.path)
    return files, skipped


def _ancestors(path: str) -> Iterator[str]:
    while path:
        yield path
        path = posixpath.dirname(path)


def _tail(path: Path) -> str:
    with open(path, "rb") as err:
        err.seek(max(0, err.seek(0, os.SEEK_END) - 4000))
        text = err.read().decode("utf-8", "replace")
    lines = ["".join(c for c in ln if c.isprintable()).strip() for ln in text.splitlines()]
    return " | ".join([ln for ln in lines if ln][-3:])[-600:] or "no message"


class _Git:
    """Runs hardened git commands for one fetch, all sharing one deadline and work folder."""

    def __init__(self, work: Path, source: Source, limits: FetchLimits, timeout_s: float) -> None:
        binary = find_git()
        if binary is None:
            raise FetchFailed("git is not installed")
        scheme = urlsplit(source.url).scheme
        self.work, self.source, self.limits, self.timeout_s = work, source, limits, timeout_s
        self.deadline = time.monotonic() + timeout_s
        self.home = work / "home"
        self.home.mkdir()
        self.repo = work / "repo"
        self.errfile = work / "git-stderr"
        self.env = git_env(self.home, [scheme])
        self.base = [binary, f"--git-dir={self.repo / '.git'}"]
        self.base += git_config_args([scheme], extra=["core.symlinks=false"])
        self.base += _pin_args(source)

    @contextmanager
    def spawn(self, args: list[str], *, stdin: bool = False, watch: bool = False) -> Iterator[
        subprocess.Popen[bytes]
    ]:
        """git ``args`` in its own group, stopped at the deadline (or over the fetch cap)."""
        try:
            with open(self.errfile, "wb") as err, Bounded(
                [*self.base, *args], deadline=self.deadline, timeout_s=self.timeout_s,
                env=self.env, cwd=self.home, stderr=err,
                stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                check=self._over_fetch_cap if watch else None,
            ) as proc:
                yield proc
        except DeadlineExceeded:
            raise FetchFailed(
                f"the fetch did not finish in time ({self.timeout_s:g} s)"
            ) from None

    def _over_fetch_cap(self) -> TreeRefused | None:
        size = _disk_usage(self.work)
        if size <= self.limits.max_fetch_bytes:
            return None
        return TreeRefused(
            f"the download reached {size} bytes, over the limit max_fetch_bytes="
            f"{self.limits.max_fetch_bytes}; raise max_fetch_bytes to import it"
        )

    def run(self, args: list[str], *, watch: bool = False, max_output: int = 1 << 20) -> bytes:
        """Run git to completion; return stdout or raise FetchFailed/TreeRefused."""
        chunks: list[bytes] = []
        size = 0
        with self.spawn(args, watch=watch) as proc:
            assert proc.stdout is not None  # noqa: S101 - for mypy
            while chunk := proc.stdout.read(65536):
                size += len(chunk)
                if size > max_output:
                    raise TreeRefused(f"git {args[0]} printed more than {max_output} bytes")
                chunks.append(chunk)
            code = wait_exited(proc.pid)
        if code != 0:
            message = _tail(self.errfile)
            if "fsck" in message and _FSCK_TREE_RE.search(message):
                raise TreeRefused(f"git refused a hostile tree in the fetched objects: {message}")
            raise FetchFailed(f"git {args[0]} failed for {scrub_url(self.source.url)}: {message}")
        if watch and (too_big := self._over_fetch_cap()):
            raise too_big
        return b"".join(chunks)

    def fetch(self) -> str:
        """Shallow-fetch the source's ref; return the commit id."""
        url, ref = self.source.url, self.source.ref
        by_name = ref is None or not (_FULL_SHA_RE.match(ref) or ref.startswith("refs/"))
        if by_name:
            branch = [] if ref is None else [f"--branch={ref}"]
            clone = ["clone", "--quiet", "--template=", "--depth=1", "--no-checkout"]
            clone += ["--no-recurse-submodules", "--no-tags", *branch, "--", url, str(self.repo)]
            try:
                self.run(clone, watch=True)
            except FetchFailed as exc:
                if ref is not None and _SHORT_SHA_RE.match(ref):
                    raise FetchFailed(
                        f"{exc.message}; an abbreviated commit id cannot be fetched, "
                        "give all 40 hex digits"
                    ) from None
                raise
            rev = "HEAD^{commit}"
        else:
            assert ref is not None  # noqa: S101 - for mypy
            self.run(["init", "--quiet", "--template=", "--", str(self.repo)])
            fetch = ["fetch", "--quiet", "--depth=1", "--no-tags", "--no-recurse-submodules"]
            self.run([*fetch, "--", url, ref], watch=True)
            rev = "FETCH_HEAD^{commit}"
        commit = self.run(["rev-parse", "--verify", "--end-of-options", rev]).decode().strip()
        if ref is not None and _FULL_SHA_RE.match(ref) and commit != ref:
            raise FetchFailed(f"the fetched commit {commit} is not the requested {ref}")
        return commit

    def history_people(self, commit: str, commits: int) -> tuple[list[tuple[str, str]], int]:
        """Deepen the shallow fetch to ``commits`` commits (the download cap and the deadline
        still apply) and read their authors and committers: ``(distinct (name, email), commits
        read)``."""
        if commits > 1:
            target = self.source.ref if self.source.ref is not None else "HEAD"
            fetch = ["fetch", "--quiet", f"--deepen={commits - 1}", "--no-tags",
                     "--no-recurse-submodules", "--", self.source.url, target]
            self.run(fetch, watch=True)
        raw = self.run(["log", f"--max-count={commits}", "--format=%an%x1f%ae%x1f%cn%x1f%ce%x1e",
                        "--end-of-options", commit], max_output=commits * 2048 + 4096)
        people: dict[tuple[str, str], None] = {}
        records = [r.strip("\n") for r in raw.decode("utf-8", "replace").split("\x1e")]
        records = [r for r in records if r]
        for record in records:
            fields = record.split("\x1f")
            for name, email in zip(fields[0::2], fields[1::2], strict=False):
                if name.strip() or email.strip():
                    people.setdefault((name.strip()[:200], email.strip()[:200]), None)
        return list(people), len(records)

    def list_tree(self, commit: str, subdir: str | None) -> list[TreeEntry]:
        treeish = commit if subdir is None else f"{commit}:{subdir}"
        if subdir is not None:
            try:
                kind = self.run(["cat-file", "-t", treeish]).decode().strip()
            except FetchFailed:
                kind = "missing"
            if kind != "tree":
                raise InvalidSource(f"the subdir {subdir!r} is not a directory in {commit}")
        cap = self.limits.max_entries * (4096 + 128) + 4096
        raw = self.run(["ls-tree", "-r", "-l", "-z", "--full-tree", treeish], max_output=cap)
        return parse_ls_tree(raw)

    def export(self, files: list[TreeEntry], dest: Path) -> int:
        """Stream each blob into ``dest`` (O_NOFOLLOW|O_EXCL at every step); return bytes."""
        total = 0
        parent_path: str | None = None
        parent_fd = -1
        try:
            with self.spawn(["cat-file", "--batch"], stdin=True) as proc:
                assert proc.stdin is not None and proc.stdout is not None  # noqa: S101
                for entry in files:
                    folder, name = posixpath.split(entry.path)
                    if folder != parent_path:
                        if parent_fd >= 0:
                            os.close(parent_fd)
                            parent_fd = -1
                        parent_fd, parent_path = _open_dirs(dest, folder), folder
                    proc.stdin.write(entry.oid.encode("ascii") + b"\n")
                    proc.stdin.flush()
                    header = proc.stdout.readline().split()
                    if header[1:] != [b"blob", str(entry.size).encode()]:
                        raise FetchFailed(f"git cat-file returned {header!r} for {entry.path!r}")
                    mode = 0o755 if entry.mode == "100755" else 0o644
                    total += _write_blob(proc.stdout, parent_fd, name, entry.size or 0, mode)
                proc.stdin.close()
                if wait_exited(proc.pid) != 0:
                    raise FetchFailed(f"git cat-file failed: {_tail(self.errfile)}")
        except OSError as exc:
            raise FetchFailed(f"could not write the snapshot: {exc.strerror or exc}") from None
        finally:
            if parent_fd >= 0:
                os.close(parent_fd)
        return total


def _pin_args(source: Source) -> list[str]:
    """Pin the host to the addresses validated in validate_source (no DNS rebinding)."""
    parts = urlsplit(source.url)
    host = parts.hostname
    if not source.addresses or host is None or ":" in host or host.replace(".", "").isdigit():
        return []
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addrs = ",".join(f"[{a}]" if ":" in a else a for a in source.addresses)
    return ["-c", f"http.curloptResolve={host}:{port}:{addrs}"]


def _open_dirs(dest: Path, folder: str) -> int:
    fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    for part in folder.split("/") if folder else []:
        try:
            try:
                os.mkdir(part, 0o755, dir_fd=fd)
            except FileExistsError:
                pass
            flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
            child = os.open(part, flags, dir_fd=fd)
        finally:
            os.close(fd)
        fd = child
    return fd


def _write_blob(src: IO[bytes], dir_fd: int, name: str, size: int, mode: int) -> int:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(name, flags, 0o600, dir_fd=dir_fd)
    with os.fdopen(fd, "wb") as out:
        left = size
        while left:
            chunk = src.read(min(left, 1 << 20))
            if not chunk:
                raise FetchFailed("git cat-file stopped before the end of a blob")
            out.write(chunk)
            left -= len(chunk)
        os.fchmod(out.fileno(), mode)
    if src.read(1) != b"\n":
        raise FetchFailed("git cat-file output is out of step")
    return size


def _disk_usage(root: Path) -> int:
    total = 0
    for folder, _dirs, names in os.walk(root):
        for name in names:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except FileNotFoundError:
                continue
    return total


def _check_source(source: Source) -> None:
    """Cheap re-check of the Source's shape: fetch_snapshot never trusts its caller blindly."""
    scheme = urlsplit(source.url).scheme
    if scheme not in ("https", "http", "file") or source.url.startswith("-") or "::" in source.url:
        raise InvalidSource(f"the URL {scrub_url(source.url)!r} was not validated")
    if (scheme == "file") != source.is_local:
        raise InvalidSource("only a local source may use a file:// URL")
    if source.ref is not None and ref_problem(source.ref):
        raise InvalidSource(f"the ref {source.ref!r} was not validated")
    if source.subdir is not None and any(map(path_component_problem, source.subdir.split("/"))):
        raise InvalidSource(f"the subdir {source.subdir!r} was not validated")


def _prepare_dest(dest: Path) -> bool:
    """Create ``dest`` (True) or accept an existing empty directory (False)."""
    if dest.is_symlink() or (dest.exists() and (not dest.is_dir() or any(dest.iterdir()))):
        raise ValueError(f"{dest} must be absent or an empty directory")
    if dest.exists():
        return False
    dest.mkdir(parents=True)
    return True


def _empty_dest(dest: Path, created: bool) -> None:
    if created:
        shutil.rmtree(dest, ignore_errors=True)
        return
    for child in dest.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def fetch_snapshot(
    source: Source,
    dest: Path,
    limits: FetchLimits | None = None,
    timeout_s: float = 120.0,
    *,
    tmp_root: Path | None = None,
    history_commits: int = 0,
) -> FetchResult:
    """Fetch ``source`` at its ref into ``dest`` (absent or empty); see the module docstring.

    Raises InvalidSource, FetchFailed (unreachable, unknown ref, timeout) or TreeRefused (a
    limit or a hostile name). On failure ``dest`` is left absent/empty; the temp folder (made
    under ``tmp_root``, default the system temp dir) is always removed. ``history_commits``
    (after the snapshot is written) deepens the fetch to read who authored that many commits;
    a failure there is reported in ``history_problem``, not raised.
    """
    limits = limits or FetchLimits()
    _check_source(source)
    created = _prepare_dest(dest)
    work = Path(tempfile.mkdtemp(prefix="pairlab-fetch-", dir=tmp_root))
    ok = False
    logger.info("fetching %s (ref %s)", scrub_url(source.url), source.ref or "default branch")
    try:
        git = _Git(work, source, limits, timeout_s)
        commit = git.fetch()
        files, skipped = check_tree(git.list_tree(commit, source.subdir), limits)
        total = git.export(files, dest)
        ok = True
        people: list[tuple[str, str]] = []
        read, problem = 0, None
        if history_commits > 0:
            try:
                people, read = git.history_people(commit, history_commits)
            except (FetchFailed, TreeRefused) as exc:
                problem = exc.message
    finally:
        try:
            shutil.rmtree(work)
        except OSError:
            logger.warning("could not remove the temp folder %s", work, exc_info=True)
        if not ok:
            _empty_dest(dest, created)
    logger.info(
        "fetched %s at %s: %d files, %d bytes, %d skipped",
        scrub_url(source.url), commit, len(files), total, len(skipped),
    )
    return FetchResult(commit, [f.path for f in files], skipped, total, people, read, problem)
