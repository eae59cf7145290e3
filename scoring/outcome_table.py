"""Saving the outcomes page's whole table at once: every changed row is checked first, then all
of them are stored, or none when any row has a problem.

The page sends each row's fields as typed (``hired``/``employed_6m``: "", "yes" or "no";
``performance``: a number or blank; ``note``), read and checked as a CSV import's rows are
(``outcome_import.row_changes``, ``checked_change``), except that a blank clears. A row whose
values equal what is stored is left alone, so saving the table only touches (and audits) the
rows the admin changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from scoring import outcome_import, outcomes

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


def save_table(db: sqlite_utils.Database, rows: list[RowInput],
               user_id: int | None) -> list[tuple[str, dict[str, Any]]]:
    """Store every changed row, all or none (run it in one write transaction).

    Returns ``(session id, the fields that changed)`` per stored row; raises ``TableRejected``
    naming every problem of every row, storing nothing."""
    problems: dict[str, list[outcomes.Problem]] = {}
    planned: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    for row in rows:
        values, found = outcome_import.row_changes(row.texts, blank_clears=True)
        try:
            outcomes.require_ended(db, row.session_id)
        except outcomes.OutcomeError as exc:  # no such session, or not ended
            found.append(("session", exc.message))
        if found:
            problems[row.session_id] = found
            continue
        existing, after, found = outcome_import.checked_change(db, row.session_id, values)
        before = outcomes.merged(existing, {})
        changed = {k: v for k, v in after.items() if before[k] != v}
        if not changed:
            continue
        if found:
            problems[row.session_id] = found
            continue
        planned.append((row.session_id, after, changed))
    if problems:
        raise TableRejected(problems)
    for session_id, after, _ in planned:
        outcomes.store(db, session_id, after, user_id)
    return [(session_id, changed) for session_id, _, changed in planned]
