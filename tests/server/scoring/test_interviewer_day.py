"""The interviewer's day through the real app and a real SQLite file: the home page's lists
(``server.sessions.home``), the sealed debrief that explains itself, and the scorecard form
that speaks in the rubric's titles and keeps an incomplete submission as the draft."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlite_utils

from common.clock import iso, now
from server.sessions.home import interviewer_day
from tests.conftest import form_csrf_token, login, query
from tests.server.scoring.conftest import PIPELINE_DIMS, Panel, full_card

TASK_TITLE = "Title of pipe-task"
TITLES = {"navigating-code": "Navigating unfamiliar code", "debugging": "Debugging approach",
          "communication": "Communicating findings to a non-specialist"}


def row_ids(html: str, table: str) -> list[str]:
    """The session ids of one of the home page's tables (or lists), in order."""
    match = re.search(rf'id="{table}".*?</(table|ul)>', html, re.S)
    return re.findall(r'data-session="([^"]+)"', match.group(0)) if match else []


async def start_live(panel: Panel, session_id: str) -> None:
    """Alice starts the session; it is live once the fake workspace (started in the
    background) is up."""
    assert (await panel.call("alice", "POST", f"/api/v1/sessions/{session_id}/start"))[0] == 200
    for _ in range(100):
        _, data = await panel.call("alice", "GET", f"/api/v1/sessions/{session_id}")
        if data["session"]["state"] == "live":
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{session_id} is still {data['session']['state']}")


async def test_home_sorts_the_interviewers_sessions_into_today_upcoming_waiting_and_ready(
        panel: Panel) -> None:
    today = await panel.schedule()
    later = await panel.schedule(starts_at=(now() + timedelta(days=3)).isoformat())
    blind = await panel.schedule(blind=True, candidate_name="Ada Lovelace")
    done = await panel.schedule()
    # two hours ago for an hour: ended after its time, never having gone live (moved there:
    # scheduling refuses an interview that is over already)
    noshow = await panel.schedule(candidate_name="Nobody Came")
    moved = sqlite_utils.Database(panel.settings.db_path)
    try:
        moved.execute("UPDATE interview_sessions SET starts_at = ?, ends_at = ? WHERE id = ?",
                      [iso(now() - timedelta(hours=2)), iso(now() - timedelta(hours=1)), noshow])
        moved.conn.commit()
    finally:
        moved.conn.close()
    await start_live(panel, blind)
    for sid in (done, blind, noshow):
        assert (await panel.call("alice", "POST", f"/api/v1/sessions/{sid}/end"))[0] == 200
    await panel.call("alice", "PUT", f"/api/v1/sessions/{blind}/scorecards/mine",
                     {"summary": "half way"})
    assert (await panel.call("alice", "POST", f"/api/v1/sessions/{done}/scorecards/mine/submit",
                             full_card(3, "A")))[0] == 200

    status, html = await panel.page("alice", "/")
    assert status == 200
    assert row_ids(html, "today") == [today] and TASK_TITLE in html
    assert row_ids(html, "upcoming") == [later]
    # nobody came to the session that ended by the clock: it is not waiting for a card
    assert set(row_ids(html, "scorecards-waiting")) == {blind}
    assert noshow not in html
    assert f'href="/sessions/{blind}/scorecard"' in html and "draft saved" in html
    assert row_ids(html, "debriefs-ready") == [done]
    assert f'href="/sessions/{done}/debrief"' in html and "waiting for bob" in html
    assert "<time datetime=" in html  # start and end shown in the viewer's zone by times.js
    assert "Ada Lovelace" not in html  # blind: the pseudonym, as on every interviewer page
    assert f'href="/sessions/{today}/observe"' not in html  # not live yet

    # once it is live, today's row links the observe page too
    await start_live(panel, today)
    _, html = await panel.page("alice", "/")
    assert row_ids(html, "today") == [today] and f'href="/sessions/{today}/observe"' in html

    # Carol is on none of them: empty states, and nothing of anyone else's sessions
    status, html = await panel.page("carol", "/")
    assert status == 200
    assert "No interviews for you today." in html and TASK_TITLE not in html
    assert "No scorecards waiting" in html
    assert "No debriefs yet" in html
    assert not any(sid in html for sid in (today, later, blind, done, noshow))
    assert "Grace Hopper" not in html


async def test_today_ends_at_the_utc_midnight(panel: Panel) -> None:
    base = (now() + timedelta(days=2)).date()
    evening = datetime(base.year, base.month, base.day, 23, 30, tzinfo=UTC)
    late = await panel.schedule(starts_at=evening.isoformat())
    next_day = await panel.schedule(starts_at=(evening + timedelta(hours=1)).isoformat())
    alice = query(panel.settings, "SELECT id FROM users WHERE email = 'alice@example.com'")[0][0]
    db = sqlite_utils.Database(panel.settings.db_path)
    try:
        day = interviewer_day(db, alice, evening - timedelta(hours=12))
    finally:
        db.close()
    assert [i.session.id for i in day.today] == [late]
    assert [i.session.id for i in day.upcoming] == [next_day]
    assert day.today[0].task_title == TASK_TITLE  # the task's title, not its id


async def test_a_sealed_debrief_explains_itself_and_leaks_nothing(panel: Panel) -> None:
    sid = await panel.schedule()
    assert (await panel.call("alice", "POST", f"/api/v1/sessions/{sid}/scorecards/mine/submit",
                             full_card(4, "ALICE-SECRET")))[0] == 200
    for path in (f"/sessions/{sid}/debrief", f"/sessions/{sid}/report"):
        # Bob, on the panel, has not submitted: the explanation and his scorecard's link
        status, html = await panel.page("bob", path)
        assert status == 403
        assert ("Submit your scorecard first: the debrief opens once your own scores are in,"
                " so nobody anchors on another's.") in html
        assert f'href="/sessions/{sid}/scorecard"' in html
        assert "ALICE-SECRET" not in html
        # Carol, not on the panel: one plain sentence, nothing about the session
        status, html = await panel.page("carol", path)
        assert status == 403
        assert "Only this session's interviewers" in html
        assert "ALICE-SECRET" not in html and "Grace Hopper" not in html
        assert f"/sessions/{sid}/scorecard" not in html
    # the API still answers 403 in JSON
    status, data = await panel.call("bob", "GET", f"/api/v1/sessions/{sid}/debrief")
    assert status == 403 and "sealed" in data["error"]["message"]
    status, _ = await panel.page("alice", f"/sessions/{sid}/debrief")
    assert status == 200


async def test_incomplete_submission_keeps_the_draft_and_names_the_rubric_titles(
        panel: Panel) -> None:
    sid = await panel.schedule()
    await login(panel.client, "alice@example.com")
    page = await panel.client.get(f"/sessions/{sid}/scorecard")
    token = form_csrf_token(await page.text())
    form = {"csrf_token": token, "action": "submit", "level-debugging": "3",
            "evidence-debugging": "bisected the join", "level-communication": "2"}
    response = await panel.client.post(f"/sessions/{sid}/scorecard", data=form,
                                       allow_redirects=False)
    assert response.status == 422
    html = await response.text()
    assert "Draft saved; to submit:" in html and "Not saved" not in html
    assert "Give a level and evidence for: Navigating unfamiliar code, Asking useful" in html
    assert f"Write the evidence you saw for: {TITLES['communication']}." in html
    assert "Choose a recommendation (Strong no, No, Yes or Strong yes)." in html
    assert "Write a short summary." in html
    problems = html[html.index('id="scorecard-problems"'):html.index("</div>",
                                                                      html.index("scorecard-problems"))]
    assert not any(f"scores.{d}" in problems for d in PIPELINE_DIMS)
    assert "strong_no" not in problems and TITLES["debugging"] not in problems
    # what was typed is the draft now; nothing was submitted
    body = query(panel.settings, "SELECT body FROM scorecards WHERE session_id = ?", (sid,))
    assert "bisected the join" in body[0][0]
    assert query(panel.settings, "SELECT COUNT(*) FROM scorecard_versions") == [(0,)]
    # the API's 422 says the same in the same words
    status, data = await panel.call("alice", "POST",
                                    f"/api/v1/sessions/{sid}/scorecards/mine/submit")
    assert status == 422
    assert ("give a level and evidence for: Navigating unfamiliar code, Asking useful questions,"
            " Data-quality instincts, A working, tested solution") in data["problems"]
    # completed on the page: saved and submitted in one go, then the debrief
    full = {"csrf_token": token, "action": "submit", "recommendation": "strong_no",
            "summary": "done"}
    for d in PIPELINE_DIMS:
        full[f"level-{d}"], full[f"evidence-{d}"] = "2", f"saw {d}"
    response = await panel.client.post(f"/sessions/{sid}/scorecard", data=full,
                                       allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == f"/sessions/{sid}/debrief"
    assert query(panel.settings, "SELECT version, recommendation FROM scorecard_versions") == [
        (1, "strong_no")]


async def test_today_ends_at_the_viewers_midnight(panel: Panel) -> None:
    """The same two sessions as above, seen from Kiritimati (UTC+14): 23:30 and 00:30 UTC are
    13:30 and 14:30 of one local day there, so both are today's."""
    base = (now() + timedelta(days=2)).date()
    evening = datetime(base.year, base.month, base.day, 23, 30, tzinfo=UTC)
    late = await panel.schedule(starts_at=evening.isoformat())
    next_day = await panel.schedule(starts_at=(evening + timedelta(hours=1)).isoformat())
    alice = query(panel.settings, "SELECT id FROM users WHERE email = 'alice@example.com'")[0][0]
    zone = ZoneInfo("Pacific/Kiritimati")
    db = sqlite_utils.Database(panel.settings.db_path)
    try:
        there = interviewer_day(db, alice, (evening - timedelta(hours=12)).astimezone(zone))
        utc = interviewer_day(db, alice, evening - timedelta(hours=12))
    finally:
        db.close()
    assert [i.session.id for i in there.today] == [late, next_day]
    assert [i.session.id for i in there.upcoming] == []
    assert [i.session.id for i in utc.upcoming] == [next_day]
