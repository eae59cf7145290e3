"""CSV import of hiring outcomes: every row checked first, then all stored or none.

The file is UTF-8 (a byte-order mark is fine) with a header row. Columns: ``session_id`` or
``candidate_email`` (the candidate's latest ended session), and any of ``hired``,
``employed_6m`` (yes/no/true/false/1/0, blank: keep what is stored), ``performance`` (1-5,
blank: keep) and ``note`` (blank: keep). Problems are reported as ``row N: <column>: <reason>``
with N the file's line number; one problem anywhere and nothing is stored.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from scoring import outcomes

MAX_BYTES = 1024 * 1024
MAX_ROWS = 10_000
KEY_COLUMNS = ("session_id", "candidate_email")
COLUMNS = (*KEY_COLUMNS, *outcomes.FIELDS)
TRUE = frozenset({"yes", "y", "true", "1"})
FALSE = frozenset({"no", "n", "false", "0"})
MAX_REPORTED = 200


class ImportRejected(outcomes.OutcomeError):
    """The file was refused as a whole; ``rows`` lists every row problem (maybe none, when the
    file itself is unreadable)."""

    code = "import_rejected"

    def __init__(self, message: str, rows: list[str] | None = None,
                 lines: list[tuple[int, str, str]] | None = None) -> None:
        self.rows = rows or []
        self.lines = lines or []
        """``(line number, column, reason)`` per row problem, for pages to show per line."""
        # ``rows`` is one more field of the JSON error body (the error middleware adds it)
        super().__init__(message, extra={"rows": self.rows})


@dataclass
class ParsedRow:
    line: int
    session_id: str
    email: str
    changes: dict[str, Any]
    problems: list[outcomes.Problem] = field(default_factory=list)


@dataclass(frozen=True)
class ImportResult:
    imported: list[tuple[str, outcomes.Outcome, dict[str, Any]]]
    """``(session_id, stored outcome, the changes the row made)`` per stored row."""
    skipped: int
    """Rows that named a session but gave no value (nothing to store)."""


def _decode(raw: bytes) -> str:
    if len(raw) > MAX_BYTES:
        raise ImportRejected(
            f"The file is {len(raw)} bytes; at most {MAX_BYTES} bytes are accepted. Split it."
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ImportRejected(
            f"The file is not UTF-8 text (line {line},"
            f" byte {exc.start + 1}); save it as 'CSV UTF-8' and try again."
        ) from None
    if "\x00" in text:
        raise ImportRejected("The file contains NUL bytes; it does not look like a CSV file.")
    return text


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    """``(line number where the record starts, cells)`` for each non-blank record."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ImportRejected(f"row {start}: the line is not valid CSV ({exc}).") from None
        if any(cell.strip() for cell in cells):
            yield start, cells


def _header(line: int, cells: list[str]) -> list[str]:
    names = [cell.strip().lower() for cell in cells]
    problems: list[str] = []
    if not set(names) & set(COLUMNS):
        raise ImportRejected(
            f"row {line}: the first line must be a header naming the columns"
            f" ({', '.join(COLUMNS)}).",
            [f"row {line}: header: no known column; expected {', '.join(COLUMNS)}"],
        )
    for position, name in enumerate(names):
        if name not in COLUMNS:
            shown = name[:40] or f"column {position + 1} (empty)"
            problems.append(f"row {line}: {shown}: unknown column; use {', '.join(COLUMNS)}")
        elif names.index(name) != position:
            problems.append(f"row {line}: {name}: the column appears twice")
    if not set(names) & set(KEY_COLUMNS):
        problems.append(f"row {line}: header: a session_id or candidate_email column is needed")
    if not set(names) & set(outcomes.FIELDS):
        problems.append(
            f"row {line}: header: name at least one of {', '.join(outcomes.FIELDS)}"
        )
    if problems:
        raise ImportRejected("The header row has problems; nothing was imported.", problems)
    return names


def _flag(text: str) -> bool | None:
    word = text.strip().lower()
    if word in TRUE:
        return True
    if word in FALSE:
        return False
    raise ValueError


def row_changes(texts: Mapping[str, str], *, blank_clears: bool,
                ) -> tuple[dict[str, Any], list[outcomes.Problem]]:
    """One row's outcome fields as typed (``hired``/``employed_6m``: yes/no/true/false/1/0,
    ``performance``: a number, ``note``), checked: ``(changes, problems)``. The one reading of
    a row, for the CSV import and the outcomes table alike. A blank cell keeps what is stored
    in a CSV file (``blank_clears=False``); in the table, which shows every stored value, a
    blank clears it."""
    changes: dict[str, Any] = {}
    problems: list[outcomes.Problem] = []
    for name in ("hired", "employed_6m"):
        text = texts.get(name, "").strip()
        if not text:
            if blank_clears:
                changes[name] = None
            continue
        try:
            changes[name] = _flag(text)
        except ValueError:
            problems.append((name, f"{text[:40]!r} is not yes, no or blank"))
    text = texts.get("performance", "").strip()
    if text:
        try:
            changes["performance"] = float(text)
        except ValueError:
            problems.append(("performance", f"{text[:40]!r} is not a number from 1 to 5"))
    elif blank_clears:
        changes["performance"] = None
    note = texts.get("note", "").strip()
    if note or blank_clears:
        changes["note"] = note
    clean, more = outcomes.check_types(changes)
    return clean, problems + more


def _row(line: int, names: list[str], cells: list[str]) -> ParsedRow:
    row = ParsedRow(line, "", "", {})
    if len(cells) > len(names):
        row.problems.append(("cells", f"has {len(cells)} cells but the header names {len(names)}"))
    values = dict(zip(names, cells, strict=False))
    row.session_id = values.get("session_id", "").strip()
    row.email = values.get("candidate_email", "").strip().lower()
    row.changes, problems = row_changes(values, blank_clears=False)
    row.problems += problems
    return row


def parse(raw: bytes) -> list[ParsedRow]:
    """Read the file's rows with the problems each has on its own (not yet the database)."""
    records = _records(_decode(raw))
    first = next(records, None)
    if first is None:
        raise ImportRejected("The file is empty; the first line must be a header row.")
    names = _header(*first)
    rows: list[ParsedRow] = []
    for line, cells in records:
        if len(rows) == MAX_ROWS:
            raise ImportRejected(f"The file has more than {MAX_ROWS} rows; split it.")
        rows.append(_row(line, names, cells))
    if not rows:
        raise ImportRejected("The file has a header but no rows to import.")
    return rows


def _session_for_email(db: sqlite_utils.Database, email: str) -> tuple[str, str]:
    """``(session id, "")`` for the candidate's latest ended session, or ``("", reason)``."""
    rows = db.execute(
        "SELECT id, state, starts_at FROM interview_sessions WHERE lower(candidate_email) = ?"
        " ORDER BY starts_at DESC, id",
        [email],
    ).fetchall()
    if not rows:
        return "", "no session has a candidate with this email"
    ended = [r for r in rows if r[1] == "ended"]
    if not ended:
        return "", "the candidate's sessions have not ended yet"
    if len(ended) > 1 and ended[0][2] == ended[1][2]:
        return "", "the candidate has several latest sessions; use session_id instead"
    return str(ended[0][0]), ""


def _email_of(db: sqlite_utils.Database, session_id: str) -> str:
    found = db.execute("SELECT lower(candidate_email) FROM interview_sessions WHERE id = ?",
                       [session_id]).fetchone()
    return str(found[0]) if found else ""


def _resolve(db: sqlite_utils.Database, row: ParsedRow) -> str:
    """The row's session id (adding a problem when there is none)."""
    if not row.session_id and not row.email:
        row.problems.append(("session_id", "give a session_id or a candidate_email"))
        return ""
    if row.session_id:
        try:
            state = outcomes.session_state(db, row.session_id)
        except outcomes.UnknownSession as exc:
            row.problems.append(("session_id", exc.message))
            return ""
        if row.email and row.email != _email_of(db, row.session_id):
            row.problems.append(("candidate_email", "is not the email of this session's"
                                 " candidate"))
            return ""
        if state != "ended":
            row.problems.append(("session_id", f"the session is {state}; outcomes are"
                                 " recorded once the interview has ended"))
            return ""
        return row.session_id
    session_id, reason = _session_for_email(db, row.email)
    if reason:
        row.problems.append(("candidate_email", reason))
    return session_id


@dataclass(frozen=True)
class Planned:
    """One row that will change a session's outcome: what is stored now and what will be."""

    line: int
    session_id: str
    before: outcomes.Outcome | None
    after: dict[str, Any]
    changes: dict[str, Any]


def checked_change(db: sqlite_utils.Database, session_id: str, changes: Mapping[str, Any],
                   ) -> tuple[outcomes.Outcome | None, dict[str, Any], list[outcomes.Problem]]:
    """``(the stored outcome, every field once ``changes`` apply, the problems of that
    whole)``: the check of a row against what is stored, for the import and the table."""
    before = outcomes.get_outcome(db, session_id)
    after = outcomes.merged(before, changes)
    return before, after, outcomes.check_consistency(after["hired"], after["employed_6m"],
                                                     after["performance"])


def plan(db: sqlite_utils.Database, rows: list[ParsedRow]) -> tuple[list[Planned], int]:
    """Check every row against the database without storing anything: ``(the rows that would
    be stored, how many rows gave no value)``, or ``ImportRejected`` with every problem."""
    seen: dict[str, int] = {}
    planned: list[Planned] = []
    skipped = 0
    for row in rows:
        session_id = _resolve(db, row)
        if session_id in seen:
            row.problems.append(("session_id", f"the same session as row {seen[session_id]}"))
        elif session_id:
            seen[session_id] = row.line
        if row.problems or not session_id:
            continue
        if not row.changes:
            skipped += 1
            continue
        before, values, problems = checked_change(db, session_id, row.changes)
        row.problems += problems
        planned.append(Planned(row.line, session_id, before, values, row.changes))
    bad = [(r.line, column, reason) for r in rows for column, reason in r.problems]
    if bad:
        errors = [f"row {line}: {column}: {reason}" for line, column, reason in bad]
        shown = errors[:MAX_REPORTED]
        if len(errors) > MAX_REPORTED:
            shown.append(f"... and {len(errors) - MAX_REPORTED} more problems")
        noun = "problem" if len(errors) == 1 else "problems"
        raise ImportRejected(
            f"The file has {len(errors)} {noun}; nothing was imported. Fix them and import"
            " the whole file again.",
            shown, bad[:MAX_REPORTED],
        )
    return planned, skipped


def apply(db: sqlite_utils.Database, rows: list[ParsedRow], user_id: int | None) -> ImportResult:
    """Check every row against the database, then store them all, or raise ``ImportRejected``
    with every problem and store nothing (run it in one write transaction)."""
    planned, skipped = plan(db, rows)
    stored = [(p.session_id, outcomes.store(db, p.session_id, p.after, user_id), p.changes)
              for p in planned]
    return ImportResult(stored, skipped)


def preview_csv(db: sqlite_utils.Database, raw: bytes) -> tuple[list[Planned], int]:
    """What importing ``raw`` would change, storing nothing (``ImportRejected`` as importing
    would raise it)."""
    return plan(db, parse(raw))


def import_csv(db: sqlite_utils.Database, raw: bytes, user_id: int | None) -> ImportResult:
    """Parse, check and store a whole file, all or nothing (run it in one write transaction)."""
    return apply(db, parse(raw), user_id)
