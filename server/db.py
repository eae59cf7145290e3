"""pairlab's database: every area's migrations, applied at start (``migrate``) or for tools that
run outside the server (``open_migrated``). The connection and the async writer/readers are
``common.db``."""

from __future__ import annotations

from pathlib import Path

import sqlite_utils

from common.db import Database, connect
from server.migrations import MIGRATION_SETS


def migrate(db: sqlite_utils.Database) -> list[str]:
    """Apply every pending migration of every area; returns the names applied."""
    applied: list[str] = []
    for migrations in MIGRATION_SETS():
        pending = [m.name for m in migrations.pending(db)]
        migrations.apply(db)
        applied += [f"{migrations.name}:{name}" for name in pending]
    return applied


def open_migrated(path: Path) -> sqlite_utils.Database:
    """A writer connection with every migration applied: for the CLI, demo and tools that
    run outside the server (close it with ``.conn.close()``)."""
    db = connect(path, writer=True)
    migrate(db)
    return db


def pending_migrations(db: sqlite_utils.Database) -> list[str]:
    return [f"{m.name}:{p.name}" for m in MIGRATION_SETS() for p in m.pending(db)]


async def migrate_database(db: Database) -> list[str]:
    """Apply every pending migration on the server's writer thread; returns the names applied."""
    return await db.on_writer(migrate)
