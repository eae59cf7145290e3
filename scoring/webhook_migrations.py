"""Schema of webhook subscriptions and their delivery log."""

from __future__ import annotations

from sqlite_utils.migrations import Migrations

migrations = Migrations("webhooks")
