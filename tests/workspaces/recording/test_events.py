"""The event recorder on a real SQLite file: gap-free sequences, batches through one writer thread,
backpressure, publication only after commit, resumable subscriptions, and a kill -9."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlite_utils

from tests.conftest import REPO
from workspaces.recording import events
from workspaces.recording.event_migrations import migrations
from workspaces.recording.events import Event, EventRecorder, RecorderClosed, StoredEvent

T = TypeVar("T")


def connect(path: Path) -> sqlite_utils.Database:
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA busy_timeout = 5000")
    return sqlite_utils.Database(conn)


class Store:
    """One writer thread (BEGIN IMMEDIATE … COMMIT) and one reader thread, as the server has."""

    def __init__(self, path: Path, write_delay: float = 0.0) -> None:
        self.path = path
        self.writer = ThreadPoolExecutor(1, thread_name_prefix="test-writer")
        self.reader = ThreadPoolExecutor(1, thread_name_prefix="test-reader")
        self.wdb = connect(path)
        self.rdb = connect(path)
        self.write_delay = write_delay
        self.gate = threading.Event()
        self.gate.set()
        self.batches: list[int] = []

    async def write(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        def run() -> T:
            self.gate.wait(10)
            if self.write_delay:
                threading.Event().wait(self.write_delay)
            self.wdb.conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(self.wdb)
            except BaseException:
                self.wdb.conn.execute("ROLLBACK")
                raise
            self.wdb.conn.execute("COMMIT")
            return result

        result = await asyncio.get_running_loop().run_in_executor(self.writer, run)
        if isinstance(result, list):
            self.batches.append(len(result))
        return result

    async def read(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        def run() -> T:
            self.rdb.conn.execute("BEGIN")
            try:
                return fn(self.rdb)
            finally:
                self.rdb.conn.execute("ROLLBACK")

        return await asyncio.get_running_loop().run_in_executor(self.reader, run)

    def rows(self, session_id: str) -> list[tuple[Any, ...]]:
        db = connect(self.path)
        try:
            return list(db.execute("SELECT seq, actor, kind, path, payload, at FROM events "
                                   "WHERE session_id = ? ORDER BY seq", [session_id]).fetchall())
        finally:
            db.conn.close()

    def close(self) -> None:
        self.writer.shutdown()
        self.reader.shutdown()
        self.wdb.conn.close()
        self.rdb.conn.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "pairlab.db"
    db = connect(path)
    migrations.apply(db)
    db.conn.close()
    return path


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    s = Store(db_path)
    yield s
    s.close()


@pytest.fixture
async def recorder(store: Store) -> AsyncIterator[EventRecorder]:
    rec = EventRecorder(store.write, store.read, batch_ms=2, max_batch=64)
    await rec.start()
    yield rec
    await rec.close()


def note(session: str, n: int, actor: str = events.ACTOR_CANDIDATE, **extra: Any) -> Event:
    return Event(session, actor, events.NOTE, payload={"n": n, **extra})


async def test_sequence_is_gap_free_under_concurrent_recording(store: Store,
                                                               recorder: EventRecorder) -> None:
    async def producer(task: int, session: str) -> None:
        for i in range(60):
            await recorder.record(note(session, i, actor=f"task-{task}"))
            if i % 7 == 0:
                await asyncio.sleep(0)

    await asyncio.gather(*(producer(t, "s-a" if t % 2 else "s-b") for t in range(16)))
    await recorder.close()
    for session in ("s-a", "s-b"):
        rows = store.rows(session)
        assert [r[0] for r in rows] == list(range(1, 8 * 60 + 1))
        for task in range(16):
            ns = [json.loads(r[4])["n"] for r in rows if r[1] == f"task-{task}"]
            assert ns == ([] if (task % 2 == 1) != (session == "s-a") else list(range(60)))
    assert len(store.batches) > 1, "events are written in several batches"
    assert max(store.batches) <= 64


async def test_sequence_continues_after_reopening(store: Store) -> None:
    first = EventRecorder(store.write, store.read, batch_ms=1)
    await first.start()
    for i in range(10):
        await first.record(note("s1", i))
    await first.record(note("s2", 0))
    await first.close()
    with pytest.raises(RecorderClosed):
        await first.record(note("s1", 99))

    second = EventRecorder(store.write, store.read, batch_ms=1)
    await second.start()
    for i in range(5):
        await second.record(note("s1", 10 + i))
    await second.close()
    assert [r[0] for r in store.rows("s1")] == list(range(1, 16))
    assert [json.loads(r[4])["n"] for r in store.rows("s1")] == list(range(15))
    assert [r[0] for r in store.rows("s2")] == [1]


async def test_timestamps_and_fields_are_stored(store: Store, recorder: EventRecorder) -> None:
    when = datetime(2025, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
    await recorder.record(Event("s1", events.interviewer_actor(7), events.FILE_CHANGED,
                                "src/app.py", {"size": 12}, when))
    await recorder.close()
    [(seq, actor, kind, path, payload, at)] = store.rows("s1")
    assert (seq, actor, kind, path) == (1, "interviewer:7", "file.changed", "src/app.py")
    assert json.loads(payload) == {"size": 12}
    assert at == "2025-03-04T05:06:07.891011+00:00"


async def test_payloads_are_bounded_with_a_visible_marker(store: Store,
                                                          recorder: EventRecorder) -> None:
    huge = "x" * 100_000
    await recorder.record(note("s1", 1, output=huge, code="print(1)"))
    await recorder.record(note("s1", 2, items=[str(i) * 50 for i in range(5000)]))
    await recorder.record(note("s1", 3, name="bad \udcff name"))
    await recorder.close()
    rows = store.rows("s1")
    for row in rows:
        assert len(row[4].encode()) <= events.PAYLOAD_LIMIT
    first = json.loads(rows[0][4])
    assert first["code"] == "print(1)" and first["n"] == 1
    assert "…[truncated" in first["output"] and first["output"].startswith("xxxx")
    assert "…[truncated" in rows[1][4]
    assert json.loads(rows[2][4])["name"] == "bad ? name"


async def test_unknown_kinds_are_refused(recorder: EventRecorder) -> None:
    with pytest.raises(ValueError, match="unknown event kind"):
        await recorder.record(Event("s1", "candidate", "made.up"))


async def test_record_waits_when_the_queue_is_full_and_loses_nothing(store: Store) -> None:
    rec = EventRecorder(store.write, store.read, batch_ms=0, max_batch=2, queue_size=4,
                        session_queue_size=4)
    await rec.start()
    store.gate.clear()  # the writer is stuck: the first batch is taken, then the queue fills
    for i in range(6):
        await rec.record(note("s1", i))
    assert rec.queued == 4
    blocked = asyncio.create_task(rec.record(note("s1", 6)))
    for _ in range(20):
        await asyncio.sleep(0.005)
    assert not blocked.done(), "record() must wait while the queue is full"
    assert rec.queued == 4
    store.gate.set()
    await blocked
    for i in range(7, 40):
        await rec.record(note("s1", i))
        assert rec.queued <= 4
    await rec.close()
    rows = store.rows("s1")
    assert [r[0] for r in rows] == list(range(1, 41))
    assert [json.loads(r[4])["n"] for r in rows] == list(range(40))


async def test_one_flooding_session_does_not_block_another(store: Store) -> None:
    rec = EventRecorder(store.write, store.read, batch_ms=0, max_batch=1, queue_size=100,
                        session_queue_size=3)
    await rec.start()
    store.gate.clear()
    await rec.record(note("flood", 0))
    await asyncio.sleep(0.01)  # taken by the stuck writer
    for i in range(1, 4):
        await rec.record(note("flood", i))
    blocked = asyncio.create_task(rec.record(note("flood", 4)))
    await asyncio.sleep(0.01)
    assert not blocked.done()
    await asyncio.wait_for(rec.record(note("calm", 0)), 1)  # does not wait for the flood
    store.gate.set()
    await blocked
    await rec.close()
    assert [r[0] for r in store.rows("flood")] == [1, 2, 3, 4, 5]
    assert [r[0] for r in store.rows("calm")] == [1]


async def test_subscription_resumes_without_gaps_or_duplicates(store: Store,
                                                               recorder: EventRecorder) -> None:
    for i in range(100):
        await recorder.record(note("s1", i))
    await recorder.record(note("other", 0))

    async def produce() -> None:
        for i in range(100, 700):
            await recorder.record(note("s1", i))
            if i % 13 == 0:
                await asyncio.sleep(0.001)

    producer = asyncio.create_task(produce())
    seen: list[StoredEvent] = []
    async with recorder.subscribe("s1", after_seq=40) as sub:
        async for event in sub:
            seen.append(event)
            if event.seq == 700:
                break
    await producer
    assert [e.seq for e in seen] == list(range(41, 701))
    assert [e.payload["n"] for e in seen] == list(range(40, 700))
    assert all(e.session_id == "s1" for e in seen)
    assert sub.last_seq == 700


async def test_slow_subscriber_catches_up_from_the_database(store: Store) -> None:
    rec = EventRecorder(store.write, store.read, batch_ms=0, max_batch=10, subscriber_buffer=5)
    await rec.start()
    sub = rec.subscribe("s1")

    async def produce() -> None:
        for i in range(300):
            await rec.record(note("s1", i))

    producer = asyncio.create_task(produce())
    seqs = []
    async for event in sub:
        seqs.append(event.seq)
        if len(seqs) % 10 == 0:
            await asyncio.sleep(0.01)  # slower than the producer
        if event.seq == 300:
            break
    await producer
    sub.close()
    await rec.close()
    assert seqs == list(range(1, 301))
    assert sub.catch_ups > 0, "the slow subscriber overflowed its buffer at least once"


async def test_nothing_is_published_before_it_is_stored(store: Store,
                                                        recorder: EventRecorder) -> None:
    sub = recorder.subscribe("s1")

    async def produce() -> None:
        for i in range(50):
            await recorder.record(note("s1", i))

    producer = asyncio.create_task(produce())
    check = connect(store.path)
    try:
        async for event in sub:
            (count,) = check.execute("SELECT COUNT(*) FROM events WHERE session_id = 's1' "
                                     "AND seq = ?", [event.seq]).fetchone()
            assert count == 1
            if event.seq == 50:
                break
    finally:
        check.conn.close()
        sub.close()
    await producer


async def test_subscriptions_end_when_the_recorder_closes(store: Store) -> None:
    rec = EventRecorder(store.write, store.read, batch_ms=0)
    await rec.start()
    sub = rec.subscribe("s1")
    for i in range(3):
        await rec.record(note("s1", i))
    await rec.close()
    assert [e.seq async for e in sub] == [1, 2, 3]


async def test_events_since_and_json(store: Store, recorder: EventRecorder) -> None:
    for i in range(5):
        await recorder.record(note("s1", i, text="<script>alert(1)</script>"))
    await recorder.close()
    page = await events.events_since(store.read, "s1", 2, limit=2)
    assert [e.seq for e in page] == [3, 4]
    as_json = json.loads(page[0].to_json())
    assert as_json == page[0].to_dict()
    assert as_json["payload"] == {"n": 2, "text": "<script>alert(1)</script>"}
    assert recorder.published_seq("s1") == 5


def test_snapshot_positions(db_path: Path) -> None:
    db = connect(db_path)
    try:
        when = datetime(2025, 1, 1, tzinfo=UTC)
        events.add_snapshot(db, "s1", 0, "a" * 40, when)
        events.add_snapshot(db, "s1", 10, "b" * 40, when)
        events.add_snapshot(db, "s1", 25, "c" * 40, when)
        assert events.snapshot_at(db, "s1", 9) == (0, "a" * 40, when)
        assert events.snapshot_at(db, "s1", 10) == (10, "b" * 40, when)
        assert events.snapshot_at(db, "s1", 1000) == (25, "c" * 40, when)
        assert events.snapshot_at(db, "s2", 5) is None
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute("INSERT INTO events VALUES ('s1', 1, 'x', 'a', 'note', '', '{}')")
            db.execute("UPDATE events SET actor = 'b'")
    finally:
        db.conn.close()


WRITER_SCRIPT = """
import asyncio, sqlite3, sys
from concurrent.futures import ThreadPoolExecutor
import sqlite_utils
from workspaces.recording import events
from workspaces.recording.events import Event, EventRecorder

path = sys.argv[1]
conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
conn.execute("PRAGMA journal_mode = WAL")
conn.execute("PRAGMA synchronous = FULL")
db = sqlite_utils.Database(conn)
pool = ThreadPoolExecutor(1)

async def write(fn):
    def run():
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(db)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result
    return await asyncio.get_running_loop().run_in_executor(pool, run)

async def main():
    rec = EventRecorder(write, batch_ms=5, max_batch=100)
    await rec.start()
    i = 0
    while True:
        for session in ("k1", "k2"):
            await rec.record(Event(session, "candidate", events.NOTE, payload={"n": i}))
        i += 1
        if i % 50 == 0:
            await asyncio.sleep(0)

asyncio.run(main())
"""


async def test_kill_9_while_recording_keeps_the_log_consistent(store: Store,
                                                               db_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", WRITER_SCRIPT, str(db_path)], cwd=REPO,
                            env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO)},
                            start_new_session=True)
    try:
        for _ in range(600):
            if len(store.rows("k1")) >= 500:
                break
            await asyncio.sleep(0.01)
        assert proc.poll() is None
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    check = connect(db_path)
    try:
        assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        check.conn.close()
    for session in ("k1", "k2"):
        seqs = [r[0] for r in store.rows(session)]
        assert len(seqs) >= 1 and seqs == list(range(1, len(seqs) + 1))
    before = len(store.rows("k1"))
    rec = EventRecorder(store.write, store.read, batch_ms=0)
    await rec.start()
    await rec.record(note("k1", -1))
    await rec.close()
    assert [r[0] for r in store.rows("k1")] == list(range(1, before + 2))
