"""Who wrote what, end to end in a real sandboxed jupyter-server behind pairlab's proxy: the
candidate and an interviewer (joined through the handoff) edit the same shared document, the
interviewer also saves a file through the contents API; the session ends. The export's
``docs/<id>.jsonl`` applied in order with pycrdt give exactly the file the export's ``final/``
holds, and once the interviewer has submitted, the debrief shows each person's part."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Doc, Text

from tests.server.recording.conftest import Rec, kinds
from tests.server.recording.test_collab_real import (  # noqa: F401 (real: a fixture)
    Peer,
    call,
    change_to,
    joined_interviewer,
    real,
)
from tests.server.scoring.test_debrief_authorship import table
from workspaces.recording import events as E

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]


async def submit_scorecard(rec: Rec, sid: str) -> None:
    mine = await rec.api("GET", f"/api/v1/sessions/{sid}/scorecards/mine")
    card = {"scores": {d["id"]: {"level": 3, "evidence": "worked it through", "moments": []}
                       for d in mine["dimensions"]},
            "recommendation": "yes", "summary": "solid"}
    await rec.api("POST", f"/api/v1/sessions/{sid}/scorecards/mine/submit", card)


async def test_export_docs_rebuild_the_file_and_the_debrief_names_each_author(
        real: Rec, tmp_path: Path) -> None:  # noqa: F811
    rec = real
    sid, _ = await rec.start()
    lead = f"interviewer:{(await rec.api('GET', '/api/v1/auth/me'))['user']['id']}"
    interviewer = await joined_interviewer(rec, sid)
    try:
        theirs = "print('hello')\n# checked by the interviewer\n"
        await call(rec, interviewer, sid, "PUT", "api/contents/main.py",
                   {"type": "file", "format": "text", "content": theirs})
        await rec.wait_for(sid, lambda f: bool(change_to(f, "main.py", theirs)))
        casey, lee = Peer(), Peer()
        await casey.open(rec, rec.ws, sid, "notes.md")
        await lee.open(rec, interviewer, sid, "notes.md")
        typed = await casey.append("the candidate's idea\n")
        await rec.wait_for(sid, lambda f: bool(change_to(f, "notes.md", typed)), within=60)
        async with asyncio.timeout(30):
            while str(lee.text) != typed:
                await asyncio.sleep(0.05)
        typed = await lee.append("a question from the interviewer\n")
        await rec.wait_for(sid, lambda f: bool(change_to(f, "notes.md", typed)), within=60)
        typed = await casey.append("the answer\n")
        found = await rec.wait_for(sid, lambda f: bool(change_to(f, "notes.md", typed)),
                                   within=60)
        await casey.close()
        await lee.close()
    finally:
        await interviewer.session.close()
    last_notes = max(e["seq"] for e in change_to(found, "notes.md", typed))
    await rec.api("POST", f"/api/v1/sessions/{sid}/end")
    await rec.wait_for(sid, lambda f: bool(kinds(f, E.SESSION_ENDED)), within=60)

    # The export: the shared document's log rebuilds the final file exactly.
    response = await rec.client.get(f"/api/v1/sessions/{sid}/export")
    assert response.status == 200
    with tarfile.open(fileobj=io.BytesIO(await response.read()), mode="r:gz") as tar:
        tar.extractall(tmp_path, filter="data")
    out = tmp_path / f"session-{sid}"
    final = (out / "final" / "notes.md").read_text()
    assert final == typed == ("# Notes\nthe candidate's idea\na question from the interviewer\n"
                              "the answer\n")
    index = json.loads((out / "docs" / "index.json").read_text())
    (doc,) = [d for d in index if d["path"] == "notes.md"]
    assert (doc["type"], doc["capped_at"]) == ("file", None)
    assert doc["authors"] == {"candidate": 2, lead: 1}
    lines = [json.loads(line) for line in (out / "docs" / doc["file"]).read_text().splitlines()]
    assert [row["n"] for row in lines] == list(range(1, doc["updates"] + 1))
    rebuilt: Doc[Any] = Doc()
    text = rebuilt.get("source", type=Text)
    for row in lines:
        rebuilt.apply_update(base64.b64decode(row["data"]))
    assert str(text) == final

    # The debrief, once the interviewer has submitted: each person's part of each file.
    await submit_scorecard(rec, sid)
    response = await rec.client.get(f"/sessions/{sid}/debrief")
    html = await response.text()
    assert response.status == 200, html
    people = table(html)
    assert set(people) == {"candidate", lead}
    assert people["candidate"]["name"] == "Ada Lovelace"
    notes = people["candidate"]["files"]["notes.md"]
    assert notes["cells"][2:6] == [str(len("the candidate's idea\nthe answer\n")), "0", "2",
                                   "shared editing × 2"]
    assert notes["links"][0] == f"/sessions/{sid}/replay#seq={last_notes}"
    theirs_notes = people[lead]["files"]["notes.md"]
    assert theirs_notes["cells"][2:6] == [str(len("a question from the interviewer\n")), "0",
                                          "1", "shared editing × 1"]
    assert people[lead]["files"]["main.py"]["cells"][4:6] == ["1", "contents API × 1"]
