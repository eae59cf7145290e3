"""Collaboration logs made with pycrdt, stored as the collaboration tap stores them, for the
playback tests (API and page)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pycrdt import Array, Doc, Text

from common.db import Database
from workspaces.recording import doc_log
from workspaces.recording.doc_log import DocUpdate

WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
CANDIDATE, LEAD = "candidate", "interviewer:1"


def end(text: Text) -> int:
    """The end of ``text`` as pycrdt counts positions (UTF-8 bytes; Yjs in the browser counts
    UTF-16 units: the stored updates do not depend on either)."""
    return len(str(text).encode())


class Typist:
    """A pycrdt document whose every transaction is kept as a stored update, with the
    document's content after it (what playback must show at that ``n``)."""

    def __init__(self, root: str) -> None:
        self.doc: Doc[Any] = Doc()
        self.root = self.doc.get(root, type=Array if root == "cells" else Text)
        self.rows: list[tuple[str, bytes]] = []
        self.states: list[Any] = []
        self.actor = "system"
        self.sub = self.doc.observe(lambda e: self.rows.append((self.actor, e.update)))

    def do(self, actor: str, change: Any) -> None:
        self.actor = actor
        with self.doc.transaction():
            change(self.root)
        self.states.append(self.content())

    def content(self) -> Any:
        if isinstance(self.root, Text):
            return str(self.root)
        return [(str(c["id"]), str(c["cell_type"]), str(c["source"])) for c in self.root]


async def store_doc(db: Database, sid: str, room: str, doc_type: str, path: str,
                    typist: Typist, checkpoint_at: int | None = None) -> int:
    """Store ``typist``'s updates as the collaboration tap would (a ``docs`` row, its
    ``doc_updates``, a checkpoint after update ``checkpoint_at``): the document's id."""
    def write(d: Any) -> int:
        doc_id = doc_log.open_doc(d, sid, room, room.rsplit(":", 1)[1], doc_type, path, WHEN)
        doc_log.append_updates(d, [
            DocUpdate(doc_id, n, WHEN + timedelta(seconds=n), actor,
                      0 if actor == "system" else 1 + (actor == LEAD),
                      doc_log.KIND_SERVER if actor == "system" else doc_log.KIND_UPDATE, data)
            for n, (actor, data) in enumerate(typist.rows, 1)])
        if checkpoint_at is not None:
            state: Doc[Any] = Doc()
            for _, data in typist.rows[:checkpoint_at]:
                state.apply_update(data)
            doc_log.add_checkpoint(d, doc_id, checkpoint_at, state.get_update())
        return doc_id

    return int(await db.write(write))
