"""Schema of webhook subscriptions and their delivery log.

``webhook_deliveries`` is an outbox: rows are inserted in the same write transaction as the
change that causes them, and the background sender works through it. Each function is one
change and is never edited after it lands: add a new one instead.
"""

from __future__ import annotations

import sqlite_utils
from sqlite_utils.migrations import Migrations

migrations = Migrations("webhooks")


@migrations()
def m001_webhooks(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE webhooks (
            id INTEGER PRIMARY KEY,
            url TEXT NOT NULL,
            events TEXT NOT NULL CHECK (json_valid(events) AND json_type(events) = 'array'),
            secret TEXT NOT NULL,
            created_by INTEGER NOT NULL REFERENCES users(id),
            created_at TEXT NOT NULL,
            disabled_at TEXT
        )
        """
    )
    db.execute(
        """
        CREATE TABLE webhook_deliveries (
            id INTEGER PRIMARY KEY,
            webhook_id INTEGER NOT NULL REFERENCES webhooks(id),
            event TEXT NOT NULL,
            body TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            state TEXT NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'delivered', 'failed')),
            next_attempt_at TEXT,
            last_status INTEGER,
            last_error TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            delivered_at TEXT
        )
        """
    )
    db.execute("CREATE INDEX webhook_deliveries_due ON webhook_deliveries(state, next_attempt_at)")
    db.execute("CREATE INDEX webhook_deliveries_hook ON webhook_deliveries(webhook_id, id)")
