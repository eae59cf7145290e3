"""The collaboration log in a session archive (``archive.export_session`` calls ``write_docs``):

- ``docs/<id>.jsonl``: every stored update of document ``id`` in order, one JSON object a line,
  ``{"n", "at", "actor", "conn", "kind", "data"}`` with ``data`` the Yjs v1 update in base64
  (applied in order to an empty ``pycrdt.Doc`` they rebuild the document: a ``Text`` named
  ``source`` for a file, jupyter_ydoc's ``YNotebook`` layout for a notebook);
- ``docs/index.json``: a list of the documents, in the order they were opened:
  ``{"id", "room", "file_id", "path", "type", "opened_at", "updates", "bytes", "authors",
  "capped_at", "file"}``; ``authors`` counts each person's edits (``kind`` "update"), ``bytes``
  the updates' size; ``capped_at`` says when the log stopped keeping the document's edits.

Rows are read through one cursor and written as they come, so a large log is never held in
memory. Web-free; reads ``docs``/``doc_updates`` (``doc_log``) on the caller's connection.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from pathlib import Path
from typing import Any

import sqlite_utils

from common.clock import iso
from workspaces.recording import doc_log

__all__ = ["write_docs"]


def _write_updates(db: sqlite_utils.Database, doc_id: int,
                   target: Path) -> tuple[int, int, Counter[str]]:
    """Stream the document's updates to ``target``: (count, bytes, edits per author)."""
    count, size, authors = 0, 0, Counter[str]()
    cursor = db.execute("SELECT n, at, actor, conn, kind, data FROM doc_updates "
                        "WHERE doc_id = ? ORDER BY n", [doc_id])
    with target.open("w", encoding="utf-8") as out:
        for n, at, actor, conn, kind, data in cursor:
            raw = bytes(data)
            out.write(json.dumps({"n": n, "at": at, "actor": actor, "conn": conn, "kind": kind,
                                  "data": base64.b64encode(raw).decode("ascii")},
                                 ensure_ascii=False) + "\n")
            count += 1
            size += len(raw)
            if kind == doc_log.KIND_UPDATE:
                authors[actor] += 1
    return count, size, authors


def write_docs(db: sqlite_utils.Database, session_id: str, folder: Path) -> dict[str, int]:
    """Write the session's collaboration log into ``folder`` (made here); returns
    ``{"docs", "updates"}``."""
    folder.mkdir(mode=0o755)
    index: list[dict[str, Any]] = []
    total = 0
    for doc in doc_log.docs_of_session(db, session_id):
        name = f"{doc.id}.jsonl"
        count, size, authors = _write_updates(db, doc.id, folder / name)
        total += count
        index.append({
            "id": doc.id, "room": doc.room, "file_id": doc.file_id, "path": doc.path,
            "type": doc.doc_type, "opened_at": iso(doc.opened_at), "updates": count,
            "bytes": size, "authors": dict(authors.most_common()),
            "capped_at": None if doc.capped_at is None else iso(doc.capped_at), "file": name})
    (folder / "index.json").write_text(json.dumps(index, indent=1, ensure_ascii=False) + "\n",
                                       encoding="utf-8")
    return {"docs": len(index), "updates": total}
