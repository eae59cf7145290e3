"""The keystroke-playback API over collaboration logs built with pycrdt (as the collaboration
tap stores them): a text file and a notebook replay exactly, update by update, from the start
or from any ``n`` (through a checkpoint); caps show; bad input is a clear 4xx."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pycrdt import Array, Map, Text

from server.http.keys import DB
from tests.conftest import login
from tests.server.recording.conftest import RecFactory
from tests.server.recording.doc_logs import CANDIDATE, LEAD, WHEN, Typist, end, store_doc
from workspaces.recording import doc_log


def play_text(text: str, frames: list[dict[str, Any]]) -> list[str]:
    """What the page does with a text file's frames: the text after each."""
    chars, out = list(text), []
    for frame in frames:
        for pos, deleted, inserted in frame["ops"]:
            chars[pos:pos + deleted] = list(inserted)
        out.append("".join(chars))
    return out


def play_cells(cells: list[dict[str, str]], frames: list[dict[str, Any]]) -> list[Any]:
    shown = [dict(c) for c in cells]
    out = []
    for frame in frames:
        if "cells" in frame:
            shown = [dict(c) for c in frame["cells"]]
        for cell_id, pos, deleted, inserted in frame["ops"]:
            cell = next(c for c in shown if c["id"] == cell_id)
            chars = list(cell["source"])
            chars[pos:pos + deleted] = list(inserted)
            cell["source"] = "".join(chars)
        out.append([(c["id"], c["type"], c["source"]) for c in shown])
    return out


@pytest.mark.slow
async def test_a_text_file_plays_back_keystroke_by_keystroke(make_rec: RecFactory) -> None:
    rec = await make_rec()
    sid = (await rec.schedule())["session_id"]
    t = Typist("source")
    t.do("system", lambda s: s.insert(0, "def f(x):\n    return x\n"))  # the file, loaded
    for ch in "# énergie 😀 ok\n":  # one update per key, non-ASCII too
        t.do(CANDIDATE, lambda s, ch=ch: s.insert(end(s), ch))
    t.do(LEAD, lambda s: s.insert(len("def f(x):\n    return "), "2 * "))
    t.do(CANDIDATE, lambda s: s.__delitem__(slice(0, 4)))           # a deletion
    t.do(LEAD, lambda s: (s.__delitem__(slice(5, 6)), s.insert(5, "Y")))  # a replacement
    t.do(CANDIDATE, lambda s: (s.insert(0, "A"), s.insert(end(s), "Z")))  # two places
    doc_id = await store_doc(rec.app[DB], sid, "text:file:f1", "file", "calc.py", t,
                             checkpoint_at=10)
    base = f"/api/v1/sessions/{sid}/docs"

    (doc,) = (await rec.api("GET", base))["docs"]
    assert (doc["id"], doc["path"], doc["type"], doc["updates"], doc["capped_at"]) == \
        (doc_id, "calc.py", "file", len(t.states), None)
    assert doc["authors"] == {CANDIDATE: len(t.states) - 3, LEAD: 2}

    whole = await rec.api("GET", f"{base}/{doc_id}/frames")
    assert whole["base"] == {"n": 0, "text": ""} and whole["last_n"] == len(t.states)
    frames = whole["frames"]
    assert [f["n"] for f in frames] == list(range(1, len(t.states) + 1))
    assert [f["actor"] for f in frames[:2]] == ["system", CANDIDATE]
    assert frames[1]["at"] == "2026-01-02T03:04:07.000000+00:00"
    assert play_text("", frames) == t.states
    assert frames[5]["ops"] == [[len("def f(x):\n    return x\n# én"), 0, "e"]]  # code points

    # From any n: the document before it, then the frames (through the checkpoint at 10).
    for first in (2, 10, 11, 12, len(t.states)):
        part = await rec.api("GET", f"{base}/{doc_id}/frames?from={first}&limit=3")
        assert part["base"] == {"n": first - 1, "text": t.states[first - 2]}
        assert play_text(part["base"]["text"], part["frames"]) == t.states[first - 1:first + 2]
    alone = await rec.api("GET", f"{base}/{doc_id}/frames?from={len(t.states) + 1}&limit=0")
    assert (alone["base"]["text"], alone["frames"]) == (t.states[-1], [])


@pytest.mark.slow
async def test_the_checkpoint_is_what_later_frames_start_from(make_rec: RecFactory) -> None:
    """Updates before a checkpoint are not needed (deleting them, as retention may, changes
    nothing after it)."""
    rec = await make_rec()
    sid = (await rec.schedule())["session_id"]
    t = Typist("source")
    for word in ("alpha ", "beta ", "gamma ", "delta"):
        t.do(CANDIDATE, lambda s, w=word: s.insert(len(str(s)), w))
    doc_id = await store_doc(rec.app[DB], sid, "text:file:f2", "file", "w.txt", t, checkpoint_at=2)
    await rec.app[DB].write(lambda d: d.execute(
        "DELETE FROM doc_updates WHERE doc_id = ? AND n <= 2", [doc_id]))
    part = await rec.api("GET", f"/api/v1/sessions/{sid}/docs/{doc_id}/frames?from=3")
    assert part["base"] == {"n": 2, "text": "alpha beta "}
    assert play_text(part["base"]["text"], part["frames"]) == t.states[2:]


@pytest.mark.slow
async def test_a_notebook_plays_back_cell_by_cell(make_rec: RecFactory) -> None:
    rec = await make_rec()
    sid = (await rec.schedule())["session_id"]
    t = Typist("cells")

    def cell(cell_id: str, source: str, kind: str = "code") -> Map[Any]:
        return Map({"id": cell_id, "cell_type": kind, "source": Text(source),
                    "metadata": Map(), "outputs": Array()})

    t.do("system", lambda c: c.append(cell("a", "import pandas as pd\n")))
    for ch in "df = pd.read_csv('x')":
        t.do(CANDIDATE, lambda c, ch=ch: c[0]["source"].insert(len(str(c[0]["source"])), ch))
    t.do(LEAD, lambda c: c.append(cell("b", "")))
    for ch in "df.head()":
        t.do(LEAD, lambda c, ch=ch: c[1]["source"].insert(len(str(c[1]["source"])), ch))
    t.do(CANDIDATE, lambda c: c.insert(0, cell("m", "# Title", "markdown")))
    t.do(CANDIDATE, lambda c: c[1]["source"].__delitem__(slice(0, 7)))
    t.do(CANDIDATE, lambda c: c[2]["outputs"].append("out"))  # not code: a frame without ops
    t.do(CANDIDATE, lambda c: c[0].__setitem__("cell_type", "raw"))
    doc_id = await store_doc(rec.app[DB], sid, "json:notebook:n1", "notebook", "eda.ipynb", t,
                         checkpoint_at=12)
    base = f"/api/v1/sessions/{sid}/docs/{doc_id}/frames"
    whole = await rec.api("GET", base)
    assert whole["base"] == {"n": 0, "cells": []}
    assert play_cells([], whole["frames"]) == t.states
    typed = whole["frames"][3]
    assert typed["ops"] == [["a", len("import pandas as pd\n") + 2, 0, " "]]
    assert whole["frames"][-2]["ops"] == [] and "cells" not in whole["frames"][-2]
    part = await rec.api("GET", f"{base}?from=15&limit=5")
    assert [(c["id"], c["type"], c["source"]) for c in part["base"]["cells"]] == t.states[13]
    assert play_cells(part["base"]["cells"], part["frames"]) == t.states[14:19]


@pytest.mark.slow
async def test_caps_access_and_bad_input(make_rec: RecFactory, aiohttp_client: Any) -> None:
    rec = await make_rec()
    sid = (await rec.schedule())["session_id"]
    elsewhere = (await rec.schedule())["session_id"]
    t = Typist("source")
    t.do(CANDIDATE, lambda s: s.insert(0, "x"))
    doc_id = await store_doc(rec.app[DB], sid, "text:file:f3", "file", "a.py", t)
    other_doc = await store_doc(rec.app[DB], elsewhere, "text:file:f4", "file", "b.py", t)
    await rec.app[DB].write(lambda d: doc_log.set_capped(d, doc_id, WHEN))
    (doc,) = (await rec.api("GET", f"/api/v1/sessions/{sid}/docs"))["docs"]
    assert doc["capped_at"] == "2026-01-02T03:04:05.000000+00:00"

    base = f"/api/v1/sessions/{sid}/docs"
    for bad in ("from=0", "from=3", "from=x", "limit=-1", "limit=5001", "limit=²"):
        body = await rec.api("GET", f"{base}/{doc_id}/frames?{bad}", status=422)
        assert "must be a whole number" in body["error"]["message"]
    body = await rec.api("GET", f"{base}/abc/frames", status=422)
    assert "whole number" in body["error"]["message"]
    body = await rec.api("GET", f"{base}/999/frames", status=404)
    assert "no such document" in body["error"]["message"]
    # another session's document is not reachable through this one
    await rec.api("GET", f"{base}/{other_doc}/frames", status=404)

    anonymous: TestClient[Any, Any] = await aiohttp_client(rec.client.server)
    other: TestClient[Any, Any] = await aiohttp_client(rec.client.server)
    await login(other, "other@example.com")
    for tail in ("docs", f"docs/{doc_id}/frames"):
        assert (await anonymous.get(f"/api/v1/sessions/{sid}/{tail}")).status == 401
        assert (await other.get(f"/api/v1/sessions/{sid}/{tail}")).status == 403
