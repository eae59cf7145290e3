"""What a session is scored on and how its candidate is shown: the pinned rubric version,
blind mode, the pseudonym and the audited reveal.

A session is pinned to the latest version of its task's rubric when it is scheduled, and
re-pinned when it starts if no scorecard exists yet: sessions keep the version they started
with. In blind mode interviewers see the pseudonym instead of the candidate's name and email
everywhere until someone reveals them (allowed once every interviewer has submitted).
"""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from common.clock import now_iso
from scoring.errors import RevealRefused
from scoring.rubrics import Rubric, get_rubric, rubric_for_task
from workspaces.sessions import Session

_PSEUDONYM_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I lookalikes




@dataclass(frozen=True)
class Scoring:
    session_id: str
    rubric_id: str
    rubric_version: int
    blind: bool
    pseudonym: str
    revealed_at: str | None

    @property
    def hidden(self) -> bool:
        """Are the candidate's name and email hidden from interviewers now?"""
        return self.blind and self.revealed_at is None

    def public(self) -> dict[str, Any]:
        return {"rubric_id": self.rubric_id, "rubric_version": self.rubric_version,
                "blind": self.blind, "revealed": self.blind and not self.hidden,
                "pseudonym": self.pseudonym if self.blind else None}


def new_pseudonym() -> str:
    return "Candidate " + "".join(secrets.choice(_PSEUDONYM_LETTERS) for _ in range(4))


def _task_kind(db: sqlite_utils.Database, revision_id: str) -> str:
    row = db.execute("SELECT kind FROM task_revisions WHERE id = ?", [revision_id]).fetchone()
    return str(row[0]) if row else ""


def pin(db: sqlite_utils.Database, session: Session, *, blind: bool) -> Scoring:
    """Record the session's rubric (latest version) and blind mode; in a write transaction."""
    rubric = rubric_for_task(db, session.task_id, _task_kind(db, session.revision_id))
    db.execute(
        "INSERT INTO session_scoring (session_id, rubric_id, rubric_version, blind, pseudonym)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (session_id) DO NOTHING",
        [session.id, rubric.id, rubric.version, int(blind), new_pseudonym()])
    found = get(db, session.id)
    assert found is not None  # noqa: S101 - just inserted in this transaction
    return found


def repin_at_start(db: sqlite_utils.Database, session: Session) -> None:
    """At the start: move to the rubric's latest version unless scoring has begun."""
    current = get(db, session.id)
    if current is None:
        pin(db, session, blind=False)
        return
    if db.execute("SELECT 1 FROM scorecards WHERE session_id = ?", [session.id]).fetchone():
        return
    rubric = rubric_for_task(db, session.task_id, _task_kind(db, session.revision_id))
    db.execute("UPDATE session_scoring SET rubric_id = ?, rubric_version = ? WHERE session_id = ?",
               [rubric.id, rubric.version, session.id])


def _scoring(r: dict[str, Any]) -> Scoring:
    return Scoring(r["session_id"], r["rubric_id"], r["rubric_version"], bool(r["blind"]),
                   r["pseudonym"], r["revealed_at"])


def get(db: sqlite_utils.Database, session_id: str) -> Scoring | None:
    rows = db.execute_returning_dicts(
        "SELECT * FROM session_scoring WHERE session_id = ?", [session_id])
    return _scoring(rows[0]) if rows else None


def ensure(db: sqlite_utils.Database, session: Session) -> Scoring:
    """The session's scoring record, pinning it now for sessions scheduled before scoring
    existed (in a write transaction)."""
    return get(db, session.id) or pin(db, session, blind=False)


def rubric_of(db: sqlite_utils.Database, scoring: Scoring) -> Rubric:
    return get_rubric(db, scoring.rubric_id, scoring.rubric_version)


def masked(session: Session, scoring: Scoring | None) -> Session:
    """The session as interviewers may see it: the pseudonym while blind and unrevealed."""
    if scoring is None or not scoring.hidden:
        return session
    return dataclasses.replace(session, candidate_name=scoring.pseudonym, candidate_email="")


def masked_all(db: sqlite_utils.Database, sessions: list[Session]) -> list[Session]:
    """``masked`` for a list, with one query for all of their scoring records."""
    found = {r["session_id"]: _scoring(r) for r in db.execute_returning_dicts(
        "SELECT * FROM session_scoring WHERE blind = 1 AND revealed_at IS NULL")}
    return [masked(s, found.get(s.id)) for s in sessions]


def reveal(db: sqlite_utils.Database, session: Session, user_id: int, *,
           submitted_by: set[int]) -> Scoring:
    """Reveal the candidate of a blind session once every interviewer has submitted."""
    scoring = get(db, session.id)
    if scoring is None or not scoring.blind:
        raise RevealRefused("The candidate cannot be revealed: this session is not blind; there is"
                            " nothing to reveal.")
    if scoring.revealed_at is not None:
        return scoring
    waiting = set(session.interviewer_ids) - submitted_by
    if waiting:
        raise RevealRefused(
            f"The candidate cannot be revealed: {len(waiting)} interviewer(s) have not submitted"
            " their scorecard yet; the candidate is revealed only after every scorecard is in.")
    db.execute("UPDATE session_scoring SET revealed_at = ?, revealed_by = ? WHERE session_id = ?",
               [now_iso(), user_id, session.id])
    found = get(db, session.id)
    assert found is not None  # noqa: S101
    return found
