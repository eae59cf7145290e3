"""The SQLite database: one writer thread and a small pool of reader threads.

As datasette's ``execute_write_fn``: every write is a function run on the single writer thread
inside ``BEGIN IMMEDIATE``; reads run on reader threads with their own connections. Callers
await both and never block the event loop. Which migrations exist is the server's business
(``server.db``); this module knows no table.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import sqlite_utils

log = logging.getLogger(__name__)
T = TypeVar("T")
BUSY_TIMEOUT_MS = 5000


def connect(path: Path, *, writer: bool = False) -> sqlite_utils.Database:
    """Open one connection with pairlab's pragmas; the file is created owner-only."""
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        os.close(fd)
    for existing in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if existing.exists() and existing.stat().st_mode & 0o077:
            os.chmod(existing, 0o600)
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA foreign_keys = ON")
    # Writes (scores among them) are made durable at commit; readers need no fsync.
    conn.execute("PRAGMA synchronous = FULL" if writer else "PRAGMA synchronous = NORMAL")
    return sqlite_utils.Database(conn)


@contextmanager
def write_transaction(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """One write transaction that takes the write lock at its start (``BEGIN IMMEDIATE``), for
    writers outside the server (the CLI, the demo, tools) while the server runs.

    sqlite-utils' ``atomic()`` begins a deferred transaction: one that reads and then writes
    fails at once with "database is locked" when the server committed in between (SQLite cannot
    upgrade a stale read snapshot, and the busy timeout does not apply), where an immediate one
    waits its turn. Inside a transaction already, it is a savepoint of that one."""
    if db.conn.in_transaction:
        with db.atomic():
            yield db
        return
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.conn.execute("ROLLBACK")
        raise
    db.conn.execute("COMMIT")


class Database:
    """Async access to the one SQLite file."""

    def __init__(self, path: Path, readers: int = 3) -> None:
        self.path = path
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        self._readers = ThreadPoolExecutor(max_workers=readers, thread_name_prefix="sqlite-reader")
        self._local = threading.local()
        self._all: list[sqlite_utils.Database] = []
        self._lock = threading.Lock()

    def _conn(self, writer: bool, *, durable: bool = True) -> sqlite_utils.Database:
        name = "db" if durable else "unsynced"
        db: sqlite_utils.Database | None = getattr(self._local, name, None)
        if db is None:
            db = connect(self.path, writer=writer)
            if not durable:
                db.conn.execute("PRAGMA synchronous = NORMAL")
            setattr(self._local, name, db)
            with self._lock:
                self._all.append(db)
        return db

    async def write(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        """Run ``fn`` on the writer thread inside one ``BEGIN IMMEDIATE`` transaction, on disk
        when it returns (``synchronous = FULL``: the WAL is fsynced at commit)."""
        return await self._write(fn, durable=True)

    async def write_unsynced(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        """As ``write``, but the commit does not wait for the disk (``synchronous = NORMAL``
        for its transactions only), for the recording's event batches: a pairlab that crashes
        or is killed loses none of it (the WAL is in the kernel's page cache, and SQLite's WAL
        is never corrupted by a missing fsync); a power cut or a kernel crash can lose what was
        committed since the last durable ``write`` or checkpoint, which fsyncs the WAL and so
        everything before it too. Skipping the fsync is most of what storing a cell's events
        cost the proxy (bench.proxy). It runs on a second connection of the writer thread, set
        to ``NORMAL`` once (rather than two pragmas around each transaction of the first); the
        thread runs one transaction at a time, so the two never wait for each other."""
        return await self._write(fn, durable=False)

    async def _write(self, fn: Callable[[sqlite_utils.Database], T], *, durable: bool) -> T:
        def run() -> T:
            db = self._conn(writer=True, durable=durable)
            db.conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(db)
            except BaseException:
                db.conn.execute("ROLLBACK")
                raise
            db.conn.execute("COMMIT")
            return result

        return await asyncio.get_running_loop().run_in_executor(self._writer, run)

    async def read(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        """Run ``fn`` on a reader thread (a consistent snapshot for its duration)."""

        def run() -> T:
            db = self._conn(writer=False)
            db.conn.execute("BEGIN")
            try:
                return fn(db)
            finally:
                db.conn.execute("ROLLBACK")

        return await asyncio.get_running_loop().run_in_executor(self._readers, run)

    async def on_writer(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        """Run ``fn`` on the writer thread outside any transaction (migrations manage their own)."""

        def run() -> T:
            return fn(self._conn(writer=True))

        return await asyncio.get_running_loop().run_in_executor(self._writer, run)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._writer.shutdown, True)
        await loop.run_in_executor(None, self._readers.shutdown, True)
        with self._lock:
            for db in self._all:
                db.conn.close()
            self._all.clear()
