"""Attacks on the new recording APIs (casts, docs, frames): an interviewer of another session,
the candidate's own cookie, and ids made to walk out of the session (each test is the attack;
it fails if the attack works)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp.test_utils import TestClient

from server.http.keys import DB
from tests.conftest import login
from tests.server.recording.conftest import RecFactory
from tests.server.recording.doc_logs import CANDIDATE, Typist, store_doc
from workspaces.recording import events as E


async def test_another_sessions_interviewer_and_the_candidate_read_no_casts_or_docs(
        make_rec: RecFactory, aiohttp_client: Any) -> None:
    rec = await make_rec()
    created = await rec.schedule()
    sid = created["session_id"]  # session B: the lead's
    store = rec.service.taps.casts
    assert store is not None
    cast = await store.open(sid, "1", E.ACTOR_CANDIDATE)
    cast.feed("in", json.dumps(["set_size", 24, 80]))
    cast.feed("out", json.dumps(["stdout", "secret output\r\n$ "]))
    await store.close(cast)
    t = Typist("source")
    t.do(CANDIDATE, lambda s: s.insert(0, "the candidate's answer"))
    doc_id = await store_doc(rec.app[DB], sid, "text:file:f1", "file", "a.py", t)

    # Session A: the other interviewer's own, with nothing recorded.
    other: TestClient[Any, Any] = await aiohttp_client(rec.client.server)
    csrf = await login(other, "other@example.com")
    mine = await other.post("/api/v1/sessions", json={"task": "rec-task",
                                                      "candidate_name": "Bo"},
                            headers={"X-CSRF-Token": csrf})
    assert mine.status == 201, await mine.text()
    theirs = (await mine.json())["session_id"]
    assert (await other.get(f"/api/v1/sessions/{theirs}/casts")).status == 200
    assert (await other.get(f"/api/v1/sessions/{theirs}/docs")).status == 200

    b = f"/api/v1/sessions/{sid}"
    a = f"/api/v1/sessions/{theirs}"
    for tail in ("casts", "casts/1.1", "casts/1.1?type=asciicast", "docs",
                 f"docs/{doc_id}/frames", f"docs/{doc_id}/frames?from=1&limit=10"):
        response = await other.get(f"{b}/{tail}")
        assert response.status == 403, (tail, response.status)
        assert "secret output" not in await response.text()
        # B's cast and document named through A, which the interviewer may read
        if tail.startswith(("casts/", "docs/")):
            response = await other.get(f"{a}/{tail}")
            assert response.status == 404, (tail, response.status)
        # the candidate's cookie (the workspace origin) opens none of it
        response = await rec.ws.get(f"{b}/{tail}")
        assert response.status in (401, 403, 404, 405), (tail, response.status)
        assert "secret output" not in await response.text()


async def test_cast_and_doc_ids_do_not_walk_out_of_the_session(make_rec: RecFactory) -> None:
    rec = await make_rec()
    sid = (await rec.schedule())["session_id"]
    elsewhere = (await rec.schedule())["session_id"]
    store = rec.service.taps.casts
    assert store is not None
    cast = await store.open(elsewhere, "1", E.ACTOR_CANDIDATE)
    cast.feed("out", json.dumps(["stdout", "elsewhere's output\r\n"]))
    await store.close(cast)
    t = Typist("source")
    t.do(CANDIDATE, lambda s: s.insert(0, "x"))
    other_doc = await store_doc(rec.app[DB], elsewhere, "text:file:f9", "file", "b.py", t)
    base = f"/api/v1/sessions/{sid}"
    for bad in ("1.1", f"..%2F..%2F{elsewhere}%2F1.1", f"..%2F{elsewhere}%2F1", "...1",
                "%2e%2e%2f1.1", "1.1%00", "1.1%2F", "%2Fetc%2Fpasswd.1", "..%5C1.1",
                "1.1.cast", "-1.1", "1.1 "):
        response = await rec.client.get(f"{base}/casts/{bad}")
        assert response.status in (404, 422), (bad, response.status)
        assert "elsewhere" not in await response.text(), bad
    for bad in (str(other_doc), f"{other_doc}%2F..", f"..%2F{other_doc}", f"0{other_doc}",
                f"+{other_doc}", f" {other_doc}", f"{other_doc}.0", f"0x{other_doc}",
                "1" * 40, "-1", "%EF%BC%91"):  # the last: a full-width digit one
        response = await rec.client.get(f"{base}/docs/{bad}/frames")
        assert response.status in (404, 422), (bad, response.status)
        assert '"frames"' not in await response.text(), bad
