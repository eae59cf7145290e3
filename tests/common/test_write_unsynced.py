"""``Database.write_unsynced``: the recording's event batches commit without an fsync, yet a
pairlab that is killed right after loses none of them, and every other write stays durable."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from common.db import Database

WRITER = """
import asyncio, sys, time
from pathlib import Path
from common.db import Database

async def main() -> None:
    db = Database(Path(sys.argv[1]))
    await db.write(lambda d: d.conn.execute("CREATE TABLE events (n INTEGER)"))
    for n in range(200):
        await db.write_unsynced(lambda d, n=n: d.conn.execute("INSERT INTO events VALUES (?)",
                                                              (n,)))
    print("written", flush=True)
    time.sleep(600)  # killed here, its connections never closed (no checkpoint)

asyncio.run(main())
"""


def test_events_written_unsynced_survive_the_process_being_killed(tmp_path: Path) -> None:
    path = tmp_path / "pairlab.db"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "written\n"
        assert (tmp_path / "pairlab.db-wal").stat().st_size > 0  # in the WAL, not checkpointed
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT COUNT(*), SUM(n) FROM events").fetchone() == (200, 19900)
    finally:
        conn.close()


async def test_only_the_unsynced_transaction_skips_the_fsync(tmp_path: Path) -> None:
    db = Database(tmp_path / "pairlab.db")
    try:
        await db.write(lambda d: d.conn.execute("CREATE TABLE t (n INTEGER)"))
        during = await db.write_unsynced(
            lambda d: d.conn.execute("PRAGMA synchronous").fetchone()[0])
        assert during == 1  # NORMAL

        def fail(d: object) -> None:
            raise RuntimeError("in the middle")

        with pytest.raises(RuntimeError):
            await db.write_unsynced(fail)
        after = await db.write(lambda d: d.conn.execute("PRAGMA synchronous").fetchone()[0])
        assert after == 2  # FULL again, also after a failed one
        await db.write_unsynced(lambda d: d.conn.execute("INSERT INTO t VALUES (1)"))
        assert await db.read(lambda d: d.conn.execute("SELECT n FROM t").fetchall()) == [(1,)]
    finally:
        await db.close()
