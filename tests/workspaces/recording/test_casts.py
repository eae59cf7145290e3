"""Terminal casts: asciicast v2 files per connection, bounded, written off the event loop."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from common.db import Database
from server.db import open_migrated
from workspaces.recording import casts as C
from workspaces.recording.casts import CastStore, cast_file, list_casts

T0 = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    open_migrated(tmp_path / "db.sqlite").conn.close()
    database = Database(tmp_path / "db.sqlite")
    yield database
    await database.close()


def frame(kind: str, *args: Any) -> str:
    return json.dumps([kind, *args])


def read_cast(path: Path) -> tuple[dict[str, Any], list[list[Any]]]:
    header, *lines = path.read_text(encoding="utf-8").splitlines()
    return json.loads(header), [json.loads(line) for line in lines]


async def test_a_cast_is_asciicast_v2_with_every_frame(db: Database, tmp_path: Path) -> None:
    clock = Clock()
    store = CastStore(db, tmp_path / "data", clock)
    cast = await store.open("s1", "1", "candidate")
    cast.feed("out", frame("setup", {}))
    cast.feed("in", frame("set_size", 30, 100, 600, 800))
    outputs = ["\x1b]0;title\x07$ ", "l", "s", "\r\n\x1b[?1049h\x1b[Hfull screen ✓\r\n",
               "\x1b[?1049l$ "]
    for text in outputs[:3]:
        cast.feed("out", frame("stdout", text))
        clock.advance(0.25)
    await store.flush()  # part of it now, the rest at the end
    cast.feed("in", frame("stdin", "ls\r"))
    clock.advance(1.5)
    for text in outputs[3:]:
        cast.feed("out", frame("stdout", text))
    cast.feed("in", frame("set_size", 40, 120))
    cast.feed("out", frame("disconnect", 1))
    cast.feed("in", "not json")
    await store.close(cast)
    header, lines = read_cast(tmp_path / "data" / "casts" / "s1" / "1.1.cast")
    assert header["version"] == 2 and (header["width"], header["height"]) == (100, 30)
    assert header["timestamp"] == int(T0.timestamp()) and header["env"]["TERM"]
    assert [line[1] for line in lines] == ["r", "o", "o", "o", "i", "o", "o", "r"]
    assert "".join(line[2] for line in lines if line[1] == "o") == "".join(outputs)
    assert [line[2] for line in lines if line[1] in "ir"] == ["100x30", "ls\r", "120x40"]
    times = [line[0] for line in lines]
    assert times == sorted(times) and times[-1] == pytest.approx(2.25)
    [row] = await db.read(lambda d: list_casts(d, "s1"))
    assert row["id"] == "1.1" and row["actor"] == "candidate" and row["ended_at"]
    assert row["bytes"] == sum(len(t.encode()) for t in outputs) and row["dropped_bytes"] == 0


async def test_the_header_waits_for_the_size_then_says_80x24(db: Database,
                                                             tmp_path: Path) -> None:
    clock = Clock()
    store = CastStore(db, tmp_path / "data", clock)
    cast = await store.open("s1", "term", "interviewer:3")
    cast.feed("out", frame("stdout", "$ "))
    await store.flush()
    assert not cast.path.exists()  # no size yet, and not waited long enough
    clock.advance(C.HEADER_WAIT_S)
    await store.flush()
    header, lines = read_cast(cast.path)
    assert (header["width"], header["height"]) == (80, 24) and lines == [[0.0, "o", "$ "]]


async def test_output_past_the_bounds_is_counted_and_marked(
        db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    store = CastStore(db, tmp_path / "data", clock)
    cast = await store.open("s1", "1", "candidate")
    cast.feed("in", frame("set_size", 24, 80))
    flood = "y\r\n" * 100_000  # 300 kB a frame
    for _ in range(10):  # 3 MB in under a second: the rate bound (1 MiB/s)
        cast.feed("out", frame("stdout", flood))
        clock.advance(0.05)
    clock.advance(1)
    cast.feed("in", frame("stdin", "\x03"))  # keys are always kept
    cast.feed("out", frame("stdout", "^C\r\n$ "))  # within the bounds again
    await store.close(cast)
    _, lines = read_cast(cast.path)
    kept = sum(len(line[2]) for line in lines if line[1] == "o")
    assert kept == 3 * 300_000 + len("^C\r\n$ ") == cast.kept
    markers = [line[2] for line in lines if line[1] == "m"]
    # at once, then at most once a second (here: when output is kept again)
    assert markers == [C.marker(300_000), C.marker(6 * 300_000)]
    assert [line[2] for line in lines if line[1] == "i"] == ["\x03"]
    assert cast.dropped == 7 * 300_000
    # the per-cast bound, then the session's bound across casts
    monkeypatch.setattr(C, "CAST_BYTES", 5000)
    monkeypatch.setattr(C, "SESSION_BYTES", 7000)
    small = await store.open("s2", "1", "candidate")
    for _ in range(3):
        small.feed("out", frame("stdout", "x" * 2000))
        clock.advance(1.5)
    await store.close(small)
    other = await store.open("s2", "2", "candidate")
    for _ in range(3):
        other.feed("out", frame("stdout", "z" * 2000))
        clock.advance(1.5)
    await store.close(other)
    assert (small.kept, small.dropped, other.kept, other.dropped) == (4000, 2000, 2000, 4000)
    _, lines = read_cast(other.path)
    assert [line[2] for line in lines if line[1] == "m"] == [C.marker(2000), C.marker(2000)]
    rows = await db.read(lambda d: list_casts(d, "s2"))
    assert [(r["id"], r["bytes"], r["dropped_bytes"]) for r in rows] == [
        ("1.1", 4000, 2000), ("2.2", 2000, 4000)]


async def test_a_reconnect_is_a_new_cast_that_starts_with_the_replay(
        db: Database, tmp_path: Path) -> None:
    """terminado replays its buffer to a new connection: that screen is in the new cast."""
    clock = Clock()
    data = tmp_path / "data"
    store = CastStore(db, data, clock)
    first = await store.open("s1", "1", "candidate")
    first.feed("in", frame("set_size", 24, 80))
    first.feed("out", frame("stdout", "$ echo one\r\none\r\n$ "))
    await store.close(first)
    clock.advance(5)
    store = CastStore(db, data, clock)  # as after a pairlab restart: numbering goes on
    second = await store.open("s1", "1", "candidate")
    second.feed("out", frame("setup", {}))
    second.feed("out", frame("stdout", "$ echo one\r\none\r\n$ "))  # the replay
    second.feed("in", frame("set_size", 24, 80))
    await store.close_session("s1")
    assert (first.id, second.id) == ("1.1", "1.2")
    _, lines = read_cast(second.path)
    assert lines[0][1:] == ["o", "$ echo one\r\none\r\n$ "]
    found = await db.read(lambda d: cast_file(data, d, "s1", "1.2"))
    assert found == second.path
    for bad in ("../1.2", "1.2/../../x", "1", "1.2.cast", "9.9"):
        assert await db.read(lambda d, bad=bad: cast_file(data, d, "s1", bad)) is None


async def test_casts_a_stopped_run_left_open_are_closed_by_the_next(db: Database,
                                                                   tmp_path: Path) -> None:
    clock = Clock()
    before = CastStore(db, tmp_path / "data", clock)
    cut = await before.open("s1", "1", "candidate")  # the run stops without closing it
    cut.feed("in", frame("set_size", 24, 80, 600, 800))
    cut.feed("out", frame("stdout", "$ make test\r\n"))
    await before.flush()
    gone = await before.open("s1", "2", "candidate")
    cut.path.parent.joinpath(f"{gone.id}.cast").unlink(missing_ok=True)  # its file never made
    listed: list[dict[str, Any]] = await db.read(lambda d: list_casts(d, "s1"))
    assert [c["ended_at"] for c in listed] == [None, None]

    after = CastStore(db, tmp_path / "data", clock)
    live = await after.open("s1", "1", "candidate")  # this run's own cast stays open
    assert await after.close_cut() == 2
    rows = {c["id"]: c for c in await db.read(lambda d: list_casts(d, "s1"))}
    written = datetime.fromtimestamp(cut.path.stat().st_mtime, UTC)
    assert datetime.fromisoformat(rows[cut.id]["ended_at"]) == written
    assert rows[cut.id]["bytes"] == cut.path.stat().st_size > 0
    assert rows[gone.id]["ended_at"] == rows[gone.id]["started_at"]
    assert rows[gone.id]["bytes"] == 0
    assert rows[live.id]["ended_at"] is None
    assert await after.close_cut() == 0


async def test_a_flood_of_input_is_bounded_and_marked(
        db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Attack: the candidate's browser sends pastes and resizes without end (keys are never
    dropped for output, but they are not an unbounded way to fill the server's disk)."""
    monkeypatch.setattr(C, "INPUT_BYTES", 10_000)
    monkeypatch.setattr(C, "SESSION_INPUT_BYTES", 15_000)
    clock = Clock()
    store = CastStore(db, tmp_path / "data", clock)
    cast = await store.open("s1", "1", "candidate")
    cast.feed("in", frame("set_size", 24, 80))
    for _ in range(50):
        cast.feed("in", frame("stdin", "p" * 1000))  # 50 kB of pastes in no time
        cast.feed("in", frame("set_size", 30, 100))
    clock.advance(2)
    cast.feed("out", frame("stdout", "$ "))  # output is not what the input used up
    await store.close(cast)
    header, lines = read_cast(cast.path)
    assert (header["width"], header["height"]) == (80, 24)
    kept = [line for line in lines if line[1] in "ir"]
    assert cast.input_kept <= 10_000 and 0 < len(kept) < 51
    assert cast.input_kept + cast.input_dropped == 1 * C.RESIZE_BYTES + 50 * (
        1000 + C.RESIZE_BYTES)
    assert [line[2] for line in lines if line[1] == "o"] == ["$ "]
    markers = [line[2] for line in lines if line[1] == "m"]
    assert markers and all("of input not recorded" in m for m in markers)
    assert sum(int(m.split()[1]) for m in markers) == cast.input_dropped
    assert cast.path.stat().st_size < 20_000
    # the session's bound, across connections
    other = await store.open("s1", "2", "candidate")
    for _ in range(20):
        other.feed("in", frame("stdin", "q" * 1000))
    await store.close(other)
    assert other.input_kept <= 15_000 - cast.input_kept and other.input_dropped > 0
