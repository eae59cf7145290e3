"""The scores CSV export over a real migrated SQLite file: current cards only, one row per
dimension, filters, pseudonyms for blind sessions and the formula-injection guard."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from scoring import score_export
from scoring.score_export import FilterInvalid, Filters, parse_filters
from server.db import open_migrated
from server.settings import Settings
from tests.conftest import create_user
from tests.fixture_tasks import publish_fake_task
from tests.scoring.interviews import START, add_rubric, blind, make_session, submit_card


@pytest.fixture
def db(settings: Settings) -> Iterator[Any]:
    """Three sessions over two tasks and two interviewers, scored as the comments say."""
    ivy = create_user(settings, "ivy@example.com", "interviewer")
    max_ = create_user(settings, "max@example.com", "interviewer")
    rev_a = publish_fake_task(settings, "task-a")
    rev_b = publish_fake_task(settings, "task-b")
    db = open_migrated(settings.db_path)
    try:
        with db.atomic():
            add_rubric(db)
            # s1: task-a, ml-engineer, 2 March; Ivy resubmitted (v2 counts), Max once.
            s1 = make_session(db, rev_a, [ivy.id, max_.id], task_id="task-a",
                              candidate="Ada Lovelace")
            submit_card(db, s1, ivy.id, {"debugging": 1, "testing": 1}, version=1,
                        recommendation="no-hire", weighted_score=1.0)
            submit_card(db, s1, ivy.id, {"debugging": 3, "testing": 4}, version=2,
                        weighted_score=3.5, submitted_at="2026-03-02T17:00:00+00:00")
            submit_card(db, s1, max_.id, {"testing": 2, "debugging": 2},
                        recommendation="lean-no", weighted_score=2.0)
            # s2: task-b, data-scientist, 10 March, blind and not revealed.
            s2 = make_session(db, rev_b, [ivy.id], task_id="task-b", role="data-scientist",
                              candidate="Grace Hopper", starts_at=START + timedelta(days=8))
            blind(db, s2, "Candidate Heron")
            submit_card(db, s2, ivy.id, {"debugging": 4})
            # s3: task-a, 20 March, blind but revealed; a hostile name and recommendation.
            s3 = make_session(db, rev_a, [max_.id], task_id="task-a",
                              candidate="=HYPERLINK(\"http://evil\")",
                              starts_at=START + timedelta(days=18))
            blind(db, s3, "Candidate Wren", revealed=True)
            submit_card(db, s3, max_.id, {"-cmd": 2}, recommendation="@SUM(A1)")
            # s4: scheduled, never scored: not in the export.
            make_session(db, rev_a, [ivy.id], task_id="task-a", state="scheduled")
        yield db
    finally:
        db.conn.close()


def export(db: Any, **query: str) -> list[dict[str, str]]:
    text = score_export.export_csv(db, parse_filters(query))
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader)
    assert tuple(header) == score_export.COLUMNS
    return [dict(zip(header, row, strict=True)) for row in reader]


def cards(rows: list[dict[str, str]]) -> list[tuple[str, str, str, str]]:
    return [(r["candidate"], r["interviewer"], r["dimension"], r["level"]) for r in rows]


def test_every_current_card_one_row_per_dimension(db: Any) -> None:
    rows = export(db)
    assert cards(rows) == [
        ("Ada Lovelace", "ivy@example.com", "debugging", "3"),
        ("Ada Lovelace", "ivy@example.com", "testing", "4"),
        ("Ada Lovelace", "max@example.com", "testing", "2"),
        ("Ada Lovelace", "max@example.com", "debugging", "2"),
        ("Candidate Heron", "ivy@example.com", "debugging", "4"),
        ("'=HYPERLINK(\"http://evil\")", "max@example.com", "'-cmd", "2"),
    ]
    first = rows[0]
    assert first["session_date"] == "2026-03-02"
    assert (first["task_id"], first["role"], first["rubric_id"], first["rubric_version"]) == (
        "task-a", "ml-engineer", "core", "1")
    # The resubmission's score, recommendation and time; never version 1's.
    assert (first["weighted_score"], first["recommendation"], first["submitted_at"]) == (
        "3.5", "hire", "2026-03-02T17:00:00+00:00")
    assert "no-hire" not in {r["recommendation"] for r in rows}
    assert rows[-1]["recommendation"] == "'@SUM(A1)"


def test_blind_sessions_show_the_pseudonym_until_revealed(db: Any) -> None:
    text = score_export.export_csv(db, Filters())
    assert "Grace Hopper" not in text
    assert "Candidate Heron" in text
    assert "Candidate Wren" not in text  # revealed: the real name is shown


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"task": "task-b"}, {"Candidate Heron"}),
        ({"role": "data-scientist"}, {"Candidate Heron"}),
        ({"role": "ml-engineer", "task": "task-a"}, {"Ada Lovelace", "'=HYPERLINK(\"http://evil\")"}),
        ({"from": "2026-03-10"}, {"Candidate Heron", "'=HYPERLINK(\"http://evil\")"}),
        ({"to": "2026-03-10"}, {"Ada Lovelace", "Candidate Heron"}),  # the end day is included
        ({"from": "2026-03-03", "to": "2026-03-19"}, {"Candidate Heron"}),
        ({"interviewer": "MAX@example.com"}, {"Ada Lovelace", "'=HYPERLINK(\"http://evil\")"}),
        ({"task": "task-b", "interviewer": "max@example.com"}, set()),
        ({"task": "", "role": "", "from": "", "to": "", "interviewer": ""},
         {"Ada Lovelace", "Candidate Heron", "'=HYPERLINK(\"http://evil\")"}),
    ],
)
def test_filters(db: Any, query: dict[str, str], expected: set[str]) -> None:
    assert {r["candidate"] for r in export(db, **query)} == expected


def test_interviewer_filter_keeps_only_their_cards(db: Any) -> None:
    rows = export(db, interviewer="ivy@example.com")
    assert {r["interviewer"] for r in rows} == {"ivy@example.com"}
    assert len(rows) == 3


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"from": "yesterday"}, "'from' must be a date like 2026-05-31, not 'yesterday'"),
        ({"to": "2026-02-30"}, "'to' must be a date like 2026-05-31, not '2026-02-30'"),
        ({"to": "2026-03-01T10:00"}, "'to' must be a date like 2026-05-31"),
        ({"from": "2026-03-05", "to": "2026-03-01"}, "'from' (2026-03-05) is after 'to'"),
        ({"role": "wizard"}, "'role' must be one of ml-engineer, data-scientist"),
        ({"interviewer": "not-an-email"}, "'interviewer' must be an email address"),
        ({"task": "a\nb"}, "'task' must be a task id"),
        ({"date_from": "2026-01-01"}, "unknown filter(s) 'date_from'; use task, role, from"),
    ],
)
def test_bad_filters_are_refused_with_a_sentence(query: dict[str, str], message: str) -> None:
    with pytest.raises(FilterInvalid) as caught:
        parse_filters(query)
    assert message in caught.value.message


def test_formula_injection_guard() -> None:
    for text in ("=1+1", "+1", "-1", "@A1", "\tx", "\rx"):
        assert score_export.safe_cell(text) == "'" + text
    assert score_export.safe_cell("plain -1") == "plain -1"
    assert score_export.safe_cell(-1) == -1  # numbers are numbers, not formulas
    assert score_export.safe_cell(None) == ""


def test_an_empty_export_is_just_the_header(settings: Settings) -> None:
    db = open_migrated(settings.db_path)
    try:
        text = score_export.export_csv(db, Filters())
    finally:
        db.conn.close()
    assert text == ",".join(score_export.COLUMNS) + "\r\n"
