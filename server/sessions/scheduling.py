"""Scheduling and ending an interview: each one write transaction across tasks, people,
sessions and scoring.

Used by the API, the page and the CLI alike, so the rules (published revision only, existing
active interviewers, role fit warning that must be confirmed) are in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlite_utils

from common import audit
from common.clock import iso, now
from common.errors import Forbidden, Unprocessable
from scoring import session_scoring, webhooks
from server.http.times import human_utc, time_left
from server.people import accounts as people
from server.settings import Settings
from tasks import revisions
from tasks.manifest import kind_fits_role
from workspaces import candidate_links
from workspaces import sessions as S
from workspaces.session_errors import RoleMismatch, SessionConflict, SessionError


@dataclass(frozen=True)
class ScheduleRequest:
    task: str
    candidate_name: str
    candidate_email: str = ""
    interviewers: tuple[str, ...] = ()
    duration_minutes: int | None = None
    starts_at: str | None = None
    role: str = ""
    confirm_role_mismatch: bool = False
    blind: bool | None = None
    """Blind scoring for this session; None takes the ``blind_scoring`` setting."""


@dataclass(frozen=True)
class Scheduled:
    session: S.Session
    candidate_link: str
    interviewer_url: str
    warnings: tuple[str, ...]

    def public(self) -> dict[str, Any]:
        return {
            "session_id": self.session.id,
            "candidate_link": self.candidate_link,
            "interviewer_url": self.interviewer_url,
            "warnings": list(self.warnings),
            "session": self.session.public(),
        }


def start_time(text: str) -> datetime:
    """The start as given by the API (ISO 8601; without an offset, UTC) or the page (the
    picker's local time converted to UTC by script; without script, read as UTC)."""
    try:
        return S.parse_time(text)
    except SessionError:
        raise SessionError(
            f"The start time {text.strip()[:40]!r} is not a date and time: give it as ISO 8601,"
            " for example 2026-12-01T14:00:00Z (UTC) or 2026-12-01T15:00:00+01:00.") from None


def refuse_if_over(starts: datetime, minutes: int) -> None:
    """An interview that would be over before it is scheduled is a mistake (a date in the
    past): its link would never open. One that started earlier and still runs is fine."""
    ends = starts + timedelta(minutes=minutes)
    if ends <= now():
        raise Unprocessable(
            f"This interview would be over already: starting {human_utc(iso(starts))} for"
            f" {minutes} minutes, it would have ended {human_utc(iso(ends))}. Choose a later"
            " start, or none to start now.")


def countdown(session: S.Session) -> str:
    """What the session's page says of its time: until its start while that is ahead, else the
    time left (``time_left``'s words: "starts in 84 days", "87 minutes left")."""
    ahead = int((S.parse_time(session.starts_at) - now()).total_seconds())
    if session.state == "scheduled" and ahead > 0:
        return f"starts in {time_left(ahead)}"
    return f"{time_left(session.seconds_left())} left"


def links(settings: Settings, session_id: str, token: str) -> tuple[str, str]:
    return f"{settings.workspace_url}/c/{token}", f"{settings.app_url}/sessions/{session_id}"


def schedule(
    db: sqlite_utils.Database, settings: Settings, actor: audit.Actor, creator_id: int,
    req: ScheduleRequest,
) -> Scheduled:
    rev = revisions.published_revision(db, req.task.strip())
    warnings: list[str] = []
    if req.role:
        if req.role not in S.ROLES:
            raise Unprocessable(f"the role must be one of {', '.join(S.ROLES)}")
        warning = kind_fits_role(rev.kind, req.role)
        if warning:
            if not req.confirm_role_mismatch:
                raise RoleMismatch(
                    f"{warning}. To schedule it anyway: tick “Schedule even if the task does not"
                    " fit the role” on the page (--confirm on the command line,"
                    " confirm_role_mismatch in the API)."
                )
            warnings.append(warning)
    emails = req.interviewers or (actor.label,)
    interviewer_ids = []
    for email in emails:
        user = people.find_user(db, email)
        if user.disabled:
            raise Unprocessable(f"{user.email} is disabled and cannot interview")
        interviewer_ids.append(user.id)
    email = req.candidate_email.strip()
    if email:
        email = people.normalise_email(email)
    starts = start_time(req.starts_at) if req.starts_at else now()
    minutes = req.duration_minutes or rev.duration_minutes
    S.check_duration(minutes)  # before any date arithmetic with it
    refuse_if_over(starts, minutes)
    # The link is one the server can show again to whoever may hold it (candidate_links.py).
    session, token = S.create_session(
        db, revision_id=rev.id, task_id=rev.task_id, candidate_name=req.candidate_name,
        candidate_email=email, role=req.role,
        duration_minutes=minutes, starts_at=starts,
        interviewer_ids=interviewer_ids, created_by=creator_id, link_secret=_secret(settings),
    )
    blind = settings.blind_scoring if req.blind is None else req.blind
    session_scoring.pin(db, session, blind=blind)
    audit.record(db, actor, "session.schedule", "session", session.id, revision=rev.id,
                 interviewers=list(emails), warnings=warnings, blind=blind)
    candidate_link, interviewer_url = links(settings, session.id, token)
    return Scheduled(session, candidate_link, interviewer_url, tuple(warnings))


def _secret(settings: Settings) -> str:
    return settings.cookie_secret.reveal()


def candidate_link(db: sqlite_utils.Database, settings: Settings, session_id: str) -> str | None:
    """The session's working candidate link for its staff, or None if it can only be
    re-issued (see ``workspaces/candidate_links.py``)."""
    token = candidate_links.current(db, _secret(settings), session_id)
    return links(settings, session_id, token)[0] if token else None


def reissue_link(db: sqlite_utils.Database, settings: Settings, user: people.User,
                 actor: audit.Actor, session_id: str) -> str:
    """A new candidate link; the old one stops working at once. Audited (never the token)."""
    session = S.get_session(db, session_id)
    if not may_hold_link(user, session):
        raise Forbidden("Only whoever scheduled this session, or an admin, can re-issue its"
                        " candidate link.")
    if session.state in ("ended", "failed"):
        raise SessionConflict(f"the session has {session.state}; its link cannot be re-issued")
    token = candidate_links.issue(db, _secret(settings), session_id)
    audit.record(db, actor, "session.link_reissue", "session", session_id)
    return links(settings, session_id, token)[0]


def end(db: sqlite_utils.Database, session_id: str, actor: audit.Actor, why: str) -> S.Session:
    """End a session (from the server, its deadline loop or the CLI): the state, the audit
    entry and the ``session.ended`` webhook (ids only, never the candidate) in one
    transaction, so the delivery exists if and only if the end committed."""
    session = S.set_state(db, session_id, "ended", expect=("scheduled", "provisioning", "live"))
    audit.record(db, actor, "session.end", "session", session_id, why=why)
    webhooks.enqueue(db, "session.ended", {
        "session_id": session.id, "task_id": session.task_id, "ended_at": session.ended_at})
    return session


def can_see(user: people.User, session: S.Session) -> bool:
    return user.is_admin or user.id in session.interviewer_ids


def may_hold_link(user: people.User, session: S.Session) -> bool:
    """May ``user`` see, copy, re-issue or email the candidate link? Only whoever scheduled
    the session and admins: the link lets its holder enter as the candidate, and with blind
    scoring the other interviewers must not learn who the candidate is from where it went."""
    return user.is_admin or user.id == session.created_by
