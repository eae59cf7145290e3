"""How the landing page words who and when (the page's script words the time left the same)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from server.workspace.landing_facts import LandingFacts, moment

NOON = moment(datetime(2026, 12, 6, 12, 0, tzinfo=UTC))


def facts(names: tuple[str, ...] = ("Ada",), seconds_left: int = 0) -> LandingFacts:
    return LandingFacts(names, NOON, NOON, True, seconds_left)


@pytest.mark.parametrize(("seconds", "shown"), [
    (0, "less than a minute"), (59, "less than a minute"), (60, "1 minute"),
    (119, "1 minute"), (87 * 60 + 5, "87 minutes"), (119 * 60 + 59, "119 minutes"),
    (120 * 60, "2 h 00 min"), (185 * 60, "3 h 05 min"),
])
def test_time_left_counts_whole_minutes_down(seconds: int, shown: str) -> None:
    assert facts(seconds_left=seconds).time_left == shown


def test_who_joins_reads_as_a_sentence() -> None:
    assert facts(()).who_joins == "Your interviewer joins" and facts(()).interviewer_names == ""
    assert facts(("Ada",)).who_joins == "Ada joins"
    assert facts(("Ada", "Ben")).who_joins == "Ada and Ben join"
    assert facts(("Ada", "Ben", "Cy")).interviewer_names == "Ada, Ben and Cy"


def test_a_moment_is_iso_for_the_script_and_readable_without_it() -> None:
    when = moment(datetime(2026, 12, 6, 5, 7, 9, 123, tzinfo=UTC))
    assert when.iso == "2026-12-06T05:07:09Z"
    assert when.fallback == "05:07 UTC on Sun 6 Dec 2026"
