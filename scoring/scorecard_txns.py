"""Scorecard transactions: each is one write-transaction body run on the database's single
writer (``synchronous=FULL``), so a 2xx on submit means the scorecard is on disk, and two
interviewers submitting at once are simply serialised.

Also the sealing rule, shared by every page and API route that shows others' scorecards.
Web-free: the caller is given as values (its user id, email, ``common.audit.Actor``), and
refusals are domain errors (``scoring.errors``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from common import audit
from scoring import debrief, scorecards, session_scoring, webhooks
from scoring.errors import NotOnPanel
from scoring.rubrics import Rubric
from scoring.scorecards import Card, Draft, Submitted
from scoring.session_scoring import Scoring
from workspaces import sessions as S
from workspaces.recording.events import CHECKS_RUN

SEALED = ("Scorecards are sealed: submit your own scorecard first, then you can see the "
          "others'.")


@dataclass(frozen=True)
class Panel:
    """A session with what it is scored on."""

    session: S.Session
    scoring: Scoring
    rubric: Rubric


def panel(d: sqlite_utils.Database, session_id: str) -> Panel:
    """Load (and, for sessions scheduled before scoring existed, pin): write transaction."""
    session = S.get_session(d, session_id)
    scoring = session_scoring.ensure(d, session)
    return Panel(session, scoring, session_scoring.rubric_of(d, scoring))


def read_panel(d: sqlite_utils.Database, session_id: str) -> Panel | None:
    """Load without writing; None if the session was never pinned (use ``panel`` then)."""
    session = S.get_session(d, session_id)
    scoring = session_scoring.get(d, session.id)
    if scoring is None:
        return None
    return Panel(session, scoring, session_scoring.rubric_of(d, scoring))


def require_panelist(user_id: int, session: S.Session) -> None:
    if user_id not in session.interviewer_ids:
        raise NotOnPanel("Only this session's interviewers fill in scorecards.")


def may_see_all(d: sqlite_utils.Database, user_id: int, is_admin: bool,
                session: S.Session) -> bool:
    """Sealing: a panelist sees others' scorecards only after submitting their own; an admin
    who is not on the panel (and so never scores it) may read the submitted ones."""
    if user_id in session.interviewer_ids:
        return scorecards.has_submitted(d, session.id, user_id)
    return is_admin


def parse(d: sqlite_utils.Database, p: Panel, data: Any) -> Card:
    """Validate a scorecard body (422 listing every problem; nothing stored)."""
    card = scorecards.parse_card(data, p.rubric)
    scorecards.check_moments(d, p.session.id, card, p.rubric)
    return card


def save(d: sqlite_utils.Database, session_id: str, user_id: int,
         data: Any) -> tuple[Panel, Draft]:
    p = panel(d, session_id)
    require_panelist(user_id, p.session)
    return p, scorecards.save_draft(d, p.session.id, user_id, parse(d, p, data))


def waiting_for(d: sqlite_utils.Database, session: S.Session) -> list[str]:
    done = scorecards.submitted_by(d, session.id)
    names = []
    for user_id in session.interviewer_ids:
        if user_id not in done:
            row = d.execute("SELECT display_name FROM users WHERE id = ?", [user_id]).fetchone()
            names.append(str(row[0]) if row else f"user {user_id}")
    return names


def submit(d: sqlite_utils.Database, session_id: str, user_id: int, email: str,
           data: Any | None, actor: audit.Actor) -> tuple[Submitted, bool]:
    """Submit the scorecard of the interviewer ``user_id`` (``email``, named in the webhook):
    ``data``, or the stored draft when None.

    Returns the stored version and whether this submission completed the panel (then
    ``debrief.ready`` is queued). Webhooks are queued in this same transaction."""
    p = panel(d, session_id)
    require_panelist(user_id, p.session)
    card = parse(d, p, data) if data is not None else scorecards.get_draft(
        d, p.session.id, user_id).card
    stored = scorecards.submit(d, p.session.id, user_id, card, p.rubric)
    action = "scorecard.submitted" if stored.version == 1 else "scorecard.edited"
    # No scores in the audit detail: the audit log must not unseal a panel for an admin.
    audit.record(d, actor, action, "session", p.session.id, version=stored.version)
    common = {"session_id": p.session.id, "task_id": p.session.task_id,
              "rubric_id": p.rubric.id, "rubric_version": p.rubric.version}
    webhooks.enqueue(d, "scorecard.submitted", {
        **common, "interviewer": email, "version": stored.version,
        "weighted_score": stored.weighted_score,
        "recommendation": stored.card.recommendation})
    # Only someone's first submission can complete the panel (an edit changes nobody's state).
    ready = stored.version == 1 and set(p.session.interviewer_ids) <= scorecards.submitted_by(
        d, p.session.id)
    if ready:
        cards = scorecards.submitted_cards(d, p.session.id)
        webhooks.enqueue(d, "debrief.ready", {
            **common, "scorecards": len(cards), "weighted_score": debrief.panel_mean(cards)})
    return stored, ready


def save_and_submit(d: sqlite_utils.Database, session_id: str, user_id: int, email: str,
                    data: Any, actor: audit.Actor) -> list[str]:
    """The scorecard page's Submit: ``data`` saved as the draft, then submitted if complete, in
    one transaction. Returns what a submission still needs (``Card.missing_for_submit``; then
    only the draft was saved), empty once submitted. An invalid body raises, saving nothing."""
    p, draft = save(d, session_id, user_id, data)
    missing = draft.card.missing_for_submit(p.rubric)
    if not missing:
        submit(d, session_id, user_id, email, None, actor)
    return missing


def latest_checks(d: sqlite_utils.Database, session_id: str) -> dict[str, Any] | None:
    row = d.execute("SELECT payload FROM events WHERE session_id = ? AND kind = ?"
                    " ORDER BY seq DESC LIMIT 1", [session_id, CHECKS_RUN]).fetchone()
    return json.loads(row[0]) if row else None


def load_debrief(d: sqlite_utils.Database, p: Panel) -> debrief.Debrief:
    return debrief.build(p.rubric, scorecards.submitted_cards(d, p.session.id),
                         latest_checks(d, p.session.id), waiting_for(d, p.session))


def reveal(d: sqlite_utils.Database, session_id: str, user_id: int,
           actor: audit.Actor) -> Scoring:
    p = panel(d, session_id)
    if p.scoring.blind and p.scoring.revealed_at is not None:
        return p.scoring  # already revealed: nothing new to record
    scoring = session_scoring.reveal(d, p.session, user_id,
                                     submitted_by=scorecards.submitted_by(d, session_id))
    audit.record(d, actor, "candidate.revealed", "session", session_id)
    return scoring
