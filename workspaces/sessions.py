"""Interview sessions: scheduling, capability links, access grants and lifecycle states.

Plain functions over a ``sqlite_utils.Database`` (run through the server's one writer or a
reader thread). States move ``scheduled -> provisioning -> live -> ended`` (or ``failed``);
every move is checked against the current state inside the write transaction.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlite_utils

from common.clock import iso, now
from workspaces import candidate_links
from workspaces.session_errors import SessionConflict, SessionError, SessionNotFound
from workspaces.tokens import hash_token

LINK_EARLY = timedelta(minutes=15)
"""A candidate link works from this long before the start."""
MAX_DURATION = 240
ROLES = ("ml-engineer", "data-scientist", "ai-researcher", "mlops-engineer")


def parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise SessionError(f"{text[:40]!r} is not an ISO 8601 date and time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Session:
    id: str
    revision_id: str
    task_id: str
    candidate_name: str
    candidate_email: str
    role: str
    duration_minutes: int
    starts_at: str
    ends_at: str
    state: str
    failure_reason: str
    workspace_id: str | None
    created_by: int
    created_at: str
    started_at: str | None
    ended_at: str | None
    interviewer_ids: tuple[int, ...]

    def seconds_left(self) -> int:
        if self.state in ("ended", "failed"):
            return 0
        return max(0, int((parse_time(self.ends_at) - now()).total_seconds()))

    def is_over(self) -> bool:
        """Has the interview ended (or failed), or has its scheduled end passed?"""
        return self.state in ("ended", "failed") or self.seconds_left() == 0

    def link_open(self) -> bool:
        """Is the capability link usable now (from shortly before the start until the end)?"""
        if self.state in ("ended", "failed"):
            return False
        moment = now()
        return parse_time(self.starts_at) - LINK_EARLY <= moment < parse_time(self.ends_at)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "task_id": self.task_id,
            "revision_id": self.revision_id,
            "candidate_name": self.candidate_name,
            "candidate_email": self.candidate_email,
            "role": self.role,
            "duration_minutes": self.duration_minutes,
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
            "state": self.state,
            "failure_reason": self.failure_reason,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "seconds_left": self.seconds_left(),
        }


def _session(db: sqlite_utils.Database, row: dict[str, Any],
             interviewers: tuple[int, ...] | None = None) -> Session:
    """The session of ``row``; its interviewers as given, or read (one query)."""
    ids = interviewers if interviewers is not None else tuple(r[0] for r in db.execute(
        "SELECT user_id FROM session_interviewers WHERE session_id = ? ORDER BY user_id",
        [row["id"]],
    ).fetchall())
    return Session(
        id=row["id"], revision_id=row["revision_id"], task_id=row["task_id"],
        candidate_name=row["candidate_name"], candidate_email=row["candidate_email"],
        role=row["role"], duration_minutes=row["duration_minutes"], starts_at=row["starts_at"],
        ends_at=row["ends_at"], state=row["state"], failure_reason=row["failure_reason"],
        workspace_id=row["workspace_id"], created_by=row["created_by"],
        created_at=row["created_at"], started_at=row["started_at"], ended_at=row["ended_at"],
        interviewer_ids=ids,
    )


def create_session(
    db: sqlite_utils.Database,
    *,
    revision_id: str,
    task_id: str,
    candidate_name: str,
    candidate_email: str,
    role: str,
    duration_minutes: int,
    starts_at: datetime,
    interviewer_ids: list[int],
    created_by: int,
    link_secret: str,
) -> tuple[Session, str]:
    """Schedule a session; returns it and its candidate link's token, made once by
    ``candidate_links`` with ``link_secret`` (the server's cookie secret) so that whoever may
    see it can be shown it again. Only its hash and nonce are stored."""
    name = candidate_name.strip()
    if not 1 <= len(name) <= 200 or any(ord(c) < 32 for c in name):
        raise SessionError("the candidate name must be 1 to 200 printable characters")
    check_duration(duration_minutes)
    if role and role not in ROLES:
        raise SessionError(f"the role must be one of {', '.join(ROLES)}")
    if not interviewer_ids:
        raise SessionError("a session needs at least one interviewer")
    session_id = "s_" + secrets.token_hex(8)
    token, nonce = candidate_links.new_link(link_secret, session_id)
    db.execute(
        "INSERT INTO interview_sessions (id, revision_id, task_id, candidate_name,"
        " candidate_email, role, duration_minutes, starts_at, ends_at, state, link_hash,"
        " link_nonce, created_by, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'scheduled', ?, ?, ?, ?)",
        [session_id, revision_id, task_id, name, candidate_email.strip(), role,
         duration_minutes, iso(starts_at), iso(starts_at + timedelta(minutes=duration_minutes)),
         hash_token(token), nonce, created_by, iso(now())],
    )
    for user_id in sorted(set(interviewer_ids)):
        db.execute(
            "INSERT INTO session_interviewers (session_id, user_id) VALUES (?, ?)",
            [session_id, user_id],
        )
    return get_session(db, session_id), token


def get_session(db: sqlite_utils.Database, session_id: str) -> Session:
    rows = db.execute_returning_dicts(
        "SELECT * FROM interview_sessions WHERE id = ?", [session_id]
    )
    if not rows:
        raise SessionNotFound(f"there is no session {session_id[:40]!r}")
    return _session(db, rows[0])


def list_sessions(db: sqlite_utils.Database, user_id: int | None = None) -> list[Session]:
    """Every session, or those ``user_id`` interviews, newest first: two queries however many
    there are (their interviewers are read together)."""
    if user_id is None:
        rows = db.execute_returning_dicts(
            "SELECT * FROM interview_sessions ORDER BY starts_at DESC"
        )
        pairs = db.execute("SELECT session_id, user_id FROM session_interviewers"
                           " ORDER BY user_id").fetchall()
    else:
        rows = db.execute_returning_dicts(
            "SELECT s.* FROM interview_sessions s JOIN session_interviewers i"
            " ON i.session_id = s.id WHERE i.user_id = ? ORDER BY s.starts_at DESC", [user_id]
        )
        pairs = db.execute(
            "SELECT session_id, user_id FROM session_interviewers WHERE session_id IN"
            " (SELECT session_id FROM session_interviewers WHERE user_id = ?)"
            " ORDER BY user_id", [user_id]).fetchall()
    interviewers: dict[str, list[int]] = {}
    for session_id, interviewer in pairs:
        interviewers.setdefault(session_id, []).append(interviewer)
    return [_session(db, r, tuple(interviewers.get(r["id"], ()))) for r in rows]


def sessions_in_state(db: sqlite_utils.Database, *states: str) -> list[Session]:
    marks = ", ".join("?" for _ in states)
    rows = db.execute_returning_dicts(
        f"SELECT * FROM interview_sessions WHERE state IN ({marks})", list(states)  # noqa: S608
    )
    return [_session(db, r) for r in rows]


def session_for_link(db: sqlite_utils.Database, token: str) -> Session | None:
    rows = db.execute_returning_dicts(
        "SELECT * FROM interview_sessions WHERE link_hash = ?", [hash_token(token)]
    )
    return _session(db, rows[0]) if rows else None


def set_state(
    db: sqlite_utils.Database, session_id: str, new: str, *, expect: tuple[str, ...],
    reason: str = "", workspace_id: str | None = None,
) -> Session:
    session = get_session(db, session_id)
    if session.state not in expect:
        raise SessionConflict(f"the session is {session.state}, so it cannot become {new}")
    at = iso(now())
    db.execute(
        "UPDATE interview_sessions SET state = ?, failure_reason = ?,"
        " workspace_id = COALESCE(?, workspace_id),"
        " started_at = CASE WHEN ? = 'live' AND started_at IS NULL THEN ? ELSE started_at END,"
        " ended_at = CASE WHEN ? IN ('ended', 'failed') THEN ? ELSE ended_at END WHERE id = ?",
        [new, reason, workspace_id, new, at, new, at, session_id],
    )
    return get_session(db, session_id)


def check_duration(minutes: int) -> None:
    """A session's length: 10 to ``MAX_DURATION`` minutes."""
    if not 10 <= minutes <= MAX_DURATION:
        raise SessionError(f"the duration must be 10 to {MAX_DURATION} minutes")


def extend(db: sqlite_utils.Database, session_id: str, minutes: int) -> Session:
    if not 1 <= minutes <= 120:
        raise SessionError("A session is extended by 1 to 120 minutes at a time.")
    session = get_session(db, session_id)
    if session.state in ("ended", "failed"):
        raise SessionConflict(f"the session is {session.state}; it cannot be extended")
    ends = max(parse_time(session.ends_at), now()) + timedelta(minutes=minutes)
    db.execute(
        "UPDATE interview_sessions SET ends_at = ?, duration_minutes = duration_minutes + ?"
        " WHERE id = ?", [iso(ends), minutes, session_id],
    )
    return get_session(db, session_id)


# ---- access grants: candidate cookies, interviewer handoffs ------------------------------


def grant(
    db: sqlite_utils.Database, session_id: str, kind: str, *, user_id: int | None = None,
    ttl: timedelta | None = None, address: str = "", user_agent: str = "",
    workspace_id: str | None = None,
) -> str:
    """A fresh access token; with ``workspace_id``, a cookie of that workspace's own host."""
    token = secrets.token_urlsafe(32)
    expires = iso(now() + ttl) if ttl else None
    db.execute(
        "INSERT INTO session_access (token_hash, session_id, kind, user_id, created_at,"
        " expires_at, address, user_agent, workspace_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [hash_token(token), session_id, kind, user_id, iso(now()), expires, address,
         user_agent[:300], workspace_id],
    )
    return token


def resolve_grant(db: sqlite_utils.Database, token: str) -> dict[str, Any] | None:
    rows = db.execute_returning_dicts(
        "SELECT * FROM session_access WHERE token_hash = ?", [hash_token(token)]
    )
    if not rows:
        return None
    row = rows[0]
    if row["expires_at"] and parse_time(row["expires_at"]) <= now():
        return None
    return row


def use_handoff(db: sqlite_utils.Database, token: str) -> dict[str, Any] | None:
    """A handoff token works once, within its short lifetime."""
    row = resolve_grant(db, token)
    if row is None or row["kind"] != "handoff" or row["used_at"]:
        return None
    db.execute(
        "UPDATE session_access SET used_at = ? WHERE token_hash = ?",
        [iso(now()), hash_token(token)],
    )
    return row


def record_connection(
    db: sqlite_utils.Database, session_id: str, who: str, kind: str, address: str,
    user_agent: str,
) -> None:
    db.execute(
        "INSERT INTO session_connections (session_id, who, kind, address, user_agent, at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [session_id, who, kind, address, user_agent[:300], iso(now())],
    )


def connections(db: sqlite_utils.Database, session_id: str) -> list[dict[str, Any]]:
    return db.execute_returning_dicts(
        "SELECT who, kind, address, user_agent, at FROM session_connections"
        " WHERE session_id = ? ORDER BY id", [session_id],
    )


def to_json(session: Session) -> str:
    return json.dumps(session.public(), sort_keys=True)
