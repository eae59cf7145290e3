"""Timestamps as ISO-8601 UTC strings (sortable in SQLite)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def now_iso() -> str:
    return iso(now())


def iso_in(delta: timedelta) -> str:
    return iso(now() + delta)
