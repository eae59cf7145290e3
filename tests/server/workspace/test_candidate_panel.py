"""The data of pairlab's side panel in JupyterLab (``/api/v1/sessions/<id>/panel`` on the
workspace origin), over the real app and proxy with a fake jupyter-server: the brief as
sanitised HTML, the end, and the hints given; written as the attacks too (another session's
panel, the interviewers' private notes, a hint that is HTML). Also: the end as an interviewer
who paired in the workspace is told it (not the candidate's thank-you)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from server.recording.keys import RECORDING
from server.workspace.app import ENDED_FOR_INTERVIEWER, THANKS
from server.workspace.panel_facts import hints_given
from tests.conftest import open_db
from tests.fixture_tasks import publish_fake_task
from tests.harness import Env, EnvFactory
from tests.server.workspace.test_workspace_origins import bare, host, join, started
from workspaces.recording import events as E
from workspaces.recording.events import Event

BRIEF = ("# Totals\n\nThe **nightly** totals look low.\n\n"
         '<img src="x" onerror="window.pwned=1"><script>window.pwned=2</script>\n')
HINT = "Look at the join first."
NOTE = "PRIVATE: the candidate is guessing."
HOSTILE = '<img src=x onerror="window.pwned=3"><script>window.pwned=4</script>'


async def as_candidate(env: Env, task: str = "demo-task") -> tuple[str, str]:
    """A session the candidate opened and started in ``env.ws``: (session id, workspace)."""
    created = await env.schedule(task=task)
    await env.open_link(created["candidate_link"])
    lab = await env.start_as_candidate(created["session_id"])
    return created["session_id"], lab.split("/")[2]


async def record(env: Env, session_id: str, kind: str, text: str) -> None:
    response = await env.client.post(f"/api/v1/sessions/{session_id}/notes",
                                     json={"text": text, "kind": kind},
                                     headers={"X-CSRF-Token": env.csrf})
    assert response.status == 201, await response.text()


async def test_the_panel_has_the_brief_the_end_and_only_the_hints(make_env: EnvFactory) -> None:
    env = await make_env()
    publish_fake_task(env.settings, "md-task", brief=BRIEF, title="Markdown task")
    session_id, workspace = await as_candidate(env, "md-task")
    await record(env, session_id, "hint", HINT)
    await record(env, session_id, "note", NOTE)
    await record(env, session_id, "hint", HOSTILE)

    response = await env.ws.get(f"/api/v1/sessions/{session_id}/panel", headers=host(workspace))
    assert response.status == 200, await response.text()
    assert response.headers["Cache-Control"] == "no-store"
    body = await response.text()
    panel = json.loads(body)["panel"]

    # The brief: the landing page's sanitised HTML; nothing of the hostile part survives.
    assert "<h2>Totals</h2>" in panel["brief_html"]
    assert "<strong>nightly</strong>" in panel["brief_html"]
    for hostile in ("<img", "<script", "onerror", "pwned"):
        assert hostile not in panel["brief_html"], panel["brief_html"]
    # The end: the session's own, as the countdown reads it.
    api = await (await env.ws.get(f"/api/v1/sessions/{session_id}",
                                  headers=host(workspace))).json()
    assert panel["ends_at"] == api["session"]["ends_at"]
    assert panel["state"] == "live" and abs(panel["seconds_left"]
                                            - api["session"]["seconds_left"]) <= 2
    # The hints, in order, as given (text: the panel puts them in as text); the note never.
    assert [h["text"] for h in panel["hints"]] == [HINT, HOSTILE]
    for hint in panel["hints"]:
        assert abs(datetime.fromisoformat(hint["at"]) - datetime.now(UTC)).total_seconds() < 60
    assert NOTE not in body and "guessing" not in body
    assert "interviewer:" not in body  # nor who gave a hint


async def test_a_candidate_cannot_read_another_sessions_panel(make_env: EnvFactory) -> None:
    env = await make_env()
    mine, workspace = await as_candidate(env)
    other, _ = await started(env, "Bea Other")
    await record(env, other, "hint", "Bea's hint")

    # From A's workspace host, with A's cookie: B's panel is refused, and says nothing of it.
    for path_host in (host(workspace), {}):
        refused = await env.ws.get(f"/api/v1/sessions/{other}/panel", headers=path_host)
        assert refused.status == 403, await refused.text()
        assert "Bea" not in await refused.text()
    missing = await env.ws.get("/api/v1/sessions/s_nosuchsession/panel", headers=host(workspace))
    assert missing.status == 404
    # Without any cookie, even one's own panel is refused.
    status, text = await bare(env, "GET", f"/api/v1/sessions/{mine}/panel", {}, host(workspace))
    assert status == 403 and "brief_html" not in text
    # A's own still works.
    assert (await env.ws.get(f"/api/v1/sessions/{mine}/panel", headers=host(workspace))
            ).status == 200


async def test_hints_given_reads_only_hints_oldest_first(make_env: EnvFactory) -> None:
    env = await make_env()
    session_id, _ = await started(env, "Ada")
    for kind, text in (("hint", "one"), ("note", "secret"), ("hint", "two")):
        await record(env, session_id, kind, text)
    db = open_db(env.settings)
    try:
        hints = hints_given(db, session_id)
        assert [h.text for h in hints] == ["one", "two"]
        assert hints[0].seq < hints[1].seq
        assert [h.text for h in hints_given(db, session_id, limit=1)] == ["two"]
        assert hints_given(db, "s_other") == ()
    finally:
        db.conn.close()


async def test_the_end_is_told_to_each_person_in_their_words(make_env: EnvFactory) -> None:
    env = await make_env()
    session_id, workspace = await started(env, "Ada")
    await join(env, session_id)  # the interviewer pairs in the workspace (env.ws's jar)
    ended = await env.client.post(f"/api/v1/sessions/{session_id}/end",
                                  headers={"X-CSRF-Token": env.csrf})
    assert ended.status == 200, await ended.text()
    interviewer = await env.ws.get(f"/w/{workspace}/lab")
    assert interviewer.status == 410
    text = await interviewer.text()
    assert ENDED_FOR_INTERVIEWER.split(".")[0] in text, text
    assert "<h1>The interview has ended</h1>" in text
    assert "thank you for your time" not in text.lower()
    # Anyone without a grant (here: no cookie at all) learns nothing of the session's state:
    # the same 403 a running workspace gives them, never the thank-you or the interviewer's page.
    status, other = await bare(env, "GET", f"/w/{workspace}/lab", {}, host(workspace))
    assert status == 403, other
    assert "<h1>No access to this workspace</h1>" in other
    assert THANKS.split("—")[1].split(".")[0].strip() not in other
    assert ENDED_FOR_INTERVIEWER.split(".")[0] not in other


async def test_a_hint_recorded_before_the_panel_existed_stays_private(make_env: EnvFactory) -> None:
    """Hints were "private to interviewers" until the panel: one stored without ``shown``
    (as the notes API stored them then) never reaches the candidate."""
    env = await make_env()
    session_id, _ = await started(env, "Ada")
    old = Event(session_id, E.interviewer_actor(1), E.HINT, "",
                {"text": "Nudged them on the off-by-one; they seemed lost"})
    await env.app[RECORDING].record_stored(old)
    await record(env, session_id, "hint", "Print the row counts before the join.")
    db = open_db(env.settings)
    try:
        stored = [json.loads(p) for (p,) in db.execute(
            "SELECT payload FROM events WHERE session_id = ? AND kind = 'hint' ORDER BY seq",
            [session_id]).fetchall()]
        assert [p.get("shown") for p in stored] == [None, True]
        assert [h.text for h in hints_given(db, session_id)] == [
            "Print the row counts before the join."]
    finally:
        db.conn.close()


async def test_only_an_interviewers_jupyterlab_page_names_the_staff_app(
        make_env: EnvFactory) -> None:
    """The candidate gets no link into pairlab's app (its address may be an internal host):
    the countdown's way "back to the session" is written into interviewers' pages only."""
    env = await make_env()
    session_id, workspace = await as_candidate(env)
    app_url = env.settings.app_url
    candidate = await env.ws.get(f"/w/{workspace}/lab", headers=host(workspace))
    assert candidate.status == 200, await candidate.text()
    page = await candidate.text()
    assert 'data-person="candidate"' in page  # the countdown is in the page
    assert app_url not in page and "/sessions/" not in page
    await join(env, session_id)  # the interviewer pairs in the same workspace, in env.ws's jar
    interviewer = await env.ws.get(f"/w/{workspace}/lab", headers=host(workspace))
    text = await interviewer.text()
    assert 'data-person="interviewer"' in text
    assert f'data-session-page="{app_url}/sessions/{session_id}"' in text
