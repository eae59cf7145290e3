"""The collaboration tap: who typed what in JupyterLab's shared documents, and the log of it.

JupyterLab with real-time collaboration edits files through a WebSocket per document,
``/api/collaboration/room/<format>:<type>:<fileId>``, speaking the Yjs sync protocol (binary
frames: ``0x00`` SYNC + step1/step2/update + the update; ``0x01`` awareness; ``0x02`` raw). The
server applies every update and echoes it to every connection, the sender's included.

pairlab keeps a mirror of each document (``jupyter_ydoc`` YUnicode/YNotebook), one per room per
session, shared by all its connections:

- an "in" frame (browser → server) that changes the mirror is that connection's edit: stored as
  kind ``update`` with its actor and connection number, its inserted and deleted characters
  counted for the actor. The proxy feeds "in" frames before forwarding them, so the server's echo
  (an "out" frame on every connection) is a no-op;
- an "out" frame that changes the mirror is the server's own doing (the file loaded, reloaded
  after a change on disk, the ``state`` map): kind ``server``, actor ``system``, connection 0;
- a new ``state.hash`` (the sha256 of the bytes the server just saved) closes a save: its authors
  are the edits since the previous save, and it becomes ``attribution.Save`` evidence, matched
  with the file watcher's hash.

Every changing update is stored (``doc_log``) through one group-commit writer (``DocLog``:
batches of ~``BATCH_S``; a bounded queue makes the tap wait rather than drop; a batch the
database refuses ``WRITE_TRIES`` times is logged and given up, so the proxied WebSockets never
stall), with a checkpoint every ``CHECKPOINT_EVERY`` updates. Bounds: ``SESSION_CAP`` bytes of
updates per session and ``UPDATE_CAP`` per update; past either the document is marked
``capped_at`` and its later updates are no longer stored (attribution goes on). The mirrors
themselves live in pairlab's memory, shared by every interview, and outlive the server's rooms
(which it drops when their last browser leaves): past ``MIRROR_CAP`` bytes of updates applied in
a session, its mirrors are dropped, every document is marked capped, and saves are no longer
credited through collaboration (the contents API and processes still are).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlite_utils
from aiohttp import WSMsgType
from jupyter_ydoc import ydocs
from jupyter_ydoc.ybasedoc import YBaseDoc
from pycrdt import (
    Array,
    ArrayEvent,
    Decoder,
    Doc,
    Map,
    MapEvent,
    Subscription,
    Text,
    TextEvent,
    TransactionEvent,
    YMessageType,
    YSyncMessageType,
)

from common.clock import now
from workspaces.recording import doc_log
from workspaces.recording import events as E
from workspaces.recording.attribution import Attribution, Save
from workspaces.recording.doc_log import CHECKPOINT_EVERY, DocUpdate
from workspaces.recording.events import WriteFn
from workspaces.recording.taps import SessionTaps, Tap, _Session
from workspaces.upstream import Principal

log = logging.getLogger(__name__)

ROOM_WS = re.compile(r"^/api/collaboration/room/([^/:]{1,32}):([^/:]{1,32}):([^/]{1,200})$")
BATCH_S = 0.1
QUEUE_LIMIT = 5000
SESSION_CAP = 128 * 1024 * 1024
UPDATE_CAP = 8 * 1024 * 1024
MIRROR_CAP = 512 * 1024 * 1024
WRITE_TRIES = 3
_CHANGES = (YSyncMessageType.SYNC_STEP2, YSyncMessageType.SYNC_UPDATE)


def _mirror(doc_type: str) -> YBaseDoc | None:
    """The jupyter_ydoc model of a room type ('file' → YUnicode-like, 'notebook' → YNotebook)."""
    model = ydocs.get(doc_type)
    return model() if model is not None else None


def _count_text(delta: Iterable[dict[str, Any]], counts: Counter[str]) -> None:
    for op in delta:
        if isinstance(ins := op.get("insert"), str):
            counts["ins"] += len(ins)
        elif isinstance(ins, list):
            counts["ins"] += len(ins)
        if isinstance(gone := op.get("delete"), int):
            counts["del"] += gone


# ---------------------------------------------------------------------------------------------
# The writer


@dataclass(frozen=True, slots=True)
class _Write:
    """One queued change of the log: an update, a checkpoint, a path or a cap."""

    doc_id: int
    update: DocUpdate | None = None
    checkpoint: tuple[int, bytes] | None = None
    path: str | None = None
    capped_at: datetime | None = None


def _apply(batch: list[_Write]) -> Callable[[sqlite_utils.Database], None]:
    def run(db: sqlite_utils.Database) -> None:
        doc_log.append_updates(db, [w.update for w in batch if w.update is not None])
        for w in batch:
            if w.checkpoint is not None:
                doc_log.add_checkpoint(db, w.doc_id, *w.checkpoint)
            if w.path is not None:
                doc_log.set_path(db, w.doc_id, w.path)
            if w.capped_at is not None:
                doc_log.set_capped(db, w.doc_id, w.capped_at)

    return run


class DocLog:
    """Group commit of the collaboration log through the database's single writer (see the
    module doc): ``put`` waits while ``QUEUE_LIMIT`` writes are queued."""

    def __init__(self, write: WriteFn, batch_s: float = BATCH_S,
                 queue_limit: int = QUEUE_LIMIT) -> None:
        self._write = write
        self._batch_s = batch_s
        self._limit = queue_limit
        self._queue: list[_Write] = []
        self._space = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None

    async def put(self, item: _Write) -> None:
        while len(self._queue) >= self._limit:
            self._space.clear()
            await self._space.wait()
        self._queue.append(item)
        self._idle.clear()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="doc-log")

    async def _run(self) -> None:
        while self._queue:
            await asyncio.sleep(self._batch_s)  # the group-commit window
            batch, self._queue = self._queue, []
            self._space.set()
            for attempt in range(1, WRITE_TRIES + 1):
                try:
                    await self._write(_apply(batch))
                    break
                except Exception:
                    # Retried; a write that keeps failing is given up (loudly) rather than
                    # stall the WebSockets that feed this log.
                    log.exception("the collaboration log could not store %d writes (try %d "
                                  "of %d)", len(batch), attempt, WRITE_TRIES)
                    if attempt < WRITE_TRIES:
                        await asyncio.sleep(attempt)  # the retry's back-off
        self._idle.set()

    async def flush(self) -> None:
        """Return once everything queued so far is stored."""
        if self._queue and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self._run(), name="doc-log")
        await self._idle.wait()


# ---------------------------------------------------------------------------------------------
# Rooms


@dataclass(eq=False)
class Room:
    """pairlab's mirror of one shared document of a session, and its log position."""

    collab: Collab
    name: str
    doc_id: int
    doc_type: str
    n: int
    capped: bool = False
    path: str = ""
    authors: dict[str, Counter[str]] = field(default_factory=dict)
    """Edits since the last save: actor → {"ins", "del"} characters."""
    saved: asyncio.Event = field(default_factory=asyncio.Event)
    """Set (then replaced) at each save."""
    _subs: list[Subscription] = field(default_factory=list)
    _changed: list[bytes] = field(default_factory=list)
    _counts: Counter[str] = field(default_factory=Counter)
    _hash: str | None = None
    _new_path: str | None = None
    touched: bool = False
    """A person changed its text, or a save closed: the document is loaded."""
    foreign: bool = False
    """Since the last save the server changed the text itself (a reload of a file written on
    disk, or a client that bypassed the proxy): the save is no one's edit alone."""
    _applying: asyncio.Lock = field(default_factory=asyncio.Lock)
    """One update at a time: ``apply`` may wait on the log's queue, and the observers' scratch
    state (``_changed``, ``_counts``, ``_hash``, ``_new_path``) is the applying update's until
    it is stored, in the order the mirror took it."""

    def __post_init__(self) -> None:
        mirror = _mirror(self.doc_type)
        self.mirror = mirror
        self.ydoc: Doc[Any] = mirror.ydoc if mirror is not None else Doc()
        self._subs.append(self.ydoc.observe(self._on_transaction))
        state = self.ydoc.get("state", type=Map)
        self._subs.append(state.observe(self._on_state))
        if self.doc_type == "notebook":
            cells = self.ydoc.get("cells", type=Array)
            self._subs.append(cells.observe_deep(self._on_cells))
        else:
            self._subs.append(self.ydoc.get("source", type=Text).observe(self._on_text))

    # -- observers (run inside apply_update) -----------------------------------------------------

    def _on_transaction(self, event: TransactionEvent) -> None:
        self._changed.append(event.update)

    def _on_text(self, event: TextEvent) -> None:
        _count_text(getattr(event, "delta", ()), self._counts)

    def _on_cells(self, found: list[Any]) -> None:
        for event in found:
            if isinstance(event, TextEvent | ArrayEvent):
                _count_text(getattr(event, "delta", ()), self._counts)

    def _on_state(self, event: MapEvent) -> None:
        keys: dict[str, dict[str, Any]] = getattr(event, "keys", {})
        if "hash" in keys and isinstance(value := keys["hash"].get("newValue"), str):
            self._hash = value
        if "path" in keys and isinstance(value := keys["path"].get("newValue"), str):
            self._new_path = value

    # -- feeding ---------------------------------------------------------------------------------

    def restore(self, logged: list[bytes]) -> None:
        """Bring a new mirror up to what the log holds (nobody's edit: nothing is counted), so
        that the server's and the browsers' first sync after a pairlab restart are no-ops."""
        for update in logged:
            self.ydoc.apply_update(update)
        self._changed.clear()
        self._counts.clear()
        self._hash = self._new_path = None
        path = self.ydoc.get("state", type=Map).get("path")
        self.path = path[:1000] if isinstance(path, str) else ""
        self.touched = bool(logged)

    async def apply(self, update: bytes, actor: str, conn: int, kind: str) -> None:
        """Apply ``update`` to the mirror; if it changed the document, log it and count it."""
        async with self._applying:
            await self._apply(update, actor, conn, kind)

    async def _apply(self, update: bytes, actor: str, conn: int, kind: str) -> None:
        collab = self.collab
        if collab.blind:
            return
        self._changed.clear()
        self._counts.clear()
        self._hash = self._new_path = None
        self.ydoc.apply_update(update)
        if not self._changed:
            return  # an echo, or nothing new
        collab.applied += sum(len(data) for data in self._changed)
        if collab.applied > MIRROR_CAP:
            await collab.go_blind()
            return
        at = now()
        text_changed = bool(self._counts["ins"] or self._counts["del"])
        if kind == doc_log.KIND_UPDATE:
            counts = self.authors.setdefault(actor, Counter())
            counts.update(self._counts)
            self.touched = self.touched or text_changed
            # Only the server says where the document lives and what it saved: a browser (the
            # candidate's included) can put any ``path`` or ``hash`` in the shared state map.
            self._hash = self._new_path = None
        elif text_changed and self.touched:
            self.foreign = True  # not the first load: text nobody typed through pairlab
        for data in self._changed:
            await self._store(data, at, actor, conn, kind)
        if self._new_path is not None:
            self.path = self._new_path[:1000]
            await self.collab.log.put(_Write(self.doc_id, path=self.path))
        if self._hash is not None:
            self.close_save(self._hash)

    async def _store(self, data: bytes, at: datetime, actor: str, conn: int, kind: str) -> None:
        if self.capped:
            return
        collab = self.collab
        if len(data) > UPDATE_CAP or collab.stored + len(data) > SESSION_CAP:
            self.capped = True
            log.warning("collaboration log of %s capped (%s): update of %d bytes, %d stored",
                        collab.session_id, self.name, len(data), collab.stored)
            await collab.log.put(_Write(self.doc_id, capped_at=at))
            return
        self.n += 1
        collab.stored += len(data)
        await collab.log.put(_Write(self.doc_id, DocUpdate(self.doc_id, self.n, at, actor, conn,
                                                           kind, data)))
        if self.n % CHECKPOINT_EVERY == 0:
            await collab.log.put(_Write(self.doc_id,
                                        checkpoint=(self.n, self.ydoc.get_update())))

    def text(self) -> str:
        return str(self.ydoc.get("source", type=Text))

    def close_save(self, sha256: str) -> None:
        authors = {actor: {"ins": c["ins"], "del": c["del"]} for actor, c in self.authors.items()}
        if any(c["ins"] or c["del"] for c in authors.values()):  # a client's own state change
            authors = {a: c for a, c in authors.items() if c["ins"] or c["del"]}  # is no text
        self.authors = {}
        self.touched = True
        # The saved bytes may hold text the server changed itself (a reload of the file written
        # on disk, itself recorded as a change when the watcher saw it): the editors keep the
        # credit for what they typed (their counts), and the save says it is mixed. Crediting
        # no one instead would hand the editors' typing to whoever a process change defaults to.
        mixed, self.foreign = self.foreign, False
        if mixed:
            log.info("save of %s (%s) also holds text the server changed itself", self.path,
                     self.name)
        self.collab.attribution.saved(Save(self.path, sha256, authors, self.doc_id, self.n,
                                           time.monotonic(), mixed))
        self.saved.set()
        self.saved = asyncio.Event()

    @property
    def unsaved(self) -> bool:
        return bool(self.authors)

    def drop_mirror(self) -> None:
        """Forget the document (``MIRROR_CAP``): an empty mirror that is fed no more."""
        self._subs.clear()
        self.mirror = None
        self.ydoc = Doc()
        self.authors = {}
        self.foreign = False


@dataclass(eq=False)
class Collab:
    """The shared documents of one session."""

    session_id: str
    write: WriteFn
    log: DocLog
    attribution: Attribution
    rooms: dict[str, Room] = field(default_factory=dict)
    conns: int = 0
    """Connections numbered so far (each one's ``conn``)."""
    stored: int = 0
    """Bytes of updates stored by this process (the session cap)."""
    applied: int = 0
    """Bytes of updates applied to this session's mirrors by this process (``MIRROR_CAP``)."""
    blind: bool = False
    """Past ``MIRROR_CAP``: no mirror is kept or fed any more."""
    _opening: dict[str, asyncio.Lock] = field(default_factory=dict)

    async def go_blind(self) -> None:
        """Drop every mirror of the session (``MIRROR_CAP``) and mark its documents capped."""
        if self.blind:
            return
        self.blind = True
        log.warning("collaboration mirrors of %s dropped: %d bytes of updates applied",
                    self.session_id, self.applied)
        at = now()
        for room in list(self.rooms.values()):
            room.drop_mirror()
            if not room.capped:
                room.capped = True
                await self.log.put(_Write(room.doc_id, capped_at=at))

    def pending_saves(self, path: str) -> list[asyncio.Event]:
        """The save events of the rooms of ``path`` that have unsaved edits."""
        return [r.saved for r in self.rooms.values() if r.path == path and r.unsaved]

    def save_by_content(self, path: str, sha256: str) -> bool:
        """Close the save of a text room of ``path`` whose unsaved text hashes to ``sha256``:
        the server's new hash never reaches pairlab when the last browser of the room left
        before the autosave."""
        for room in self.rooms.values():
            if room.path == path and room.unsaved and room.doc_type != "notebook" and \
                    hashlib.sha256(room.text().encode()).hexdigest() == sha256:
                room.close_save(sha256)
                return True
        return False

    async def room(self, name: str, file_id: str, doc_type: str) -> Room:
        """The room's mirror, its ``docs`` row made on first sight (numbering continues after
        a pairlab restart; the server's first sync then re-sends the document once)."""
        lock = self._opening.setdefault(name, asyncio.Lock())
        async with lock:
            found = self.rooms.get(name)
            if found is not None:
                return found
            opened = now()
            sid = self.session_id

            def open_row(db: Any) -> tuple[int, int, int, bool, list[bytes]]:
                doc_id = doc_log.open_doc(db, sid, name, file_id, doc_type, "", opened)
                (total,) = db.execute(
                    "SELECT COALESCE(SUM(LENGTH(data)), 0) FROM doc_updates WHERE doc_id IN "
                    "(SELECT id FROM docs WHERE session_id = ?)", [sid]).fetchone()
                doc = doc_log.doc_by_id(db, sid, doc_id)
                last = doc_log.last_n(db, doc_id)
                # what was logged before (a pairlab restart): the mirror starts from it
                base = doc_log.checkpoint_at(db, doc_id, last)
                known = [base[1]] if base is not None else []
                start = base[0] + 1 if base is not None else 1
                while start <= last:
                    page = doc_log.updates_from(db, doc_id, start)
                    known += [u.data for u in page]
                    start = page[-1].n + 1 if page else last + 1
                return doc_id, last, int(total), \
                    doc is not None and doc.capped_at is not None, known

            doc_id, last, total, capped, known = await self.write(open_row)
            self.stored = max(self.stored, total)
            room = Room(self, name, doc_id, doc_type, last, capped or self.blind)
            if self.blind:
                room.drop_mirror()
                if not capped:
                    await self.log.put(_Write(doc_id, capped_at=now()))
            else:
                room.restore(known)
            self.rooms[name] = room
            return room


# ---------------------------------------------------------------------------------------------
# The tap


def parse_room(rel: str) -> tuple[str, str, str] | None:
    """``(room name, file id, doc type)`` of a collaboration room path, else None."""
    match = ROOM_WS.match(rel)
    if match is None:
        return None
    return f"{match.group(1)}:{match.group(2)}:{match.group(3)}", match.group(3), match.group(2)


class CollabTap(Tap):
    """A connection to a collaboration room: its edits go to the room's mirror and log."""

    def __init__(self, taps: SessionTaps, state: _Session, who: Principal, room: Room) -> None:
        super().__init__(taps, state, who)
        self.room = room
        room.collab.conns += 1
        self.conn = room.collab.conns

    async def feed(self, direction: str, kind: WSMsgType, data: str | bytes) -> None:
        if self.broken or not isinstance(data, bytes) or len(data) < 3 or \
                data[0] != YMessageType.SYNC or data[1] not in _CHANGES:
            return  # step 1, awareness, raw messages: nothing changes
        try:
            update = Decoder(data[2:]).read_message()
            if update is None:
                return
            if direction == "in":
                await self.room.apply(update, self.actor, self.conn, doc_log.KIND_UPDATE)
            else:
                await self.room.apply(update, E.ACTOR_SYSTEM, 0, doc_log.KIND_SERVER)
        except Exception:
            self.broken = True
            log.exception("the collaboration tap of session %s failed; it stops recording",
                          self.state.session_id)
