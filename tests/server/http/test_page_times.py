"""Pages show stored timestamps to the second, whatever precision the clock stores."""

from __future__ import annotations

import re

from common import clock
from server.http.keys import DB
from server.http.pages import seconds
from tests.harness import EnvFactory
from workspaces import sessions as S


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


async def test_the_session_pages_show_stored_times_to_the_second(make_env: EnvFactory) -> None:
    env = await make_env()
    created = await env.schedule(candidate_email="ada@example.org")
    session_id = created["session_id"]
    stored = await env.app[DB].read(lambda d: S.get_session(d, session_id))
    assert "." in stored.starts_at  # the clock stores microseconds
    for path in ("/sessions", f"/sessions/{session_id}"):
        response = await env.client.get(path)
        assert response.status == 200
        html = await response.text()
        assert seconds(stored.starts_at) in html, path
        assert re.search(r"T\d\d:\d\d:\d\d\.\d+\+00:00", html) is None, path
