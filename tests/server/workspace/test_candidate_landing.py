"""The candidate's landing page over the real app (fake workspace): the brief as rendered,
sanitised Markdown, the interviewer's name, and the real time left and end time, the same as
the workspace's countdown reads from the session API."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

from server.settings import Settings
from tests.conftest import create_user, open_db
from tests.fixture_tasks import publish_fake_task
from tests.harness import LEAD, OTHER, EnvFactory

BRIEF = (
    "# Totals\n\nThe **nightly** totals look low. Run `pytest -q`.\n\n- one\n- two\n\n"
    "[Docs](https://example.org/docs)\n\n"
    '<img src="x" onerror="window.pwned=1"><script>window.pwned=2</script>\n\n'
    "[click](javascript:window.pwned=3)\n"
)


class Page(HTMLParser):
    """Start tags with attributes, and the text of elements by id."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: dict[str, str] = {}
        self._open: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        self.tags.append((tag, found))
        if "id" in found:
            self._open.append(found["id"])
            self.text.setdefault(found["id"], "")

    def handle_endtag(self, tag: str) -> None:
        if self._open and tag in ("time", "strong", "p", "a", "button"):
            self._open.pop()

    def handle_data(self, data: str) -> None:
        for name in self._open:
            self.text[name] += data

    def attrs_of(self, element_id: str) -> dict[str, str]:
        return next(a for _, a in self.tags if a.get("id") == element_id)


def set_display_name(settings: Settings, email: str, name: str) -> None:
    db = open_db(settings)
    try:
        with db.atomic():
            db.execute("UPDATE users SET display_name = ? WHERE email = ?", [name, email])
    finally:
        db.conn.close()


async def test_the_landing_page_renders_the_brief_and_tells_the_real_time(
        make_env: EnvFactory) -> None:
    env = await make_env()
    publish_fake_task(env.settings, "md-task", brief=BRIEF, title="Markdown task")
    create_user(env.settings, OTHER, "interviewer")
    set_display_name(env.settings, LEAD, "Grace Hopper")
    set_display_name(env.settings, OTHER, "Alan Turing")
    started = datetime.now(UTC) - timedelta(minutes=7)
    created = await env.schedule(task="md-task", starts_at=started.isoformat(),
                                 duration_minutes=30, interviewers=[OTHER, LEAD])
    session_id = created["session_id"]
    landing = await env.open_link(created["candidate_link"])
    response = await env.ws.get(landing)
    html = await response.text()
    page = Page(html)

    # The brief: Markdown rendered, hostile parts inert (and the page allows no inline script).
    tags = [tag for tag, _ in page.tags]
    assert {"h2", "strong", "code", "li"} <= set(tags)
    assert "<strong>nightly</strong>" in html and "**" not in html
    scripts = [a for t, a in page.tags if t == "script"]
    assert scripts == [{"src": "/_pairlab/times.js", "defer": ""},
                       {"src": "/_pairlab/landing.js", "defer": ""}], html
    assert not any("pwned" in v for _, a in page.tags for v in a.values()), html
    assert not any(t in ("img", "iframe") for t in tags), html
    assert not any(k.startswith("on") for _, a in page.tags for k in a), html
    assert "javascript:" not in " ".join(a.get("href", "") for _, a in page.tags)
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    docs = next(a for t, a in page.tags if t == "a" and a.get("href") == "https://example.org/docs")
    assert docs["rel"] == "noopener noreferrer"

    # Who: the scheduler (the lead) first, then the other interviewer.
    assert page.text["interviewer"] == "Grace Hopper and Alan Turing"
    assert "Your interviewers are" in html and "Grace Hopper and Alan Turing join you" in html

    # When: the end is the session's deadline; the time left is what the countdown polls.
    api = await (await env.ws.get(f"/api/v1/sessions/{session_id}")).json()
    ends_at = datetime.fromisoformat(api["session"]["ends_at"])
    shown_end = datetime.fromisoformat(page.attrs_of("ends-at")["datetime"].replace("Z",
                                                                                   "+00:00"))
    assert abs(shown_end - ends_at) < timedelta(seconds=1)
    assert abs(shown_end - (started + timedelta(minutes=30))) < timedelta(seconds=1)
    assert page.text["ends-at"] == ends_at.astimezone(UTC).strftime(
        "%a %-d %b %Y, %H:%M UTC")  # readable UTC, as on every page
    assert "data-local" in page.attrs_of("ends-at")  # shown in the viewer's zone by times.js
    left = int(page.attrs_of("clock")["data-seconds-left"])
    assert abs(left - api["session"]["seconds_left"]) <= 2
    assert 22 * 60 < left <= 23 * 60, left  # 30 minutes from 7 minutes ago, not 30
    assert re.fullmatch(r"2[23] minutes", page.text["time-left"]), page.text["time-left"]
    assert api["session"]["time_left"] in ("22 minutes", "23 minutes")  # what the script shows
    assert "The clock started at the scheduled time" in html
    assert "30 minutes" not in html

    # Start: a styled button with a status region for the preparing state.
    assert page.attrs_of("start")["class"] == "primary"
    assert page.attrs_of("preparing")["role"] == "status"
    script = await env.ws.get("/_pairlab/landing.js")
    assert script.status == 200 and "Preparing your workspace" in await script.text()
    times = await env.ws.get("/_pairlab/times.js")  # the staff pages' one, from this origin
    assert times.status == 200 and "data-local" in await times.text()
    assert (await env.ws.get("/_pairlab/pairlab.css")).status == 404  # not the app's /static

    # An extension moves the end and the time left on the next load.
    extended = await env.client.post(
        f"/api/v1/sessions/{session_id}/extend", json={"minutes": 15},
        headers={"X-CSRF-Token": env.csrf})
    assert extended.status == 200
    again = Page(await (await env.ws.get(landing)).text())
    later = datetime.fromisoformat(again.attrs_of("ends-at")["datetime"].replace("Z", "+00:00"))
    assert abs(later - shown_end - timedelta(minutes=15)) < timedelta(seconds=1)
    assert re.fullmatch(r"3[78] minutes", again.text["time-left"]), again.text["time-left"]


async def test_before_the_start_the_page_says_when_it_starts(make_env: EnvFactory) -> None:
    env = await make_env()
    starts = datetime.now(UTC) + timedelta(minutes=10)
    created = await env.schedule(starts_at=starts.isoformat(), duration_minutes=45)
    html = await (await env.ws.get(await env.open_link(created["candidate_link"]))).text()
    page = Page(html)
    assert "The session is scheduled to start at" in html
    assert "The clock started" not in html
    shown = datetime.fromisoformat(page.attrs_of("starts-at")["datetime"].replace("Z", "+00:00"))
    assert abs(shown - starts) < timedelta(seconds=1)
    left = int(page.attrs_of("clock")["data-seconds-left"])
    assert 54 * 60 < left <= 55 * 60, left  # until the end: ten minutes to go, then 45
    assert page.text["interviewer"] == "lead"  # no display name set: the email's local part


async def test_a_removed_interviewer_is_not_named(make_env: EnvFactory) -> None:
    env = await make_env()
    create_user(env.settings, OTHER, "interviewer")
    set_display_name(env.settings, OTHER, "Alan Turing")
    created = await env.schedule(interviewers=[OTHER])
    db = open_db(env.settings)
    try:
        with db.atomic():
            db.execute("UPDATE users SET disabled = 1 WHERE email = ?", [OTHER])
    finally:
        db.conn.close()
    html = await (await env.ws.get(await env.open_link(created["candidate_link"]))).text()
    page = Page(html)
    assert "interviewer" not in page.text  # nobody named ...
    assert "Your interviewer joins you in the workspace" in html  # ... and the page still reads


async def test_the_lab_page_says_it_is_opening_while_jupyterlab_loads(
        make_env: EnvFactory) -> None:
    env = await make_env()
    created = await env.schedule()
    await env.open_link(created["candidate_link"])
    lab = await (await env.ws.get(await env.start_as_candidate(created["session_id"]))).text()
    assert lab.count('<link rel="stylesheet" href="/_pairlab/opening.css">') == 1, lab
    assert lab.index("/_pairlab/opening.css") < lab.index("</head>")
    css = await env.ws.get("/_pairlab/opening.css")
    text = await css.text()
    assert css.status == 200 and css.content_type == "text/css"
    assert 'body:not(:has(#jp-main-dock-panel))::before' in text and "pointer-events: none" in text
