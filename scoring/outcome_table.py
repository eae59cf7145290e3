"""Saving the outcomes page's whole table at once: every changed row is checked first, then all
of them are stored, or none when any row has a problem.

The page sends each row's fields as typed (``hired``/``employed_6m``: "", "yes" or "no";
``performance``: a number or blank; ``note``). A row whose values equal what is stored is left
alone, so saving the table only touches (and audits) the rows the admin changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from scoring import outcomes

FLAGS: Mapping[str, bool | None] = {"": None, "yes": True, "no": False}
TEXT_FIELDS = ("hired", "employed_6m", "performance", "note")


@dataclass(frozen=True)
class RowInput:
    """One table row as typed: the field texts by name (``TEXT_FIELDS``)."""

    session_id: str
    texts: Mapping[str, str]


class TableRejected(outcomes.OutcomeError):
    """Some rows have problems; nothing was stored. ``problems`` maps a session id to its row's
    problems as ``(column, reason)``."""

    code = "outcomes_rejected"

    def __init__(self, problems: dict[str, list[outcomes.Problem]]) -> None:
        self.problems = problems
        rows = "1 row has" if len(problems) == 1 else f"{len(problems)} rows have"
        super().__init__(f"{rows} problems; nothing was saved. Fix them and save again.")


def _parse(row: RowInput) -> tuple[dict[str, Any], list[outcomes.Problem]]:
    problems: list[outcomes.Problem] = []
    values: dict[str, Any] = {}
    for name in ("hired", "employed_6m"):
        text = row.texts.get(name, "").strip()
        if text in FLAGS:
            values[name] = FLAGS[text]
        else:
            problems.append((name, "choose yes, no or not known"))
    text = row.texts.get("performance", "").strip()
    if text:
        try:
            values["performance"] = float(text)
        except ValueError:
            problems.append(("performance", f"{text[:40]!r} is not a number from 1 to 5"))
    else:
        values["performance"] = None
    values["note"] = row.texts.get("note", "").strip()
    clean, more = outcomes.check_types(values)
    return clean, problems + more


def save_table(db: sqlite_utils.Database, rows: list[RowInput],
               user_id: int | None) -> list[tuple[str, dict[str, Any]]]:
    """Store every changed row, all or none (run it in one write transaction).

    Returns ``(session id, the fields that changed)`` per stored row; raises ``TableRejected``
    naming every problem of every row, storing nothing."""
    problems: dict[str, list[outcomes.Problem]] = {}
    planned: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    for row in rows:
        values, found = _parse(row)
        state = db.execute("SELECT state FROM interview_sessions WHERE id = ?",
                           [row.session_id]).fetchone()
        if state is None or state[0] != "ended":
            found.append(("session", "is not an ended interview (was it deleted?)"))
        if found:
            problems[row.session_id] = found
            continue
        existing = outcomes.get_outcome(db, row.session_id)
        before = outcomes.merged(existing, {})
        after = outcomes.merged(existing, values)
        changed = {k: v for k, v in after.items() if before[k] != v}
        if not changed:
            continue
        found = outcomes.check_consistency(after["hired"], after["employed_6m"],
                                           after["performance"])
        if found:
            problems[row.session_id] = found
            continue
        planned.append((row.session_id, after, changed))
    if problems:
        raise TableRejected(problems)
    for session_id, after, _ in planned:
        outcomes.store(db, session_id, after, user_id)
    return [(session_id, changed) for session_id, _, changed in planned]
