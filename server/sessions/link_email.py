"""Emailing a session's candidate link: who may, how often, what is kept.

``prepare`` runs in one write transaction: it checks the caller may hold the link, the session
is still open, the address; counts this session's tries in the last hour (at most
``SENDS_PER_HOUR``, tries that failed included: each one reached the SMTP server) and reserves
one, so two sends at once cannot both slip under the limit. The SMTP exchange then runs outside
any transaction (``server.mail.smtp``), and ``finish`` records how it went and audits it
(``session.link_email``: recipient and outcome, never the link). The CURRENT link is sent;
nothing here re-issues it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from typing import Any

import sqlite_utils

from common import audit
from common.clock import iso, now
from common.errors import Conflict, Forbidden, TooManyRequests, Unprocessable
from scoring import session_scoring
from server.mail.link_message import LinkEmail, link_message
from server.people import accounts as people
from server.sessions.scheduling import candidate_link, may_hold_link
from server.settings import Settings
from server.workspace.landing_facts import landing_facts
from tasks import revisions
from workspaces import sessions as S

SENDS_PER_HOUR = 5
"""Per session."""
USER_SENDS_PER_HOUR = 30
"""Per person, over all their sessions: the company's mail server is not theirs to use at will
(anyone who schedules chooses the address and the name the message greets)."""
WINDOW = timedelta(hours=1)
ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+")
"""A plain address (dot-atom local part): what the message's To header holds unchanged."""
HIDDEN_ADDRESS = "the candidate's address"
"""How a blind session's stored address is named on pages, in answers and in the audit log."""


@dataclass(frozen=True)
class Reserved:
    attempt_id: int
    recipient: str
    message: EmailMessage
    shown: str
    """The recipient as pages, answers, logs and the audit log name it (``HIDDEN_ADDRESS`` for
    a blind session's stored address)."""


def how_to_enable() -> str:
    return ("pairlab sends no email until an administrator sets the SMTP settings:"
            " PAIRLAB_SMTP_HOST, PAIRLAB_SMTP_PORT, PAIRLAB_SMTP_FROM, and if the server needs"
            " them PAIRLAB_SMTP_USERNAME and PAIRLAB_SMTP_PASSWORD, PAIRLAB_SMTP_STARTTLS or"
            " PAIRLAB_SMTP_TLS (README, Configuration).")


def prepare(db: sqlite_utils.Database, settings: Settings, user: people.User,
            session_id: str, typed: str) -> Reserved:
    """Check and reserve one send of the session's current link to ``typed`` (empty: the
    address given at scheduling, which a blind session does not show)."""
    if not settings.smtp_configured:
        raise Conflict(how_to_enable())
    session = S.get_session(db, session_id)  # unmasked: the address stored at scheduling
    if not may_hold_link(user, session):
        raise Forbidden("Only whoever scheduled this session, or an admin, can send its"
                        " candidate link.")
    if session.state not in ("scheduled", "provisioning", "live"):
        raise Conflict(f"The session has {session.state}: its link no longer works, so it is"
                       " not sent.")
    raw = typed.strip() or session.candidate_email
    if not raw:
        raise Unprocessable("Give the candidate's email address to send the link to.")
    recipient = people.normalise_email(raw)
    _check_sendable(recipient)
    hidden = not typed.strip() and session_scoring.masked(
        session, session_scoring.get(db, session.id)).candidate_email != session.candidate_email
    shown = HIDDEN_ADDRESS if hidden else recipient
    link = candidate_link(db, settings, session.id)
    if link is None:
        raise Conflict("This session's link cannot be shown again (made before links could be,"
                       " or the server's secret changed): re-issue it, then send it.")
    _within_limit(db, "requested_by", user.id, USER_SENDS_PER_HOUR,
                  "you have emailed {n} candidate links in the last hour")
    _within_limit(db, "session_id", session.id, SENDS_PER_HOUR,
                  "this session's link was already emailed {n} times in the last hour")
    facts = landing_facts(db, session)
    title = revisions.get_revision(db, session.revision_id).title
    message = link_message(LinkEmail(
        candidate_name=session.candidate_name, candidate_address=recipient, title=title,
        role=session.role, interviewers=facts.interviewer_names,
        starts_at=S.parse_time(session.starts_at), duration_minutes=session.duration_minutes,
        link=link, sender=settings.smtp_from, reply_to=user.email))
    attempt = db.execute(
        "INSERT INTO candidate_link_emails (session_id, recipient, requested_by, requested_at)"
        " VALUES (?, ?, ?, ?)", [session.id, shown, user.id, iso(now())])
    return Reserved(int(attempt.lastrowid or 0), recipient, message, shown)


def _within_limit(db: sqlite_utils.Database, column: str, value: object, limit: int,
                  said: str) -> None:
    """Refuse (429, with when to try again) once ``limit`` tries with ``column = value`` fall
    in the last ``WINDOW``; ``said``: what was done, with ``{n}`` for how often."""
    count, first = db.execute(
        f"SELECT COUNT(*), MIN(requested_at) FROM candidate_link_emails WHERE {column} = ?"  # noqa: S608 (a column name of ours)
        " AND requested_at > ?", [value, iso(now() - WINDOW)]).fetchone()
    if count < limit:
        return
    wait = max(1, int((S.parse_time(first) + WINDOW - now()).total_seconds()))
    raise TooManyRequests(
        f"Not sent: {said.format(n=count)} (at most {limit}). Try again in {wait // 60 + 1}"
        " minutes, or copy the link and send it yourself.", headers={"Retry-After": str(wait)})


def _check_sendable(address: str) -> None:
    """Only a plain address that the message's To header will hold as it is (the account
    pattern admits ``a,b@x`` or ``a(c)@x``, which a mail header reads otherwise)."""
    try:
        parsed = Address(addr_spec=address)
    except (ValueError, IndexError):
        parsed = None
    if parsed is None or parsed.addr_spec != address or not ADDRESS.fullmatch(address):
        raise Unprocessable(f"{address[:100]!r} is not an address pairlab can send mail to: give"
                            " a plain one, such as name@example.com.")


def finish(db: sqlite_utils.Database, actor: audit.Actor, session_id: str, reserved: Reserved,
           error: str) -> str | None:
    """Record how the send went (``error`` empty: sent); returns the time it was sent."""
    sent_at = None if error else iso(now())
    db.execute("UPDATE candidate_link_emails SET sent_at = ?, error = ? WHERE id = ?",
               [sent_at, error, reserved.attempt_id])
    audit.record(db, actor, "session.link_email", "session", session_id,
                 recipient=reserved.shown, sent=not error, error=error)
    return sent_at


def last_sent(db: sqlite_utils.Database, session_id: str) -> dict[str, Any] | None:
    """The session's latest successful send (recipient, sent_at), if any."""
    rows = db.execute_returning_dicts(
        "SELECT recipient, sent_at FROM candidate_link_emails WHERE session_id = ? AND sent_at"
        " IS NOT NULL ORDER BY id DESC LIMIT 1", [session_id])
    return rows[0] if rows else None
