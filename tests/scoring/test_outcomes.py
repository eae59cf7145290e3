"""Hiring outcomes over a real migrated SQLite file: validation, merging, the CSV import (all
or nothing, row-numbered errors, email matching) and the retention baseline."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from scoring import outcome_import, outcome_table, outcomes
from scoring.outcome_import import ImportRejected, import_csv
from server.db import open_migrated
from server.settings import Settings
from tests.conftest import create_user
from tests.fixture_tasks import publish_fake_task
from tests.scoring.interviews import START, make_session


@dataclass
class World:
    db: Any
    admin_id: int
    rev_id: str
    interviewer_id: int

    def session(self, **kw: Any) -> str:
        with self.db.atomic():
            return make_session(self.db, self.rev_id, [self.interviewer_id], **kw)

    def outcomes_rows(self) -> list[tuple[Any, ...]]:
        return self.db.execute("SELECT * FROM outcomes ORDER BY session_id").fetchall()

    def import_(self, text: str | bytes) -> outcome_import.ImportResult:
        raw = text.encode() if isinstance(text, str) else text
        with self.db.atomic():
            return import_csv(self.db, raw, self.admin_id)


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    admin = create_user(settings, "admin@example.com", "admin")
    interviewer = create_user(settings, "ivy@example.com", "interviewer")
    rev_id = publish_fake_task(settings)
    db = open_migrated(settings.db_path)
    try:
        yield World(db, admin.id, rev_id, interviewer.id)
    finally:
        db.conn.close()


def rejected(world: World, text: str | bytes) -> ImportRejected:
    with pytest.raises(ImportRejected) as caught:
        world.import_(text)
    return caught.value


# ---- validating one outcome --------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"hired": "yes"}, "hired: must be true, false or null"),
        ({"employed_6m": 1}, "employed_6m: must be true, false or null"),
        ({"hired": True, "performance": 0}, "performance: must be from 1 to 5, not 0"),
        ({"hired": True, "performance": 5.5}, "performance: must be from 1 to 5, not 5.5"),
        ({"hired": True, "performance": float("nan")}, "performance: must be from 1 to 5"),
        ({"hired": True, "performance": True}, "performance: must be a number from 1 to 5"),
        ({"hired": True, "performance": "4"}, "performance: must be a number from 1 to 5"),
        ({"note": "x" * 2001}, "note: must be at most 2000 characters, not 2001"),
        ({"note": 5}, "note: must be text"),
        ({"note": "a\x00b"}, "note: must not contain control characters"),
        ({"hird": True}, "hird: unknown field"),
        ({"hired": False, "employed_6m": True}, "employed_6m: cannot be yes while hired is no"),
        ({"employed_6m": True}, "employed_6m: cannot be yes while hired is not known"),
        ({"hired": False, "performance": 3}, "performance: needs hired to be yes (it is no)"),
        ({}, "outcome: send at least one of hired, employed_6m, performance, note"),
    ],
)
def test_invalid_outcomes_are_refused_with_the_field_and_reason(
    changes: dict[str, Any], expected: str
) -> None:
    with pytest.raises(outcomes.OutcomeInvalid) as caught:
        outcomes.validate(None, changes)
    assert expected in caught.value.message


def test_valid_outcomes() -> None:
    assert outcomes.validate(None, {"hired": True, "employed_6m": True, "performance": 4}) == {
        "hired": True, "employed_6m": True, "performance": 4.0, "note": "",
    }
    # Not hired, and (harmlessly) not employed; a note of exactly the limit.
    values = outcomes.validate(None, {"hired": False, "employed_6m": False, "note": "n" * 2000})
    assert values["hired"] is False
    assert values["employed_6m"] is False


def test_record_merges_later_outcomes_and_null_clears(world: World) -> None:
    sid = world.session()
    first = outcomes.record_outcome(world.db, sid, {"hired": True, "note": "offer"},
                                    world.admin_id)
    assert first.public() == {
        "session_id": sid, "hired": True, "employed_6m": None, "performance": None,
        "note": "offer", "recorded_by": "admin@example.com", "recorded_at": first.recorded_at,
    }
    # Six months later only the new facts are sent; the decision and note stay.
    later = outcomes.record_outcome(world.db, sid, {"employed_6m": True, "performance": 4.5},
                                    world.admin_id)
    assert (later.hired, later.employed_6m, later.performance, later.note) == (
        True, True, 4.5, "offer")
    assert later.recorded_at >= first.recorded_at
    cleared = outcomes.record_outcome(world.db, sid, {"performance": None}, world.admin_id)
    assert cleared.performance is None
    assert cleared.employed_6m is True
    # A change that contradicts what is stored is refused and changes nothing.
    with pytest.raises(outcomes.OutcomeInvalid, match="employed_6m: cannot be yes while hired"):
        outcomes.record_outcome(world.db, sid, {"hired": False}, world.admin_id)
    assert outcomes.get_outcome(world.db, sid) == cleared


def test_outcomes_only_for_ended_sessions(world: World) -> None:
    live = world.session(state="live")
    with pytest.raises(outcomes.SessionNotEnded, match="is live; outcomes are recorded once"):
        outcomes.record_outcome(world.db, live, {"hired": True}, world.admin_id)
    with pytest.raises(outcomes.UnknownSession, match="there is no session 's_nope'"):
        outcomes.record_outcome(world.db, "s_nope", {"hired": True}, world.admin_id)
    assert world.outcomes_rows() == []


# ---- CSV import --------------------------------------------------------------------------


def test_a_good_file_is_stored(world: World) -> None:
    a = world.session(candidate="Ada", email="ada@example.com")
    b = world.session(candidate="Bob", email="Bob@Example.com")
    c = world.session(candidate="Cy")
    text = (
        "\ufeffSession_ID,candidate_email,Hired,employed_6m,performance,note\r\n"
        f"{a},,yes,true,4,\"strong, kind\"\r\n"
        ",bob@example.com,No,,,declined the offer\r\n"
        "\r\n"
        f"{c},,1,0,2.5,\r\n"
    )
    result = world.import_(text)
    assert [sid for sid, _, _ in result.imported] == [a, b, c]
    assert result.skipped == 0
    got = {sid: outcomes.get_outcome(world.db, sid) for sid in (a, b, c)}
    assert got[a] is not None and (got[a].hired, got[a].employed_6m, got[a].performance,
                                   got[a].note) == (True, True, 4.0, "strong, kind")
    assert got[b] is not None and (got[b].hired, got[b].employed_6m, got[b].note) == (
        False, None, "declined the offer")
    assert got[c] is not None and (got[c].hired, got[c].employed_6m, got[c].performance) == (
        True, False, 2.5)
    assert got[a].recorded_by == "admin@example.com"


def test_blank_cells_keep_what_is_stored(world: World) -> None:
    sid = world.session(email="ada@example.com")
    outcomes.record_outcome(world.db, sid, {"hired": True, "note": "offer"}, world.admin_id)
    result = world.import_(f"session_id,hired,employed_6m,note\n{sid},,yes,\n")
    assert len(result.imported) == 1
    stored = outcomes.get_outcome(world.db, sid)
    assert stored is not None
    assert (stored.hired, stored.employed_6m, stored.note) == (True, True, "offer")
    # A row with only the session is not an error but stores nothing.
    again = world.import_(f"session_id,hired\n{sid},\n")
    assert (again.imported, again.skipped) == ([], 1)


def test_errors_on_rows_3_and_5_store_nothing_and_keep_existing_outcomes(world: World) -> None:
    sids = [world.session(candidate=f"C{i}") for i in range(5)]
    outcomes.record_outcome(world.db, sids[0], {"hired": False, "note": "kept"}, world.admin_id)
    before = world.outcomes_rows()
    text = (
        "session_id,hired,employed_6m,performance,note\n"   # line 1
        f"{sids[0]},yes,yes,4,changed\n"                  # line 2: fine on its own
        f"{sids[1]},yes,,7,\n"                            # line 3: performance out of range
        f"{sids[2]},no,,,\n"                              # line 4: fine
        f"{sids[3]},maybe,yes,,\n"                        # line 5: not a yes/no
        f"{sids[4]},yes,,3,\n"                            # line 6: fine
    )
    error = rejected(world, text)
    assert error.rows == [
        "row 3: performance: must be from 1 to 5, not 7.0",
        "row 5: hired: 'maybe' is not yes, no or blank",
    ]
    assert "nothing was imported" in error.message
    assert world.outcomes_rows() == before


def test_row_numbers_are_line_numbers_in_the_file(world: World) -> None:
    sid = world.session()
    text = (
        "session_id,hired,note\n"          # line 1
        "\n"                               # line 2: blank, skipped
        f"{sid},yes,\"two\nlines\"\n"      # lines 3-4: one record
        "s_missing,no,\n"                  # line 5
        ",yes,\n"                          # line 6
    )
    error = rejected(world, text)
    assert error.rows == [
        "row 5: session_id: there is no session 's_missing'",
        "row 6: session_id: give a session_id or a candidate_email",
    ]
    assert world.outcomes_rows() == []


def test_rows_contradicting_stored_outcomes_or_each_other(world: World) -> None:
    a, b = world.session(), world.session()
    outcomes.record_outcome(world.db, a, {"hired": False}, world.admin_id)
    error = rejected(world, (
        "session_id,employed_6m,performance\n"
        f"{a},yes,\n"
        f"{b},,4\n"
        f"{b},,3\n"
        f"{a},x,y,z\n"
    ))
    assert error.rows == [
        "row 2: employed_6m: cannot be yes while hired is no",
        "row 3: performance: needs hired to be yes (it is not known)",
        "row 4: session_id: the same session as row 3",
        "row 5: cells: has 4 cells but the header names 3",
        "row 5: employed_6m: 'x' is not yes, no or blank",
        "row 5: performance: 'y' is not a number from 1 to 5",
        "row 5: session_id: the same session as row 2",
    ]


def test_candidate_email_matches_the_latest_ended_session(world: World) -> None:
    old = world.session(email="ada@example.com", starts_at=START)
    new = world.session(email="ADA@example.com", starts_at=START + timedelta(days=30))
    world.session(email="ada@example.com", starts_at=START + timedelta(days=60),
                  state="scheduled")  # a re-interview not held yet: not matched
    result = world.import_("candidate_email,hired\nAda@Example.com,yes\n")
    assert [sid for sid, _, _ in result.imported] == [new]
    assert outcomes.get_outcome(world.db, old) is None


def test_candidate_email_without_a_single_match_is_a_row_error(world: World) -> None:
    world.session(email="twin@example.com")
    world.session(email="twin@example.com")  # same start: which one is meant?
    world.session(email="early@example.com", state="scheduled")
    error = rejected(world, (
        "candidate_email,hired\n"
        "nobody@example.com,yes\n"
        "twin@example.com,yes\n"
        "early@example.com,no\n"
    ))
    assert error.rows == [
        "row 2: candidate_email: no session has a candidate with this email",
        "row 3: candidate_email: the candidate has several latest sessions;"
        " use session_id instead",
        "row 4: candidate_email: the candidate's sessions have not ended yet",
    ]


def test_session_id_and_email_must_agree(world: World) -> None:
    sid = world.session(email="ada@example.com")
    error = rejected(world, f"session_id,candidate_email,hired\n{sid},bob@example.com,yes\n")
    assert error.rows == [
        "row 2: candidate_email: is not the email of this session's candidate"
    ]
    live = world.session(state="live")
    error = rejected(world, f"session_id,hired\n{live},yes\n")
    assert error.rows == [
        "row 2: session_id: the session is live; outcomes are recorded once the interview"
        " has ended"
    ]


@pytest.mark.parametrize(
    ("raw", "message", "rows"),
    [
        (b"", "The file is empty; the first line must be a header row.", []),
        (b"s_1,yes\n", "row 1: the first line must be a header naming the columns", [
            "row 1: header: no known column; expected session_id, candidate_email, hired,"
            " employed_6m, performance, note"]),
        (b"session_id,hird\ns_1,yes\n", "The header row has problems", [
            "row 1: hird: unknown column; use session_id, candidate_email, hired,"
            " employed_6m, performance, note",
            "row 1: header: name at least one of hired, employed_6m, performance, note"]),
        (b"hired,hired\nyes,yes\n", "The header row has problems", [
            "row 1: hired: the column appears twice",
            "row 1: header: a session_id or candidate_email column is needed"]),
        (b"session_id,hired\n", "The file has a header but no rows to import.", []),
        ("session_id,note\ns_1,caf\u00e9\n".encode("latin-1"),
         "The file is not UTF-8 text (line 2, byte 24); save it as 'CSV UTF-8'", []),
        (b"session_id,hired\n\"s_1,yes\n", "row 2: the line is not valid CSV", []),
        (b"session_id,hired\ns_1\x00,yes\n", "The file contains NUL bytes", []),
    ],
)
def test_unreadable_files_are_refused_whole(raw: bytes, message: str, rows: list[str]) -> None:
    with pytest.raises(ImportRejected) as caught:
        outcome_import.parse(raw)
    error = caught.value
    assert error.message.startswith(message)
    assert error.rows == rows


def test_size_and_row_caps(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    big = b"session_id,note\n" + b"s_1," + b"x" * outcome_import.MAX_BYTES + b"\n"
    assert "at most 1048576 bytes are accepted" in rejected(world, big).message
    monkeypatch.setattr(outcome_import, "MAX_ROWS", 3)
    many = "session_id,hired\n" + "s_1,yes\n" * 4
    assert rejected(world, many).message == "The file has more than 3 rows; split it."
    assert world.outcomes_rows() == []


def test_many_problems_are_listed_up_to_a_limit(world: World) -> None:
    text = "session_id,hired\n" + "".join(f"s_{i},yes\n" for i in range(250))
    error = rejected(world, text)
    assert len(error.rows) == outcome_import.MAX_REPORTED + 1
    assert error.rows[-1] == "... and 50 more problems"
    assert error.message.startswith("The file has 250 problems; nothing was imported.")


# ---- the retention baseline --------------------------------------------------------------


def test_retention_baseline(world: World) -> None:
    assert outcomes.get_baseline(world.db) is None
    baseline = outcomes.set_baseline(world.db, 0.8, world.admin_id)
    assert (baseline.name, baseline.value, baseline.set_by) == (
        "retention_6m", 0.8, "admin@example.com")
    assert outcomes.set_baseline(world.db, 1, world.admin_id).value == 1.0
    for bad in (0, -0.1, 1.01, float("inf"), float("nan"), True, "0.8", None):
        with pytest.raises(outcomes.OutcomeInvalid, match="value: must be"):
            outcomes.set_baseline(world.db, bad, world.admin_id)
    stored = outcomes.get_baseline(world.db)
    assert stored is not None and stored.value == 1.0


# ---- the outcomes table: the same reading and checks as the import -----------------------


@pytest.mark.parametrize(("texts", "problem"), [
    ({"hired": "maybe"}, ("hired", "'maybe' is not yes, no or blank")),
    ({"hired": "yes", "performance": "lots"},
     ("performance", "'lots' is not a number from 1 to 5")),
    ({"hired": "yes", "performance": "9"}, ("performance", "must be from 1 to 5, not 9.0")),
    ({"hired": "no", "employed_6m": "yes"},
     ("employed_6m", "cannot be yes while hired is no")),
])
def test_the_table_and_the_import_refuse_a_row_for_the_same_reason(
        world: World, texts: dict[str, str], problem: tuple[str, str]) -> None:
    sid = world.session()
    header = ",".join(["session_id", *texts])
    csv_text = f"{header}\n{sid},{','.join(texts.values())}\n"
    from_csv = rejected(world, csv_text)
    assert [(column, reason) for _, column, reason in from_csv.lines] == [problem]
    with pytest.raises(outcome_table.TableRejected) as caught, world.db.atomic():
        outcome_table.save_table(world.db, [outcome_table.RowInput(sid, texts)], world.admin_id)
    assert caught.value.problems == {sid: [problem]}
    assert world.outcomes_rows() == []


def test_the_table_refuses_rows_of_sessions_that_are_not_ended_or_do_not_exist(
        world: World) -> None:
    live = world.session(state="live")
    ended = world.session()
    rows = [outcome_table.RowInput(s, {"hired": "yes"}) for s in (live, "s_nope", ended)]
    with pytest.raises(outcome_table.TableRejected) as caught, world.db.atomic():
        outcome_table.save_table(world.db, rows, world.admin_id)
    assert caught.value.problems == {
        live: [("session", f"the session {live!r} is live; outcomes are recorded once the"
                           " interview has ended")],
        "s_nope": [("session", "there is no session 's_nope'")],
    }
    assert world.outcomes_rows() == []  # the good row is not stored either
