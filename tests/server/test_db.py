"""The SQLite file: migrations, permissions, pragmas, the append-only audit log."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlite_utils

from common import audit
from common.db import Database, connect
from server.db import migrate, migrate_database, pending_migrations
from server.migrations import MIGRATION_SETS
from server.settings import Settings
from tests.conftest import create_user, query


def expected_migrations() -> list[str]:
    """Every migration of every area, in order (all pending on an empty database)."""
    db = sqlite_utils.Database(memory=True)
    names = [f"{m.name}:{p.name}" for m in MIGRATION_SETS() for p in m.pending(db)]
    assert names[0] == "server:m001_people_and_login"
    return names


def tables(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    finally:
        conn.close()
    return {r[0] for r in rows}


def test_migrate_from_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "pairlab.db"
    db = connect(path, writer=True)
    try:
        assert pending_migrations(db) == expected_migrations()
        applied = migrate(db)
        assert applied == expected_migrations()
        assert "server:m001_people_and_login" in applied
        assert pending_migrations(db) == []
    finally:
        db.conn.close()
    assert {"users", "login_sessions", "api_tokens", "audit_log", "_sqlite_migrations"} <= tables(
        path
    )


def test_reapplying_migrations_is_a_no_op(tmp_path: Path) -> None:
    path = tmp_path / "pairlab.db"
    db = connect(path, writer=True)
    try:
        migrate(db)
        schema = db.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
        recorded = db.execute("SELECT COUNT(*) FROM _sqlite_migrations").fetchone()
        assert migrate(db) == []
        assert db.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall() == schema
        assert db.execute("SELECT COUNT(*) FROM _sqlite_migrations").fetchone() == recorded
    finally:
        db.conn.close()
    # A fresh connection (a restart) finds nothing to do either.
    db = connect(path, writer=True)
    try:
        assert migrate(db) == []
    finally:
        db.conn.close()


def test_pending_migrations_on_an_unmigrated_file_does_not_write(tmp_path: Path) -> None:
    path = tmp_path / "pairlab.db"
    db = connect(path)
    try:
        assert pending_migrations(db) == expected_migrations()
    finally:
        db.conn.close()
    assert tables(path) == set()


async def test_database_reports_pending_then_none(tmp_path: Path) -> None:
    database = Database(tmp_path / "pairlab.db")
    try:
        assert await database.read(pending_migrations) == expected_migrations()
        assert await migrate_database(database) == expected_migrations()
        assert await database.read(pending_migrations) == []
        assert await migrate_database(database) == []
    finally:
        await database.close()


def file_modes(path: Path) -> list[int]:
    """Permission bits of the database file and its -wal and -shm files (all must exist)."""
    return [stat.S_IMODE(Path(f"{path}{suffix}").stat().st_mode) for suffix in ("", "-wal", "-shm")]


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """Umask 0, so only pairlab's own modes keep the files private."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.usefixtures("permissive_umask")
def test_file_permissions_are_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "pairlab.db"
    db = connect(path, writer=True)
    try:
        migrate(db)
        reader = connect(path)  # a second connection keeps -wal/-shm in place
        try:
            reader.execute("SELECT COUNT(*) FROM users").fetchone()
            assert file_modes(path) == [0o600, 0o600, 0o600]
        finally:
            reader.conn.close()
    finally:
        db.conn.close()


@pytest.mark.usefixtures("permissive_umask")
async def test_file_permissions_through_the_database_class(tmp_path: Path) -> None:
    database = Database(tmp_path / "pairlab.db")
    try:
        await migrate_database(database)
        await database.write(lambda d: audit.record(d, audit.SYSTEM, "test"))
        assert file_modes(tmp_path / "pairlab.db") == [0o600, 0o600, 0o600]
    finally:
        await database.close()


def test_wal_mode_and_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "pairlab.db"
    db = connect(path, writer=True)
    try:
        migrate(db)
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert db.execute("PRAGMA busy_timeout").fetchone()[0] > 0
        with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
            db.execute(
                "INSERT INTO login_sessions (token_hash, user_id, created_at, expires_at)"
                " VALUES ('h', 999, 'now', 'later')"
            )
    finally:
        db.conn.close()
    # WAL is a property of the file: a plain connection sees it too.
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_audit_log_refuses_update_and_delete(settings: Settings) -> None:
    create_user(settings, "admin@example.com")
    before = query(settings, "SELECT * FROM audit_log")
    assert before
    conn = sqlite3.connect(settings.db_path)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("UPDATE audit_log SET actor = 'someone else'")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM audit_log")
        conn.rollback()
    finally:
        conn.close()
    assert query(settings, "SELECT * FROM audit_log") == before
