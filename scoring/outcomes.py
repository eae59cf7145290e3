"""Hiring outcomes per interviewed candidate, and the retention baseline an admin enters.

Plain functions over a ``sqlite_utils.Database`` (run them through the server's one writer or
a reader thread). An outcome belongs to one ended session: was the candidate hired, were they
still employed six months later, and a 1-5 performance rating; each part may be unknown
(``None``). Changes merge into what is stored: a field left out keeps its value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from common.clock import now_iso
from common.errors import DomainError

FIELDS = ("hired", "employed_6m", "performance", "note")
MAX_NOTE = 2000
RETENTION_BASELINE = "retention_6m"

Problem = tuple[str, str]
"""``(column, reason)``: one thing wrong with one outcome."""


class OutcomeError(DomainError):
    """Base class: a human sentence in ``message``; ``status``/``code`` for the boundary."""

    status: int = 422
    code: str = "invalid_outcome"


class OutcomeInvalid(OutcomeError):
    """One outcome (or the baseline) failed validation; ``problems`` lists every reason."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{column}: {reason}" for column, reason in problems))


class UnknownSession(OutcomeError):
    status = 404
    code = "session_not_found"


class SessionNotEnded(OutcomeError):
    status = 409
    code = "session_not_ended"


@dataclass(frozen=True)
class Outcome:
    session_id: str
    hired: bool | None
    employed_6m: bool | None
    performance: float | None
    note: str
    recorded_by: str | None
    """Email of the admin who recorded it last."""
    recorded_at: str

    def public(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "hired": self.hired,
            "employed_6m": self.employed_6m,
            "performance": self.performance,
            "note": self.note,
            "recorded_by": self.recorded_by,
            "recorded_at": self.recorded_at,
        }


@dataclass(frozen=True)
class Baseline:
    name: str
    value: float
    set_by: str | None
    set_at: str

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "set_by": self.set_by,
                "set_at": self.set_at}


def _flag(value: Any) -> bool | None:
    return None if value is None else bool(value)


# ---- validation --------------------------------------------------------------------------


def check_types(changes: Mapping[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
    """Check each given field's type and range (JSON values: booleans, numbers, ``None``).

    Returns the changes normalised (performance as ``float``) and every problem found.
    """
    clean: dict[str, Any] = {}
    problems: list[Problem] = []
    for name in sorted(set(changes) - set(FIELDS)):
        problems.append((name[:40], f"unknown field; use {', '.join(FIELDS)}"))
    for name in ("hired", "employed_6m"):
        if name in changes:
            value = changes[name]
            if value is None or isinstance(value, bool):
                clean[name] = value
            else:
                problems.append((name, "must be true, false or null (not known)"))
    if "performance" in changes:
        value = changes["performance"]
        if value is None:
            clean["performance"] = None
        elif isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(("performance", "must be a number from 1 to 5, or null"))
        elif not 1 <= value <= 5:  # also NaN and infinity; never float() a huge int
            problems.append(("performance", f"must be from 1 to 5, not {str(value)[:20]}"))
        else:
            clean["performance"] = float(value)
    if "note" in changes:
        note = changes["note"]
        if note is None:
            clean["note"] = ""
        elif not isinstance(note, str):
            problems.append(("note", "must be text"))
        elif len(note) > MAX_NOTE:
            problems.append(("note", f"must be at most {MAX_NOTE} characters, not {len(note)}"))
        elif any(ord(c) < 32 and c not in "\n\t" for c in note):
            problems.append(("note", "must not contain control characters"))
        else:
            clean["note"] = note
    return clean, problems


def check_consistency(
    hired: bool | None, employed_6m: bool | None, performance: float | None
) -> list[Problem]:
    """Six-month employment and an on-the-job rating only make sense for a hire."""
    problems: list[Problem] = []
    if employed_6m is True and hired is not True:
        state = "not known" if hired is None else "no"
        problems.append(("employed_6m", f"cannot be yes while hired is {state}"))
    if performance is not None and hired is not True:
        state = "not known" if hired is None else "no"
        problems.append(("performance", f"needs hired to be yes (it is {state})"))
    return problems


def merged(existing: Outcome | None, changes: Mapping[str, Any]) -> dict[str, Any]:
    """The stored fields (or empty ones) with ``changes`` applied over them."""
    values: dict[str, Any] = {"hired": None, "employed_6m": None, "performance": None,
                              "note": ""}
    if existing is not None:
        values = {"hired": existing.hired, "employed_6m": existing.employed_6m,
                  "performance": existing.performance, "note": existing.note}
    values.update(changes)
    return values


def validate(existing: Outcome | None, changes: Mapping[str, Any]) -> dict[str, Any]:
    """The outcome ``changes`` would leave, or ``OutcomeInvalid`` with every problem."""
    if not changes:
        raise OutcomeInvalid([("outcome", "send at least one of " + ", ".join(FIELDS))])
    clean, problems = check_types(changes)
    if problems:
        raise OutcomeInvalid(problems)
    values = merged(existing, clean)
    problems = check_consistency(values["hired"], values["employed_6m"], values["performance"])
    if problems:
        raise OutcomeInvalid(problems)
    return values


# ---- storage -----------------------------------------------------------------------------


def session_state(db: sqlite_utils.Database, session_id: str) -> str:
    """The session's state, or ``UnknownSession``."""
    row = db.execute(
        "SELECT state FROM interview_sessions WHERE id = ?", [session_id]
    ).fetchone()
    if row is None:
        raise UnknownSession(f"there is no session {session_id[:40]!r}")
    return str(row[0])


def require_ended(db: sqlite_utils.Database, session_id: str) -> None:
    state = session_state(db, session_id)
    if state != "ended":
        raise SessionNotEnded(
            f"the session {session_id[:40]!r} is {state}; outcomes are recorded once the"
            " interview has ended"
        )


def _outcome(row: Mapping[str, Any]) -> Outcome:
    return Outcome(
        session_id=row["session_id"], hired=_flag(row["hired"]),
        employed_6m=_flag(row["employed_6m"]), performance=row["performance"],
        note=row["note"], recorded_by=row["email"], recorded_at=row["recorded_at"],
    )


def get_outcome(db: sqlite_utils.Database, session_id: str) -> Outcome | None:
    rows = db.execute_returning_dicts(
        "SELECT o.*, u.email FROM outcomes o LEFT JOIN users u ON u.id = o.recorded_by"
        " WHERE o.session_id = ?",
        [session_id],
    )
    return _outcome(rows[0]) if rows else None


def store(
    db: sqlite_utils.Database, session_id: str, values: Mapping[str, Any], user_id: int | None
) -> Outcome:
    """Write already validated ``values`` (every field) as the session's outcome."""
    db.execute(
        "INSERT INTO outcomes (session_id, hired, employed_6m, performance, note, recorded_by,"
        " recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (session_id) DO UPDATE SET"
        " hired = excluded.hired, employed_6m = excluded.employed_6m,"
        " performance = excluded.performance, note = excluded.note,"
        " recorded_by = excluded.recorded_by, recorded_at = excluded.recorded_at",
        [session_id, values["hired"], values["employed_6m"], values["performance"],
         values["note"], user_id, now_iso()],
    )
    outcome = get_outcome(db, session_id)
    assert outcome is not None  # noqa: S101 - just written in this transaction
    return outcome


def record_outcome(
    db: sqlite_utils.Database, session_id: str, changes: Mapping[str, Any], user_id: int | None
) -> Outcome:
    """Validate ``changes`` against the stored outcome and store the result (run it in one
    write transaction)."""
    require_ended(db, session_id)
    values = validate(get_outcome(db, session_id), changes)
    return store(db, session_id, values, user_id)


def ended_sessions_with_outcomes(
    db: sqlite_utils.Database,
) -> list[tuple[dict[str, Any], Outcome | None]]:
    """Every ended session (newest first) with its outcome, for the admin page. A blind
    session's candidate is shown by pseudonym (no email) until revealed."""
    rows = db.execute_returning_dicts(
        "SELECT s.id, s.task_id, s.role, s.starts_at,"
        " CASE WHEN sc.blind = 1 AND sc.revealed_at IS NULL THEN sc.pseudonym"
        " ELSE s.candidate_name END AS candidate_name,"
        " CASE WHEN sc.blind = 1 AND sc.revealed_at IS NULL THEN ''"
        " ELSE s.candidate_email END AS candidate_email,"
        " o.session_id, o.hired, o.employed_6m, o.performance, o.note, o.recorded_at, u.email"
        " FROM interview_sessions s LEFT JOIN outcomes o ON o.session_id = s.id"
        " LEFT JOIN session_scoring sc ON sc.session_id = s.id"
        " LEFT JOIN users u ON u.id = o.recorded_by"
        " WHERE s.state = 'ended' ORDER BY s.starts_at DESC, s.id"
    )
    return [
        ({k: row[k] for k in ("id", "task_id", "role", "candidate_name", "candidate_email",
                              "starts_at")},
         _outcome(row) if row["session_id"] is not None else None)
        for row in rows
    ]


# ---- the retention baseline --------------------------------------------------------------


def check_baseline(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise OutcomeInvalid([("value", "must be a number above 0 and at most 1")])
    if not 0 < value <= 1:  # also NaN and infinity; never float() a huge int
        raise OutcomeInvalid([("value", "must be above 0 and at most 1 (a rate),"
                                        f" not {str(value)[:20]}")])
    return float(value)


def set_baseline(db: sqlite_utils.Database, value: Any, user_id: int | None) -> Baseline:
    """Set the six-month retention rate of hires made without pairlab (0 < value <= 1)."""
    rate = check_baseline(value)
    db.execute(
        "INSERT INTO report_baselines (name, value, set_by, set_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (name) DO UPDATE SET value = excluded.value, set_by = excluded.set_by,"
        " set_at = excluded.set_at",
        [RETENTION_BASELINE, rate, user_id, now_iso()],
    )
    baseline = get_baseline(db)
    assert baseline is not None  # noqa: S101 - just written in this transaction
    return baseline


def get_baseline(db: sqlite_utils.Database) -> Baseline | None:
    rows = db.execute_returning_dicts(
        "SELECT b.*, u.email FROM report_baselines b LEFT JOIN users u ON u.id = b.set_by"
        " WHERE b.name = ?",
        [RETENTION_BASELINE],
    )
    if not rows:
        return None
    row = rows[0]
    return Baseline(row["name"], row["value"], row["email"], row["set_at"])
