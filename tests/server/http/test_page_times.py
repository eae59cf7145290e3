"""Pages show stored timestamps to the second, whatever precision the clock stores."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from common import clock
from server.http.keys import DB
from server.http.pages import seconds
from server.http.times import ZONE_COOKIE, viewer_zone
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


def test_the_viewers_zone_is_a_known_zone_or_utc() -> None:
    assert viewer_zone("Europe/Berlin")[0] == "Europe/Berlin"
    assert viewer_zone("Europe/Berlin")[1].utcoffset(datetime(2026, 7, 1)) == timedelta(hours=2)
    assert viewer_zone("America/Argentina/Buenos_Aires")[0] == "America/Argentina/Buenos_Aires"
    for bad in (None, "", "Mars/Olympus_Mons", "../../../etc/passwd", "/etc/localtime",
                "Europe/../../etc/passwd", "Europe/Berlin\n", "A" * 65, "Europe%2FBerlin"):
        assert viewer_zone(bad) == ("UTC", UTC), bad


async def test_the_home_page_cuts_today_in_the_cookies_zone(make_env: EnvFactory) -> None:
    env = await make_env()
    for cookie, shown in ((None, "UTC"), ("Pacific/Kiritimati", "Pacific/Kiritimati"),
                          ("../etc/passwd", "UTC")):
        if cookie:
            env.client.session.cookie_jar.update_cookies({ZONE_COOKIE: cookie})
        html = await (await env.client.get("/")).text()
        assert f'data-day-zone="{shown}"' in html, cookie
