"""The interviewer's scheduling pages: post/redirect/get, the candidate link shown again to the
session's staff only and re-issued, start times from the picker or ISO 8601, readable times."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from datetime import UTC, datetime, timedelta

from aiohttp import ClientResponse

from common.clock import iso, now
from server.http.keys import DB
from server.http.times import human_utc, time_tag
from server.workspace.app import ACCESS_TTL_S
from tests.conftest import audit_actions, create_user, form_csrf_token, login, query
from tests.harness import OTHER, Env, EnvFactory
from workspaces import candidate_links
from workspaces import sessions as S


def session_count(env: Env) -> int:
    return int(query(env.settings, "SELECT count(*) FROM interview_sessions")[0][0])


async def post_schedule_form(env: Env, **fields: str) -> ClientResponse:
    """Post the Sessions page's form (with its CSRF token); the answer, not followed."""
    page = await env.client.get("/sessions")
    data = {"csrf_token": form_csrf_token(await page.text()), "task": "demo-task",
            "candidate_name": "Ada Lovelace", **fields}
    return await env.client.post("/sessions", data=data, allow_redirects=False)


async def schedule_by_form(env: Env, **fields: str) -> str:
    """Post the Sessions page's form; returns the redirect's target."""
    response = await post_schedule_form(env, **fields)
    assert response.status == 303, await response.text()
    return str(response.headers["Location"])


def shown_link(html: str) -> str:
    match = re.search(r'<input id="candidate-link"[^>]* value="([^"]+)"', html)
    assert match, "the page shows no candidate link"
    return match.group(1)


def path_of(link: str) -> str:
    return "/" + link.split("://", 1)[1].split("/", 1)[1]


async def test_scheduling_redirects_and_reloading_the_page_schedules_nothing(
        make_env: EnvFactory) -> None:
    env = await make_env()
    before = session_count(env)
    location = await schedule_by_form(env)
    assert re.fullmatch(r"/sessions/s_[0-9a-f]{16}\?scheduled=1", location)
    assert session_count(env) == before + 1
    for _ in range(2):  # the page and a reload of it
        page = await env.client.get(location)
        assert page.status == 200
        html = await page.text()
        assert "Session scheduled" in html and shown_link(html).startswith(
            env.settings.workspace_url + "/c/")
    assert session_count(env) == before + 1
    listed = await (await env.client.get("/api/v1/sessions")).json()
    assert len(listed["sessions"]) == before + 1


async def test_the_picker_time_is_utc_when_converted_and_read_as_utc_without_script(
        make_env: EnvFactory) -> None:
    env = await make_env()
    # The script converts the viewer's local 10:30 (+01:00) to UTC into the hidden field.
    converted = await schedule_by_form(env, starts_local="2030-01-02T10:30",
                                       starts_at="2030-01-02T09:30:00.000Z")
    no_script = await schedule_by_form(env, starts_local="2030-01-02T09:30")
    for location in (converted, no_script):
        session_id = location.split("/")[2].split("?")[0]
        stored = await env.app[DB].read(lambda d, i=session_id: S.get_session(d, i))
        assert S.parse_time(stored.starts_at) == datetime(2030, 1, 2, 9, 30, tzinfo=UTC)
        html = await (await env.client.get(f"/sessions/{session_id}")).text()
        assert '<time datetime="2030-01-02T09:30:00+00:00" data-local>Wed 2 Jan 2030, 09:30 UTC' \
            in html


async def test_a_start_that_is_not_a_time_is_refused_with_a_sentence(
        make_env: EnvFactory) -> None:
    env = await make_env()
    before = session_count(env)
    response = await post_schedule_form(env, starts_at="next tuesday")
    assert response.status == 422
    assert "is not a date and time: give it as ISO 8601" in await response.text()
    api = await env.client.post("/api/v1/sessions", headers={"X-CSRF-Token": env.csrf},
                                json={"task": "demo-task", "candidate_name": "Ada",
                                      "starts_at": "2026-13-45T99:00"})
    assert api.status == 422
    assert "is not a date and time" in (await api.json())["error"]["message"]
    assert session_count(env) == before


async def test_an_interview_over_before_it_is_scheduled_is_refused(make_env: EnvFactory) -> None:
    """A start in the past whose interview has ended already (a mistyped year) is refused on
    the page and through the API, nothing stored; one that started earlier and still runs is
    scheduled (the demo's "now")."""
    env = await make_env()
    before = session_count(env)
    response = await post_schedule_form(env, starts_at="2020-01-01T10:00:00Z")
    html = await response.text()
    assert response.status == 422, html
    assert "This interview would be over already: starting Wed 1 Jan 2020, 10:00 UTC for 60" \
        " minutes, it would have ended Wed 1 Jan 2020, 11:00 UTC. Choose a later start" in html
    api = await env.client.post("/api/v1/sessions", headers={"X-CSRF-Token": env.csrf},
                                json={"task": "demo-task", "candidate_name": "Ada",
                                      "starts_at": iso(now() - timedelta(minutes=61))})
    assert api.status == 422
    assert "would be over already" in (await api.json())["error"]["message"]
    assert session_count(env) == before
    for minutes in (10**10, 10**13, -30):  # no date arithmetic with a duration out of range
        huge = await env.client.post("/api/v1/sessions", headers={"X-CSRF-Token": env.csrf},
                                     json={"task": "demo-task", "candidate_name": "Ada",
                                           "duration_minutes": minutes})
        assert huge.status == 422, await huge.text()
        assert (await huge.json())["error"]["message"] == \
            "the duration must be 10 to 240 minutes"
    assert session_count(env) == before
    running = await env.schedule(starts_at=iso(now() - timedelta(minutes=59)))
    assert session_count(env) == before + 1 and running["session_id"]


async def test_the_sessions_page_says_when_it_starts_or_how_long_is_left(
        make_env: EnvFactory) -> None:
    """A session months ahead says when it starts, in days (it said "121333 min left": the
    minutes to its end); one under way says the time left in the landing page's words."""
    env = await make_env()
    ahead = await env.schedule(starts_at=iso(now() + timedelta(days=84, hours=1)))
    html = await (await env.client.get(f"/sessions/{ahead['session_id']}")).text()
    assert '<span id="countdown">starts in 84 days</span>' in html
    running = await env.schedule(duration_minutes=60)
    html = await (await env.client.get(f"/sessions/{running['session_id']}")).text()
    assert re.search(r'<span id="countdown">(59|60) minutes left</span>', html), html


async def test_only_the_sessions_staff_see_its_link_again(make_env: EnvFactory) -> None:
    env = await make_env()
    created = await env.schedule()
    session_id, link = created["session_id"], created["candidate_link"]
    page = await (await env.client.get(f"/sessions/{session_id}")).text()
    assert shown_link(page) == link
    assert 'data-copy="candidate-link"' in page and "/static/copylink.js" in page
    api = await (await env.client.get(f"/api/v1/sessions/{session_id}")).json()
    assert api["candidate_link"] == link

    # Another interviewer, not on this session, tries the page and the API.
    create_user(env.settings, OTHER, "interviewer")
    await login(env.client, OTHER)
    for path in (f"/sessions/{session_id}", f"/api/v1/sessions/{session_id}"):
        response = await env.client.get(path)
        assert response.status == 403
        assert link.rsplit("/", 1)[1] not in await response.text()


async def test_reissuing_makes_the_old_link_say_it_was_replaced(make_env: EnvFactory) -> None:
    env = await make_env()
    created = await env.schedule()
    session_id, old = created["session_id"], created["candidate_link"]
    page = await env.client.get(f"/sessions/{session_id}")
    token = form_csrf_token(await page.text())

    forged = await env.client.post(f"/sessions/{session_id}/link", data={},
                                   allow_redirects=False)
    assert forged.status == 403  # no CSRF token: nothing changes
    assert await env.open_link(old) == f"/s/{session_id}"

    response = await env.client.post(f"/sessions/{session_id}/link",
                                     data={"csrf_token": token}, allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"].startswith(f"/sessions/{session_id}?link=new")
    html = await (await env.client.get(response.headers["Location"])).text()
    new = shown_link(html)
    assert new != old and "the old one no longer works" in html

    replaced = await env.ws.get(path_of(old), allow_redirects=False)
    assert replaced.status == 410
    assert "was replaced by a newer one" in await replaced.text()
    assert await env.open_link(new) == f"/s/{session_id}"
    unknown = await env.ws.get("/c/" + "A" * 32, allow_redirects=False)
    assert unknown.status == 404 and "not valid" in await unknown.text()

    assert audit_actions(env.settings).count("session.link_reissue") == 1
    details = " ".join(str(r) for r in query(env.settings, "SELECT detail FROM audit_log"))
    assert old.rsplit("/", 1)[1] not in details and new.rsplit("/", 1)[1] not in details

    again = await env.client.post(f"/api/v1/sessions/{session_id}/link",
                                  headers={"X-CSRF-Token": env.csrf})
    assert again.status == 200
    newest = (await again.json())["candidate_link"]
    assert (await env.ws.get(path_of(new), allow_redirects=False)).status == 410
    assert await env.open_link(newest) == f"/s/{session_id}"

    await env.client.post(f"/api/v1/sessions/{session_id}/end", headers={"X-CSRF-Token": env.csrf})
    over = await env.client.post(f"/api/v1/sessions/{session_id}/link",
                                 headers={"X-CSRF-Token": env.csrf})
    assert over.status == 409 and "cannot be re-issued" in (await over.json())["error"]["message"]


async def test_a_copy_of_the_database_without_the_secret_cannot_rebuild_a_link(
        make_env: EnvFactory) -> None:
    env = await make_env()
    created = await env.schedule()
    session_id, token = created["session_id"], created["candidate_link"].rsplit("/", 1)[1]
    conn = sqlite3.connect(env.settings.db_path)
    try:
        dump = "\n".join(conn.iterdump())
    finally:
        conn.close()
    assert token not in dump  # the token itself is stored nowhere
    # An attacker with the dump guesses the secret: a wrong one rebuilds nothing that works.
    nonce = query(env.settings, "SELECT link_nonce FROM interview_sessions WHERE id = ?",
                  (session_id,))[0][0]
    guess = candidate_links.token_for("x" * 48, session_id, nonce)
    assert guess != token
    assert await env.app[DB].read(lambda d: S.session_for_link(d, guess)) is None
    # After a secret rotation the server shows no (wrong) link: it offers to re-issue.
    assert await env.app[DB].read(
        lambda d: candidate_links.current(d, "y" * 48, session_id)) is None
    assert await env.app[DB].read(lambda d: candidate_links.current(
        d, env.settings.cookie_secret.reveal(), session_id)) == token


async def test_upcoming_and_past_sessions_are_listed_apart(make_env: EnvFactory) -> None:
    env = await make_env()
    later = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    upcoming = (await env.schedule(candidate_name="Grace Upcoming", starts_at=later))["session_id"]
    past = (await env.schedule(candidate_name="Alan Past"))["session_id"]
    ended = await env.client.post(f"/api/v1/sessions/{past}/end",
                                  headers={"X-CSRF-Token": env.csrf})
    assert ended.status == 200
    html = await (await env.client.get("/sessions")).text()
    upcoming_part = html.split('id="upcoming-sessions"')[1].split('id="past-sessions"')[0]
    past_part = html.split('id="past-sessions"')[1].split('id="schedule"')[0]
    assert upcoming in upcoming_part and upcoming not in past_part
    assert past in past_part and past not in upcoming_part
    assert 'type="datetime-local"' in html and "/static/times.js" in html
    assert "<time datetime=" in upcoming_part


def test_times_read_as_people_write_them() -> None:
    assert human_utc("2026-12-04T18:33:52.123456+00:00") == "Fri 4 Dec 2026, 18:33 UTC"
    assert human_utc("2026-12-05T00:30:00+02:00") == "Fri 4 Dec 2026, 22:30 UTC"
    assert human_utc("") == "" and human_utc("soon") == "soon"
    assert str(time_tag("2026-12-04T18:33:52.5+00:00")) == (
        '<time datetime="2026-12-04T18:33:52+00:00" data-local>Fri 4 Dec 2026, 18:33 UTC</time>')
    assert str(time_tag("<b>")) == "&lt;b&gt;"


async def test_a_confirmed_role_mismatch_is_named_on_the_page_it_redirects_to(
        make_env: EnvFactory) -> None:
    env = await make_env()
    refused = await post_schedule_form(env, role="mlops-engineer")
    assert refused.status == 409
    assert "To schedule it anyway: tick “Schedule even if the task does not fit the role” on" \
        " the page" in await refused.text()
    location = await schedule_by_form(env, role="mlops-engineer", confirm="yes")
    html = await (await env.client.get(location)).text()
    assert "Warning: this task tests model evaluation methodology" in html
    later = await (await env.client.get(location.split("?")[0])).text()
    assert "Warning:" not in later  # said once, when it was confirmed


async def test_a_browser_that_entered_with_the_old_link_is_out_after_reissue(
        make_env: EnvFactory) -> None:
    """The attack: the link reached the wrong person, who opened it and started the workspace;
    the interviewer re-issues it. That browser's cookie no longer opens the landing page or
    the workspace (the proxy's 2 s access cache aside), while the new link works."""
    env = await make_env()
    created = await env.schedule()
    session_id = created["session_id"]
    await env.open_link(created["candidate_link"])  # env.ws: the wrong person's browser
    workspace = (await env.start_as_candidate(session_id)).split("/")[2]
    assert (await env.ws.get(f"/w/{workspace}/lab")).status == 200
    reissued = await env.client.post(f"/api/v1/sessions/{session_id}/link",
                                     headers={"X-CSRF-Token": env.csrf})
    assert reissued.status == 200, await reissued.text()
    await asyncio.sleep(ACCESS_TTL_S + 0.2)
    assert (await env.ws.get(f"/s/{session_id}", allow_redirects=False)).status == 403
    assert (await env.ws.get(f"/w/{workspace}/lab", allow_redirects=False)).status == 403
    left = query(env.settings, "SELECT count(*) FROM session_access WHERE session_id = ? AND"
                 " kind = 'candidate'", (session_id,))
    assert left == [(0,)]
