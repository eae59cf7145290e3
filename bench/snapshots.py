"""What a snapshot of a workspace full of sparse files costs the server: ``History.snapshot``
on a tree of sparse files (holes: no disk for the candidate) after a ``touch`` of all of them,
as pairlab does it now (sparse and over-limit files listed by size and blocks, never read)
against the old way (every file read and hashed), in the same process, the runs alternating.
CPU time (``time.process_time``, this process and git) is the figure that matters.

Then the memory of a snapshot of many small new files (a dataset unzipped): its peak
(``tracemalloc``) now (each new file spooled to fast-import's stream on disk as it is read)
against every new file held in memory until the commit, as before.

    .venv/bin/python -m bench.snapshots [--runs 10] [--gib 2] [--files 8] [--small-mib 64]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

from bench.common import header, load_line, median, percentile, row
from workspaces.recording.history import History, LargeFile, _Item, _Spool
from workspaces.recording.watcher import Entry


class OldHistory(History):
    """The history before sparse files were skipped: every file is read to its end and hashed
    (``read_file`` itself now refuses them, so the old way is written out here)."""

    def _unread(self, entry: Entry) -> _Item | None:
        return None

    def _room(self) -> int | None:  # no room checked before the read either: read them all
        return None

    def _read(self, entry: Entry, dir_fd: int, name: str, spool: _Spool) -> _Item:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
        digest, size = hashlib.sha256(), 0
        try:
            while chunk := os.read(fd, 1024 * 1024):
                digest.update(chunk)
                size += len(chunk)
        finally:
            os.close(fd)
        return _Item("large", digest.hexdigest(),
                     LargeFile(entry.path, size, digest.hexdigest(), "read to the end"))


class HeldSpool(_Spool):
    """The spool as it was: every new blob also held in memory until the commit, no room."""

    def __init__(self, folder: Path, room: int | None) -> None:
        super().__init__(folder, None)
        self.held: dict[str, bytes] = {}

    def add(self, sha: str, content: bytes, *, room: bool = True) -> bool:
        self.held.setdefault(sha, content)
        return super().add(sha, content, room=False)


class HeldHistory(History):
    def _spool(self) -> _Spool:
        return HeldSpool(self.path, None)


def snapshot_peak(history: History, tree: Path, step: int) -> float:
    """Peak bytes allocated by one snapshot of ``tree``."""
    tracemalloc.start()
    try:
        history.snapshot(tree, datetime.fromtimestamp(1_750_000_000 + step, UTC))
        return float(tracemalloc.get_traced_memory()[1])
    finally:
        tracemalloc.stop()


def small_files(tree: Path, mib: float, step: int) -> None:
    """``mib`` MiB of new 32 KiB text files (new content at every step)."""
    folder = tree / "dataset"
    folder.mkdir(exist_ok=True)
    for i in range(int(mib * 32)):
        text = f"{step},{os.urandom(16 * 1024).hex()}"[:32 * 1024]
        (folder / f"part-{i:05d}.csv").write_text(text)


def memory(base: Path, runs: int, mib: float) -> None:
    tree = base / "data"
    tree.mkdir()
    arms: dict[str, History] = {"old": HeldHistory(base / "held.git"),
                                "now": History(base / "spooled.git")}
    for history in arms.values():
        history.init(tree)
    peaks: dict[str, list[float]] = {name: [] for name in arms}
    for step in range(1, runs + 1):
        small_files(tree, mib, step)
        for name, history in arms.items():
            peaks[name].append(snapshot_peak(history, tree, step))
    print(f"{int(mib * 32)} new files of 32 KiB ({mib:g} MiB) per snapshot; peak memory:")
    for name, label in (("old", "old: all held until the commit (baseline)"),
                        ("now", "now: spooled to the import stream, budgeted")):
        values = [v / 2**20 for v in peaks[name]]
        print(f"{label:<46} n={len(values):<4}  p50 {median(values):8.1f} MiB  "
              f"max {max(values):8.1f} MiB")


def cpu() -> float:
    """CPU seconds of this process and its finished children (git)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def snapshot_cost(history: History, tree: Path, files: list[Path], step: int) -> float:
    for path in files:  # `touch`: the cache of unchanged files does not help
        os.utime(path, ns=(step * 10**9, step * 10**9))
    started = cpu()
    history.snapshot(tree, datetime.fromtimestamp(1_750_000_000 + step, UTC))
    return cpu() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--gib", type=float, default=2.0, help="total size of the sparse files")
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--small-mib", type=float, default=64,
                        help="size of the new small files per snapshot, for the memory part")
    args = parser.parse_args()
    header("bench.snapshots: a snapshot of sparse files, now vs reading them all", sys.argv)
    base = Path(tempfile.mkdtemp(prefix="plbs-", dir="/tmp"))  # noqa: S108 - a private folder
    try:
        tree = base / "work"
        tree.mkdir()
        (tree / "main.py").write_text("print('hello')\n")
        files = [tree / f"holes-{i}.bin" for i in range(args.files)]
        for path in files:
            with path.open("wb") as f:
                f.truncate(int(args.gib * 1024**3 / args.files))
        arms: dict[str, History] = {"old": OldHistory(base / "old.git"),
                                    "now": History(base / "now.git")}
        for history in arms.values():
            history.init(tree)
        times: dict[str, list[float]] = {name: [] for name in arms}
        for step in range(1, args.runs + 1):
            for name, history in arms.items():
                times[name].append(snapshot_cost(history, tree, files, step))
        print(f"{args.files} sparse files, {args.gib:g} GiB in all, 0 bytes on disk; "
              "CPU seconds per snapshot after a touch:")
        print(row("old: every file read and hashed (baseline)", times["old"]))
        print(row("now: sparse/over-limit files not read", times["now"]))
        print(f"ratio old/now, p50: {median(times['old']) / max(median(times['now']), 1e-9):.0f}x;"
              f" now p95 {percentile(times['now'], 95) * 1000:.1f} ms CPU")
        memory(base, args.runs, args.small_mib)
    finally:
        shutil.rmtree(base, ignore_errors=True)
        print(load_line("end"))


if __name__ == "__main__":
    main()
