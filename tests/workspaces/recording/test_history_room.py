"""What a snapshot stores once the room for new blobs runs out, written as the failures: a
dataset that does not fit must not push the candidate's edited source out of the snapshot, and
files left unread for want of room must be stored by a later snapshot with room, untouched."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from workspaces.recording.history import History, HistoryLimits, LargeFile

T0 = datetime(2025, 6, 1, 9, 0, 0, tzinfo=UTC)
KiB = 1024
MiB = 1024 * KiB
BUDGET = 4 * MiB  # a snapshot may store about (4 - 1/4) / 2 = 1.875 MiB of new blobs
SOURCE = b"def load():\n    return ['edited']\n"


def moment(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
def base(tmp_path: Path) -> Path:
    tree = tmp_path / "base"
    (tree / "src").mkdir(parents=True)
    (tree / "src" / "pipeline.py").write_text("def load():\n    return []\n")
    return tree


def text(size: int) -> bytes:
    """``size`` bytes of distinct text (not sparse, not binary)."""
    return os.urandom(size // 2 + 1).hex().encode()[:size]


def full(history: History, sha: str) -> dict[str, LargeFile]:
    return {f.path: f for f in history.large_files(sha) if "history is full" in f.reason}


def test_a_dataset_that_does_not_fit_leaves_the_edited_source_stored(
        tmp_path: Path, base: Path, workspace: Path) -> None:
    """The failure: the dataset (in the workspace's top folder, so walked first) did not fit,
    and every changed file walked after it, the edited source included, was listed unread."""
    history = History(tmp_path / "s.git", limits=HistoryLimits(max_total_bytes=BUDGET))
    history.init(base, moment(0))
    (workspace / "data.csv").write_bytes(text(1950 * KiB))  # under max_file_bytes, over room
    (workspace / "src" / "pipeline.py").write_bytes(SOURCE)
    (workspace / "docs").mkdir()
    docs = {f"docs/doc-{i}.txt": text(700 * KiB) for i in range(3)}  # two of three fit
    for rel, content in docs.items():
        (workspace / rel).write_bytes(content)
    sha = history.snapshot(workspace, moment(1))
    assert sha is not None and not history.limit_reached
    assert history.file_at(sha, "src/pipeline.py") == SOURCE
    stored = {rel for rel in docs if history.file_at(sha, rel) == docs[rel]}
    assert len(stored) == 2  # only what does not fit is skipped
    listed = full(history, sha)
    assert set(listed) == {"data.csv"} | (set(docs) - stored)
    assert listed["data.csv"].size == 1950 * KiB
    assert listed["data.csv"].sha256 == "" and "not read" in listed["data.csv"].reason


def test_files_left_unread_for_want_of_room_are_stored_once_there_is_room(
        tmp_path: Path, base: Path, workspace: Path) -> None:
    """The failure: files listed "not read: the session's history is full" were remembered as
    such, so while untouched they stayed out of every later snapshot (replay, materialize),
    even once there was room again."""
    history = History(tmp_path / "s.git", limits=HistoryLimits(max_total_bytes=BUDGET))
    history.init(base, moment(0))
    (workspace / "data.csv").write_bytes(text(1950 * KiB))
    (workspace / "src" / "pipeline.py").write_bytes(SOURCE)
    (workspace / "docs").mkdir()
    docs = {f"docs/doc-{i}.txt": text(700 * KiB) for i in range(3)}  # two of three fit
    for rel, content in docs.items():
        (workspace / rel).write_bytes(content)
    first = history.snapshot(workspace, moment(1))
    assert first is not None
    left = set(full(history, first)) - {"data.csv"}
    assert left  # at least one doc did not fit with the dataset
    for rel in {"src/pipeline.py", *docs} - left:
        assert history.file_at(first, rel) == (workspace / rel).read_bytes()
    stamps = {rel: os.stat(workspace / rel).st_mtime_ns for rel in docs}
    (workspace / "data.csv").unlink()  # the dataset deleted, nothing else touched
    second = history.snapshot(workspace, moment(2))
    assert second is not None and not history.limit_reached
    assert full(history, second) == {}
    assert history.large_files(second) == []
    for rel, content in docs.items():
        assert history.file_at(second, rel) == content
    assert history.file_at(second, "src/pipeline.py") == SOURCE
    assert {rel: os.stat(workspace / rel).st_mtime_ns for rel in docs} == stamps


def test_a_dataset_over_the_room_is_read_at_most_twice_the_room(
        tmp_path: Path, base: Path, workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Choosing the smallest files first walks the tree a second time when the first walk
    skipped some: each snapshot still reads no more than twice its room (plus git's output),
    and the files it leaves are not read at all."""
    count = [0]
    real = os.read

    def counting(fd: int, n: int) -> bytes:
        data = real(fd, n)
        count[0] += len(data)
        return data

    history = History(tmp_path / "s.git", limits=HistoryLimits(max_total_bytes=BUDGET))
    history.init(base, moment(0))
    (workspace / "dataset").mkdir()
    for i in range(96):  # 6 MiB of 64 KiB files, then the source last in the walk
        (workspace / "dataset" / f"part-{i:03d}.csv").write_bytes(text(64 * KiB))
    (workspace / "zz").mkdir()
    (workspace / "zz" / "solution.py").write_bytes(SOURCE)
    monkeypatch.setattr(os, "read", counting)
    for step in (1, 2, 3):
        room = history._room()
        assert room is not None
        count[0] = 0
        sha = history.snapshot(workspace, moment(step))
        assert sha is not None and not history.limit_reached
        assert count[0] <= 2 * room + 64 * KiB, f"snapshot {step} read {count[0]} bytes"
        assert history.file_at(sha, "zz/solution.py") == SOURCE
        stored = [p for p, _ in history.tree_at(sha) if history.file_at(sha, p) is not None]
        assert len(full(history, sha)) + len(stored) == 96 + 2
