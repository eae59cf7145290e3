"""The collaboration tap and attribution with real Yjs frames (pycrdt) and a real SQLite file:
the server's echoes are no-ops, its loads and reloads are ``system``, two connections are two
authors, a save is matched with the watcher's hash, the caps hold, a contents-API request claims
its path, and a change nobody claimed goes to the candidate or to the one interviewer running
code."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import WSMsgType
from jupyter_ydoc import YNotebook, YUnicode
from pycrdt import Array, Decoder, Doc, Map, Text, create_update_message

from common.db import Database
from workspaces.recording import attribution, collab, doc_log
from workspaces.recording import events as E
from workspaces.recording.events import Event
from workspaces.recording.taps import SessionTaps, Tap
from workspaces.upstream import Principal, Upstream, UpstreamClients

CANDIDATE = Principal("candidate", "Casey Candidate", "candidate")
LEAD = Principal("interviewer-7", "Lee Lead", "interviewer")
OTHER = Principal("interviewer-9", "Oli Other", "interviewer")
ROOM = "/w/ws1/api/collaboration/room/text:file:0c4f3a9e-1111-2222-3333-444455556666"


def step2(update: bytes) -> bytes:
    """A SYNC step-2 frame (what the server answers a client's step 1 with)."""
    frame = bytearray(create_update_message(update))
    frame[1] = 1
    return bytes(frame)


class Server:
    """The jupyter-server's side of one room: its document, and the frames it sends."""

    def __init__(self, text: str, path: str) -> None:
        self.doc = YUnicode()
        self.doc.path = path
        self.doc.set(text)
        self.doc.hash = sha(text)

    def change(self, fn: Any) -> bytes:
        """Run ``fn(doc)`` on the server's document; the update frame it broadcasts."""
        before = self.doc.ydoc.get_state()
        fn(self.doc)
        return create_update_message(self.doc.ydoc.get_update(before))


class Client:
    """A browser's copy of the document."""

    def __init__(self, server: Server) -> None:
        self.doc: Doc[Any] = Doc()
        self.text = self.doc.get("source", type=Text)
        self.doc.apply_update(server.doc.ydoc.get_update())

    def type(self, at: int | None, insert: str = "", delete: int = 0) -> bytes:
        before = self.doc.get_state()
        pos = len(self.text) if at is None else at
        if delete:
            del self.text[pos:pos + delete]
        if insert:
            self.text.insert(pos, insert)
        return create_update_message(self.doc.get_update(before))


def update_of(frame: bytes) -> bytes:
    update = Decoder(frame[2:]).read_message()
    assert update is not None
    return update


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Rig:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.events: list[Event] = []
        upstream = Upstream("ws1", "/nonexistent", "token", None)
        self.clients = UpstreamClients()
        self.taps = SessionTaps({"ws1": (upstream, "s1")}, self.clients, self.record, db.write)

    async def record(self, event: Event) -> None:
        self.events.append(event)

    async def connect(self, who: Principal, path: str = ROOM) -> Tap:
        tap = await self.taps.ws_tap("ws1", path, "", who)
        assert tap is not None
        return tap

    async def rows(self) -> list[doc_log.DocUpdate]:
        await self.taps.flush_docs()
        docs = await self.db.read(lambda d: doc_log.docs_of_session(d, "s1"))
        return await self.db.read(lambda d: doc_log.updates_from(d, docs[0].id))

    async def docs(self) -> list[doc_log.Doc]:
        await self.taps.flush_docs()
        return await self.db.read(lambda d: doc_log.docs_of_session(d, "s1"))


@pytest.fixture
async def rig(db: Database) -> AsyncIterator[Rig]:
    made = Rig(db)
    yield made
    await made.taps.finish_all()
    await made.clients.close()


async def both(taps: list[Tap], frame: bytes) -> None:
    """The server sends ``frame`` to every connection (an echo included)."""
    for tap in taps:
        await tap.feed("out", WSMsgType.BINARY, frame)


async def test_two_connections_are_two_authors_and_echoes_are_no_ops(rig: Rig) -> None:
    server = Server("print(1)\n", "main.py")
    first, second = await rig.connect(CANDIDATE), await rig.connect(LEAD)
    await both([first, second], step2(server.doc.ydoc.get_update()))  # the file loaded
    casey, lee = Client(server), Client(server)

    edit = casey.type(None, "x = 2\n")
    await first.feed("in", WSMsgType.BINARY, edit)  # the proxy feeds "in" first...
    server.doc.ydoc.apply_update(update_of(edit))
    await both([first, second], edit)  # ...then the server echoes it to everyone
    lee.doc.apply_update(update_of(edit))

    fix = lee.type(0, "# fixed\n")
    await second.feed("in", WSMsgType.BINARY, fix)
    server.doc.ydoc.apply_update(update_of(fix))
    await both([first, second], fix)
    gone = lee.type(0, delete=2)  # "# " removed
    await second.feed("in", WSMsgType.BINARY, gone)
    server.doc.ydoc.apply_update(update_of(gone))
    await both([first, second], gone)
    await first.feed("in", WSMsgType.BINARY, gone)  # a resend changes nothing
    assert str(server.doc.get()) == "fixed\nprint(1)\nx = 2\n"

    saved = "fixed\nprint(1)\nx = 2\n"
    await both([first, second], server.change(lambda d: setattr(d, "hash", sha(saved))))
    actor, why = await rig.taps.attribute("s1", "main.py", sha(saved))
    rows = await rig.rows()
    assert (actor, why["via"]) == ("interviewer:7", "collaboration")
    assert why["authors"] == {"candidate": {"ins": 6, "del": 0},
                              "interviewer:7": {"ins": 8, "del": 2}}
    assert why["doc"] == {"id": (await rig.docs())[0].id, "n": len(rows)}
    assert [(r.n, r.actor, r.conn, r.kind) for r in rows] == [
        (1, "system", 0, "server"), (2, "candidate", 1, "update"),
        (3, "interviewer:7", 2, "update"), (4, "interviewer:7", 2, "update"),
        (5, "system", 0, "server")]
    rebuilt = Doc()
    rebuilt_text = rebuilt.get("source", type=Text)
    for row in rows:
        rebuilt.apply_update(row.data)
    assert str(rebuilt_text) == saved
    (doc,) = await rig.docs()
    assert (doc.path, doc.doc_type, doc.capped_at) == ("main.py", "file", None)

    # the server reloads the file after a change on disk: the system's, and not a save of anyone
    await both([first, second], server.change(lambda d: d.set("rewritten on disk\n")))
    assert [r.actor for r in (await rig.rows())[5:]] == ["system"]
    actor, why = await rig.taps.attribute("s1", "main.py", sha("rewritten on disk\n"))
    assert (actor, why) == ("candidate", {"via": "process"})
    for tap in (first, second):
        await tap.close()
    assert [(e.kind, e.actor) for e in rig.events] == [
        (E.SESSION_JOINED, "candidate"), (E.SESSION_JOINED, "interviewer:7"),
        (E.SESSION_LEFT, "candidate"), (E.SESSION_LEFT, "interviewer:7")]


async def test_a_change_on_disk_waits_briefly_for_the_pending_save(
        rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    server = Server("a\n", "notes.md")
    tap = await rig.connect(LEAD)
    await tap.feed("out", WSMsgType.BINARY, step2(server.doc.ydoc.get_update()))
    lee = Client(server)
    await tap.feed("in", WSMsgType.BINARY, lee.type(None, "b\n"))
    # the server writes "a\nb\n"; the watcher sees it before the room's new hash comes, and
    # by then the interviewer typed on (so the mirror's text is not the file's either)
    await tap.feed("in", WSMsgType.BINARY, lee.type(None, "c"))
    asking = asyncio.ensure_future(rig.taps.attribute("s1", "notes.md", sha("a\nb\n")))
    await asyncio.sleep(0.3)
    assert not asking.done()
    await tap.feed("out", WSMsgType.BINARY,
                   server.change(lambda d: setattr(d, "hash", sha("a\nb\n"))))
    actor, why = await asking
    assert (actor, why["via"], why["authors"]) == (
        "interviewer:7", "collaboration", {"interviewer:7": {"ins": 3, "del": 0}})
    # with no save at all, the watcher's event waits at most SAVE_WAIT_S, then falls back
    monkeypatch.setattr(attribution, "SAVE_WAIT_S", 2.0)
    await tap.feed("in", WSMsgType.BINARY, lee.type(None, "d"))
    started = asyncio.get_running_loop().time()
    assert (await rig.taps.attribute("s1", "notes.md", sha("other")))[0] == "candidate"
    assert 1.9 < asyncio.get_running_loop().time() - started < 10  # SAVE_WAIT_S, not longer


async def test_caps_stop_storing_but_not_attributing(rig: Rig,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(collab, "UPDATE_CAP", 1000)
    server = Server("", "big.txt")
    tap = await rig.connect(CANDIDATE)
    await tap.feed("out", WSMsgType.BINARY, step2(server.doc.ydoc.get_update()))
    casey = Client(server)
    await tap.feed("in", WSMsgType.BINARY, casey.type(None, "small\n"))
    await tap.feed("in", WSMsgType.BINARY, casey.type(None, "x" * 5000))  # over the cap
    await tap.feed("in", WSMsgType.BINARY, casey.type(None, "after\n"))
    text = "small\n" + "x" * 5000 + "after\n"
    await tap.feed("out", WSMsgType.BINARY, server.change(lambda d: setattr(d, "hash", sha(text))))
    rows = await rig.rows()
    assert [r.actor for r in rows] == ["system", "candidate"]
    (doc,) = await rig.docs()
    assert doc.capped_at is not None
    actor, why = await rig.taps.attribute("s1", "big.txt", sha(text))
    assert (actor, why["authors"]) == ("candidate", {"candidate": {"ins": 5012, "del": 0}})

    monkeypatch.setattr(collab, "SESSION_CAP", 0)  # the whole session's bound
    other = await rig.connect(CANDIDATE, ROOM.replace("0c4f", "ffff"))
    await other.feed("out", WSMsgType.BINARY, step2(Server("y\n", "b.py").doc.ydoc.get_update()))
    assert all(d.capped_at is not None for d in await rig.docs())


async def answer(taps: SessionTaps, method: str, path: str, status: int,
                 who: Principal) -> None:
    """A proxied request of ``who`` answered ``status`` (what the proxy tells the taps)."""
    call = taps.http_tap("ws1", method, path, who)
    assert call is not None
    await call.done(status, "")


async def test_contents_api_and_processes(rig: Rig) -> None:
    taps = rig.taps
    # an interviewer saves a file through the contents API
    await answer(taps, "PUT", "/w/ws1/api/contents/src/util%20s.py", 200, LEAD)
    assert await taps.attribute("s1", "src/util s.py", "ab" * 32) == (
        "interviewer:7", {"via": "contents", "authors": {"interviewer:7": {}}})
    # a rename claims the old path (the watcher's event names it as old_path)
    await answer(taps, "PATCH", "/w/ws1/api/contents/old.py", 200, OTHER)
    assert (await taps.attribute("s1", "new.py", "", "old.py"))[0] == "interviewer:9"
    # refused requests claim nothing
    await answer(taps, "DELETE", "/w/ws1/api/contents/gone.py", 403, LEAD)
    assert (await taps.attribute("s1", "gone.py"))[0] == "candidate"

    kernel = "/w/ws1/api/kernels/0f0e0d0c-aaaa-bbbb-cccc-dddddddddddd/channels"
    lead_kernel = await rig.connect(LEAD, kernel)
    await lead_kernel.feed("in", WSMsgType.TEXT, json.dumps(
        {"header": {"msg_id": "m1", "msg_type": "execute_request", "session": "x",
                    "username": "", "version": "5.3", "date": "2026-01-01T00:00:00Z"},
         "parent_header": {}, "metadata": {}, "channel": "shell",
         "content": {"code": "open('out.csv', 'w').write('1')", "silent": False}}))
    assert await taps.attribute("s1", "out.csv", "cd" * 32) == (
        "interviewer:7", {"via": "process", "inferred": True})
    term = await rig.connect(CANDIDATE, "/w/ws1/terminals/websocket/1")
    await term.feed("in", WSMsgType.TEXT, json.dumps(["stdin", "touch x\r"]))
    assert await taps.attribute("s1", "x", "ef" * 32) == ("candidate", {"via": "process"})
    # a new file (POST to its folder: the server picks the name)
    await answer(taps, "POST", "/w/ws1/api/contents", 201, OTHER)
    assert (await taps.attribute("s1", "untitled.py", "12" * 32))[0] == "interviewer:9"
    assert (await taps.attribute("s1", "sub/untitled.py", "12" * 32))[0] == "candidate"


async def test_a_save_nobody_saw_is_matched_by_the_mirror_s_content(rig: Rig) -> None:
    server = Server("a\n", "left.py")
    tap = await rig.connect(LEAD)
    await tap.feed("out", WSMsgType.BINARY, step2(server.doc.ydoc.get_update()))
    await tap.feed("in", WSMsgType.BINARY, Client(server).type(None, "bye\n"))
    await tap.close()  # the browser left before the autosave: its hash is sent to no one
    actor, why = await rig.taps.attribute("s1", "left.py", sha("a\nbye\n"))
    assert (actor, why["via"], why["authors"]) == (
        "interviewer:7", "collaboration", {"interviewer:7": {"ins": 4, "del": 0}})
    actor, why = await rig.taps.attribute("s1", "left.py", sha("a\nbye\nmore\n"))
    assert (actor, why) == ("candidate", {"via": "process"})


async def test_a_connection_that_changed_no_text_is_no_author(rig: Rig) -> None:
    server = Server("a\n", "s.py")
    casey, lee = await rig.connect(CANDIDATE), await rig.connect(LEAD)
    await both([casey, lee], step2(server.doc.ydoc.get_update()))
    client = Client(server)
    before = client.doc.get_state()
    client.doc.get("state", type=Map)["dirty"] = True  # a client's own state, no text
    await lee.feed("in", WSMsgType.BINARY, create_update_message(client.doc.get_update(before)))
    await casey.feed("in", WSMsgType.BINARY, client.type(None, "b\n"))
    await both([casey, lee], server.change(lambda d: setattr(d, "hash", sha("a\nb\n"))))
    actor, why = await rig.taps.attribute("s1", "s.py", sha("a\nb\n"))
    assert (actor, why["authors"]) == ("candidate", {"candidate": {"ins": 2, "del": 0}})
    assert [r.actor for r in await rig.rows()] == [
        "system", "interviewer:7", "candidate", "system"]  # the log keeps everything


async def test_after_a_restart_the_mirror_starts_from_the_log(rig: Rig,
                                                              monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    monkeypatch.setattr(collab, "CHECKPOINT_EVERY", 2)
    server = Server("a\n", "r.py")
    tap = await rig.connect(LEAD)
    await tap.feed("out", WSMsgType.BINARY, step2(server.doc.ydoc.get_update()))
    lee = Client(server)
    for line in ("b\n", "c\n", "d\n"):
        edit = lee.type(None, line)
        await tap.feed("in", WSMsgType.BINARY, edit)
        server.doc.ydoc.apply_update(update_of(edit))
    before = await rig.rows()
    assert len(before) == 4
    assert await rig.db.read(lambda d: doc_log.checkpoint_at(d, before[0].doc_id, 9)) is not None

    # pairlab restarts: new taps over the same database; the browser reconnects with its copy
    again = Rig(rig.db)
    tap = await again.connect(CANDIDATE)
    await tap.feed("in", WSMsgType.BINARY, step2(lee.doc.get_update()))  # its whole document
    await tap.feed("out", WSMsgType.BINARY, step2(server.doc.ydoc.get_update()))
    assert await again.rows() == before  # nothing new: nobody's edit, no duplicate
    await tap.feed("in", WSMsgType.BINARY, Client(server).type(None, "e\n"))
    rows = await again.rows()
    assert [(r.n, r.actor) for r in rows[4:]] == [(5, "candidate")]
    await again.clients.close()


async def test_notebook_cells_count_per_author(rig: Rig) -> None:
    server = YNotebook()
    server.path = "explore.ipynb"
    server.set({"cells": [{"cell_type": "code", "source": "x = 1", "metadata": {},
                           "outputs": [], "execution_count": None, "id": "c1"}],
                "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    tap = await rig.connect(LEAD, ROOM.replace("text:file", "json:notebook"))
    await tap.feed("out", WSMsgType.BINARY, step2(server.ydoc.get_update()))
    client: Doc[Any] = Doc()
    cells = client.get("cells", type=Array)
    client.apply_update(server.ydoc.get_update())
    before = client.get_state()
    source = cells[0]["source"]
    source.insert(len(source), "\ny = x + 1")
    del source[0:1]
    await tap.feed("in", WSMsgType.BINARY, create_update_message(client.get_update(before)))
    before = server.ydoc.get_state()
    server.hash = "f" * 64
    await tap.feed("out", WSMsgType.BINARY,
                   create_update_message(server.ydoc.get_update(before)))
    actor, why = await rig.taps.attribute("s1", "explore.ipynb", "f" * 64)
    assert (actor, why["authors"]) == ("interviewer:7", {"interviewer:7": {"ins": 10, "del": 1}})
    (doc,) = await rig.docs()
    assert (doc.doc_type, doc.path) == ("notebook", "explore.ipynb")


async def test_the_log_writer_retries_a_failed_write(rig: Rig) -> None:
    failures = 2
    real_write = rig.db.write

    async def flaky(fn: Any) -> Any:
        nonlocal failures
        if failures:
            failures -= 1
            raise OSError("disk busy")
        return await real_write(fn)

    log = collab.DocLog(flaky, batch_s=0.01)
    doc_id = await rig.db.write(
        lambda d: doc_log.open_doc(d, "s1", "text:file:x", "x", "file", "", collab.now()))
    await log.put(collab._Write(doc_id, doc_log.DocUpdate(doc_id, 1, collab.now(), "candidate",
                                                          1, "update", b"\0\0")))
    await log.flush()
    assert failures == 0
    assert [u.actor for u in await rig.db.read(lambda d: doc_log.updates_from(d, doc_id))] == [
        "candidate"]


async def test_a_save_is_kept_when_another_edit_arrives_while_the_log_is_full(rig: Rig) -> None:
    """Backpressure: the server's save waits on a full log queue while an interviewer's edit
    comes in on another connection; the save still closes with its authors, and the log holds
    the updates in the order the mirror took them."""
    gate = asyncio.Event()

    async def slow(fn: Any) -> Any:
        await gate.wait()
        return await rig.db.write(fn)

    server = Server("", "notes.md")
    first, second = await rig.connect(CANDIDATE), await rig.connect(LEAD)
    await first.feed("out", WSMsgType.BINARY, step2(server.doc.ydoc.get_update()))
    casey, lee = Client(server), Client(server)
    edit = casey.type(None, "abc")
    await first.feed("in", WSMsgType.BINARY, edit)
    server.doc.ydoc.apply_update(update_of(edit))
    await rig.taps.flush_docs()
    full = collab.DocLog(slow, queue_limit=1)  # the next write fills it
    rig.taps._doc_log = rig.taps._sessions["s1"].collab.log = full  # type: ignore[union-attr]
    lee.doc.apply_update(update_of(edit))
    typed = lee.type(None, "Z")
    await second.feed("in", WSMsgType.BINARY, typed)
    server.doc.ydoc.apply_update(update_of(typed))
    save = server.change(lambda d: setattr(d, "hash", sha("abcZ")))
    later = lee.type(0, "Y")
    feeding = [asyncio.ensure_future(first.feed("out", WSMsgType.BINARY, save)),
               asyncio.ensure_future(second.feed("in", WSMsgType.BINARY, later))]
    await asyncio.sleep(0.3)
    gate.set()
    await asyncio.gather(*feeding)
    actor, why = await rig.taps.attribute("s1", "notes.md", sha("abcZ"))
    assert (actor, why["via"]) == ("candidate", "collaboration")
    assert why["authors"] == {"candidate": {"ins": 3, "del": 0},
                              "interviewer:7": {"ins": 1, "del": 0}}
    rows = await rig.rows()
    assert [(r.actor, r.kind) for r in rows][-3:] == [
        ("interviewer:7", "update"), ("system", "server"), ("interviewer:7", "update")]


async def test_a_browser_cannot_forge_the_server_s_save_or_path(rig: Rig) -> None:
    """Attack: the candidate's client writes ``hash`` (the bytes it will write itself) and
    ``path`` into the shared state map while the interviewer's edit is unsaved."""
    server = Server("a\n", "notes.md")
    casey, lee = await rig.connect(CANDIDATE), await rig.connect(LEAD)
    await both([casey, lee], step2(server.doc.ydoc.get_update()))
    await lee.feed("in", WSMsgType.BINARY, Client(server).type(None, "question\n"))
    forger = Client(server)
    before = forger.doc.get_state()
    with forger.doc.transaction():
        forger.doc.get("state", type=Map)["hash"] = sha("planted\n")
        forger.doc.get("state", type=Map)["path"] = "forged.py"
    forged = create_update_message(forger.doc.get_update(before))
    await casey.feed("in", WSMsgType.BINARY, forged)
    server.doc.ydoc.apply_update(update_of(forged))  # the server takes it, as every update
    await both([casey, lee], forged)  # and echoes it
    actor, why = await rig.taps.attribute("s1", "forged.py", sha("planted\n"))
    assert (actor, why) == ("candidate", {"via": "process"})
    (doc,) = await rig.docs()
    assert doc.path == "notes.md"
    # the server's own save still closes the interviewer's edit, under the real path
    await both([casey, lee], server.change(lambda d: setattr(d, "hash", sha("a\nquestion\n"))))
    actor, why = await rig.taps.attribute("s1", "notes.md", sha("a\nquestion\n"))
    assert (actor, why["via"], why["authors"]) == (
        "interviewer:7", "collaboration", {"interviewer:7": {"ins": 9, "del": 0}})
    # and the server's rename moves it
    await both([casey, lee], server.change(lambda d: setattr(d, "path", "moved.md")))
    (doc,) = await rig.docs()
    assert doc.path == "moved.md"


async def test_a_save_holding_text_reloaded_from_disk_keeps_its_editors_and_says_mixed(
        rig: Rig) -> None:
    """Attack: text written on disk outside the editor while the document is open (the server
    reloads it into the room), then an interviewer's keystroke and the save: the save is the
    interviewer's for what they typed, never the candidate's by default, and says it is mixed."""
    server = Server("a\n", "notes.md")
    tap = await rig.connect(LEAD)
    await tap.feed("out", WSMsgType.BINARY, step2(server.doc.ydoc.get_update()))
    await tap.feed("in", WSMsgType.BINARY, Client(server).type(None, "q\n"))
    await tap.feed("out", WSMsgType.BINARY,
                   server.change(lambda d: setattr(d, "hash", sha("a\nq\n"))))
    assert (await rig.taps.attribute("s1", "notes.md", sha("a\nq\n")))[0] == "interviewer:7"
    pasted = "a\nq\ndef solve():\n    return 42\n"
    await tap.feed("out", WSMsgType.BINARY, server.change(lambda d: d.set(pasted)))
    lee = Client(server)
    await tap.feed("in", WSMsgType.BINARY, lee.type(None, "ok\n"))
    await tap.feed("out", WSMsgType.BINARY,
                   server.change(lambda d: setattr(d, "hash", sha(pasted + "ok\n"))))
    actor, why = await rig.taps.attribute("s1", "notes.md", sha(pasted + "ok\n"))
    assert (actor, why["via"], why["mixed"]) == ("interviewer:7", "collaboration", True)
    assert why["authors"] == {"interviewer:7": {"ins": 3, "del": 0}}  # only what they typed
    # the next save holds only what was typed since: the interviewer's again
    await tap.feed("in", WSMsgType.BINARY, lee.type(None, "next\n"))
    await tap.feed("out", WSMsgType.BINARY,
                   server.change(lambda d: setattr(d, "hash", sha(pasted + "ok\nnext\n"))))
    actor, why = await rig.taps.attribute("s1", "notes.md", sha(pasted + "ok\nnext\n"))
    assert (actor, why["via"]) == ("interviewer:7", "collaboration") and "mixed" not in why


async def test_mirrors_past_the_memory_bound_are_dropped_and_the_documents_capped(
        rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """Attack: big updates in one room after another (the server drops a room when its last
    browser leaves; pairlab's mirror of it would stay in memory for the rest of the session)."""
    monkeypatch.setattr(collab, "MIRROR_CAP", 50_000)
    server = Server("a\n", "one.txt")
    tap = await rig.connect(CANDIDATE)
    await tap.feed("out", WSMsgType.BINARY, step2(server.doc.ydoc.get_update()))
    casey = Client(server)
    await tap.feed("in", WSMsgType.BINARY, casey.type(None, "x" * 20_000))
    await tap.feed("out", WSMsgType.BINARY,
                   server.change(lambda d: setattr(d, "hash", sha("a\n" + "x" * 20_000))))
    assert (await rig.taps.attribute("s1", "one.txt", sha("a\n" + "x" * 20_000)))[1][
        "via"] == "collaboration"
    await tap.close()
    other = await rig.connect(CANDIDATE, ROOM.replace("0c4f", "ffff"))
    second = Server("b\n", "two.txt")
    await other.feed("out", WSMsgType.BINARY, step2(second.doc.ydoc.get_update()))
    await other.feed("in", WSMsgType.BINARY, Client(second).type(None, "y" * 40_000))
    state = rig.taps._sessions["s1"]  # noqa: SLF001 - the session's rooms
    assert state.collab is not None and state.collab.blind
    assert all(str(r.ydoc.get("source", type=Text)) == "" for r in state.collab.rooms.values())
    await other.feed("in", WSMsgType.BINARY, Client(second).type(None, "z" * 40_000))
    assert all(str(r.ydoc.get("source", type=Text)) == "" for r in state.collab.rooms.values())
    docs = await rig.docs()
    assert len(docs) == 2 and all(d.capped_at is not None for d in docs)
    # what was stored before is whole; nothing after it is credited through collaboration
    rows = await rig.db.read(lambda d: doc_log.updates_from(d, docs[0].id))
    assert [r.n for r in rows] == list(range(1, len(rows) + 1))
    assert await rig.taps.attribute("s1", "two.txt", sha("b\n" + "y" * 40_000)) == (
        "candidate", {"via": "process"})
    third = await rig.connect(CANDIDATE, ROOM.replace("0c4f", "eeee"))  # a new room: none
    await third.feed("out", WSMsgType.BINARY, step2(Server("c\n", "c.txt").doc.ydoc.get_update()))
    assert len(await rig.docs()) == 3 and all(d.capped_at for d in await rig.docs())
    await other.close()
    await third.close()
