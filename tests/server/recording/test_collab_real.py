"""Who changed a file, in a real sandboxed jupyter-server behind pairlab's proxy: the candidate
and an interviewer (joined through the handoff, with their own cookies) each save a file through
the contents API and each edit a shared document through its collaboration room (pycrdt clients
speaking the Yjs protocol, both connected at once): every ``file.changed`` names its author, and
the collaboration log holds each edit with its actor."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import ClientWebSocketResponse, WSMsgType
from aiohttp.test_utils import TestClient
from pycrdt import (
    Doc,
    Text,
    YMessageType,
    create_sync_message,
    create_update_message,
    handle_sync_message,
)

from server.http.keys import DB
from tests.host_routing import HostRoutingClient, enter
from tests.server.recording.conftest import UID_BASE, Rec
from tests.server.recording.real_app import real_rec, uid_base
from workspaces.recording import doc_log
from workspaces.recording import events as E

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]
BASE = uid_base(1200, UID_BASE + 4200)
"""Sandbox uids of this file."""


@pytest.fixture
async def real() -> AsyncIterator[Rec]:
    async with real_rec("plcol-", BASE) as rec:
        yield rec


async def joined_interviewer(rec: Rec, sid: str) -> HostRoutingClient:
    """A second workspace client: the interviewer's browser after the handoff (Join)."""
    other = HostRoutingClient(rec.ws.server)  # same listener, its own cookie jar
    await other.start_server()
    url = (await rec.api("POST", f"/api/v1/sessions/{sid}/handoff"))["url"]
    joined = await other.get("/" + url.split("/", 3)[3], allow_redirects=False)
    assert joined.status == 303, await joined.text()
    await enter(other, joined.headers["Location"])
    return other


async def call(rec: Rec, client: TestClient[Any, Any], sid: str, method: str, tail: str,
               body: Any = None) -> Any:
    response = await client.request(method, rec.url(sid, tail), json=body,
                                    headers={"Origin": rec.origin(sid)})
    text = await response.text()
    assert response.status < 300, text
    return json.loads(text) if text else None


class Peer:
    """A collaboration client kept connected: it applies what the room sends and can type."""

    def __init__(self) -> None:
        self.doc: Doc[Any] = Doc()
        self.text = self.doc.get("source", type=Text)
        self.sock: ClientWebSocketResponse | None = None
        self.reader: asyncio.Task[None] | None = None

    async def open(self, rec: Rec, client: TestClient[Any, Any], sid: str, path: str) -> None:
        session = await call(rec, client, sid, "PUT", f"api/collaboration/session/{path}",
                             {"format": "text", "type": "file"})
        room = rec.url(sid, f"api/collaboration/room/text:file:{session['fileId']}")
        self.sock = await client.ws_connect(f"{room}?sessionId={session['sessionId']}",
                                            origin=rec.origin(sid))
        await self.sock.send_bytes(create_sync_message(self.doc))
        self.reader = asyncio.ensure_future(self._read())
        async with asyncio.timeout(60):
            while not str(self.text):  # until the file is loaded
                await asyncio.sleep(0.05)

    async def _read(self) -> None:
        assert self.sock is not None
        async for msg in self.sock:
            if msg.type == WSMsgType.BINARY and msg.data[0] == YMessageType.SYNC:
                reply = handle_sync_message(msg.data[1:], self.doc)
                if reply is not None:
                    await self.sock.send_bytes(reply)

    async def append(self, text: str) -> str:
        """Type ``text`` at the end; returns the document's text after it."""
        assert self.sock is not None
        before = self.doc.get_state()
        self.text += text
        await self.sock.send_bytes(create_update_message(self.doc.get_update(before)))
        return str(self.text)

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
            await asyncio.gather(self.reader, return_exceptions=True)
        if self.sock is not None:
            await self.sock.close()


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def change_to(found: list[dict[str, Any]], path: str, text: str) -> list[dict[str, Any]]:
    return [e for e in found if e["kind"] in (E.FILE_CHANGED, E.FILE_CREATED)
            and e["path"] == path and e["payload"].get("sha256") == sha(text)]


async def test_each_change_is_attributed_to_its_author(real: Rec) -> None:
    rec = real
    sid, _ = await rec.start()
    lead = f"interviewer:{(await rec.api('GET', '/api/v1/auth/me'))['user']['id']}"
    candidate = rec.ws
    interviewer = await joined_interviewer(rec, sid)
    try:
        # The contents API (a plain save, an upload): the request's own principal.
        theirs = "print('hello')\n# looked at by the interviewer\n"
        await call(rec, interviewer, sid, "PUT", "api/contents/main.py",
                   {"type": "file", "format": "text", "content": theirs})
        found = await rec.wait_for(sid, lambda f: bool(change_to(f, "main.py", theirs)))
        (event,) = change_to(found, "main.py", theirs)
        assert (event["actor"], event["payload"]["via"]) == (lead, "contents"), event
        mine = theirs + "print('fixed')\n"
        await call(rec, candidate, sid, "PUT", "api/contents/main.py",
                   {"type": "file", "format": "text", "content": mine})
        found = await rec.wait_for(sid, lambda f: bool(change_to(f, "main.py", mine)))
        (event,) = change_to(found, "main.py", mine)
        assert (event["actor"], event["payload"]["via"]) == ("candidate", "contents"), event

        # Both in the same shared document, connected at once; each types and it autosaves.
        casey, lee = Peer(), Peer()
        await casey.open(rec, candidate, sid, "notes.md")
        await lee.open(rec, interviewer, sid, "notes.md")
        typed = await casey.append("candidate line\n")
        found = await rec.wait_for(sid, lambda f: bool(change_to(f, "notes.md", typed)),
                                   within=60)
        (by_candidate,) = change_to(found, "notes.md", typed)
        async with asyncio.timeout(30):
            while str(lee.text) != typed:  # the interviewer's copy has the candidate's line
                await asyncio.sleep(0.05)
        typed = await lee.append("interviewer line\n")
        found = await rec.wait_for(sid, lambda f: bool(change_to(f, "notes.md", typed)),
                                   within=60)
        (by_lead,) = change_to(found, "notes.md", typed)
        await casey.close()
        await lee.close()
    finally:
        await interviewer.session.close()  # its listener is the candidate's too: left open

    assert typed == "# Notes\ncandidate line\ninterviewer line\n"
    assert (by_candidate["actor"], by_candidate["payload"]["via"],
            by_candidate["payload"]["authors"]) == (
        "candidate", "collaboration", {"candidate": {"ins": 15, "del": 0}})
    assert (by_lead["actor"], by_lead["payload"]["via"], by_lead["payload"]["authors"]) == (
        lead, "collaboration", {lead: {"ins": 17, "del": 0}})
    on_disk = await call(rec, candidate, sid, "GET", "api/contents/notes.md")
    assert on_disk["content"] == typed

    # The log: the document, and each edit under its author (the server's own: system).
    db = rec.app[DB]
    await rec.service.taps.flush_docs()
    (doc,) = await db.read(lambda d: doc_log.docs_of_session(d, sid))
    rows = await db.read(lambda d: doc_log.updates_from(d, doc.id))
    assert (doc.path, doc.doc_type) == ("notes.md", "file")
    assert [r.n for r in rows] == list(range(1, len(rows) + 1))
    people = [(r.actor, r.kind) for r in rows if r.kind == doc_log.KIND_UPDATE]
    assert people == [("candidate", "update"), (lead, "update")], rows
    assert {r.actor for r in rows if r.kind == doc_log.KIND_SERVER} == {E.ACTOR_SYSTEM}
    assert by_lead["payload"]["doc"]["id"] == doc.id
    rebuilt = Doc()
    text = rebuilt.get("source", type=Text)
    for row in rows:
        if row.n <= by_lead["payload"]["doc"]["n"]:
            rebuilt.apply_update(row.data)
    assert str(text) == typed
