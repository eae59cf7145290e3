"""Scorecards through the real app and a real SQLite file: drafts, sealing on every route,
blind mode, validation that stores nothing, versions, concurrent submissions, reveal."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.conftest import audit_actions, query
from tests.server.scoring.conftest import PIPELINE_DIMS, WEIGHTS, Panel, full_card


async def test_draft_shape_and_autosave(panel: Panel) -> None:
    sid = await panel.schedule()
    status, mine = await panel.call("alice", "GET", f"/api/v1/sessions/{sid}/scorecards/mine")
    assert status == 200 and mine["state"] == "draft" and mine["version"] == 0
    assert mine["rubric"]["id"] == "pipeline-bug"
    assert [d["id"] for d in mine["dimensions"]] == PIPELINE_DIMS
    assert all(set(d["anchors"]) == {"1", "2", "3", "4"} for d in mine["dimensions"])
    assert {d["id"]: d["weight"] for d in mine["dimensions"]} == WEIGHTS
    partial = {"scores": {"debugging": {"level": 3, "evidence": "bisected", "moments": []}}}
    status, saved = await panel.call("alice", "PUT", f"/api/v1/sessions/{sid}/scorecards/mine",
                                     partial)
    assert status == 200 and saved["scores"]["debugging"]["level"] == 3
    assert saved["recommendation"] is None
    _, again = await panel.call("alice", "GET", f"/api/v1/sessions/{sid}/scorecards/mine")
    assert again["scores"] == saved["scores"]
    # not on the panel: no scorecard of their own
    status, data = await panel.call("carol", "GET", f"/api/v1/sessions/{sid}/scorecards/mine")
    assert status == 403


async def test_sealed_until_own_submission_on_every_route(panel: Panel) -> None:
    sid = await panel.schedule()
    status, _ = await panel.call("alice", "POST",
                                 f"/api/v1/sessions/{sid}/scorecards/mine/submit",
                                 full_card(4, "ALICE-SECRET"))
    assert status == 200
    routes = [f"/api/v1/sessions/{sid}/scorecards", f"/api/v1/sessions/{sid}/debrief",
              f"/api/v1/sessions/{sid}/report"]
    pages = [f"/sessions/{sid}/debrief", f"/sessions/{sid}/report",
             f"/sessions/{sid}/scorecard", f"/sessions/{sid}", f"/sessions/{sid}/observe",
             f"/sessions/{sid}/replay"]
    for path in routes:
        status, data = await panel.call("bob", "GET", path)
        assert status == 403, path
        assert "sealed" in data["error"]["message"]
        assert "ALICE-SECRET" not in json.dumps(data)
    for path in pages:
        status, html = await panel.page("bob", path)
        assert "ALICE-SECRET" not in html, path
        if "debrief" in path or "report" in path:
            assert status == 403 and "sealed" in html
    status, mine = await panel.call("bob", "GET", f"/api/v1/sessions/{sid}/scorecards/mine")
    assert status == 200 and "ALICE-SECRET" not in json.dumps(mine)
    # someone outside the panel sees nothing at all
    for path in routes:
        assert (await panel.call("carol", "GET", path))[0] == 403
    # Alice, having submitted, sees hers and who is missing
    status, data = await panel.call("alice", "GET", f"/api/v1/sessions/{sid}/scorecards")
    assert status == 200 and data["waiting_for"] == ["bob"]
    assert [c["interviewer"]["email"] for c in data["scorecards"]] == ["alice@example.com"]

    status, _ = await panel.call("bob", "POST", f"/api/v1/sessions/{sid}/scorecards/mine/submit",
                                 full_card(2, "BOB"))
    assert status == 200
    status, data = await panel.call("bob", "GET", f"/api/v1/sessions/{sid}/scorecards")
    assert status == 200 and data["waiting_for"] == []
    assert sorted(c["interviewer"]["email"] for c in data["scorecards"]) == [
        "alice@example.com", "bob@example.com"]
    status, html = await panel.page("bob", f"/sessions/{sid}/debrief")
    assert status == 200 and "ALICE-SECRET" in html
    # the panel disagrees by 2 on every dimension: all flagged
    assert html.count('class="disagree"') == len(PIPELINE_DIMS)


async def test_weighted_score_debrief_and_report(panel: Panel) -> None:
    sid = await panel.schedule()
    seq = await panel.note(sid, "asked about the timezone of the events")
    alice = full_card(3, "A", [seq])
    alice["scores"]["debugging"]["level"] = 4
    for who, card in (("alice", alice), ("bob", full_card(2, "B"))):
        status, data = await panel.call(who, "POST",
                                        f"/api/v1/sessions/{sid}/scorecards/mine/submit", card)
        assert status == 200, data
    # by hand: Alice 3 everywhere but debugging 4 (weight 25): 3 + 25/100 = 3.25; Bob 2.0
    status, debrief = await panel.call("alice", "GET", f"/api/v1/sessions/{sid}/debrief")
    assert status == 200
    scores = {c["interviewer"]["email"]: c["weighted_score"] for c in debrief["scorecards"]}
    assert scores == {"alice@example.com": 3.25, "bob@example.com": 2.0}
    assert debrief["weighted_score"] == pytest.approx((3.25 + 2.0) / 2)
    flagged = {d["id"] for d in debrief["dimensions"] if d["disagreement"]}
    assert flagged == {"debugging"}  # 4 vs 2; the others are 3 vs 2
    assert debrief["recommendations"] == {"strong_no": 0, "no": 1, "yes": 1, "strong_yes": 0}
    status, html = await panel.page("alice", f"/sessions/{sid}/debrief")
    assert f'href="/sessions/{sid}/replay#seq={seq}"' in html
    status, report = await panel.call("alice", "GET", f"/api/v1/sessions/{sid}/report")
    assert status == 200 and report["weighted_score"] == pytest.approx(2.625)
    debugging = next(d for d in report["dimensions"] if d["id"] == "debugging")
    assert debugging["mean_level"] == 3.0 and debugging["anchor"].startswith("Stated a hypo")
    status, html = await panel.page("alice", f"/sessions/{sid}/report")
    assert status == 200 and "2.62" in html
    # prints cleanly: the page's stylesheet hides navigation and forms when printing
    assert '<link rel="stylesheet" href="/static/pairlab.css">' in html
    css = await (await panel.client.get("/static/pairlab.css")).text()
    print_rules = css[css.index("@media print"):]
    assert "header.top" in print_rules and "display: none" in print_rules


async def test_invalid_scorecards_are_refused_and_nothing_is_stored(panel: Panel) -> None:
    sid = await panel.schedule()
    other = await panel.schedule()
    foreign_seq = await panel.note(other, "a note in another session")
    good = full_card(3, "first")
    assert (await panel.call("alice", "PUT", f"/api/v1/sessions/{sid}/scorecards/mine",
                             good))[0] == 200
    before = query(panel.settings, "SELECT body, updated_at FROM scorecards")
    bad_level = full_card(3, "x")
    bad_level["scores"]["debugging"]["level"] = 5
    unknown = full_card(3, "x")
    unknown["scores"]["vibes"] = {"level": 4, "evidence": "good vibes"}
    foreign = full_card(3, "x", [foreign_seq + 1000])
    cases = [
        (bad_level,
         "Debugging approach (scores.debugging.level): 5 is out of range; levels are 1 to 4"),
        (unknown, "'vibes' is not a dimension of rubric 'pipeline-bug'"),
        (foreign, "not an event of this session"),
        ({"scores": [], "recommendation": "maybe"}, "recommendation: must be one of"),
    ]
    for body, message in cases:
        for path in ("/scorecards/mine", "/scorecards/mine/submit"):
            method = "PUT" if path.endswith("mine") else "POST"
            status, data = await panel.call("alice", method, f"/api/v1/sessions/{sid}{path}",
                                            body)
            assert status == 422, (path, data)
            assert message in data["error"]["message"]
    # a moment from another session's timeline is refused even though that seq exists there
    own_seq = await panel.note(sid, "own note")
    foreign_only = full_card(3, "x", [own_seq + 50])
    status, data = await panel.call("alice", "PUT", f"/api/v1/sessions/{sid}/scorecards/mine",
                                    foreign_only)
    assert status == 422
    status, data = await panel.call("alice", "PUT", f"/api/v1/sessions/{sid}/scorecards/mine",
                                    "not an object")
    assert status == 400 and "JSON object" in data["error"]["message"]
    assert query(panel.settings, "SELECT body, updated_at FROM scorecards") == before
    assert query(panel.settings, "SELECT COUNT(*) FROM scorecard_versions") == [(0,)]
    # incomplete: every missing part listed, nothing submitted
    status, data = await panel.call("alice", "POST",
                                    f"/api/v1/sessions/{sid}/scorecards/mine/submit",
                                    {"scores": {"debugging": {"level": 2, "evidence": "x"}}})
    assert status == 422
    problems = data["problems"]  # every problem, beside the one-sentence error
    assert ("give a level and evidence for: Navigating unfamiliar code, Asking useful questions,"
            " Data-quality instincts, A working, tested solution,"
            " Communicating findings to a non-specialist") in problems
    assert "write a short summary" in problems
    assert query(panel.settings, "SELECT COUNT(*) FROM scorecard_versions") == [(0,)]


async def test_editing_a_submitted_scorecard_is_a_new_audited_version(panel: Panel) -> None:
    sid = await panel.schedule()
    first = full_card(2, "v1")
    status, data = await panel.call("alice", "POST",
                                    f"/api/v1/sessions/{sid}/scorecards/mine/submit", first)
    assert status == 200 and data["scorecard"]["version"] == 1
    second = full_card(3, "v2")
    await panel.call("alice", "PUT", f"/api/v1/sessions/{sid}/scorecards/mine", second)
    # a draft edit is not visible to others until it is submitted again
    await panel.call("bob", "POST", f"/api/v1/sessions/{sid}/scorecards/mine/submit",
                     full_card(3, "B"))
    _, seen = await panel.call("bob", "GET", f"/api/v1/sessions/{sid}/scorecards")
    alice = next(c for c in seen["scorecards"] if c["interviewer"]["email"].startswith("alice"))
    assert alice["version"] == 1 and alice["summary"] == "v1 summary"
    status, data = await panel.call("alice", "POST",
                                    f"/api/v1/sessions/{sid}/scorecards/mine/submit")
    assert status == 200 and data["scorecard"]["version"] == 2
    _, seen = await panel.call("bob", "GET", f"/api/v1/sessions/{sid}/scorecards")
    alice = next(c for c in seen["scorecards"] if c["interviewer"]["email"].startswith("alice"))
    assert alice["version"] == 2 and alice["summary"] == "v2 summary"
    rows = query(panel.settings, "SELECT version, json_extract(body, '$.summary') FROM"
                 " scorecard_versions WHERE session_id = ? AND user_id = (SELECT id FROM users"
                 " WHERE email = 'alice@example.com') ORDER BY version", (sid,))
    assert rows == [(1, "v1 summary"), (2, "v2 summary")]
    actions = audit_actions(panel.settings)
    assert actions.count("scorecard.submitted") == 2 and actions.count("scorecard.edited") == 1
    with pytest.raises(Exception, match="append-only"):
        query(panel.settings, "UPDATE scorecard_versions SET weighted_score = 4")


async def test_two_interviewers_submit_at_the_same_moment(panel: Panel) -> None:
    sids = [await panel.schedule() for _ in range(5)]
    for sid in sids:
        results = await asyncio.gather(*(
            panel.call(who, "POST", f"/api/v1/sessions/{sid}/scorecards/mine/submit",
                       full_card(level, who)) for who, level in (("alice", 3), ("bob", 2))))
        assert [status for status, _ in results] == [200, 200]
        # exactly one of the two completed the panel
        assert sorted(data["debrief_ready"] for _, data in results) == [False, True]
    counts = query(panel.settings, "SELECT session_id, COUNT(*) FROM scorecard_versions"
                   " GROUP BY session_id")
    assert sorted(counts) == sorted((sid, 2) for sid in sids)


async def test_blind_mode_hides_the_candidate_everywhere_until_revealed(panel: Panel) -> None:
    sid = await panel.schedule(blind=True)
    _, session = await panel.call("alice", "GET", f"/api/v1/sessions/{sid}")
    pseudonym = session["session"]["candidate_name"]
    assert pseudonym.startswith("Candidate ") and session["session"]["scoring"]["blind"]
    assert session["session"]["candidate_email"] == ""

    async def everything(who: str) -> str:
        seen = []
        for path in (f"/api/v1/sessions/{sid}", "/api/v1/sessions",
                     f"/api/v1/sessions/{sid}/scorecards/mine"):
            seen.append(json.dumps((await panel.call(who, "GET", path))[1]))
        pages = ["/sessions", f"/sessions/{sid}", f"/sessions/{sid}/observe",
                 f"/sessions/{sid}/replay"]
        if who != "admin":  # the admin is not on this panel: no scorecard of their own
            pages.append(f"/sessions/{sid}/scorecard")
        for path in pages:
            status, html = await panel.page(who, path)
            assert status == 200, path
            seen.append(html)
        return "\n".join(seen)

    for who in ("alice", "admin"):
        text = await everything(who)
        assert "Grace" not in text and "Hopper" not in text and "grace@" not in text
        assert pseudonym in text
    status, data = await panel.call("alice", "POST", f"/api/v1/sessions/{sid}/reveal")
    assert status == 409 and "not submitted" in data["error"]["message"]
    for who, level in (("alice", 3), ("bob", 3)):
        await panel.call(who, "POST", f"/api/v1/sessions/{sid}/scorecards/mine/submit",
                         full_card(level, who))
    for path in (f"/api/v1/sessions/{sid}/debrief", f"/api/v1/sessions/{sid}/report"):
        text = json.dumps((await panel.call("bob", "GET", path))[1])
        assert "Grace" not in text and "grace@" not in text and pseudonym in text
    for path in (f"/sessions/{sid}/debrief", f"/sessions/{sid}/report"):
        status, html = await panel.page("bob", path)
        assert status == 200 and "Grace" not in html and pseudonym in html
    assert "candidate.revealed" not in audit_actions(panel.settings)
    status, data = await panel.call("bob", "POST", f"/api/v1/sessions/{sid}/reveal")
    assert status == 200 and data["scoring"]["revealed"]
    assert audit_actions(panel.settings).count("candidate.revealed") == 1
    _, session = await panel.call("alice", "GET", f"/api/v1/sessions/{sid}")
    assert session["session"]["candidate_name"] == "Grace Hopper"
    assert session["session"]["candidate_email"] == "grace@example.org"
    # an ordinary (not blind) session shows the name from the start
    plain = await panel.schedule()
    _, session = await panel.call("alice", "GET", f"/api/v1/sessions/{plain}")
    assert session["session"]["candidate_name"] == "Grace Hopper"
    status, data = await panel.call("alice", "POST", f"/api/v1/sessions/{plain}/reveal")
    assert status == 409


async def test_an_admin_on_the_panel_is_sealed_in_the_export_and_reports_too(
        panel: Panel) -> None:
    sid = await panel.schedule(interviewers=["admin@example.com", "alice@example.com"])
    await panel.call("alice", "POST", f"/api/v1/sessions/{sid}/scorecards/mine/submit",
                     full_card(4, "ALICE-LEVELS"))
    response = await panel.client.get("/api/v1/scores.csv", headers=panel.h("admin"))
    assert response.status == 200 and sid not in await response.text()
    status, report = await panel.call("admin", "GET", "/api/v1/reports/validity")
    assert status == 200 and report["sessions_scored"] == 0
    assert (await panel.call("admin", "GET", f"/api/v1/sessions/{sid}/scorecards"))[0] == 403
    await panel.call("admin", "POST", f"/api/v1/sessions/{sid}/scorecards/mine/submit",
                     full_card(3, "ADMIN"))
    response = await panel.client.get("/api/v1/scores.csv", headers=panel.h("admin"))
    text = await response.text()
    assert text.count(sid) == 2 * len(PIPELINE_DIMS)  # both cards, a row per dimension
    status, report = await panel.call("admin", "GET", "/api/v1/reports/validity")
    assert report["sessions_scored"] == 1
