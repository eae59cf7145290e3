"""The collaboration log in the export, on a real SQLite file: a text file edited by two people
and a notebook, stored by ``doc_log`` as the collaboration tap stores them; the exported
``docs/<id>.jsonl`` applied in order with pycrdt rebuild each document, ``docs/index.json``
describes them (authors, update counts, the cap), and another session's documents stay out."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from jupyter_ydoc import YNotebook
from pycrdt import Doc, Text

from common.db import Database
from workspaces.recording import doc_log
from workspaces.recording.doc_export import write_docs

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
LEAD = "interviewer:7"


class Log:
    """One document's updates as the tap would store them (``n`` gap-free from 1)."""

    def __init__(self, doc_id: int) -> None:
        self.doc_id = doc_id
        self.rows: list[doc_log.DocUpdate] = []

    def change(self, doc: Doc[Any], actor: str, conn: int, kind: str,
               fn: Callable[[], None]) -> None:
        before = doc.get_state()
        fn()
        n = len(self.rows) + 1
        self.rows.append(doc_log.DocUpdate(self.doc_id, n, T0 + timedelta(seconds=n), actor,
                                           conn, kind, doc.get_update(before)))


async def store_session(db: Database) -> tuple[str, dict[str, Any]]:
    """A file and a notebook in s1 (and a file in s2); returns the file's final text and the
    notebook's final cells."""
    opened = await db.write(lambda d: [
        doc_log.open_doc(d, "s1", "text:file:f1", "f1", "file", "main.py", T0),
        doc_log.open_doc(d, "s1", "json:notebook:n1", "n1", "notebook", "run.ipynb",
                         T0 + timedelta(seconds=1)),
        doc_log.open_doc(d, "s2", "text:file:f1", "f1", "file", "main.py", T0)])
    file_id, nb_id, other_id = opened
    # the file: the server loads it, the candidate and an interviewer type, one deletes
    text_doc: Doc[Any] = Doc()
    source = text_doc.get("source", type=Text)
    file_log = Log(file_id)
    file_log.change(text_doc, "system", 0, doc_log.KIND_SERVER,
                    lambda: source.insert(0, "print(1)\n"))
    for i, piece in enumerate(("def f():\n", "    return 2\n", "print(f())\n")):
        file_log.change(text_doc, "candidate", 1, doc_log.KIND_UPDATE,
                        lambda piece=piece: source.insert(len(source), piece))
        if i == 1:
            file_log.change(text_doc, LEAD, 2, doc_log.KIND_UPDATE,
                            lambda: source.insert(len(source), "# why 2?\n"))
    file_log.change(text_doc, LEAD, 2, doc_log.KIND_UPDATE, lambda: source.__delitem__(
        slice(0, len("print(1)\n"))))
    # the notebook: loaded with one cell, the candidate adds a cell and edits the first
    notebook = YNotebook()
    nb_log = Log(nb_id)
    nb_log.change(notebook.ydoc, "system", 0, doc_log.KIND_SERVER, lambda: notebook.set({
        "cells": [{"cell_type": "code", "id": "c1", "source": "x = 1", "metadata": {},
                   "outputs": [], "execution_count": None}],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    nb_log.change(notebook.ydoc, "candidate", 1, doc_log.KIND_UPDATE, lambda: notebook.append_cell(
        {"cell_type": "code", "id": "c2", "source": "print(x)", "metadata": {}, "outputs": [],
         "execution_count": None}))
    nb_log.change(notebook.ydoc, "candidate", 1, doc_log.KIND_UPDATE,
                  lambda: notebook.ycells[0]["source"].insert(5, "0"))
    other: Doc[Any] = Doc()
    other_log = Log(other_id)
    other_log.change(other, "candidate", 1, doc_log.KIND_UPDATE,
                     lambda: other.get("source", type=Text).insert(0, "NOT THIS SESSION"))

    def save(d: Any) -> None:
        doc_log.append_updates(d, file_log.rows + nb_log.rows + other_log.rows)
        doc_log.set_capped(d, nb_id, T0 + timedelta(minutes=5))

    await db.write(save)
    return str(source), notebook.get()


async def test_exported_updates_rebuild_each_document(db: Database, tmp_path: Path) -> None:
    final_text, final_notebook = await store_session(db)
    assert final_text == "def f():\n    return 2\n# why 2?\nprint(f())\n"
    summary = await db.read(lambda d: write_docs(d, "s1", tmp_path / "docs"))
    assert summary == {"docs": 2, "updates": 9}
    index = json.loads((tmp_path / "docs" / "index.json").read_text())
    assert [(d["path"], d["type"], d["room"], d["updates"]) for d in index] == [
        ("main.py", "file", "text:file:f1", 6), ("run.ipynb", "notebook", "json:notebook:n1", 3)]
    text_entry, nb_entry = index
    assert text_entry["authors"] == {"candidate": 3, LEAD: 2}  # the server's load is no author
    assert text_entry["capped_at"] is None
    assert nb_entry["capped_at"] == "2026-12-05T09:05:00.000000+00:00"
    assert sorted(p.name for p in (tmp_path / "docs").iterdir()) == sorted(
        ["index.json", text_entry["file"], nb_entry["file"]])

    def lines(entry: dict[str, Any]) -> list[dict[str, Any]]:
        text = (tmp_path / "docs" / entry["file"]).read_text()
        return [json.loads(line) for line in text.splitlines()]

    rows = lines(text_entry)
    assert [r["n"] for r in rows] == list(range(1, 7))
    assert [(r["actor"], r["conn"], r["kind"]) for r in rows[:3]] == [
        ("system", 0, "server"), ("candidate", 1, "update"), ("candidate", 1, "update")]
    assert rows[0]["at"] == "2026-12-05T09:00:01.000000+00:00"
    assert text_entry["bytes"] == sum(len(base64.b64decode(r["data"])) for r in rows)
    rebuilt: Doc[Any] = Doc()
    text = rebuilt.get("source", type=Text)
    for row in rows:  # applied in order, as the export says
        rebuilt.apply_update(base64.b64decode(row["data"]))
    assert str(text) == final_text
    notebook = YNotebook()
    for row in lines(nb_entry):
        notebook.ydoc.apply_update(base64.b64decode(row["data"]))
    got = notebook.get()
    assert [(c["id"], c["source"]) for c in got["cells"]] == [("c1", "x = 10"), ("c2", "print(x)")]
    assert got["cells"] == final_notebook["cells"]


async def test_a_session_without_shared_documents_has_an_empty_index(db: Database,
                                                                     tmp_path: Path) -> None:
    await store_session(db)
    assert await db.read(lambda d: write_docs(d, "s9", tmp_path / "docs")) == {
        "docs": 0, "updates": 0}
    assert json.loads((tmp_path / "docs" / "index.json").read_text()) == []
    assert [p.name for p in (tmp_path / "docs").iterdir()] == ["index.json"]
