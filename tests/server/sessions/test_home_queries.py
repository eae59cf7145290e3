"""The home page's one read asks SQLite a fixed number of statements, however many sessions
and tasks there are (a real migrated SQLite file, statements counted by sqlite3's trace)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlite_utils

from common.clock import now
from server.db import open_migrated
from server.sessions.home import Day, interviewer_day
from server.settings import Settings
from tests.conftest import create_user
from tests.fixture_tasks import publish_fake_task
from tests.scoring.interviews import make_session, submit_card


@pytest.fixture
def db(settings: Settings) -> Iterator[sqlite_utils.Database]:
    database = open_migrated(settings.db_path)
    try:
        yield database
    finally:
        database.conn.close()


def counted_day(db: sqlite_utils.Database, user_id: int) -> tuple[Day, list[str]]:
    """The day and the queries it asked (sqlite-utils' savepoints around them left out)."""
    statements: list[str] = []
    db.conn.set_trace_callback(statements.append)
    try:
        day = interviewer_day(db, user_id, now())
    finally:
        db.conn.set_trace_callback(None)
    return day, [s for s in statements if not s.startswith(("SAVEPOINT", "RELEASE"))]


def add_sessions(settings: Settings, db: sqlite_utils.Database, tasks: list[str], alice: int,
                 bob: int) -> None:
    """Per task: one ended and submitted by Alice only (a debrief waiting for Bob), one ended
    and owed, one today, one in a week."""
    revisions = {task: publish_fake_task(settings, task) for task in tasks}
    with db.atomic():
        for task, rev in revisions.items():
            done = make_session(db, rev, [alice, bob], task_id=task)
            submit_card(db, done, alice, {"debugging": 3})
            make_session(db, rev, [alice, bob], task_id=task)
            make_session(db, rev, [alice], task_id=task, starts_at=now(), state="scheduled")
            make_session(db, rev, [alice, bob], task_id=task,
                         starts_at=now() + timedelta(days=7), state="scheduled")


def test_the_home_page_read_does_not_grow_with_sessions_or_tasks(
        settings: Settings, db: sqlite_utils.Database) -> None:
    alice = create_user(settings, "alice@example.com", "interviewer").id
    bob = create_user(settings, "bob@example.com", "interviewer").id
    with db.atomic():
        db.execute("UPDATE users SET display_name = 'Bob B' WHERE id = ?", [bob])
    publish_fake_task(settings, "not-mine", title="A task nobody scheduled")

    add_sessions(settings, db, ["task-0"], alice, bob)
    small, few = counted_day(db, alice)
    add_sessions(settings, db, [f"task-{n}" for n in range(1, 15)], alice, bob)
    large, many = counted_day(db, alice)

    assert len(many) == len(few), (len(few), len(many), many)
    assert len(few) <= 7, few  # sessions, interviewers, blinding, own cards, drafts, ...
    # ... and the lists are complete and right, with titles and who is still to submit.
    assert (len(small.today), len(small.upcoming), len(small.scorecards_waiting),
            len(small.debriefs_ready)) == (1, 1, 1, 1)
    assert (len(large.today), len(large.upcoming), len(large.scorecards_waiting),
            len(large.debriefs_ready), large.more_debriefs) == (15, 15, 15, 10, 5)
    items = [*large.today, *large.upcoming, *large.scorecards_waiting, *large.debriefs_ready]
    assert all(i.task_title == f"Title of {i.session.task_id}" for i in items)
    assert {i.waiting_for for i in large.debriefs_ready} == {("Bob B",)}
    assert not any("A task nobody scheduled" in i.task_title for i in items)
    assert not any("FROM tasks\"" in s or s.rstrip().endswith("FROM tasks") for s in many)
