"""common.clock: one precision (microseconds, UTC), and rows stored at seconds precision by an
older pairlab still sort and compare right against new ones, as strings (SQLite's TEXT order)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta, timezone

from common.clock import iso, iso_in, now, now_iso


def test_iso_is_utc_with_microseconds_always() -> None:
    assert iso(datetime(2026, 3, 1, 10, 0, 3, tzinfo=UTC)) == "2026-03-01T10:00:03.000000+00:00"
    paris = timezone(timedelta(hours=1))
    assert iso(datetime(2026, 3, 1, 11, 0, 3, 5, tzinfo=paris)) == \
        "2026-03-01T10:00:03.000005+00:00"
    assert len(now_iso()) == len("2026-03-01T10:00:03.000000+00:00")
    assert now().tzinfo is UTC
    assert iso_in(timedelta(hours=1)) > now_iso()


def test_old_seconds_rows_sort_with_new_microsecond_rows() -> None:
    old = ["2026-03-01T10:00:02+00:00", "2026-03-01T10:00:03+00:00",
           "2026-03-01T10:00:04+00:00", "2026-03-01T09:59:59+00:00"]
    new = [iso(datetime(2026, 3, 1, 10, 0, 3, 1, tzinfo=UTC)),
           iso(datetime(2026, 3, 1, 10, 0, 3, 999_999, tzinfo=UTC)),
           iso(datetime(2026, 3, 1, 10, 0, 2, 500_000, tzinfo=UTC)),
           iso(datetime(2026, 3, 1, 9, 59, 59, 999_999, tzinfo=UTC))]
    mixed = old + new
    by_time = sorted(mixed, key=datetime.fromisoformat)
    assert sorted(mixed) == by_time
    assert "2026-03-01T10:00:03+00:00" < "2026-03-01T10:00:03.000001+00:00"
    assert "2026-03-01T10:00:03.999999+00:00" < "2026-03-01T10:00:04+00:00"
    with sqlite3.connect(":memory:") as db:
        db.execute("CREATE TABLE t (at TEXT)")
        db.executemany("INSERT INTO t VALUES (?)", [(at,) for at in mixed])
        assert [r[0] for r in db.execute("SELECT at FROM t ORDER BY at")] == by_time
        # An old expiry is past for a "now" in the same second, later than it, as in time.
        cutoff = iso(datetime(2026, 3, 1, 10, 0, 3, 500_000, tzinfo=UTC))
        earlier = [r[0] for r in db.execute("SELECT at FROM t WHERE at <= ? ORDER BY at",
                                            [cutoff])]
        assert earlier == [at for at in by_time if datetime.fromisoformat(at) <=
                           datetime.fromisoformat(cutoff)]
