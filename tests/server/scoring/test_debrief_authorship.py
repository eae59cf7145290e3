"""The debrief's "Who wrote what" through the real app and a real SQLite file: events recorded by
the recording service (a shared save by the candidate and an interviewer, a contents-API save by
the interviewer, an inferred change, cells and commands), both scorecards submitted, then the
debrief page as an interviewer: one row group per person under their display name (blind mode:
the candidate's pseudonym, never their name), one row per file linked to the replay."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

from server.recording.keys import RECORDING
from tests.conftest import query
from tests.server.scoring.conftest import Panel, full_card
from workspaces.recording import events as E


class Rows(HTMLParser):
    """The ``#authorship`` table: per ``tbody[data-actor]``, the person's name and the file rows
    (``data-path`` → cell texts and the links' hrefs)."""

    def __init__(self) -> None:
        super().__init__()
        self.people: dict[str, dict[str, Any]] = {}
        self._in_table = False
        self._actor = ""
        self._row: dict[str, Any] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table" and a.get("id") == "authorship":
            self._in_table = True
        if not self._in_table:
            return
        if tag == "tbody":
            self._actor = a.get("data-actor") or ""
            self.people[self._actor] = {"name": "", "summary": [], "files": {}}
        elif tag == "tr" and self._actor:
            self._row = {"path": a.get("data-path"), "cells": [], "links": []}
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "a" and self._row is not None:
            self._row["links"].append(a.get("href"))

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if not self._in_table:
            return
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row["cells"].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            person = self.people[self._actor]
            if self._row["path"] is None:
                person["name"], person["summary"] = self._row["cells"][0], self._row["cells"]
            else:
                person["files"][self._row["path"]] = self._row
            self._row = None
        elif tag == "table":
            self._in_table = False


def table(html: str) -> dict[str, dict[str, Any]]:
    parser = Rows()
    parser.feed(html)
    return parser.people


def user_id(panel: Panel, email: str) -> int:
    return int(query(panel.settings, "SELECT id FROM users WHERE email = ?", (email,))[0][0])


async def record_session(panel: Panel, sid: str, alice: str) -> dict[str, int]:
    """A session's worth of changes; returns the seq of each file's last change."""
    service = panel.client.app[RECORDING]

    async def put(actor: str, kind: str, path: str = "", **payload: Any) -> int:
        stored = await service.record_stored(E.Event(sid, actor, kind, path, payload))
        return stored.seq

    shared = {"via": "collaboration", "doc": {"id": 1, "n": 9}}
    await put("candidate", E.FILE_CHANGED, "evaluate.py", sha256="a1",
              authors={"candidate": {"ins": 120, "del": 8}}, **shared)
    evaluate = await put(alice, E.FILE_CHANGED, "evaluate.py", sha256="a2",
                         authors={alice: {"ins": 30, "del": 4}, "candidate": {"ins": 6,
                                                                              "del": 0}},
                         **shared)
    notes = await put(alice, E.FILE_CHANGED, "notes.md", sha256="b1", via="contents",
                      authors={alice: {}})
    await put("candidate", E.CELL_EXECUTED, "run.ipynb", code="evaluate()")
    await put(alice, E.CELL_EXECUTED, "run.ipynb", code="print(1)")
    out = await put(alice, E.FILE_CREATED, "out.csv", sha256="c1", via="process",
                    inferred=True)
    await put("candidate", E.TERMINAL_COMMAND, "", line="pytest -q")
    await put("candidate", E.TERMINAL_COMMAND, "", line="ls")
    return {"evaluate.py": evaluate, "notes.md": notes, "out.csv": out}


async def submit_both(panel: Panel, sid: str) -> None:
    for who, level in (("alice", 3), ("bob", 2)):
        status, data = await panel.call(who, "POST",
                                        f"/api/v1/sessions/{sid}/scorecards/mine/submit",
                                        full_card(level, who))
        assert status == 200, data


async def test_who_wrote_what_on_the_debrief(panel: Panel) -> None:
    sid = await panel.schedule()
    alice = E.interviewer_actor(user_id(panel, "alice@example.com"))
    last = await record_session(panel, sid, alice)
    # sealed until Alice has submitted: the section is on a page she cannot see yet
    status, html = await panel.page("alice", f"/sessions/{sid}/debrief")
    assert status == 403 and "evaluate.py" not in html
    await submit_both(panel, sid)
    status, html = await panel.page("alice", f"/sessions/{sid}/debrief")
    assert status == 200, html
    assert 'id="who-wrote-what"' in html
    people = table(html)
    assert list(people) == ["candidate", alice]  # the candidate first
    candidate, lead = people["candidate"], people[alice]
    assert candidate["name"] == "Grace Hopper"
    alice_name = query(panel.settings, "SELECT display_name FROM users WHERE email = ?",
                       ("alice@example.com",))[0][0]
    assert lead["name"] == alice_name and alice_name != alice
    # the person's totals: cells, commands, inserted, deleted, saves, inferred
    assert candidate["summary"][1:] == ["1 cell run · 2 terminal commands", "126", "8", "2", "",
                                        "0", ""]
    assert lead["summary"][1:] == ["1 cell run · 0 terminal commands", "30", "4", "2", "", "1",
                                   ""]
    assert list(candidate["files"]) == ["evaluate.py"]
    row = candidate["files"]["evaluate.py"]
    assert row["cells"][1:6] == ["evaluate.py", "126", "8", "2", "shared editing × 2"]
    # the file links to the replay at its last change (the interviewer's save), and the
    # candidate's own last change is the same save (they are one of its authors)
    assert row["links"] == [f"/sessions/{sid}/replay#seq={last['evaluate.py']}"] * 2
    assert list(lead["files"]) == ["evaluate.py", "notes.md", "out.csv"]
    assert lead["files"]["notes.md"]["cells"][4:6] == ["1", "contents API × 1"]
    inferred = lead["files"]["out.csv"]
    assert inferred["cells"][2:7] == ["0", "0", "0", "", "1"]  # counted apart, not a save
    assert inferred["links"][0] == f"/sessions/{sid}/replay#seq={last['out.csv']}"
    # the page still passes the app's CSP: no inline style or script in the new section
    section = html[html.index('id="who-wrote-what"'):html.index("<h2>Evidence</h2>")]
    assert "style=" not in section and "<script" not in section and "<style" not in section
    # the debrief's JSON has the same, by event actor
    status, data = await panel.call("alice", "GET", f"/api/v1/sessions/{sid}/debrief")
    assert status == 200
    by_actor = {p["actor"]: p for p in data["authorship"]["people"]}
    assert (by_actor["candidate"]["inserted"], by_actor[alice]["inferred"]) == (126, 1)
    assert data["authorship"]["last_change"] == last


async def test_blind_mode_hides_the_candidate_in_who_wrote_what(panel: Panel) -> None:
    sid = await panel.schedule(blind=True)
    _, session = await panel.call("alice", "GET", f"/api/v1/sessions/{sid}")
    pseudonym = session["session"]["candidate_name"]
    alice = E.interviewer_actor(user_id(panel, "alice@example.com"))
    await record_session(panel, sid, alice)
    await submit_both(panel, sid)
    status, html = await panel.page("bob", f"/sessions/{sid}/debrief")
    assert status == 200
    people = table(html)
    assert people["candidate"]["name"] == pseudonym
    assert "Grace" not in html and "Hopper" not in html and "grace@" not in html
    # revealed (recorded): the real name appears in the same place
    status, _ = await panel.call("bob", "POST", f"/api/v1/sessions/{sid}/reveal")
    assert status == 200
    _, html = await panel.page("bob", f"/sessions/{sid}/debrief")
    assert table(html)["candidate"]["name"] == "Grace Hopper"


async def test_a_session_with_no_changes_says_so(panel: Panel) -> None:
    sid = await panel.schedule()
    await submit_both(panel, sid)
    status, html = await panel.page("alice", f"/sessions/{sid}/debrief")
    assert status == 200 and 'id="authorship-none"' in html and table(html) == {}
    assert 'id="flagged-cells"' not in html


async def test_cells_the_record_cannot_vouch_for_are_listed_on_the_debrief(panel: Panel) -> None:
    sid = await panel.schedule()
    service = panel.client.app[RECORDING]

    async def cell(**payload: Any) -> int:
        event = E.Event(sid, "candidate", E.CELL_EXECUTED, "run.ipynb", payload)
        return (await service.record_stored(event)).seq

    await cell(code="print('plain')")  # nothing to say about it
    swapped = await cell(code="print('sent')\nmore()", flags=["transformed"],
                         code_ran="print('ran')\n")
    outside = await cell(code="<script>alert(1)</script>", origin="outside pairlab")
    hidden = await cell(code="evaluate()", flags=["unreported"])
    await submit_both(panel, sid)
    status, html = await panel.page("alice", f"/sessions/{sid}/debrief")
    assert status == 200
    listed = html[html.index('id="flagged-cells"'):]
    listed = listed[:listed.index("</ul>")]
    items = listed.split("<li ")[1:]
    assert [i.split('"')[1] for i in items] == [str(swapped), str(outside), str(hidden)]
    assert f'href="/sessions/{sid}/replay#seq={swapped}"' in items[0]
    assert "ran transformed code" in items[0] and "<code>print(&#39;sent&#39;)</code>" in items[0]
    assert "run outside pairlab" in items[1] and "<script>" not in listed
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in items[1]
    assert "the kernel did not report what ran" in items[2] and "Grace Hopper" in items[2]
    status, data = await panel.call("alice", "GET", f"/api/v1/sessions/{sid}/debrief")
    assert [(c["seq"], c["flags"]) for c in data["authorship"]["flagged_cells"]] == [
        (swapped, ["transformed"]), (outside, ["outside"]), (hidden, ["unreported"])]
