"""Pages show stored timestamps to the second, whatever precision the clock stores."""

from __future__ import annotations

from common import clock
from server.http.pages import seconds


def test_a_stored_timestamp_is_shown_to_the_second() -> None:
    stored = clock.now_iso()
    shown = seconds(stored)
    assert "." not in shown
    assert stored.startswith(shown[:19]) and shown.endswith("+00:00")


def test_old_rows_at_seconds_and_empty_values_are_shown_as_they_are() -> None:
    assert seconds("2026-12-01T14:00:00+00:00") == "2026-12-01T14:00:00+00:00"
    assert seconds(None) == ""
    assert seconds("") == ""
    assert seconds("not a time") == "not a time"
