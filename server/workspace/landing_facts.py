"""What the candidate's landing page tells them before they press Start: who interviews them,
and when the session started and ends, with the time left.

The time left is ``Session.seconds_left``, the one the workspace's countdown badge polls
(``/api/v1/sessions/<id>``): the clock runs from the scheduled start, not from Start, so both
pages always say the same. Times are shown as every page shows them (``server/http/times.py``,
``static/times.js``).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from common.clock import now
from common.errors import NotFound
from server.http.times import time_left
from server.people.accounts import get_user
from workspaces import sessions as S
from workspaces.admission import Place


@dataclass(frozen=True)
class LandingFacts:
    interviewers: tuple[str, ...]
    """Display names: whoever scheduled the session first if they interview, then the others."""
    starts_at: str
    """ISO 8601, as stored: the page shows it with ``server/http/times.py``'s ``time_tag``."""
    ends_at: str
    started: bool
    """Has the scheduled start passed (the link opens a little before it)?"""
    seconds_left: int

    @property
    def interviewer_names(self) -> str:
        """``Ada``, ``Ada and Ben``, ``Ada, Ben and Cy``; empty if none is left."""
        names = list(self.interviewers)
        if len(names) <= 1:
            return "".join(names)
        return f"{', '.join(names[:-1])} and {names[-1]}"

    @property
    def who_joins(self) -> str:
        """The subject and verb of "... join(s) you in the workspace"."""
        if not self.interviewers:
            return "Your interviewer joins"
        return f"{self.interviewer_names} join{'s' if len(self.interviewers) == 1 else ''}"

    @property
    def time_left(self) -> str:
        """Whole minutes, rounded down, worded as the session API's ``time_left`` is."""
        return time_left(self.seconds_left)


def queue_message(place: Place) -> str:
    """What a candidate whose start waits in the start queue is told (the landing page as
    rendered, and the session API's ``queue.message`` that its script shows)."""
    ahead = "you are next" if place.ahead == 0 else f"{place.ahead} ahead of you"
    return f"Your workspace starts in about {place.starts_in_s} s ({ahead})."


def landing_facts(db: sqlite_utils.Database, session: S.Session) -> LandingFacts:
    order = sorted(session.interviewer_ids, key=lambda uid: (uid != session.created_by, uid))
    names: list[str] = []
    for user_id in order:
        try:
            user = get_user(db, user_id)
        except NotFound:  # a removed account: nobody to name
            continue
        if not user.disabled:
            names.append(user.display_name)
    return LandingFacts(
        interviewers=tuple(names), starts_at=session.starts_at, ends_at=session.ends_at,
        started=S.parse_time(session.starts_at) <= now(), seconds_left=session.seconds_left(),
    )
