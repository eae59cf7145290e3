"""The session event log: what happened, in order, stored before anyone is shown it.

``EventRecorder`` takes events from any number of tasks, writes them in batches through the
server's single SQLite writer (group commit: a write starts at once when idle, at most every
``batch_ms`` under load, sooner when ``max_batch`` events wait), gives each session a gap-free
``seq`` inside the write transaction, and only after the commit publishes them to live
subscribers. Queues are bounded per session and in total: a full queue makes ``record`` wait
(backpressure), it never drops. A subscriber that falls behind reads the rest from the database,
so it never sees a gap or a duplicate and never slows the recorder.

This module never imports aiohttp: ``write``/``read`` are plain callables (``common.db.Database``'s
``write`` and ``read`` fit).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any, Protocol, TypeVar

import sqlite_utils

from common.clock import iso, now
from workspaces.excerpt import PAYLOAD_LIMIT, encode_payload, safe_text

__all__ = [
    "ACTOR_CANDIDATE",
    "ACTOR_SYSTEM",
    "KINDS",
    "PAYLOAD_LIMIT",
    "Event",
    "EventRecorder",
    "Observation",
    "ReadFn",
    "RecorderClosed",
    "StoredEvent",
    "Subscription",
    "WriteFn",
    "add_snapshot",
    "encode_payload",
    "events_since",
    "interviewer_actor",
    "last_seq",
    "query_events",
    "snapshot_at",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

SESSION_SCHEDULED = "session.scheduled"
SESSION_STARTED = "session.started"
SESSION_JOINED = "session.joined"
SESSION_LEFT = "session.left"
SESSION_ENDED = "session.ended"
WORKSPACE_READY = "workspace.ready"
WORKSPACE_CRASHED = "workspace.crashed"
WORKSPACE_RESTARTED = "workspace.restarted"
WORKSPACE_FAILED = "workspace.failed"
FILE_CREATED = "file.created"
FILE_CHANGED = "file.changed"
FILE_RENAMED = "file.renamed"
FILE_DELETED = "file.deleted"
CELL_EXECUTED = "cell.executed"
KERNEL_STARTED = "kernel.started"
KERNEL_RESTARTED = "kernel.restarted"
KERNEL_INTERRUPTED = "kernel.interrupted"
KERNEL_DIED = "kernel.died"
KERNEL_FAILED = "kernel.failed"
TERMINAL_FAILED = "terminal.failed"
TERMINAL_COMMAND = "terminal.command"
TERMINAL_OUTPUT = "terminal.output"
TESTS_RUN = "tests.run"
CHECKS_RUN = "checks.run"
NOTE = "note"
HINT = "hint"
TIME_EXTENDED = "time.extended"
SNAPSHOT = "snapshot"
KINDS = frozenset({
    SESSION_SCHEDULED, SESSION_STARTED, SESSION_JOINED, SESSION_LEFT, SESSION_ENDED,
    WORKSPACE_READY, WORKSPACE_CRASHED, WORKSPACE_RESTARTED, WORKSPACE_FAILED,
    FILE_CREATED, FILE_CHANGED, FILE_RENAMED, FILE_DELETED,
    CELL_EXECUTED, KERNEL_STARTED, KERNEL_RESTARTED, KERNEL_INTERRUPTED, KERNEL_DIED,
    KERNEL_FAILED, TERMINAL_FAILED, TERMINAL_COMMAND, TERMINAL_OUTPUT, TESTS_RUN, CHECKS_RUN,
    NOTE, HINT, TIME_EXTENDED, SNAPSHOT,
})

ACTOR_CANDIDATE = "candidate"
ACTOR_SYSTEM = "system"
PAGE = 500


def interviewer_actor(user_id: int) -> str:
    return f"interviewer:{user_id}"


class WriteFn(Protocol):
    """Run ``fn`` on the single writer thread inside ``BEGIN IMMEDIATE … COMMIT``."""

    def __call__(self, fn: Callable[[sqlite_utils.Database], T], /) -> Awaitable[T]: ...


class ReadFn(Protocol):
    """Run ``fn`` on a reader connection (one consistent snapshot)."""

    def __call__(self, fn: Callable[[sqlite_utils.Database], T], /) -> Awaitable[T]: ...


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened in a session, not yet stored (``at``: when it was observed)."""

    session_id: str
    actor: str
    kind: str
    path: str = ""
    payload: Mapping[str, Any] = field(default_factory=dict)
    at: datetime = field(default_factory=now)


@dataclass(frozen=True, slots=True)
class Observation:
    """What a tracker saw, before it is tied to a session and an actor."""

    kind: str
    payload: Mapping[str, Any]
    at: datetime
    path: str = ""

    def event(self, session_id: str, actor: str, path: str | None = None) -> Event:
        return Event(session_id, actor, self.kind, self.path if path is None else path,
                     self.payload, self.at)


@dataclass(frozen=True)
class StoredEvent:
    """An event as stored: its ``seq`` is final and gap-free within the session."""

    session_id: str
    seq: int
    at: datetime
    actor: str
    kind: str
    path: str
    payload_json: str = field(repr=False)

    @cached_property
    def payload(self) -> dict[str, Any]:
        value = json.loads(self.payload_json)
        return value if isinstance(value, dict) else {"value": value}

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "at": iso(self.at), "actor": self.actor, "kind": self.kind,
                "path": self.path, "payload": self.payload}

    def to_json(self) -> str:
        """One JSON object (the stored payload text is reused, not re-encoded)."""
        head = json.dumps({"seq": self.seq, "at": iso(self.at), "actor": self.actor,
                           "kind": self.kind, "path": self.path}, ensure_ascii=False)
        return f'{head[:-1]}, "payload": {self.payload_json}}}'


class RecorderClosed(RuntimeError):
    """``record`` was called after ``close``."""


# ---------------------------------------------------------------------------------------------
# Queries (plain functions of a connection, for read and write callables)

COLUMNS = "session_id, seq, at, actor, kind, path, payload"
"""The columns ``stored_event`` reads, in its order."""
_INSERT = f"INSERT INTO events ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"  # noqa: S608


def stored_event(row: tuple[Any, ...]) -> StoredEvent:
    """An event from a row of ``COLUMNS``."""
    return StoredEvent(row[0], row[1], datetime.fromisoformat(row[2]), row[3], row[4], row[5],
                       row[6])


def query_events(db: sqlite_utils.Database, session_id: str, after_seq: int = 0,
                 limit: int = PAGE) -> list[StoredEvent]:
    rows = db.execute(
        f"SELECT {COLUMNS} FROM events WHERE session_id = ? AND seq > ? "  # noqa: S608
        "ORDER BY seq LIMIT ?", [session_id, after_seq, limit]).fetchall()
    return [stored_event(row) for row in rows]


async def events_since(read: ReadFn, session_id: str, after_seq: int = 0,
                       limit: int = PAGE) -> list[StoredEvent]:
    """Stored events of a session with ``seq > after_seq``, in order, at most ``limit``."""
    return await read(lambda db: query_events(db, session_id, after_seq, limit))


def last_seq(db: sqlite_utils.Database, session_id: str) -> int:
    (top,) = db.execute("SELECT COALESCE(MAX(seq), 0) FROM events WHERE session_id = ?",
                        [session_id]).fetchone()
    return int(top)


def add_snapshot(db: sqlite_utils.Database, session_id: str, seq: int, commit_sha: str,
                 at: datetime) -> None:
    """Remember that history commit ``commit_sha`` shows the workspace as of event ``seq``."""
    db.execute("INSERT OR IGNORE INTO snapshots (session_id, seq, commit_sha, at) "
               "VALUES (?, ?, ?, ?)", [session_id, seq, commit_sha, iso(at)])


def snapshot_at(db: sqlite_utils.Database, session_id: str,
                seq: int) -> tuple[int, str, datetime] | None:
    """The latest snapshot ``(seq, commit_sha, at)`` taken at or before event ``seq``."""
    row = db.execute("SELECT seq, commit_sha, at FROM snapshots WHERE session_id = ? AND seq <= ? "
                     "ORDER BY seq DESC, at DESC LIMIT 1", [session_id, seq]).fetchone()
    return None if row is None else (row[0], row[1], datetime.fromisoformat(row[2]))


# ---------------------------------------------------------------------------------------------
# The recorder


@dataclass(slots=True)
class _Row:  # never changed once made (not frozen: a frozen init costs a setattr per field)
    session_id: str
    at: datetime
    actor: str
    kind: str
    path: str
    payload_json: str


def _insert(batch: list[_Row]) -> Callable[[sqlite_utils.Database], list[int]]:
    def run(db: sqlite_utils.Database) -> list[int]:
        next_seq: dict[str, int] = {}
        rows, seqs = [], []
        for item in batch:
            seq = next_seq.get(item.session_id)
            if seq is None:  # read inside the write transaction: right after any restart
                seq = last_seq(db, item.session_id) + 1
            next_seq[item.session_id] = seq + 1
            seqs.append(seq)
            rows.append((item.session_id, seq, iso(item.at), item.actor, item.kind, item.path,
                         item.payload_json))
        db.conn.executemany(_INSERT, rows)
        return seqs

    return run


class EventRecorder:
    """Batching, gap-free, backpressured event writer with live subscriptions (see module doc)."""

    def __init__(self, write: WriteFn, read: ReadFn | None = None, *, batch_ms: float = 50,
                 max_batch: int = 2000, queue_size: int = 50_000,
                 session_queue_size: int | None = None, subscriber_buffer: int = 1000,
                 payload_limit: int = PAYLOAD_LIMIT) -> None:
        """``write``/``read``: the database's writer and reader callables (``read`` is needed
        only by ``subscribe``). ``queue_size`` bounds the events waiting in total and
        ``session_queue_size`` (default a quarter of it, at least ``max_batch``) those of one
        session, so a flood in one session leaves room for the others. ``subscriber_buffer``
        bounds the live events held for one subscriber before it falls back to the database."""
        self._write = write
        self._read = read
        self._batch_s = batch_ms / 1000
        self._max_batch = max(1, max_batch)
        self._queue_size = max(1, queue_size)
        self._session_queue_size = max(1, session_queue_size or
                                       max(queue_size // 4, min(queue_size, max_batch)))
        self._subscriber_buffer = subscriber_buffer
        self._payload_limit = payload_limit
        self._queues: dict[str, deque[_Row]] = {}
        self._total = 0
        self._space: list[asyncio.Future[None]] = []
        self._wake = asyncio.Event()
        self._last_start = -math.inf
        """When the last batch write started (``loop.time()``)."""
        self._timer: asyncio.TimerHandle | None = None
        """Wakes the writer task when the group-commit window of queued events ends."""
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._subs: dict[str, set[Subscription]] = {}
        self._published: dict[str, int] = {}

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="event-recorder")
            self._task.add_done_callback(self._stopped)

    def _stopped(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None and not self._closing:
            log.error("the event recorder stopped unexpectedly; %d events queued", self._total,
                      exc_info=task.exception())

    async def close(self) -> None:
        """Write everything queued, then end every subscription (after it drains)."""
        self._closing = True
        self._wake.set()
        if self._task is None and self._total:
            await self.start()
        try:
            if self._task is not None:
                await self._task
        finally:
            for subs in list(self._subs.values()):
                for sub in list(subs):
                    sub._end()

    # -- recording --------------------------------------------------------------------------

    async def record(self, event: Event) -> None:
        """Queue ``event``; waits while the queues are full. Stored and published later."""
        if self._closing:
            raise RecorderClosed("the event recorder is closed")
        if event.kind not in KINDS:
            raise ValueError(f"unknown event kind {event.kind!r}")
        row = _Row(safe_text(event.session_id), event.at, safe_text(event.actor), event.kind,
                   safe_text(event.path), encode_payload(event.payload, self._payload_limit))
        sid = row.session_id
        loop = asyncio.get_running_loop()
        while self._total >= self._queue_size or \
                len(self._queues.get(sid, ())) >= self._session_queue_size:
            waiter: asyncio.Future[None] = loop.create_future()
            self._space.append(waiter)
            await waiter
        self._queues.setdefault(sid, deque()).append(row)
        self._total += 1
        if self._total >= self._max_batch:
            self._wake.set()
        elif self._total == 1:
            # the first event waiting: wake the writer when its window ends, not now only to
            # have it go back to sleep (a task step and a timeout less per batch)
            due = self._last_start + self._batch_s
            if loop.time() >= due:
                self._wake.set()
            elif self._timer is None:
                self._timer = loop.call_at(due, self._due)

    @property
    def queued(self) -> int:
        return self._total

    def published_seq(self, session_id: str) -> int | None:
        """Highest ``seq`` stored and published by this recorder for the session, if any."""
        return self._published.get(session_id)

    def _due(self) -> None:
        self._timer = None
        self._wake.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                if self._total == 0:
                    if self._closing:
                        return
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                due = self._last_start + self._batch_s
                if due > loop.time() and self._total < self._max_batch and not self._closing:
                    self._wake.clear()
                    if self._timer is None:  # a timer, not asyncio.timeout: no cancellation
                        self._timer = loop.call_at(due, self._due)
                    await self._wake.wait()
                    continue
                batch = self._take()
                self._last_start = loop.time()
                seqs = await self._write_batch(batch)
                self._publish(batch, seqs)
        finally:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

    def _take(self) -> list[_Row]:
        """Up to ``max_batch`` rows, shared fairly between the sessions that have some."""
        batch: list[_Row] = []
        while self._queues and len(batch) < self._max_batch:
            share = max(1, (self._max_batch - len(batch)) // len(self._queues))
            for sid in list(self._queues):
                queue = self._queues[sid]
                for _ in range(min(share, len(queue), self._max_batch - len(batch))):
                    batch.append(queue.popleft())
                if not queue:
                    del self._queues[sid]
                if len(batch) >= self._max_batch:
                    break
        self._total -= len(batch)
        waiters, self._space = self._space, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
        return batch

    async def _write_batch(self, batch: list[_Row]) -> list[int]:
        attempt = 0
        while True:
            try:
                return await self._write(_insert(batch))
            except Exception:
                attempt += 1
                log.exception("writing %d events failed (attempt %d)", len(batch), attempt)
                if self._closing and attempt >= 3:
                    log.error("event recorder closing: %d events were not stored",
                              len(batch) + self._total)
                    raise
                await asyncio.sleep(min(0.05 * 2 ** attempt, 2.0))

    def _publish(self, batch: list[_Row], seqs: list[int]) -> None:
        """Hand stored events to subscribers (objects are built only for watched sessions)."""
        by_session: dict[str, list[StoredEvent]] = {}
        for row, seq in zip(batch, seqs, strict=True):
            self._published[row.session_id] = seq
            if row.session_id in self._subs:
                by_session.setdefault(row.session_id, []).append(StoredEvent(
                    row.session_id, seq, row.at, row.actor, row.kind, row.path, row.payload_json))
        for sid, stored_events in by_session.items():
            for sub in list(self._subs.get(sid, ())):
                sub._push(stored_events)

    # -- live subscriptions -----------------------------------------------------------------

    def subscribe(self, session_id: str, after_seq: int = 0) -> Subscription:
        """Every stored event of the session with ``seq > after_seq``, then live ones, in order.

        Registered at once (nothing published from now on is missed); iterate it with
        ``async for``; ``close()`` it (or use ``async with``) when done.
        """
        if self._read is None:
            raise RuntimeError("subscribe needs the recorder's read callable")
        sub = Subscription(self, self._read, session_id, after_seq, self._subscriber_buffer)
        if self._closing and self._task is not None and self._task.done():
            sub._end()
        else:
            self._subs.setdefault(session_id, set()).add(sub)
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.session_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.session_id]


class Subscription:
    """An async iterator of one session's stored events, backlog first, then live."""

    def __init__(self, recorder: EventRecorder, read: ReadFn, session_id: str, after_seq: int,
                 buffer: int) -> None:
        self._recorder = recorder
        self._read = read
        self.session_id = session_id
        self.last_seq = after_seq
        """The ``seq`` of the last event handed out: resume from here after a disconnect."""
        self._limit = max(1, buffer)
        self._live: deque[StoredEvent] = deque()
        self._backlog: deque[StoredEvent] = deque()
        self._from_db = True
        self._wake = asyncio.Event()
        self._ended = False
        self.catch_ups = 0
        """How many times this subscriber had to fall back to the database."""

    def _push(self, events: list[StoredEvent]) -> None:
        if self._ended:
            return
        if self._from_db or len(self._live) + len(events) > self._limit:
            # Too slow (or still reading the backlog): everything published is stored, so drop
            # the buffer and read the rest from the database when the consumer comes back.
            if not self._from_db:
                self.catch_ups += 1
            self._from_db = True
            self._live.clear()
        else:
            self._live.extend(events)
        self._wake.set()

    def _end(self) -> None:
        self._ended = True
        self._wake.set()

    def close(self) -> None:
        self._recorder._unsubscribe(self)
        self._end()
        self._live.clear()
        self._backlog.clear()
        self._from_db = False

    async def aclose(self) -> None:
        self.close()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> StoredEvent:
        while True:
            if self._backlog:
                event = self._backlog.popleft()
                if event.seq <= self.last_seq:
                    continue
                self.last_seq = event.seq
                return event
            if self._from_db:
                self._from_db = False
                self._live.clear()
                page = await events_since(self._read, self.session_id, self.last_seq, PAGE)
                if len(page) == PAGE:
                    self._from_db = True
                self._backlog.extend(page)
                continue
            if self._live:
                event = self._live.popleft()
                if event.seq <= self.last_seq:
                    continue
                if event.seq != self.last_seq + 1:  # never expected; the database decides
                    self._from_db = True
                    continue
                self.last_seq = event.seq
                return event
            if self._ended:
                raise StopAsyncIteration
            self._wake.clear()
            await self._wake.wait()
