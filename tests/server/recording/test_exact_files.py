"""The file and the tree at any event are exact: at a ``file.*`` event's own ``seq`` the replay
API shows what was written then, not the snapshot before it (snapshots trail changes by about
1.5 s), through changes, renames and deletes, with content kept once per session and version."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import query
from tests.server.recording.conftest import Rec, RecFactory, kinds
from workspaces.recording import events as E
from workspaces.recording import file_contents

pytestmark = [pytest.mark.slow]


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


async def event_for(rec: Rec, sid: str, kind: str, path: str,
                    text: str | None = None) -> dict[str, Any]:
    """The first ``kind`` event of ``path`` (holding ``text``, if given), once recorded."""

    def match(e: dict[str, Any]) -> bool:
        return e["kind"] == kind and e["path"] == path and (
            text is None or e["payload"].get("sha256") == sha(text))

    found = await rec.wait_for(sid, lambda f: any(match(e) for e in f))
    return next(e for e in found if match(e))


async def test_the_file_at_a_change_is_what_was_written(make_rec: RecFactory,
                                                        tmp_path: Path) -> None:
    rec = await make_rec()
    sid, workspace = await rec.start()
    folder = tmp_path / "fake-ws" / workspace / "work"
    base = f"/api/v1/sessions/{sid}"
    versions = ["def score(y):\n    return 0\n", "def score(y):\n    return sum(y)\n",
                "def score(y):\n    return sum(y) / max(len(y), 1)\n"]
    seqs = []
    for i, text in enumerate(versions):  # changes closer together than a snapshot's 1.5 s
        await rec.call(sid, "PUT", "api/contents/metrics.py", {"content": text})
        kind = E.FILE_CREATED if i == 0 else E.FILE_CHANGED
        seqs.append((await event_for(rec, sid, kind, "metrics.py", text))["seq"])

    for seq, text in zip(seqs, versions, strict=True):
        got = await rec.api("GET", f"{base}/file?at={seq}&path=metrics.py")
        assert (got["text"], got["kind"], got["size"], got["sha256"]) == \
            (text, "text", len(text), sha(text))
        assert (got["source"], got["seq"]) == ("event", seq)
    before = await rec.api("GET", f"{base}/file?at={seqs[0] - 1}&path=metrics.py")
    assert (before["exists"], before["kind"], before["source"]) == (False, "missing", "snapshot")
    between = await rec.api("GET", f"{base}/file?at={seqs[2] - 1}&path=metrics.py")
    assert between["text"] == versions[1]
    # The bug this fixes: the snapshot at or before the second change holds the first version
    # at best (it was taken before, or it is the task's start).
    snapped = await rec.api("GET", f"{base}/file?at={seqs[1]}&path=metrics.py")
    assert snapped["snapshot"]["seq"] < seqs[1]

    tree = await rec.api("GET", f"{base}/tree?at={seqs[2]}")
    files = {f["path"]: f for f in tree["files"]}
    assert (files["metrics.py"]["size"], files["metrics.py"]["status"]) == \
        (len(versions[2]), "added")
    assert files["main.py"]["status"] == "unchanged"
    assert tree["deleted"] == [] and tree["events_to"] == seqs[2]

    # A rename moves the content; a delete of a task file shows as deleted at its own seq.
    (folder / "metrics.py").rename(folder / "scoring.py")
    renamed = (await event_for(rec, sid, E.FILE_RENAMED, "scoring.py"))["seq"]
    (folder / "notes.md").unlink()
    deleted = (await event_for(rec, sid, E.FILE_DELETED, "notes.md"))["seq"]
    new = await rec.api("GET", f"{base}/file?at={renamed}&path=scoring.py")
    old = await rec.api("GET", f"{base}/file?at={renamed}&path=metrics.py")
    assert (new["text"], new["seq"], old["exists"], old["seq"]) == \
        (versions[2], renamed, False, renamed)
    gone = await rec.api("GET", f"{base}/file?at={deleted}&path=notes.md")
    still = await rec.api("GET", f"{base}/file?at={deleted - 1}&path=notes.md")
    assert (gone["exists"], gone["kind"], still["text"]) == (False, "missing", "# Notes\n")
    tree = await rec.api("GET", f"{base}/tree?at={deleted}")
    assert {f["path"] for f in tree["files"]} == {"main.py", "scoring.py"}
    assert tree["deleted"] == ["notes.md"]

    # Content is kept once per session and version: the rename stored nothing new.
    rows = query(rec.settings, "SELECT sha256 FROM file_blobs WHERE session_id = ?", (sid,))
    assert sorted(r[0] for r in rows) == sorted(sha(t) for t in versions)


async def test_past_the_budget_the_next_snapshot_answers_if_unchanged(
        make_rec: RecFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(file_contents, "SESSION_BUDGET", 40)  # one small file, no more
    rec = await make_rec()
    sid, _ = await rec.start()
    small, big = "x = 1\n", "y = [" + ", ".join(str(i) for i in range(400)) + "]\n"
    await rec.call(sid, "PUT", "api/contents/small.py", {"content": small})
    await event_for(rec, sid, E.FILE_CREATED, "small.py", small)
    await rec.call(sid, "PUT", "api/contents/big.py", {"content": big})
    seq = (await event_for(rec, sid, E.FILE_CREATED, "big.py", big))["seq"]
    rows = query(rec.settings, "SELECT sha256 FROM file_blobs WHERE session_id = ?", (sid,))
    assert [r[0] for r in rows] == [sha(small)]
    await rec.wait_for(sid, lambda f: any(e["seq"] > seq for e in kinds(f, E.SNAPSHOT)))
    got = await rec.api("GET", f"/api/v1/sessions/{sid}/file?at={seq}&path=big.py")
    assert (got["text"], got["source"], got["seq"]) == (big, "event", seq)
