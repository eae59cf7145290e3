"""A writer outside the server (the CLI) that reads then writes while the server commits: with
sqlite-utils' deferred ``atomic()`` it fails at once with "database is locked"; with
``write_transaction`` it waits its turn and both writes land. Real SQLite files, two
connections as two processes would hold them."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from common.db import connect, write_transaction


def make(tmp_path: Path) -> Path:
    path = tmp_path / "t.db"
    db = connect(path, writer=True)
    db.execute("CREATE TABLE users (email TEXT PRIMARY KEY)")
    db.conn.close()
    return path


def server_commits_while(path: Path, started: threading.Event, done: list[str]) -> None:
    """The server's writer: waits until the CLI has read, then inserts and commits."""
    server = connect(path, writer=True)
    started.wait(5)
    server.conn.execute("BEGIN IMMEDIATE")
    server.conn.execute("INSERT INTO users VALUES ('server@example.com')")
    server.conn.execute("COMMIT")
    server.conn.close()
    done.append("server")


def cli_reads_then_writes(path: Path, begin: str) -> list[str]:
    cli = connect(path, writer=True)
    started, done = threading.Event(), []
    server = threading.Thread(target=server_commits_while, args=(path, started, done))
    server.start()
    try:
        transaction = write_transaction(cli) if begin == "immediate" else cli.atomic()
        with transaction:
            assert cli.execute("SELECT count(*) FROM users").fetchone() == (0,)  # the read
            started.set()
            if begin == "immediate":
                server.join(0.3)  # the server waits for the CLI's lock (busy timeout)
                assert done == []
            else:
                server.join(5)  # the server commits between the CLI's read and its write
            cli.execute("INSERT INTO users VALUES ('cli@example.com')")
    finally:
        server.join(10)
        rows = [r[0] for r in cli.execute("SELECT email FROM users ORDER BY email")]
        cli.conn.close()
    return rows


def test_a_deferred_transaction_that_reads_then_writes_fails_when_the_server_committed(
        tmp_path: Path) -> None:
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        cli_reads_then_writes(make(tmp_path), "deferred")


def test_write_transaction_waits_its_turn_and_both_writes_land(tmp_path: Path) -> None:
    assert cli_reads_then_writes(make(tmp_path), "immediate") == [
        "cli@example.com", "server@example.com"]


def test_write_transaction_rolls_back_on_error_and_nests_as_a_savepoint(tmp_path: Path) -> None:
    db = connect(make(tmp_path), writer=True)
    with pytest.raises(RuntimeError), write_transaction(db):
        db.execute("INSERT INTO users VALUES ('gone@example.com')")
        raise RuntimeError("stop")
    with write_transaction(db):
        db.execute("INSERT INTO users VALUES ('kept@example.com')")
        with pytest.raises(RuntimeError), write_transaction(db):
            db.execute("INSERT INTO users VALUES ('inner@example.com')")
            raise RuntimeError("inner")
    assert [r[0] for r in db.execute("SELECT email FROM users")] == ["kept@example.com"]
    db.conn.close()
