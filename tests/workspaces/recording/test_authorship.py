"""Who wrote what, from events stored by the real event recorder in a real SQLite file: the
characters each author inserted and deleted per file, saves, how each change arrived, inferred
attributions counted apart, renames carried over, cells and commands per person, and recordings
made before changes carried ``via``/``authors``."""

from __future__ import annotations

from typing import Any

from common.db import Database
from workspaces.recording import events as E
from workspaces.recording.authorship import Authorship, session_authorship
from workspaces.recording.events import Event, EventRecorder

LEAD = "interviewer:7"
OTHER = "interviewer:9"


async def store(db: Database, session_id: str,
                rows: list[tuple[str, str, str, dict[str, Any]]]) -> None:
    recorder = EventRecorder(db.write, db.read)
    await recorder.start()
    for actor, kind, path, payload in rows:
        await recorder.record(Event(session_id, actor, kind, path, payload))
    await recorder.close()


async def authorship(db: Database, session_id: str) -> Authorship:
    return await db.read(lambda d: session_authorship(d, session_id))


def collab(authors: dict[str, tuple[int, int]], sha: str = "ab") -> dict[str, Any]:
    return {"sha256": sha, "via": "collaboration", "doc": {"id": 1, "n": 3},
            "authors": {a: {"ins": i, "del": d} for a, (i, d) in authors.items()}}


async def test_each_authors_part_per_file(db: Database) -> None:
    await store(db, "s1", [
        ("candidate", E.SESSION_STARTED, "", {}),
        ("candidate", E.FILE_CHANGED, "main.py", collab({"candidate": (40, 2)})),          # 2
        (LEAD, E.FILE_CHANGED, "main.py", collab({LEAD: (10, 5), "candidate": (3, 0)})),   # 3
        (LEAD, E.FILE_CHANGED, "notes.md", {"via": "contents", "authors": {LEAD: {}}}),    # 4
        ("candidate", E.CELL_EXECUTED, "nb.ipynb", {"code": "1"}),
        ("candidate", E.CELL_EXECUTED, "nb.ipynb", {"code": "2"}),
        (LEAD, E.CELL_EXECUTED, "nb.ipynb", {"code": "3"}),
        (LEAD, E.FILE_CREATED, "out.csv", {"via": "process", "inferred": True}),          # 8
        ("candidate", E.TERMINAL_COMMAND, "", {"line": "pytest"}),
        ("candidate", E.FILE_CREATED, "log.txt", {"via": "process"}),                     # 10
        ("candidate", E.SNAPSHOT, "", {}),
        (OTHER, E.NOTE, "", {"text": "not a change"}),
    ])
    found = (await authorship(db, "s1")).public()
    people = {p["actor"]: p for p in found["people"]}
    assert [p["actor"] for p in found["people"]] == ["candidate", LEAD]  # notes are no part
    candidate, lead = people["candidate"], people[LEAD]
    assert (candidate["inserted"], candidate["deleted"], candidate["saves"]) == (43, 2, 3)
    assert (candidate["cells"], candidate["commands"], candidate["inferred"]) == (2, 1, 0)
    assert [f["path"] for f in candidate["files"]] == ["main.py", "log.txt"]
    main = candidate["files"][0]
    assert main == {"path": "main.py", "inserted": 43, "deleted": 2, "saves": 2, "other": 0,
                    "via": {"collaboration": 2}, "inferred": 0, "last_seq": 3}
    assert candidate["files"][1]["via"] == {"process": 1}
    # the interviewer: their share of the shared save, a contents-API save, and apart from
    # them the file a process made while they alone were running code
    assert (lead["inserted"], lead["deleted"], lead["saves"], lead["inferred"]) == (10, 5, 2, 1)
    assert (lead["cells"], lead["commands"]) == (1, 0)
    by_path = {f["path"]: f for f in lead["files"]}
    assert by_path["notes.md"]["via"] == {"contents": 1}
    assert by_path["out.csv"] == {"path": "out.csv", "inserted": 0, "deleted": 0, "saves": 0,
                                  "other": 0, "via": {}, "inferred": 1, "last_seq": 8}
    assert found["last_change"] == {"main.py": 3, "notes.md": 4, "out.csv": 8, "log.txt": 10}


async def test_a_rename_carries_the_shares_and_sessions_stay_apart(db: Database) -> None:
    await store(db, "s1", [
        ("candidate", E.FILE_CREATED, "draft.py", collab({"candidate": (12, 0)})),
        (LEAD, E.FILE_CHANGED, "draft.py", collab({LEAD: (4, 1)})),
        ("candidate", E.FILE_RENAMED, "solution.py",
         {"old_path": "draft.py", "via": "contents", "authors": {"candidate": {}}}),
        ("candidate", E.FILE_CHANGED, "solution.py", collab({"candidate": (5, 0)})),
        ("candidate", E.FILE_DELETED, "scratch.py", {"via": "process"}),
    ])
    await store(db, "s2", [(OTHER, E.FILE_CHANGED, "main.py", collab({OTHER: (99, 0)}))])
    found = await authorship(db, "s1")
    candidate, lead = found.people["candidate"], found.people[LEAD]
    assert set(candidate.files) == {"solution.py", "scratch.py"}
    solution = candidate.files["solution.py"]
    assert (solution.inserted, solution.saves, solution.other, solution.last_seq) == (17, 2, 1, 4)
    assert dict(solution.via) == {"collaboration": 2, "contents": 1}
    assert candidate.files["scratch.py"].other == 1
    assert set(lead.files) == {"solution.py"}  # followed the rename
    assert (lead.files["solution.py"].inserted, lead.files["solution.py"].deleted) == (4, 1)
    assert found.last_change == {"solution.py": 4, "scratch.py": 5}
    assert OTHER not in found.people
    assert list((await authorship(db, "s2")).people) == [OTHER]
    assert (await authorship(db, "nobody")).public() == {"people": [], "last_change": {},
                                                         "flagged_cells": []}


async def test_a_recording_without_via_or_authors_is_the_event_actors(db: Database) -> None:
    # Recorded before pairlab attributed changes: every file event was the candidate's, bare.
    await store(db, "old", [
        ("candidate", E.FILE_CHANGED, "main.py", {"size": 10, "sha256": "00"}),
        ("candidate", E.FILE_CHANGED, "main.py", {"size": 12, "sha256": "01",
                                                  "authors": "garbage", "via": 5}),
    ])
    share = (await authorship(db, "old")).people["candidate"].files["main.py"]
    assert (share.saves, share.inserted, dict(share.via)) == (2, 0, {"unknown": 2})
