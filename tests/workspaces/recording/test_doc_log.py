"""The collaboration log's tables on a real SQLite file: documents, gap-free updates that rebuild
the document, checkpoints, and the append-only rule."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlite_utils
from pycrdt import Doc, Text

from workspaces.recording import doc_log
from workspaces.recording.doc_log import DocUpdate
from workspaces.recording.event_migrations import migrations

WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path) -> sqlite_utils.Database:
    conn = sqlite3.connect(str(tmp_path / "pairlab.db"), isolation_level=None)
    database = sqlite_utils.Database(conn)
    migrations.apply(database)
    return database


def test_updates_rebuild_the_document_from_a_checkpoint(db: sqlite_utils.Database) -> None:
    doc_id = doc_log.open_doc(db, "s1", "text:file:abc", "abc", "file", "", WHEN)
    assert doc_log.open_doc(db, "s1", "text:file:abc", "abc", "file", "x", WHEN) == doc_id
    other = doc_log.open_doc(db, "s2", "text:file:abc", "abc", "file", "", WHEN)
    assert other != doc_id
    source, text = Doc(), Text()
    source["source"] = text
    updates: list[bytes] = []
    sub = source.observe(lambda event: updates.append(event.update))
    for word in ("print", "(1)", "\n"):
        text += word
    del source, sub
    stored = [DocUpdate(doc_id, n, WHEN + timedelta(seconds=n), "candidate" if n != 2 else
                        "interviewer:7", n if n != 2 else 2, doc_log.KIND_UPDATE, data)
              for n, data in enumerate(updates, 1)]
    doc_log.append_updates(db, stored)
    doc_log.set_path(db, doc_id, "main.py")
    doc_log.set_capped(db, doc_id, WHEN)
    doc_log.set_capped(db, doc_id, WHEN + timedelta(hours=1))  # the first time wins

    checkpoint = Doc()
    checkpoint["source"] = Text()
    checkpoint.apply_update(updates[0])
    doc_log.add_checkpoint(db, doc_id, 1, checkpoint.get_update())

    assert doc_log.last_n(db, doc_id) == 3 and doc_log.last_n(db, other) == 0
    assert [d.to_dict() for d in doc_log.docs_of_session(db, "s1")] == [{
        "id": doc_id, "room": "text:file:abc", "file_id": "abc", "doc_type": "file",
        "path": "main.py", "opened_at": "2026-01-02T03:04:05.000000+00:00",
        "capped_at": "2026-01-02T03:04:05.000000+00:00"}]
    assert doc_log.checkpoint_at(db, doc_id, 0) is None
    base = doc_log.checkpoint_at(db, doc_id, 3)
    assert base is not None and base[0] == 1
    rebuilt = Doc()
    rebuilt["source"] = rebuilt_text = Text()
    rebuilt.apply_update(base[1])
    rest = doc_log.updates_from(db, doc_id, base[0] + 1)
    assert [(u.n, u.actor, u.conn) for u in rest] == [(2, "interviewer:7", 2), (3, "candidate", 3)]
    for update in rest:
        rebuilt.apply_update(update.data)
    assert str(rebuilt_text) == "print(1)\n"
    assert doc_log.updates_from(db, doc_id, 1, limit=1)[0].data == updates[0]
    assert doc_log.doc_by_id(db, "s2", doc_id) is None


def test_stored_updates_and_document_identity_never_change(db: sqlite_utils.Database) -> None:
    doc_id = doc_log.open_doc(db, "s1", "text:file:abc", "abc", "file", "", WHEN)
    doc_log.append_updates(db, [DocUpdate(doc_id, 1, WHEN, "candidate", 1, "update", b"\0\0")])
    with pytest.raises(sqlite3.IntegrityError):
        doc_log.append_updates(db, [DocUpdate(doc_id, 1, WHEN, "x", 1, "update", b"\0\0")])
    with pytest.raises(sqlite3.IntegrityError):
        doc_log.append_updates(db, [DocUpdate(doc_id, 0, WHEN, "x", 1, "update", b"\0\0")])
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE doc_updates SET actor = 'interviewer:1'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE docs SET room = 'json:notebook:abc'")
    assert [u.actor for u in doc_log.updates_from(db, doc_id)] == ["candidate"]
