"""CSV export of submitted scores across sessions, one row per card and rubric dimension.

Only each interviewer's current card counts (the highest submitted version). A blind
session's candidate appears under their pseudonym until the names are revealed. Text cells
that a spreadsheet would run as a formula are prefixed with a single quote.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import sqlite_utils

from common.errors import Unprocessable
from scoring.scorecards import card_from_json
from workspaces.sessions import ROLES

COLUMNS = (
    "session_id", "session_date", "task_id", "role", "candidate", "interviewer", "rubric_id",
    "rubric_version", "dimension", "level", "weighted_score", "recommendation", "submitted_at",
)
FILTERS = ("task", "role", "from", "to", "interviewer")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}$")


class FilterInvalid(Unprocessable):
    """A refused filter of the scores export: answered as the server's own 422s."""


@dataclass(frozen=True)
class Filters:
    task: str = ""
    role: str = ""
    start: date | None = None
    end: date | None = None
    """Inclusive: sessions starting on this day are in."""
    interviewer: str = ""


def _date(name: str, text: str) -> date | None:
    if not text:
        return None
    try:
        if len(text) != 10:
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise FilterInvalid(
            f"'{name}' must be a date like 2026-05-31, not {text[:40]!r}"
        ) from None


def parse_filters(query: Mapping[str, str]) -> Filters:
    """Filters from query parameters; unknown names and malformed values are refused."""
    unknown = sorted(set(query) - set(FILTERS))
    if unknown:
        raise FilterInvalid(
            f"unknown filter(s) {', '.join(repr(k[:40]) for k in unknown)};"
            f" use {', '.join(FILTERS)}"
        )
    values = {name: query.get(name, "").strip() for name in FILTERS}
    task, role, email = values["task"], values["role"], values["interviewer"].lower()
    if len(task) > 200 or any(ord(c) < 32 for c in task):
        raise FilterInvalid("'task' must be a task id (at most 200 printable characters)")
    if role and role not in ROLES:
        raise FilterInvalid(f"'role' must be one of {', '.join(ROLES)}, not {role[:40]!r}")
    if email and not _EMAIL.match(email):
        raise FilterInvalid(f"'interviewer' must be an email address, not {email[:80]!r}")
    start, end = _date("from", values["from"]), _date("to", values["to"])
    if start and end and start > end:
        raise FilterInvalid(f"'from' ({start}) is after 'to' ({end})")
    return Filters(task, role, start, end, email)


_CARDS = """
SELECT v.session_id, s.starts_at, s.task_id, s.role, s.candidate_name, sc.blind, sc.pseudonym,
       sc.revealed_at, u.email, v.rubric_id, v.rubric_version, v.body, v.weighted_score,
       v.recommendation, v.submitted_at
FROM current_scorecards v
JOIN interview_sessions s ON s.id = v.session_id
JOIN users u ON u.id = v.user_id
LEFT JOIN session_scoring sc ON sc.session_id = v.session_id
WHERE (:task = '' OR s.task_id = :task)
  AND (:role = '' OR s.role = :role)
  AND (:start = '' OR s.starts_at >= :start)
  AND (:end = '' OR s.starts_at < :end)
  AND (:interviewer = '' OR lower(u.email) = :interviewer)
ORDER BY s.starts_at, v.session_id, u.email
"""


def _cards(db: sqlite_utils.Database, filters: Filters) -> list[dict[str, Any]]:
    # starts_at is ISO UTC text, so a day's sessions sort from "YYYY-MM-DD" up to the next day.
    after_end = filters.end + timedelta(days=1) if filters.end else None
    return db.execute_returning_dicts(_CARDS, {
        "task": filters.task,
        "role": filters.role,
        "start": filters.start.isoformat() if filters.start else "",
        "end": after_end.isoformat() if after_end else "",
        "interviewer": filters.interviewer,
    })


def rows(db: sqlite_utils.Database, filters: Filters,
         hide: frozenset[str] = frozenset()) -> list[list[Any]]:
    """The export's rows (without the header), in session start order; the ``hide``
    sessions (sealed for the caller) are left out."""
    out: list[list[Any]] = []
    for card in _cards(db, filters):
        if card["session_id"] in hide:
            continue
        hidden = card["blind"] == 1 and card["revealed_at"] is None
        candidate = card["pseudonym"] if hidden else card["candidate_name"]
        for dimension, score in card_from_json(card["body"]).scores.items():
            level = score.level
            out.append([
                card["session_id"], card["starts_at"][:10], card["task_id"], card["role"],
                candidate, card["email"], card["rubric_id"], card["rubric_version"], dimension,
                level, card["weighted_score"], card["recommendation"], card["submitted_at"],
            ])
    return out


def safe_cell(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula gets a leading single quote."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return "" if value is None else value


def to_csv(table: list[list[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in table:
        writer.writerow([safe_cell(value) for value in row])
    return buffer.getvalue()


def export_csv(db: sqlite_utils.Database, filters: Filters,
               hide: frozenset[str] = frozenset()) -> str:
    """The whole export as CSV text (header row first)."""
    return to_csv(rows(db, filters, hide))
