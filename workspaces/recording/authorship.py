"""Who wrote what in a session, from its stored events (for the debrief and its JSON API).

Per person (event actor) and per file: the characters they inserted and deleted (the ``authors``
of each ``file.*`` event), how many saves they are credited with, how those changes reached the
file (``via``: collaboration, contents API, process; ``unknown`` for recordings made before
pairlab told them apart), the seq of their last change of it (to open the replay there), and
apart from all that the changes pairlab only ``inferred`` to be theirs (a process run while they
alone were running code). Per person also the cells they ran and the terminal commands they
entered. A rename carries every share of the old path over to the new one. Apart: the cells whose
recorded code the record cannot vouch for (``flagged_cells``: ``kernel_messages``' flags, or run
outside pairlab).

Web-free: ``session_authorship(db, session_id)`` reads the events of one session in ``seq``
order through one cursor (one row at a time), inside ``Database.read``.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from workspaces.recording import events as E

__all__ = ["Authorship", "FileShare", "FlaggedCell", "Person", "session_authorship"]

VIA_UNKNOWN = "unknown"
_WRITES = (E.FILE_CREATED, E.FILE_CHANGED)
_KINDS = (*_WRITES, E.FILE_RENAMED, E.FILE_DELETED, E.CELL_EXECUTED, E.TERMINAL_COMMAND)


@dataclass(slots=True)
class FileShare:
    """One person's part in one file."""

    path: str
    inserted: int = 0
    deleted: int = 0
    saves: int = 0
    """``file.created``/``file.changed`` events they are an author of (inferred ones apart)."""
    other: int = 0
    """Renames and deletions of the file that were theirs."""
    via: Counter[str] = field(default_factory=Counter)
    inferred: int = 0
    """Changes (of any kind) only inferred to be theirs; not in ``saves``/``other``/``via``."""
    last_seq: int = 0

    def merge(self, other: FileShare) -> None:
        self.inserted += other.inserted
        self.deleted += other.deleted
        self.saves += other.saves
        self.other += other.other
        self.via.update(other.via)
        self.inferred += other.inferred
        self.last_seq = max(self.last_seq, other.last_seq)

    def public(self) -> dict[str, Any]:
        return {"path": self.path, "inserted": self.inserted, "deleted": self.deleted,
                "saves": self.saves, "other": self.other, "via": dict(sorted(self.via.items())),
                "inferred": self.inferred, "last_seq": self.last_seq}


@dataclass(slots=True)
class Person:
    """What one actor did in the session."""

    actor: str
    files: dict[str, FileShare] = field(default_factory=dict)
    cells: int = 0
    commands: int = 0

    def share(self, path: str) -> FileShare:
        found = self.files.get(path)
        if found is None:
            found = self.files[path] = FileShare(path)
        return found

    @property
    def inserted(self) -> int:
        return sum(f.inserted for f in self.files.values())

    @property
    def deleted(self) -> int:
        return sum(f.deleted for f in self.files.values())

    @property
    def saves(self) -> int:
        return sum(f.saves for f in self.files.values())

    @property
    def inferred(self) -> int:
        return sum(f.inferred for f in self.files.values())

    def sorted_files(self) -> list[FileShare]:
        """Most written first, then by path."""
        return sorted(self.files.values(),
                      key=lambda f: (-(f.inserted + f.deleted), -f.saves, f.path))

    def public(self) -> dict[str, Any]:
        return {"actor": self.actor, "inserted": self.inserted, "deleted": self.deleted,
                "saves": self.saves, "inferred": self.inferred, "cells": self.cells,
                "commands": self.commands, "files": [f.public() for f in self.sorted_files()]}


@dataclass(slots=True, frozen=True)
class FlaggedCell:
    """A cell execution whose recorded code may not be what the kernel ran."""

    seq: int
    actor: str
    flags: tuple[str, ...]
    """``kernel_messages``' flags (``transformed``, ``echo_differs``, ``unreported``), and
    ``outside`` for code run around pairlab."""
    code: str
    """The first line of the recorded code (at most 120 characters)."""

    def public(self) -> dict[str, Any]:
        return {"seq": self.seq, "actor": self.actor, "flags": list(self.flags),
                "code": self.code}


def _flagged(seq: int, actor: str, payload: dict[str, Any]) -> FlaggedCell | None:
    listed = payload.get("flags")
    flags = [str(f)[:40] for f in listed[:8]] if isinstance(listed, list) else []
    if payload.get("origin"):
        flags.append("outside")
    if not flags:
        return None
    code = payload.get("code")
    first = code.strip().split("\n", 1)[0][:120] if isinstance(code, str) else ""
    return FlaggedCell(seq, actor, tuple(flags), first)


@dataclass(slots=True)
class Authorship:
    """Everyone's part in a session, and each file's last change by anyone."""

    people: dict[str, Person] = field(default_factory=dict)
    last_change: dict[str, int] = field(default_factory=dict)
    """path → seq of the newest ``file.*`` event of that path (a rename: of the new path)."""
    flagged_cells: list[FlaggedCell] = field(default_factory=list)

    def person(self, actor: str) -> Person:
        found = self.people.get(actor)
        if found is None:
            found = self.people[actor] = Person(actor)
        return found

    def sorted_people(self) -> list[Person]:
        """The candidate first, then the others by actor (e.g. ``interviewer:<id>``)."""
        return sorted(self.people.values(),
                      key=lambda p: (p.actor != E.ACTOR_CANDIDATE, p.actor))

    def public(self) -> dict[str, Any]:
        return {"people": [p.public() for p in self.sorted_people()],
                "last_change": dict(sorted(self.last_change.items())),
                "flagged_cells": [c.public() for c in self.flagged_cells]}

    # -- building ------------------------------------------------------------------------------

    def add(self, seq: int, actor: str, kind: str, path: str, payload: dict[str, Any]) -> None:
        if kind == E.CELL_EXECUTED:
            self.person(actor).cells += 1
            if (flagged := _flagged(seq, actor, payload)) is not None:
                self.flagged_cells.append(flagged)
            return
        if kind == E.TERMINAL_COMMAND:
            self.person(actor).commands += 1
            return
        if kind == E.FILE_RENAMED and isinstance(old := payload.get("old_path"), str) and old:
            self._rename(old, path)
        self.last_change[path] = seq
        if payload.get("inferred") is True:
            share = self.person(actor).share(path)
            share.inferred += 1
            share.last_seq = seq
            return
        via = payload.get("via")
        via = via if isinstance(via, str) and via else VIA_UNKNOWN
        for author, counts in _authors(actor, payload).items():
            share = self.person(author).share(path)
            share.inserted += counts[0]
            share.deleted += counts[1]
            if kind in _WRITES:
                share.saves += 1
            else:
                share.other += 1
            share.via[via] += 1
            share.last_seq = seq

    def _rename(self, old: str, new: str) -> None:
        if old == new:
            return
        for person in self.people.values():
            moved = person.files.pop(old, None)
            if moved is not None:
                moved.path = new
                if new in person.files:
                    person.files[new].merge(moved)
                else:
                    person.files[new] = moved
        self.last_change.pop(old, None)


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _authors(actor: str, payload: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """author → (inserted, deleted) of one change; the event's actor when none are listed."""
    listed = payload.get("authors")
    found: dict[str, tuple[int, int]] = {}
    if isinstance(listed, dict):
        for author, counts in listed.items():
            if isinstance(author, str) and author:
                counts = counts if isinstance(counts, dict) else {}
                found[author] = (_count(counts.get("ins")), _count(counts.get("del")))
    return found or {actor: (0, 0)}


def session_authorship(db: sqlite_utils.Database, session_id: str) -> Authorship:
    """Everyone's part in the session, from its stored events."""
    result = Authorship()
    marks = ", ".join("?" for _ in _KINDS)
    cursor = db.execute(
        "SELECT seq, actor, kind, path, payload FROM events "  # noqa: S608
        f"WHERE session_id = ? AND kind IN ({marks}) ORDER BY seq", [session_id, *_KINDS])
    for seq, actor, kind, path, payload_json in cursor:
        try:
            payload = json.loads(payload_json)
        except ValueError:
            payload = {}
        result.add(seq, actor, kind, path, payload if isinstance(payload, dict) else {})
    return result
