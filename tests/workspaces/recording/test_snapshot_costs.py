"""What a candidate can make a snapshot cost the server, written as the attacks: files that grow
into gigabytes of holes between the walk and the read, and more small files than the history
may store (which pairlab used to hold in memory all at once)."""

from __future__ import annotations

import os
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from workspaces.recording import watcher
from workspaces.recording.history import MANIFEST, History, HistoryLimits
from workspaces.recording.watcher import _Tree, is_ignored

T0 = datetime(2025, 6, 1, 9, 0, 0, tzinfo=UTC)
KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
LIMIT = 2 * MiB  # the default max_file_bytes and watcher hash limit


def moment(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
def base(tmp_path: Path) -> Path:
    tree = tmp_path / "base"
    tree.mkdir()
    (tree / "main.py").write_text("print('start')\n")
    return tree


@pytest.fixture
def bytes_read(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Every byte pairlab reads through ``os.read`` during the test (files and pipes)."""
    count = [0]
    real = os.read

    def counting(fd: int, n: int) -> bytes:
        data = real(fd, n)
        count[0] += len(data)
        return data

    monkeypatch.setattr(os, "read", counting)
    yield count


def grow_after(monkeypatch: pytest.MonkeyPatch, root: Path, where: str) -> list[Path]:
    """The candidate's loop of `truncate -s 1G f; truncate -s 0 f` winning the race: the files
    ``grows-*`` under ``root`` are small when pairlab looks and 1 GiB of holes right after, for
    ``where="walk"`` once the walk has taken their stat, for ``"fstat"`` once the opened file's
    stat is taken. Returns the files grown (each grows once)."""
    grown: list[Path] = []

    def grow(path: Path) -> None:
        if path not in grown:
            grown.append(path)
            os.truncate(path, GiB)

    if where == "walk":
        real_of = watcher.Entry.of

        def of(path: str, st: os.stat_result) -> watcher.Entry | None:
            entry = real_of(path, st)
            if path.rsplit("/", 1)[-1].startswith("grows-"):
                grow(root / path)
            return entry

        monkeypatch.setattr(watcher.Entry, "of", staticmethod(of))
        return grown
    targets = {(p.stat().st_ino, p.stat().st_dev): p for p in root.rglob("grows-*")}
    real_fstat = os.fstat

    def fstat(fd: int) -> os.stat_result:
        st = real_fstat(fd)
        if (path := targets.get((st.st_ino, st.st_dev))) is not None:
            grow(path)
        return st

    monkeypatch.setattr(os, "fstat", fstat)
    return grown


def small_files(folder: Path, count: int, size: int, prefix: str = "f") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(count):
        path = folder / f"{prefix}-{i:04d}.txt"
        path.write_bytes(os.urandom(size // 2).hex().encode())  # distinct text, `size` bytes
        files.append(path)
    return files


@pytest.mark.parametrize("where", ["walk", "fstat"])
def test_files_grown_into_holes_after_the_stat_are_not_read(
        tmp_path: Path, base: Path, workspace: Path, where: str,
        monkeypatch: pytest.MonkeyPatch, bytes_read: list[int]) -> None:
    """The attack: the snapshot checked size and holes on the walk's stat, then read (and
    hashed) to the end of whatever the file had become: 1 GiB of holes per file, per snapshot."""
    history = History(tmp_path / "s.git")
    history.init(base, moment(0))
    for i in range(3):
        (workspace / f"grows-{i}.bin").write_bytes(b"small\n")
    (workspace / "notes.txt").write_text("kept\n")
    grown = grow_after(monkeypatch, workspace, where)
    bytes_read[0] = 0
    sha = history.snapshot(workspace, moment(1))
    spent = bytes_read[0]
    assert len(grown) == 3
    assert spent <= 3 * (LIMIT + 1) + MiB, f"the snapshot read {spent} bytes"
    assert sha is not None
    large = {f.path: f for f in history.large_files(sha)}
    assert {p for p in large if p.startswith("grows-")} == {f"grows-{i}.bin" for i in range(3)}
    assert all(f.sha256 == "" and "not read" in f.reason
               for p, f in large.items() if p.startswith("grows-"))
    assert history.file_at(sha, "notes.txt") == b"kept\n"


@pytest.mark.parametrize("where", ["walk", "fstat"])
def test_the_watcher_does_not_hash_files_grown_into_holes(
        workspace: Path, where: str, monkeypatch: pytest.MonkeyPatch,
        bytes_read: list[int]) -> None:
    for i in range(3):
        (workspace / f"grows-{i}.bin").write_bytes(b"small\n")
    tree = _Tree(workspace, is_ignored, LIMIT, 50_000)
    grown = grow_after(monkeypatch, workspace, where)
    bytes_read[0] = 0
    changes = {c.path: c for c in tree.scan()}
    assert len(grown) == 3
    assert bytes_read[0] <= 3 * (LIMIT + 1) + KiB, f"the watcher read {bytes_read[0]} bytes"
    assert all(changes[f"grows-{i}.bin"].sha256 == "" for i in range(3))
    assert changes["main.py"].sha256  # a plain file is still hashed


def test_more_small_files_than_the_history_may_store_are_listed_unread(
        tmp_path: Path, base: Path, workspace: Path) -> None:
    """The attack: a candidate unzips a dataset of small files several times the session's
    budget; the snapshot held every one of them in pairlab's memory (and a second copy in the
    stream to git) before it looked at the budget."""
    budget = 4 * MiB
    history = History(tmp_path / "s.git", limits=HistoryLimits(max_total_bytes=budget))
    history.init(base, moment(0))
    (workspace / "solution.py").write_text("answer = 42\n")
    dataset = small_files(workspace / "dataset", 384, 32 * KiB)  # 12 MiB, 3x the budget
    tracemalloc.start()
    try:
        sha = history.snapshot(workspace, moment(1))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * LIMIT, f"the snapshot held {peak} bytes at its peak"
    assert sha is not None and not history.limit_reached
    stored = dict(history.tree_at(sha))
    large = {f.path: f for f in history.large_files(sha)}
    unread = {p for p, f in large.items() if "history is full" in f.reason}
    kept = {p for p in stored if p.startswith("dataset/") and p not in large}
    assert unread and kept and unread | kept == {f"dataset/{p.name}" for p in dataset}
    assert all(stored[p] == 32 * KiB for p in unread)  # listed by size
    assert 32 * KiB * len(kept) <= budget
    assert history.file_at(sha, "solution.py") == b"answer = 42\n"
    for rel in sorted(kept)[:3]:
        assert history.file_at(sha, rel) == (workspace / rel).read_bytes()
    # the dataset deleted, the next snapshot is an ordinary one
    for path in dataset:
        path.unlink()
    (workspace / "solution.py").write_text("answer = 43\n")
    after = history.snapshot(workspace, moment(2))
    assert after is not None and not history.limit_reached
    assert history.large_files(after) == []
    assert {p for p, _ in history.tree_at(after)} == {"main.py", "solution.py"}
    assert history.file_at(after, "solution.py") == b"answer = 43\n"
    assert MANIFEST not in dict(history.tree_at(after))
