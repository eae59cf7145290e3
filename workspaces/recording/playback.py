"""Keystroke playback of a collaborative document from its recorded updates (``doc_log``):
the document as it was after update ``n``, and each later update as plain text operations, so
the replay page can play the editing like a video without a Yjs of its own.

A frame is ``{"n", "at", "actor", "kind", "ops"}``. For a text file (``doc_type`` 'file') an op
is ``[pos, deleted, inserted]``: at ``pos`` remove ``deleted`` characters, then insert the text
``inserted``. For a notebook an op is ``[cell_id, pos, deleted, inserted]`` on that cell's
source, and a frame that adds, removes, moves or retypes cells carries the whole ``cells`` list
(``[{"id", "type", "source"}]``) after it instead of ops. Positions and lengths count Unicode
code points (Yjs, in pycrdt, reports UTF-8 byte offsets: they are converted). Updates that
change neither text nor cells (the ``state`` map: saves, the path) are frames without ops, so
frame ``n`` is always update ``n``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlite_utils
from pycrdt import Array, Doc, Map, Text, TextEvent

from common.clock import iso
from workspaces.recording import doc_log
from workspaces.recording.doc_log import Doc as DocRow

__all__ = ["MAX_FRAMES", "apply_ops", "docs_of_session", "frames"]

MAX_FRAMES = 5000
Op = list[Any]


def docs_of_session(db: sqlite_utils.Database, session_id: str) -> list[dict[str, Any]]:
    """The session's documents with ``type``, ``updates`` (the newest ``n``), ``authors``
    (``{actor: updates}`` of people's edits), ``first_at``/``last_at``."""
    out = []
    for doc in doc_log.docs_of_session(db, session_id):
        authors = {row[0]: row[1] for row in db.execute(
            "SELECT actor, COUNT(*) FROM doc_updates WHERE doc_id = ? AND kind = ? "
            "GROUP BY actor ORDER BY COUNT(*) DESC, actor", [doc.id, doc_log.KIND_UPDATE])}
        first, last, count = db.execute(
            "SELECT MIN(at), MAX(at), COALESCE(MAX(n), 0) FROM doc_updates WHERE doc_id = ?",
            [doc.id]).fetchone()
        out.append({**doc.to_dict(), "type": doc.doc_type, "updates": count,
                    "authors": authors, "first_at": first, "last_at": last})
    return out


def _char_offset(encoded: bytes, byte_pos: int) -> int:
    return len(encoded[:byte_pos].decode("utf-8", "replace"))


def _delta_ops(before: str, delta: list[dict[str, Any]]) -> list[tuple[int, int, str]]:
    """``(pos, deleted, inserted)`` in code points of a Yjs text delta in UTF-8 bytes."""
    encoded = before.encode()
    ops: list[tuple[int, int, str]] = []
    src = 0   # byte position in ``before``
    shift = 0  # code points inserted minus deleted so far
    for item in delta:
        if "retain" in item:
            src += int(item["retain"])
        elif "delete" in item:
            end = src + int(item["delete"])
            pos = _char_offset(encoded, src)
            gone = _char_offset(encoded, end) - pos
            ops.append((pos + shift, gone, ""))
            shift -= gone
            src = end
        elif "insert" in item and isinstance(item["insert"], str):
            pos = _char_offset(encoded, src)
            ops.append((pos + shift, 0, item["insert"]))
            shift += len(item["insert"])
    merged: list[tuple[int, int, str]] = []
    for op in ops:  # a replacement: a delete then an insert at the same place
        if merged and merged[-1][0] == op[0] and not merged[-1][2] and not op[1]:
            merged[-1] = (op[0], merged[-1][1], op[2])
        else:
            merged.append(op)
    return merged


def _delta(event: Any) -> list[dict[str, Any]]:
    """A pycrdt event's delta (its attributes are set at run time)."""
    delta = getattr(event, "delta", None)
    return list(delta) if isinstance(delta, list) else []


def apply_ops(text: str, ops: list[tuple[int, int, str]]) -> str:
    for pos, deleted, inserted in ops:
        text = text[:pos] + inserted + text[pos + deleted:]
    return text


def _diff_op(before: str, after: str) -> list[tuple[int, int, str]]:
    """One op turning ``before`` into ``after`` (their common prefix and suffix kept)."""
    start = 0
    while start < min(len(before), len(after)) and before[start] == after[start]:
        start += 1
    end = 0
    while end < min(len(before), len(after)) - start and \
            before[len(before) - 1 - end] == after[len(after) - 1 - end]:
        end += 1
    return [(start, len(before) - start - end, after[start:len(after) - end])]


@dataclass
class _Player:
    """A document rebuilt update by update, turning each into a frame's ops."""

    doc_type: str
    doc: Doc[Any]

    def __post_init__(self) -> None:
        self.pending: list[Any] = []
        if self.doc_type == "notebook":
            self.cells: Array[Any] = self.doc.get("cells", type=Array)
            self.sub = self.cells.observe_deep(self.pending.extend)
            self.shown = self._cells()
        else:
            self.text: Text = self.doc.get("source", type=Text)
            self.sub = self.text.observe(self.pending.append)
            self.shown_text = str(self.text)

    def _cells(self) -> list[dict[str, str]]:
        found = []
        for cell in self.cells:
            if not isinstance(cell, Map):
                continue
            source = cell.get("source", "")
            found.append({"id": str(cell.get("id", "")), "type": str(cell.get("cell_type", "")),
                          "source": str(source) if isinstance(source, Text | str) else ""})
        return found

    def base(self) -> dict[str, Any]:
        if self.doc_type == "notebook":
            return {"cells": self._cells()}
        return {"text": str(self.text)}

    def step(self, data: bytes) -> dict[str, Any]:
        """Apply one update: ``{"ops": [...]}`` (or, for a notebook, maybe ``{"cells"}``)."""
        self.pending.clear()
        self.doc.apply_update(data)
        events, self.pending[:] = list(self.pending), []
        return self._notebook(events) if self.doc_type == "notebook" else self._text(events)

    def _text(self, events: list[Any]) -> dict[str, Any]:
        before, after = self.shown_text, str(self.text)
        ops: list[tuple[int, int, str]] = []
        for event in events:
            ops += _delta_ops(apply_ops(before, ops), _delta(event))
        if apply_ops(before, ops) != after:  # never seen; the frame stays exact anyway
            ops = _diff_op(before, after) if before != after else []
        self.shown_text = after
        return {"ops": [list(op) for op in ops]}

    def _notebook(self, events: list[Any]) -> dict[str, Any]:
        now = self._cells()
        before = {c["id"]: c["source"] for c in self.shown}
        layout = [(c["id"], c["type"]) for c in now]
        if layout != [(c["id"], c["type"]) for c in self.shown] or len(before) != len(now):
            self.shown = now
            return {"ops": [], "cells": now}
        ops: list[Op] = []
        touched: dict[str, list[tuple[int, int, str]]] = {}
        for event in events:
            path = list(getattr(event, "path", []))
            if isinstance(event, TextEvent) and len(path) == 2 and path[1] == "source" \
                    and isinstance(path[0], int) and path[0] < len(now):
                cell_id = now[path[0]]["id"]
                done = touched.setdefault(cell_id, [])
                done += _delta_ops(apply_ops(before[cell_id], done), _delta(event))
        for cell in now:
            done = touched.get(cell["id"], [])
            if apply_ops(before[cell["id"]], done) != cell["source"]:
                done = _diff_op(before[cell["id"]], cell["source"])
            ops += [[cell["id"], *op] for op in done]
        self.shown = now
        return {"ops": ops}


def _player(db: sqlite_utils.Database, doc: DocRow, upto: int) -> _Player:
    """The document as it was after update ``upto`` (from the newest checkpoint before)."""
    ydoc: Doc[Any] = Doc()
    start = 1
    found = doc_log.checkpoint_at(db, doc.id, upto)
    if found is not None:
        ydoc.apply_update(found[1])
        start = found[0] + 1
    while start <= upto:
        page = doc_log.updates_from(db, doc.id, start, min(doc_log.PAGE, upto - start + 1))
        if not page:
            break
        for update in page:
            ydoc.apply_update(update.data)
        start = page[-1].n + 1
    return _Player(doc.doc_type, ydoc)


def frames(db: sqlite_utils.Database, doc: DocRow, first: int, limit: int) -> dict[str, Any]:
    """``{"doc", "last_n", "base": {"n", "text" | "cells"}, "frames": [...]}``: the document
    after update ``first - 1`` and the frames of updates ``first`` to ``first + limit - 1``."""
    player = _player(db, doc, first - 1)
    base = {"n": first - 1, **player.base()}
    out: list[dict[str, Any]] = []
    n = first
    while len(out) < limit:
        page = doc_log.updates_from(db, doc.id, n, min(doc_log.PAGE, limit - len(out)))
        if not page:
            break
        for update in page:
            out.append({"n": update.n, "at": iso(update.at), "actor": update.actor,
                        "kind": update.kind, **player.step(update.data)})
        n = page[-1].n + 1
    return {"doc": doc.to_dict() | {"type": doc.doc_type}, "last_n": doc_log.last_n(db, doc.id),
            "base": base, "frames": out}
