"""Attacks on the collaboration record, in a real sandboxed jupyter-server behind pairlab's
proxy (each test is the attack; it fails if the attack works).

- The candidate's own collaboration client (pycrdt over the proxied room WebSocket) writes a
  ``path`` and a ``hash`` into the shared ``state`` map, which only the server writes (on load,
  on a rename, after a save): the record must neither close a save with the interviewer's
  unsaved edits under that hash nor move the document to that path.
- The file is written on disk outside the editor while the document is open (the server reloads
  it into the room): the next save holds text nobody typed in the editor, and is not credited to
  its editors.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pycrdt import Doc, Map, Text, create_sync_message, create_update_message

from server.http.keys import DB
from server.workspace.proxy import WS_MAX_IN
from tests.server.recording.conftest import Rec
from tests.server.recording.test_collab_real import (  # noqa: F401 (real: a fixture)
    Peer,
    call,
    change_to,
    joined_interviewer,
    real,
    sha,
)
from workspaces.recording import collab, doc_log
from workspaces.recording import events as E

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]


class BigPeer(Peer):
    """A collaboration client that takes messages of any size (the room echoes big updates)."""

    async def open(self, rec: Rec, client: TestClient[Any, Any], sid: str, path: str) -> None:
        session = await call(rec, client, sid, "PUT", f"api/collaboration/session/{path}",
                             {"format": "text", "type": "file"})
        room = rec.url(sid, f"api/collaboration/room/text:file:{session['fileId']}")
        self.sock = await client.ws_connect(f"{room}?sessionId={session['sessionId']}",
                                            origin=rec.origin(sid), max_msg_size=0)
        await self.sock.send_bytes(create_sync_message(self.doc))
        self.reader = asyncio.ensure_future(self._read())
        async with asyncio.timeout(60):
            while not str(self.text):
                await asyncio.sleep(0.05)


async def forge_state(peer: Peer, **values: str) -> None:
    """What a hand-made client can send: its own write of the room's ``state`` map."""
    assert peer.sock is not None
    state = peer.doc.get("state", type=Map)
    before = peer.doc.get_state()
    with peer.doc.transaction():
        for key, value in values.items():
            state[key] = value
    await peer.sock.send_bytes(create_update_message(peer.doc.get_update(before)))


async def in_sync(peer: Peer, text: str) -> None:
    async with asyncio.timeout(30):
        while str(peer.text) != text:
            await asyncio.sleep(0.02)


def file_events(found: list[dict[str, Any]], path: str) -> list[dict[str, Any]]:
    return [e for e in found if e["kind"] in (E.FILE_CHANGED, E.FILE_CREATED)
            and e["path"] == path]


async def test_a_candidates_client_cannot_forge_a_save_or_move_the_document(real: Rec) -> None:  # noqa: F811
    rec = real
    sid, _ = await rec.start()
    lead = f"interviewer:{(await rec.api('GET', '/api/v1/auth/me'))['user']['id']}"
    interviewer = await joined_interviewer(rec, sid)
    planted = "import os\nos.system('the candidate wrote this')\n"
    try:
        casey, lee = Peer(), Peer()
        await casey.open(rec, rec.ws, sid, "notes.md")
        await lee.open(rec, interviewer, sid, "notes.md")
        # The interviewer types (unsaved for the server's save delay); the moment the
        # candidate's client sees it, it says the room was saved as the bytes it is about to
        # write itself, and that the document now lives at forged.py.
        typed = await lee.append("interviewer's question\n")
        await in_sync(casey, typed)
        await forge_state(casey, path="forged.py", hash=sha(planted))
        # Its own file with exactly those bytes, through the contents API.
        await call(rec, rec.ws, sid, "PUT", "api/contents/forged.py",
                   {"type": "file", "format": "text", "content": planted})
        found = await rec.wait_for(sid, lambda f: bool(change_to(f, "forged.py", planted)))
        (event,) = change_to(found, "forged.py", planted)
        # The interviewer's edit is saved for real, under its real path.
        found = await rec.wait_for(sid, lambda f: bool(change_to(f, "notes.md", typed)),
                                   within=60)
        (saved,) = change_to(found, "notes.md", typed)
        # The hash of exactly what the interviewer typed, forged before the server saves it
        # (closing their edits early), then the candidate's own line: the real save holds both
        # and names both.
        more = await lee.append("and another\n")
        await in_sync(casey, more)
        await forge_state(casey, hash=sha(more))
        more = await casey.append("ok\n")
        found = await rec.wait_for(sid, lambda f: bool(change_to(f, "notes.md", more)),
                                   within=60)
        (later,) = change_to(found, "notes.md", more)
        assert not change_to(found, "notes.md", more[:-3]), found  # never on disk
        await casey.close()
        await lee.close()
    finally:
        await interviewer.session.close()

    assert (event["actor"], event["payload"]["via"]) == ("candidate", "contents"), event
    assert (saved["actor"], saved["payload"]["via"], saved["payload"]["authors"]) == (
        lead, "collaboration", {lead: {"ins": 23, "del": 0}}), saved
    assert (later["actor"], later["payload"]["via"], later["payload"]["authors"]) == (
        lead, "collaboration",
        {lead: {"ins": 12, "del": 0}, "candidate": {"ins": 3, "del": 0}}), later
    db = rec.app[DB]
    await rec.service.taps.flush_docs()
    (doc,) = await db.read(lambda d: doc_log.docs_of_session(d, sid))
    assert doc.path == "notes.md"  # not moved by the candidate's client


async def test_text_written_on_disk_while_the_document_is_open_is_not_the_editors_typing(
        real: Rec) -> None:  # noqa: F811
    rec = real
    sid, _ = await rec.start()
    lead = f"interviewer:{(await rec.api('GET', '/api/v1/auth/me'))['user']['id']}"
    interviewer = await joined_interviewer(rec, sid)
    try:
        casey, lee = Peer(), Peer()
        await casey.open(rec, rec.ws, sid, "notes.md")
        await lee.open(rec, interviewer, sid, "notes.md")
        typed = await lee.append("interviewer's question\n")
        found = await rec.wait_for(sid, lambda f: bool(change_to(f, "notes.md", typed)),
                                   within=60)
        (first,) = change_to(found, "notes.md", typed)
        # Written on disk, not in the editor: the server reloads it into the open room.
        pasted = typed + "def solve():\n    return 42  # pasted from elsewhere\n"
        await call(rec, rec.ws, sid, "PUT", "api/contents/notes.md",
                   {"type": "file", "format": "text", "content": pasted})
        await in_sync(lee, pasted)
        # The interviewer adds a word; the save holds the pasted text too.
        final = await lee.append("ok\n")
        found = await rec.wait_for(sid, lambda f: bool(change_to(f, "notes.md", final)),
                                   within=60)
        # ... and after that save, the interviewer's next edit is theirs again.
        after = await lee.append("next\n")
        found = await rec.wait_for(sid, lambda f: bool(change_to(f, "notes.md", after)),
                                   within=60)
        await casey.close()
        await lee.close()
    finally:
        await interviewer.session.close()

    assert (first["actor"], first["payload"]["via"]) == (lead, "collaboration"), first
    holding = [e for e in file_events(found, "notes.md")
               if e["seq"] > first["seq"] and e["payload"].get("sha256") != sha(after)]
    assert holding, found
    for event in holding:  # every change that holds the pasted text
        p = event["payload"]
        if p.get("sha256") == sha(final):
            # the interviewer's save: theirs for the 3 characters they typed, and mixed (it
            # holds the pasted text too); never handed to the candidate by default
            assert (event["actor"], p["via"], p.get("mixed"), p["authors"]) == (
                lead, "collaboration", True, {lead: {"ins": 3, "del": 0}}), event
        else:  # the write on disk: the candidate's, through the contents API
            assert (event["actor"], p["via"]) == ("candidate", "contents"), event
    assert any(e["payload"].get("sha256") == sha(final) for e in holding), holding
    (last,) = change_to(found, "notes.md", after)
    assert (last["actor"], last["payload"]["via"], last["payload"]["authors"]) == (
        lead, "collaboration", {lead: {"ins": 5, "del": 0}}), last


async def probe(rec: Rec, other: str, timings: list[float], stop: asyncio.Event) -> None:
    """Another interview on the same server, read again and again while the attack runs."""
    while not stop.is_set():
        started = time.monotonic()
        await rec.api("GET", f"/api/v1/sessions/{other}/events")
        timings.append(time.monotonic() - started)
        await asyncio.sleep(0.05)


async def test_a_flood_and_oversized_updates_leave_the_record_whole_and_the_server_up(
        real: Rec) -> None:  # noqa: F811
    rec = real
    sid, _ = await rec.start()
    other = (await rec.schedule())["session_id"]
    timings: list[float] = []
    stop = asyncio.Event()
    probing = asyncio.ensure_future(probe(rec, other, timings, stop))
    try:
        casey = BigPeer()
        await casey.open(rec, rec.ws, sid, "notes.md")
        # A flood: 3000 one-character edits as fast as the socket takes them.
        assert casey.sock is not None
        for i in range(3000):
            before = casey.doc.get_state()
            casey.text += "abc"[i % 3]
            await casey.sock.send_bytes(create_update_message(casey.doc.get_update(before)))
        flooded = str(casey.text)
        found = await rec.wait_for(sid, lambda f: bool(change_to(f, "notes.md", flooded)),
                                   within=120)
        (event,) = change_to(found, "notes.md", flooded)
        # One update over the log's bound (UPDATE_CAP): the log stops, attribution goes on.
        # (the watcher records a file this big by its size only: no hash to match a save with)
        big = await casey.append("z" * (collab.UPDATE_CAP + 1024))
        found = await rec.wait_for(sid, lambda f: any(
            e["payload"].get("size") == len(big) for e in file_events(f, "notes.md")),
            within=120)
        # One frame over what the proxy takes at all: refused, the connection closed.
        huge: Doc[Any] = Doc()
        huge.get("source", type=Text).insert(0, "h" * (WS_MAX_IN + 1))
        sock = casey.sock
        with contextlib.suppress(ConnectionError):  # closed while it was still being sent
            await sock.send_bytes(create_update_message(huge.get_update()))
        async with asyncio.timeout(60):
            while not sock.closed:
                await asyncio.sleep(0.05)
        close_code = sock.close_code
        await casey.close()
        await asyncio.sleep(2)  # what a server that took it would have saved by now
        after = await call(rec, rec.ws, sid, "GET", "api/contents/notes.md")
    finally:
        stop.set()
        await probing

    assert (event["actor"], event["payload"]["via"], event["payload"]["authors"]) == (
        "candidate", "collaboration", {"candidate": {"ins": 3000, "del": 0}}), event
    # refused: 1009 read from the server's close frame; None or 1006 (aiohttp's "abnormal
    # closure") when the socket was cut while the frame was still being sent, before any
    # close frame could be read (seen under load)
    assert close_code in (1009, 1006, None), close_code
    assert after["content"] == big  # the huge frame went nowhere
    db = rec.app[DB]
    await rec.service.taps.flush_docs()
    (doc,) = await db.read(lambda d: doc_log.docs_of_session(d, sid))
    rows = await db.read(lambda d: doc_log.updates_from(d, doc.id, limit=100_000))
    assert doc.capped_at is not None
    assert [r.n for r in rows] == list(range(1, len(rows) + 1))  # gap-free up to the cap
    rebuilt: Doc[Any] = Doc()
    for row in rows:
        rebuilt.apply_update(row.data)
    assert str(rebuilt.get("source", type=Text)) == flooded  # exactly, up to the cap
    assert timings and max(timings) < 5, sorted(timings)[-5:]
