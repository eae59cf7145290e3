"""The scorecard's timeline and its moments through the real app and a real SQLite file: only
this session's events are offered and accepted (the attack: another session's event numbers in
a scorecard post), a long session is paged, the filter, and candidate text stays text."""

from __future__ import annotations

import asyncio
import html
import re
from typing import Any

from server.recording.keys import RECORDING
from server.settings import Settings
from tests.conftest import form_csrf_token, login, query
from tests.server.scoring.conftest import PIPELINE_DIMS, Panel, full_card
from workspaces.recording import events as E


async def record(panel: Panel, session_id: str, items: list[tuple[str, str, dict[str, Any]]]
                 ) -> int:
    """Record ``(kind, path, payload)`` events as the candidate through the app's own recorder;
    returns the session's last event number once all are stored."""
    recorder = panel.client.app[RECORDING].recorder

    def stored() -> int:
        return int(query(panel.settings, "SELECT COUNT(*) FROM events WHERE session_id = ?",
                         [session_id])[0][0])

    expected = stored() + len(items)
    for kind, path, payload in items:
        await recorder.record(E.Event(session_id, E.ACTOR_CANDIDATE, kind, path, payload))
    for _ in range(600):  # committed in batches (group commit): wait for the last one
        if stored() >= expected:
            break
        await asyncio.sleep(0.05)
    assert stored() == expected
    return int(query(panel.settings, "SELECT MAX(seq) FROM events WHERE session_id = ?",
                     [session_id])[0][0])


def form_of(token: str, moments: dict[str, str]) -> dict[str, str]:
    form = {"csrf_token": token, "action": "submit", "recommendation": "yes", "summary": "s"}
    for dim in PIPELINE_DIMS:
        form[f"level-{dim}"] = "3"
        form[f"evidence-{dim}"] = "saw it"
        form[f"moments-{dim}"] = moments.get(dim, "")
    return form


async def test_another_sessions_event_numbers_are_refused_naming_the_question(
        panel: Panel, settings: Settings) -> None:
    mine = await panel.schedule()
    other = await panel.schedule()
    own = await panel.note(mine, "own note")
    # the other session has many more events: its numbers exist, just not in this session
    last_other = await record(panel, other, [(E.CELL_EXECUTED, "nb.ipynb", {"code": f"x={i}"})
                                             for i in range(own + 20)])
    foreign = last_other  # a real event number of the other session, beyond this one's end
    assert query(settings, "SELECT COUNT(*) FROM events WHERE session_id = ? AND seq = ?",
                 [other, foreign]) == [(1,)]
    await login(panel.client, "alice@example.com")
    page = await panel.client.get(f"/sessions/{mine}/scorecard")
    token = form_csrf_token(await page.text())

    # the attack: a scorecard form post pointing at the other session's events
    response = await panel.client.post(
        f"/sessions/{mine}/scorecard", allow_redirects=False,
        data=form_of(token, {"debugging": f"{own}, {foreign}", "questions": str(foreign)}))
    assert response.status == 422
    text = html.unescape(await response.text())
    assert (f"Debugging approach (scores.debugging.moments): moment {foreign} is not an event "
            f"of this session (its events are numbered 1 to {own})") in text
    assert (f"Asking useful questions (scores.questions.moments): moment {foreign} is not an "
            "event of this session") in text
    assert "Not saved" in text
    assert query(settings, "SELECT COUNT(*) FROM scorecards") == [(0,)]
    assert query(settings, "SELECT COUNT(*) FROM scorecard_versions") == [(0,)]

    # the same through the API (autosave and submit), several at once named together
    status, data = await panel.call("alice", "PUT", f"/api/v1/sessions/{mine}/scorecards/mine",
                                    full_card(3, "x", [foreign, foreign + 1]))
    assert status == 422
    assert (f"Navigating unfamiliar code (scores.navigating-code.moments): moments {foreign}, "
            f"{foreign + 1} are not events of this session (its events are numbered 1 to "
            f"{own})") in data["problems"]
    status, data = await panel.call("alice", "POST",
                                    f"/api/v1/sessions/{mine}/scorecards/mine/submit",
                                    full_card(3, "x", [foreign]))
    assert status == 422
    assert query(settings, "SELECT COUNT(*) FROM scorecards") == [(0,)]
    assert query(settings, "SELECT COUNT(*) FROM scorecard_versions") == [(0,)]

    # its own event is accepted, and the debrief links it into this session's replay
    response = await panel.client.post(f"/sessions/{mine}/scorecard", allow_redirects=False,
                                       data=form_of(token, {"debugging": str(own)}))
    assert response.status == 303
    assert query(settings, "SELECT COUNT(*) FROM scorecard_versions") == [(1,)]
    debrief = await (await panel.client.get(f"/sessions/{mine}/debrief")).text()
    assert f'href="/sessions/{mine}/replay#seq={own}">#{own}</a>' in debrief


async def test_the_timeline_shows_only_this_sessions_notable_events_as_text(
        panel: Panel) -> None:
    mine = await panel.schedule()
    other = await panel.schedule()
    attack = '<img src=x onerror="alert(1)"></script><script>alert(2)</script>'
    await record(panel, mine, [
        (E.CELL_EXECUTED, "explore.ipynb", {"code": attack, "status": "ok",
                                            "execution_count": 1, "output": "o" * 60_000}),
        (E.TERMINAL_OUTPUT, "", {"line": "pytest", "output": "noise"}),
        (E.TESTS_RUN, "", {"passed": 3, "failed": 1}),
        (E.FILE_CHANGED, "src/clean.py", {"size": 10}),
        (E.TERMINAL_COMMAND, "", {"line": "python -m pytest -q"}),
    ])
    note = await panel.note(mine, attack)
    await panel.note(other, "a note of the other session")
    status, page = await panel.page("alice", f"/sessions/{mine}/scorecard")
    assert status == 200
    items = re.findall(r'<li class="moment-event" data-seq="(\d+)" data-kind="([^"]+)"', page)
    kinds = [k for _, k in items]
    assert kinds == [E.CELL_EXECUTED, E.TESTS_RUN, E.FILE_CHANGED, E.TERMINAL_COMMAND, E.NOTE]
    assert items[-1][0] == str(note)
    assert "a note of the other session" not in page
    assert "<img src=x" not in page and "<script>alert" not in page  # text, escaped, everywhere
    assert "&lt;img src=x" in page  # the note's text, shown without script
    assert f'href="/sessions/{mine}/replay#seq={note}"' in page
    assert "Events 1 to 5 of 5." in page
    # the page's script gets the output cut short (JSON, "…" escaped)
    assert max(len(run) for run in re.findall("o{100,}", page)) == 300
    assert "o" * 300 + "\\u2026" in page
    # without script: the typed field of event numbers is there, in sight, for every question
    assert page.count('<div class="moments-typed">') == len(PIPELINE_DIMS)
    assert page.count('name="moments-') == len(PIPELINE_DIMS)

    # Filter by kind and by text (the whole session, without script)
    _, notes = await panel.page("alice", f"/sessions/{mine}/scorecard?kind=notes")
    assert re.findall(r'data-kind="([^"]+)" data-group', notes) == [E.NOTE]
    assert "Events 1 to 1 of 1 matching the filter." in notes
    _, found = await panel.page("alice", f"/sessions/{mine}/scorecard?q=CLEAN.PY")
    assert re.findall(r'data-kind="([^"]+)" data-group', found) == [E.FILE_CHANGED]
    _, none = await panel.page("alice", f"/sessions/{mine}/scorecard?q=50%25_off")
    assert "No events match the filter." in none  # % and _ are literal, not wildcards
    status, bad = await panel.page("alice", f"/sessions/{mine}/scorecard?kind=everything")
    assert status == 422
    assert "there is no kind &#39;everything&#39; to filter by" in bad
    status, _ = await panel.page("alice", f"/sessions/{mine}/scorecard?after=-1")
    assert status == 422


async def test_a_long_session_is_paged_by_two_hundred(panel: Panel) -> None:
    sid = await panel.schedule()
    items: list[tuple[str, str, dict[str, Any]]] = []
    for i in range(1500):  # with outputs between the commands, which are not offered
        items.append((E.TERMINAL_COMMAND, "", {"line": f"echo step-{i}"}))
        items.append((E.TERMINAL_OUTPUT, "", {"line": f"echo step-{i}", "output": "x"}))
    await record(panel, sid, items)
    cmds = [r[0] for r in query(panel.settings, "SELECT seq FROM events WHERE session_id = ?"
                                " AND kind = ? ORDER BY seq", [sid, E.TERMINAL_COMMAND])]
    assert len(cmds) == 1500

    def shown(page: str) -> list[int]:
        return [int(s) for s in re.findall(r'class="moment-event" data-seq="(\d+)"', page)]

    _, first = await panel.page("alice", f"/sessions/{sid}/scorecard")
    assert shown(first) == cmds[:200]
    assert "Events 1 to 200 of 1500." in first
    assert 'id="timeline-earlier"' not in first
    later = re.search(r'id="timeline-later" href="([^"]+)"', first)
    assert later is not None
    _, second = await panel.page("alice", html.unescape(later.group(1)).split("#")[0])
    assert shown(second) == cmds[200:400]
    assert "Events 201 to 400 of 1500." in second
    earlier = re.search(r'id="timeline-earlier" href="([^"]+)"', second)
    assert earlier is not None
    _, back = await panel.page("alice", html.unescape(earlier.group(1)).split("#")[0])
    assert shown(back) == cmds[:200]
    # the last page has no "later"; a moment from any page is accepted
    _, end = await panel.page("alice", f"/sessions/{sid}/scorecard?after={cmds[1399]}")
    assert "Events 1401 to 1500 of 1500." in end and 'id="timeline-later"' not in end
    assert shown(end) == cmds[1400:]
    status, _ = await panel.call("alice", "PUT", f"/api/v1/sessions/{sid}/scorecards/mine",
                                 full_card(3, "x", [cmds[-1]]))
    assert status == 200


async def test_a_blind_sessions_timeline_shows_the_pseudonym(panel: Panel) -> None:
    sid = await panel.schedule(blind=True)
    await record(panel, sid, [(E.CELL_EXECUTED, "nb.ipynb", {"code": "1 + 1", "status": "ok"})])
    status, page = await panel.page("alice", f"/sessions/{sid}/scorecard")
    assert status == 200 and 'data-kind="cell.executed"' in page
    assert "Grace Hopper" not in page and "grace@example.org" not in page
