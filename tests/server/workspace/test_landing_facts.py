"""How the landing page words who and when: the time left in the one wording of
``server/http/times.py`` (also the session API's ``time_left``, which the page's script shows),
and the start and end as every page shows times (``time_tag``: UTC text, local by script)."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp_jinja2 import get_env

from server.http.pages import setup_templates
from server.http.times import human_utc, time_left, time_tag
from server.workspace.landing_facts import LandingFacts

NOON = "2026-12-06T12:00:00.000000+00:00"


def facts(names: tuple[str, ...] = ("Ada",), seconds_left: int = 0) -> LandingFacts:
    return LandingFacts(names, NOON, NOON, True, seconds_left)


@pytest.mark.parametrize(("seconds", "shown"), [
    (0, "less than a minute"), (59, "less than a minute"), (60, "1 minute"),
    (119, "1 minute"), (87 * 60 + 5, "87 minutes"), (119 * 60 + 59, "119 minutes"),
    (120 * 60, "2 h 00 min"), (185 * 60, "3 h 05 min"), (-5, "less than a minute"),
    (47 * 3600 + 59 * 60, "47 h 59 min"), (48 * 3600, "2 days"),
    (121333 * 60, "84 days"),
])
def test_time_left_counts_whole_minutes_down(seconds: int, shown: str) -> None:
    assert time_left(seconds) == shown
    if seconds >= 0:
        assert facts(seconds_left=seconds).time_left == shown


def test_who_joins_reads_as_a_sentence() -> None:
    assert facts(()).who_joins == "Your interviewer joins" and facts(()).interviewer_names == ""
    assert facts(("Ada",)).who_joins == "Ada joins"
    assert facts(("Ada", "Ben")).who_joins == "Ada and Ben join"
    assert facts(("Ada", "Ben", "Cy")).interviewer_names == "Ada, Ben and Cy"


def test_a_named_time_tag_is_iso_for_the_script_and_readable_without_it() -> None:
    tag = str(time_tag("2026-12-06T05:07:09.000123+00:00", "ends-at"))
    assert tag == ('<time id="ends-at" datetime="2026-12-06T05:07:09+00:00" data-local>'
                   "Sun 6 Dec 2026, 05:07 UTC</time>")
    assert str(time_tag(NOON)).startswith('<time datetime="')  # unnamed as before
    assert 'id="&lt;b&gt;"' in str(time_tag(NOON, "<b>"))


def test_the_landing_template_shows_times_with_the_shared_helpers() -> None:
    app = web.Application()
    setup_templates(app)
    template = get_env(app).get_template("candidate_landing.html")
    later = "2026-12-06T12:45:00.000000+00:00"

    class Scheduled:
        id, state, candidate_name = "s1", "scheduled", "Cy"

    html = template.render(session=Scheduled(), title="T", brief="", csrf_token="x",
                           facts=LandingFacts(("Ada",), NOON, later, False, 45 * 60))
    assert str(time_tag(NOON, "starts-at")) in html and str(time_tag(later, "ends-at")) in html
    assert human_utc(later) == "Sun 6 Dec 2026, 12:45 UTC" and human_utc(later) in html
    assert '<strong id="time-left">45 minutes</strong>' in html
    assert html.index("/_pairlab/times.js") < html.index("/_pairlab/landing.js")
