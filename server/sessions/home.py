"""An interviewer's day, as their home page shows it: the interviews they are on today and
later, the scorecards they still owe and the debriefs open to them.

Web-free: one read over a ``sqlite_utils.Database`` for one user, in a fixed number of queries
however many sessions and tasks there are. Blind sessions show their
pseudonym (``scoring.session_scoring.masked_all``), as every interviewer page does.

"Today" is the day of ``moment`` in its own zone (the page passes the viewer's, which their
browser reports: ``server.http.times.viewer_zone``): the live sessions, and the scheduled ones
that start before that day ends (or should have started already).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, time, timedelta

import sqlite_utils

from scoring import session_scoring
from workspaces import sessions as S

ACTIVE = ("scheduled", "provisioning", "live")
RECENT_DEBRIEFS = 10
"""The debriefs listed (newest first); the rest are on the Sessions page."""


@dataclass(frozen=True)
class Item:
    """One session as the home page lists it."""

    session: S.Session
    task_title: str
    draft_saved_at: str | None = None
    """For a scorecard still owed: when the caller's draft was last saved (None: no draft)."""
    waiting_for: tuple[str, ...] = ()
    """For a debrief: the interviewers who have not submitted yet."""


@dataclass(frozen=True)
class Day:
    today: tuple[Item, ...]
    upcoming: tuple[Item, ...]
    scorecards_waiting: tuple[Item, ...]
    debriefs_ready: tuple[Item, ...]
    more_debriefs: int
    """How many further debriefs are open to the caller beyond those listed."""


def _titles(db: sqlite_utils.Database, task_ids: set[str]) -> dict[str, str]:
    """The titles of these tasks only (one query)."""
    return {str(r[0]): str(r[1]) for r in db.execute(
        "SELECT id, title FROM tasks WHERE id IN (SELECT value FROM json_each(?))",
        [json.dumps(sorted(task_ids))])}


def _not_submitted(db: sqlite_utils.Database, session_ids: list[str]) -> dict[str, list[str]]:
    """Per session, the names of its interviewers who have not submitted a scorecard (as
    ``scorecard_txns.waiting_for`` says them, for all the sessions in one query)."""
    waiting: dict[str, list[str]] = {}
    for session_id, user_id, name in db.execute(
            "SELECT i.session_id, i.user_id, u.display_name FROM session_interviewers i"
            " LEFT JOIN users u ON u.id = i.user_id"
            " WHERE i.session_id IN (SELECT value FROM json_each(?)) AND NOT EXISTS"
            " (SELECT 1 FROM scorecard_versions v"
            "  WHERE v.session_id = i.session_id AND v.user_id = i.user_id)"
            " ORDER BY i.session_id, i.user_id", [json.dumps(session_ids)]):
        waiting.setdefault(str(session_id), []).append(
            str(name) if name is not None else f"user {user_id}")
    return waiting


def _no_show(session: S.Session) -> bool:
    """Ended by the clock without ever going live: nobody came, there is nothing to score (it
    stays on the Sessions page). One an interviewer ended before its time is still theirs to
    score (they may have talked with the candidate without the workspace)."""
    return (session.started_at is None and session.ended_at is not None
            and S.parse_time(session.ended_at) >= S.parse_time(session.ends_at))


def interviewer_day(db: sqlite_utils.Database, user_id: int, moment: datetime) -> Day:
    """The sessions ``user_id`` is an interviewer of, sorted into the home page's lists."""
    mine = session_scoring.masked_all(db, S.list_sessions(db, user_id))
    submitted = {str(r[0]) for r in db.execute(
        "SELECT DISTINCT session_id FROM scorecard_versions WHERE user_id = ?", [user_id])}
    drafts = {str(r[0]): str(r[1]) for r in db.execute(
        "SELECT session_id, updated_at FROM scorecards WHERE user_id = ?", [user_id])}
    day_end = datetime.combine(moment.date(), time(), tzinfo=moment.tzinfo) + timedelta(days=1)
    active = sorted((s for s in mine if s.state in ACTIVE), key=lambda s: s.starts_at)
    ended = sorted((s for s in mine if s.state == "ended" and not _no_show(s)),
                   key=lambda s: s.ended_at or s.ends_at, reverse=True)
    open_to_me = [s for s in mine if s.id in submitted]
    open_to_me.sort(key=lambda s: s.ended_at or s.ends_at, reverse=True)
    listed = open_to_me[:RECENT_DEBRIEFS]
    waiting_on = _not_submitted(db, [s.id for s in listed])
    shown = [*active, *(s for s in ended if s.id not in submitted), *listed]
    titles = _titles(db, {s.task_id for s in shown})

    def item(s: S.Session, draft_saved_at: str | None = None,
             waiting_for: tuple[str, ...] = ()) -> Item:
        return Item(s, titles.get(s.task_id, s.task_id), draft_saved_at, waiting_for)

    today = [item(s) for s in active
             if s.state != "scheduled" or S.parse_time(s.starts_at) < day_end]
    upcoming = [item(s) for s in active
                if s.state == "scheduled" and S.parse_time(s.starts_at) >= day_end]
    waiting = [item(s, draft_saved_at=drafts.get(s.id)) for s in ended if s.id not in submitted]
    ready = [item(s, waiting_for=tuple(waiting_on.get(s.id, ()))) for s in listed]
    return Day(tuple(today), tuple(upcoming), tuple(waiting), tuple(ready),
               max(0, len(open_to_me) - RECENT_DEBRIEFS))
