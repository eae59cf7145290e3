"""The scorecard's timeline: the notable events of one session (the panel's notes and hints,
cells run, test runs, files saved, terminal commands) that an interviewer picks moments from.

Paged, because a long session records thousands of events: at most ``PAGE_SIZE`` a page, in
order, from an ``after`` cursor (an event number), with the cursors of the pages before and
after. Filtered by a kind group and by text (SQLite ``LIKE`` over the event's path and its
stored payload JSON, so it matches the code, command, note or file name; ASCII
case-insensitive). What each event *says* is summarised in the browser by the same
``static/timeline.js`` that the observe and replay pages use; this module only selects.

Web-free: plain functions of a database connection.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from common.clock import iso
from common.errors import Unprocessable
from workspaces.recording import events as E
from workspaces.recording.events import StoredEvent

PAGE_SIZE = 200
"""Events a page shows: enough for a usual hour, small enough to stay quick to read."""
MAX_TEXT = 200
BRIEF = 300
"""Characters kept of each text field of a payload sent to the page (summaries use less)."""

GROUPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "notes": ("Notes and hints", (E.NOTE, E.HINT)),
    "cells": ("Cells run", (E.CELL_EXECUTED,)),
    "tests": ("Test runs", (E.TESTS_RUN, E.CHECKS_RUN)),
    "files": ("Files saved", (E.FILE_CREATED, E.FILE_CHANGED, E.FILE_RENAMED, E.FILE_DELETED)),
    "terminal": ("Terminal commands", (E.TERMINAL_COMMAND,)),
}
"""Filter id -> (its label, the event kinds it shows)."""
GROUP_OF = {kind: group for group, (_, kinds) in GROUPS.items() for kind in kinds}
NOTABLE = tuple(GROUP_OF)

KIND_LABELS = {E.NOTE: "Note", E.HINT: "Hint", E.CELL_EXECUTED: "Cell run",
               E.TESTS_RUN: "Test run", E.CHECKS_RUN: "Hidden checks",
               E.FILE_CREATED: "File created", E.FILE_CHANGED: "File saved",
               E.FILE_RENAMED: "File renamed", E.FILE_DELETED: "File deleted",
               E.TERMINAL_COMMAND: "Command"}
"""How a moment's kind reads on the page and on its chip."""


class TimelineFilterError(Unprocessable):
    """A filter the timeline does not have (422)."""


@dataclass(frozen=True)
class TimelinePage:
    events: tuple[StoredEvent, ...]
    total: int
    """Events matching the filter in the whole session."""
    position: int
    """How many matching events come before this page."""
    earlier: int | None
    """The ``after`` cursor of the page before, None on the first page."""
    later: int | None
    """The ``after`` cursor of the page after, None on the last page."""
    group: str
    text: str


def _where(session_id: str, group: str, text: str) -> tuple[str, list[Any]]:
    kinds = GROUPS[group][1] if group else NOTABLE
    sql = f"session_id = ? AND kind IN ({', '.join('?' for _ in kinds)})"
    params: list[Any] = [session_id, *kinds]
    if text:
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        sql += " AND (path LIKE ? ESCAPE '\\' OR payload LIKE ? ESCAPE '\\')"
        params += [pattern, pattern]
    return sql, params


def check_filter(group: str, text: str, after: int) -> None:
    problems = []
    if group and group not in GROUPS:
        problems.append(f"there is no kind {group[:40]!r} to filter by (the kinds: "
                        f"{', '.join(GROUPS)})")
    if len(text) > MAX_TEXT:
        problems.append(f"the text to look for is too long (at most {MAX_TEXT} characters)")
    if after < 0:
        problems.append("the page must start after an event number (0 or more)")
    if problems:
        raise TimelineFilterError("The timeline cannot be shown: " + "; ".join(problems) + ".")


def timeline_page(db: sqlite_utils.Database, session_id: str, *, group: str = "",
                  text: str = "", after: int = 0, limit: int = PAGE_SIZE) -> TimelinePage:
    """The matching notable events with ``seq > after``, at most ``limit``, oldest first."""
    text = text.strip()
    check_filter(group, text, after)
    where, params = _where(session_id, group, text)
    rows = db.execute(
        f"SELECT {E.COLUMNS} FROM events"  # noqa: S608
        f" WHERE {where} AND seq > ? ORDER BY seq LIMIT ?", [*params, after, limit + 1],
    ).fetchall()
    page = tuple(E.stored_event(r) for r in rows)
    later = page[limit - 1].seq if len(page) > limit else None
    page = page[:limit]
    (total,) = db.execute(f"SELECT COUNT(*) FROM events WHERE {where}",  # noqa: S608
                          params).fetchone()
    (position,) = db.execute(f"SELECT COUNT(*) FROM events WHERE {where} AND seq <= ?",  # noqa: S608
                             [*params, after]).fetchone()
    earlier = None
    if position:
        # the page before starts after the event ``limit`` places before this page's start
        row = db.execute(f"SELECT seq FROM events WHERE {where} AND seq <= ?"  # noqa: S608
                         " ORDER BY seq DESC LIMIT 1 OFFSET ?", [*params, after, limit],
                         ).fetchone()
        earlier = int(row[0]) if row else 0
    return TimelinePage(page, int(total), int(position), earlier, later, group, text)


def events_by_seq(db: sqlite_utils.Database, session_id: str,
                  seqs: Iterable[int]) -> list[StoredEvent]:
    """This session's events with these numbers (for the chips of moments already picked)."""
    wanted = sorted({s for s in seqs if isinstance(s, int) and 0 < s <= 2**62})
    if not wanted:
        return []
    rows = db.execute(
        f"SELECT {E.COLUMNS} FROM events"  # noqa: S608
        f" WHERE session_id = ? AND seq IN ({', '.join('?' for _ in wanted)}) ORDER BY seq",
        [session_id, *wanted]).fetchall()
    return [E.stored_event(r) for r in rows]


def _brief(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return value if len(value) <= BRIEF else value[:BRIEF] + "…"
    if isinstance(value, dict) and depth < 2:
        return {str(k)[:60]: _brief(v, depth + 1) for k, v in list(value.items())[:40]}
    if isinstance(value, list) and depth < 2:
        return [_brief(v, depth + 1) for v in value[:10]]
    if isinstance(value, bool | int | float) or value is None:
        return value
    return None


def brief(event: StoredEvent) -> dict[str, Any]:
    """An event for the page's script: its payload's text cut short (a cell's whole output
    is not needed to summarise it in one line)."""
    return {"seq": event.seq, "at": iso(event.at), "actor": event.actor, "kind": event.kind,
            "path": event.path, "payload": _brief(event.payload)}
