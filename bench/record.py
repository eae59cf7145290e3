"""What the session record costs: bytes per minute of a typical session, and the replay page's
time to first frame for a 60-minute session, each against the snapshot-only record.

    .venv/bin/python -m bench.record [--minutes 5] [--loads 10] [--only bytes,replay]

(a) bytes per minute: the real app and proxy with a real sandboxed workspace. For ``--minutes``
    the candidate types into ``solution.py`` with pycrdt clients over the collaboration room
    WebSocket (bursts of one line at ~8 keys/s, a pause as long as the burst: ~4 chars/s, a
    typo fixed now and then), adds and types three notebook cells and runs them over the kernel
    WebSocket, and runs ``python -m pytest -q`` three times in a terminal (keystroke by
    keystroke, as xterm sends them). Once the session is ended, it reports bytes per minute of
    each part of the record: event payloads, ``doc_updates`` (+ ``doc_checkpoints``),
    ``file_blobs``, the terminal casts, the history repository (``du``: apparent and on disk)
    and the total, against the snapshot-only record of the same run (events + history), and
    the events' payloads without this issue's new fields (via, authors, doc, cast).
(b) replay time to first frame: a synthetic 60-minute session written straight into the tables
    (events; snapshots committed by the real ``History``; ``doc_updates`` from pycrdt typing
    with checkpoints every 500 updates; ``file_blobs`` for every save; one cast of realistic
    size written by the real ``CastStore``), and the same session with events and snapshots
    only. Headless Chromium (Playwright, /usr/bin/chromium, a fresh context per load, the two
    sessions alternating) opens ``/sessions/<id>/replay``; a MutationObserver installed before
    the page's scripts notes when the page is ready (``body[data-replay-ready]``), the code
    player has drawn its first frame (``#pb-panel[data-ready=1]``) and xterm has written the
    cast (``#pl-cast[data-cast-id]``), in ms from navigation start. Median and p95 over
    ``--loads`` loads of each.

Nothing is asserted on time; everything is loopback. The sandbox uids start at
``$PAIRLAB_SANDBOX_UID_BASE`` when it is set (else a random range).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import random
import re
import sys
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import WSMsgType
from jupyter_ydoc import YNotebook
from pycrdt import (
    Doc,
    Text,
    YMessageType,
    create_sync_message,
    create_update_message,
    handle_sync_message,
)

from bench.common import (
    EMAIL,
    PASSWORD,
    Candidate,
    Stack,
    env_uid_base,
    exchange,
    execute_request,
    median,
    percentile,
    run_bench,
    wait_kernel_ready,
)
from common.clock import now
from server.http.keys import DB
from server.recording.keys import RECORDING
from workspaces.recording import casts as cast_log
from workspaces.recording import doc_log, file_contents
from workspaces.recording import events as E
from workspaces.recording.archive import history_path
from workspaces.recording.history import History

NEW_FIELDS = ("via", "authors", "doc", "inferred", "cast", "keys_line")
"""Payload fields this issue adds (file attribution and the terminal's cast position)."""
TESTS = '''\
from solution import mean, median


def test_mean():
    assert mean([1, 2, 3]) == 2


def test_median():
    assert median([3, 1, 2]) == 2


def test_median_even():
    assert median([4, 1, 2, 3]) == 2.5
'''
SOLUTION = '"""Statistics helpers."""\n\n'
LINES = [
    "def mean(values):\n", "    total = 0\n", "    for v in values:\n", "        total += v\n",
    "    return total / len(values)\n", "\n", "\n", "def median(values):\n",
    "    ordered = sorted(values)\n", "    middle = len(ordered) // 2\n",
    "    if len(ordered) % 2:\n", "        return ordered[middle]\n",
    "    return (ordered[middle - 1] + ordered[middle]) / 2\n", "\n", "\n",
    "def spread(values):\n", "    return max(values) - min(values)  # TODO: empty input\n",
    "\n", "\n", "# scratch: mean([1, 2, 3]) -> 2.0, median([4, 1, 2, 3]) -> 2.5\n",
]
CELLS = ["from solution import mean, median\n",
         "data = [3, 1, 4, 1, 5, 9, 2, 6]\nprint(mean(data), median(data))\n",
         "for n in range(5):\n    print(n, mean(data[: n + 1]))\n"]
KEY_S = 0.125
"""Between keystrokes in a burst (8 keys/s); a pause as long as the burst follows."""
PYTEST = "python -m pytest -q"
PYTEST_DONE = re.compile(r"(passed|failed|error|no tests ran)[^\n]* in [0-9.]+s")
KiB = 1024
MiB = 1024 * KiB


# ---- (a) a scripted session through the real proxy ------------------------------------------


class Room:
    """A collaboration room client (as JupyterLab's): PUT the session, sync over the room
    WebSocket, then send every local change as an update; reads on to take the server's."""

    def __init__(self, stack: Candidate, workspace_id: str, path: str, notebook: bool
                 ) -> None:
        self.stack, self.workspace_id, self.path = stack, workspace_id, path
        self.notebook = YNotebook() if notebook else None
        self.doc: Doc[Any] = self.notebook.ydoc if self.notebook else Doc()
        self.text = None if self.notebook else self.doc.get("source", type=Text)
        self.sock: aiohttp.ClientWebSocketResponse | None = None
        self.reader: asyncio.Task[None] | None = None
        self.loaded = asyncio.Event()
        self.keys = 0

    async def open(self) -> None:
        stack, ws = self.stack, self.workspace_id
        origin = stack.settings.workspace_origin(ws)
        fmt, kind = ("json", "notebook") if self.notebook else ("text", "file")
        async with stack.cand.put(stack.proxied(ws, f"api/collaboration/session/{self.path}"),
                                  json={"format": fmt, "type": kind},
                                  headers={"Origin": origin}) as resp:
            assert resp.status < 300, await resp.text()
            session = await resp.json()
        room = stack.proxied(ws, f"api/collaboration/room/{fmt}:{kind}:{session['fileId']}"
                                 f"?sessionId={session['sessionId']}")
        self.sock = await stack.cand.ws_connect(room, origin=origin, max_msg_size=0)
        await self.sock.send_bytes(create_sync_message(self.doc))
        self.reader = asyncio.create_task(self._read())
        await asyncio.wait_for(self.loaded.wait(), 60)

    def _content(self) -> bool:
        if self.notebook is not None:
            return len(self.notebook.ycells) > 0
        return bool(str(self.text))

    async def _read(self) -> None:
        assert self.sock is not None
        async for msg in self.sock:
            if msg.type == WSMsgType.BINARY and msg.data and msg.data[0] == YMessageType.SYNC:
                reply = handle_sync_message(msg.data[1:], self.doc)
                if reply is not None:
                    await self.sock.send_bytes(reply)
                if self._content():
                    self.loaded.set()

    async def edit(self, change: Callable[[], None]) -> None:
        assert self.sock is not None
        before = self.doc.get_state()
        with self.doc.transaction():
            change()
        await self.sock.send_bytes(create_update_message(self.doc.get_update(before)))

    async def type(self, target: Callable[[], Text], text: str, rng: random.Random) -> None:
        """Key by key at the end of ``target()``; now and then a wrong key and a backspace."""
        for ch in text:
            if ch.isalpha() and rng.random() < 0.05:
                await self._key(target, rng.choice("qxz"))
                await self._key(target, None)
            await self._key(target, ch)

    async def _key(self, target: Callable[[], Text], ch: str | None) -> None:
        def change() -> None:
            text = target()
            end = len(str(text).encode())
            if ch is None:
                del text[end - 1:end]
            else:
                text.insert(end, ch)
        await self.edit(change)
        self.keys += 1
        await asyncio.sleep(KEY_S)

    async def close(self) -> None:
        if self.sock is not None:
            await self.sock.close()
        if self.reader is not None:
            with contextlib.suppress(Exception):
                await self.reader


async def type_solution(room: Room, until: float, rng: random.Random) -> int:
    """Bursts of one line, each followed by a pause as long as the burst, until ``until``."""
    assert room.text is not None
    text = room.text
    lines = 0
    while time.monotonic() < until:
        line = LINES[lines % len(LINES)]
        began = time.monotonic()
        await room.type(lambda: text, line, rng)
        lines += 1
        await asyncio.sleep(min(time.monotonic() - began, max(0.0, until - time.monotonic())))
    return lines


def cell_source(notebook: YNotebook, index: int) -> Text:
    found = notebook.ycells[index]["source"]
    assert isinstance(found, Text)
    return found


async def notebook_run(stack: Candidate, workspace_id: str, rng: random.Random) -> int:
    """Three cells added and typed in the notebook's room, then run in order on its kernel."""
    room = Room(stack, workspace_id, "explore.ipynb", notebook=True)
    await room.open()
    notebook = room.notebook
    assert notebook is not None
    origin = stack.settings.workspace_origin(workspace_id)
    async with stack.cand.post(stack.proxied(workspace_id, "api/sessions"), json={
            "path": "explore.ipynb", "name": "explore.ipynb", "type": "notebook",
            "kernel": {"name": "python3"}}, headers={"Origin": origin}) as resp:
        assert resp.status < 300, await resp.text()
        kernel_id = (await resp.json())["kernel"]["id"]
    chars = 0
    for source in CELLS:
        index = len(notebook.ycells)
        cell: dict[str, Any] = {"cell_type": "code", "id": uuid.uuid4().hex[:8], "source": "",
                                "metadata": {}, "outputs": [], "execution_count": None}
        await room.edit(partial(notebook.append_cell, cell))
        await room.type(partial(cell_source, notebook, index), source, rng)
    ws = await stack.proxied_channels(workspace_id, kernel_id)
    try:
        await wait_kernel_ready(ws)
        for source in CELLS:
            chars += len((await exchange(ws, execute_request(source))).text)
    finally:
        await ws.close()
    await asyncio.sleep(2.0)  # the room's autosave
    await room.close()
    return chars


class Terminal:
    """A JupyterLab terminal: set_size first, then keys one per frame, as xterm.js sends them."""

    def __init__(self, stack: Candidate, workspace_id: str) -> None:
        self.stack, self.workspace_id = stack, workspace_id
        self.sock: aiohttp.ClientWebSocketResponse | None = None
        self.seen = ""
        self.chars = 0

    async def open(self) -> None:
        stack, ws = self.stack, self.workspace_id
        origin = stack.settings.workspace_origin(ws)
        async with stack.cand.post(stack.proxied(ws, "api/terminals"),
                                   headers={"Origin": origin}) as resp:
            assert resp.status < 300, await resp.text()
            name = (await resp.json())["name"]
        self.sock = await stack.cand.ws_connect(
            stack.proxied(ws, f"terminals/websocket/{name}"), origin=origin, max_msg_size=0)
        await self.sock.send_str(json.dumps(["set_size", 30, 110, 600, 990]))

    async def run(self, command: str, done: re.Pattern[str], rng: random.Random) -> None:
        assert self.sock is not None
        self.seen = ""
        for key in command + "\r":
            await self.sock.send_str(json.dumps(["stdin", key]))
            await asyncio.sleep(KEY_S * rng.uniform(0.5, 1.5))
        async with asyncio.timeout(120):
            while not done.search(self.seen):
                msg = await self.sock.receive()
                if msg.type != WSMsgType.TEXT:
                    raise ConnectionError(f"the terminal closed ({msg.type.name})")
                kind, *rest = json.loads(msg.data)
                if kind == "stdout":
                    self.chars += len(rest[0])
                    self.seen = (self.seen + rest[0])[-8000:]

    async def close(self) -> None:
        if self.sock is not None:
            await self.sock.close()


def du(folder: Path) -> tuple[int, int]:
    """(apparent bytes, bytes on disk) of everything under ``folder``."""
    apparent = disk = 0
    for root, _, names in os.walk(folder):
        for name in names:
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(root, name))
                apparent += st.st_size
                disk += st.st_blocks * 512
    return apparent, disk


@dataclass
class Sizes:
    events: int = 0
    event_rows: int = 0
    events_old: int = 0
    """Payloads without NEW_FIELDS: what the events would hold without this issue."""
    doc_updates: int = 0
    doc_rows: int = 0
    checkpoints: int = 0
    file_blobs: int = 0
    blob_rows: int = 0
    blob_raw: int = 0
    casts: int = 0
    cast_files: int = 0
    history: int = 0
    history_disk: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    paths: dict[str, int] = field(default_factory=dict)


def measure(stack: Stack, session_id: str) -> Sizes:
    s = Sizes()
    for kind, path, payload in stack.query(
            "SELECT kind, path, payload FROM events WHERE session_id = ?", (session_id,)):
        if kind.startswith("file."):
            s.paths[path] = s.paths.get(path, 0) + 1
        s.event_rows += 1
        s.events += len(payload.encode())
        data = json.loads(payload)
        old = {k: v for k, v in data.items() if k not in NEW_FIELDS}
        s.events_old += len(json.dumps(old, ensure_ascii=False).encode()) if old else 2
        s.kinds[kind] = s.kinds.get(kind, 0) + 1
    rows = stack.query("SELECT COUNT(*), COALESCE(SUM(LENGTH(u.data)), 0) FROM doc_updates u "
                       "JOIN docs d ON d.id = u.doc_id WHERE d.session_id = ?", (session_id,))
    s.doc_rows, s.doc_updates = rows[0]
    s.checkpoints = stack.query(
        "SELECT COALESCE(SUM(LENGTH(c.state)), 0) FROM doc_checkpoints c JOIN docs d "
        "ON d.id = c.doc_id WHERE d.session_id = ?", (session_id,))[0][0]
    for (data,) in stack.query("SELECT data FROM file_blobs WHERE session_id = ?",
                               (session_id,)):
        s.blob_rows += 1
        s.file_blobs += len(data)
        s.blob_raw += len(zlib.decompress(data))
    folder = cast_log.cast_dir(stack.settings.data_dir, session_id)
    s.casts, _ = du(folder)
    s.cast_files = len(list(folder.glob("*.cast"))) if folder.exists() else 0
    s.history, s.history_disk = du(history_path(stack.settings.data_dir, session_id))
    return s


def per_min(label: str, value: int, minutes: float, note: str = "") -> str:
    return (f"  {label:<44} {value / KiB:>10.1f} KiB  {value / KiB / minutes:>9.1f} KiB/min"
            + (f"  {note}" if note else ""))


async def bytes_per_minute(args: argparse.Namespace, uid_base: int | None) -> None:
    rng = random.Random(args.seed)
    files = {"solution.py": SOLUTION, "tests/test_solution.py": TESTS}
    async with Stack("plbr-", warm_pool_size=0, uid_base=uid_base, files=files) as stack:
        session_id, workspace_id = await stack.new_session()
        began = time.monotonic()
        room = Room(stack, workspace_id, "solution.py", notebook=False)
        await room.open()
        term = Terminal(stack, workspace_id)
        await term.open()
        until = began + args.minutes * 60

        async def at(fraction: float) -> None:
            await asyncio.sleep(max(0.0, began + fraction * args.minutes * 60 - time.monotonic()))

        async def tests() -> None:
            for fraction in (0.3, 0.6, 0.9):
                await at(fraction)
                await term.run(PYTEST, PYTEST_DONE, rng)

        async def notebook() -> int:
            await at(0.2)
            return await notebook_run(stack, workspace_id, rng)

        lines, cell_chars, _ = await asyncio.gather(type_solution(room, until, rng), notebook(),
                                                    tests())
        await asyncio.sleep(3.0)  # the last autosave, its file event and snapshot
        await room.close()
        await term.close()
        await stack.end(session_id)
        stack.started.remove(session_id)
        minutes = (time.monotonic() - began) / 60
        await asyncio.sleep(1.0)
        s = measure(stack, session_id)
        print(f"\n(a) bytes per minute: a {minutes:.2f}-minute session ({lines} lines typed in "
              f"solution.py, {room.keys} keystrokes; {len(CELLS)} notebook cells, "
              f"{cell_chars} chars of output; {PYTEST!r} x3, {term.chars} chars of terminal "
              f"output)")
        print("  events by kind: " + ", ".join(f"{k} {n}" for k, n in sorted(s.kinds.items())))
        print("  file events by path: " + ", ".join(f"{k} {n}" for k, n in sorted(
            s.paths.items())))
        print(per_min("event payloads", s.events, minutes, f"{s.event_rows} events"))
        print(per_min("  of which this issue's fields", s.events - s.events_old, minutes,
                      "(" + ", ".join(NEW_FIELDS) + ")"))
        print(per_min("doc_updates (data)", s.doc_updates, minutes, f"{s.doc_rows} updates"))
        print(per_min("doc_checkpoints (state)", s.checkpoints, minutes))
        print(per_min("file_blobs (zlib)", s.file_blobs, minutes,
                      f"{s.blob_rows} versions, {s.blob_raw / KiB:.1f} KiB raw"))
        print(per_min("casts", s.casts, minutes, f"{s.cast_files} file(s)"))
        print(per_min("history repository (du, apparent)", s.history, minutes,
                      f"on disk {s.history_disk / KiB:.1f} KiB"))
        total = (s.events + s.doc_updates + s.checkpoints + s.file_blobs + s.casts
                 + s.history)
        base = s.events_old + s.history
        print(per_min("TOTAL", total, minutes))
        print(per_min("snapshot-only record (events + history)", base, minutes,
                      "(payloads without this issue's fields)"))
        print(f"  ratio total / snapshot-only: {total / base:.2f}x; the new record adds "
              f"{(total - base) / KiB / minutes:.1f} KiB/min "
              f"({(total - base) / MiB / minutes * 60:.1f} MiB per hour)")
        print("  (column bytes; SQLite's row and page overhead is not counted)")


# ---- (b) a synthetic 60-minute session and the replay page ---------------------------------


@dataclass
class Synthetic:
    session_id: str
    events: int
    snapshots: int
    updates: int = 0
    blobs: int = 0
    cast_bytes: int = 0
    doc_id: int = 0


class Writer:
    """Writes one session's record straight into the tables, events gap-free from ``seq``."""

    def __init__(self, stack: Stack, session_id: str, start: datetime) -> None:
        self.stack, self.session_id, self.start = stack, session_id, start
        self.db = stack.app[DB]
        self.rows: list[tuple[Any, ...]] = []
        self.snapshots: list[tuple[int, str, str]] = []
        self.seq = int(stack.query("SELECT COALESCE(MAX(seq), 0) FROM events WHERE "
                                   "session_id = ?", (session_id,))[0][0])

    def event(self, at: float, actor: str, kind: str, path: str = "",
              **payload: Any) -> int:
        self.seq += 1
        when = (self.start + timedelta(seconds=at)).isoformat()
        self.rows.append((self.session_id, self.seq, when, actor, kind, path,
                          json.dumps(payload, ensure_ascii=False)))
        return self.seq

    async def flush(self) -> None:
        rows, snaps = self.rows, self.snapshots
        self.rows, self.snapshots = [], []

        def write(d: Any) -> None:
            d.conn.executemany("INSERT INTO events (session_id, seq, at, actor, kind, path, "
                               "payload) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            for seq, sha, when in snaps:
                E.add_snapshot(d, self.session_id, seq, sha,
                               datetime.fromisoformat(when))
        await self.db.write(write)


async def synthesize(stack: Stack, full: bool, minutes: int, cast_kib: int, think: float,
                     rng: random.Random) -> Synthetic:
    """An ended session of ``minutes``: the candidate types solution.py a line at a time (8
    keys/s, then a pause ``think`` times as long as the burst; the room saves 1 s after the
    burst: a file event, and a snapshot 1.5 s later), runs a notebook cell every 6 lines and
    pytest every 4. ``full``: also its collaboration log, file contents and terminal cast, and
    the new payload fields."""
    scheduled = await stack.schedule()
    sid = scheduled.session_id
    start = datetime.now(UTC) - timedelta(minutes=minutes + 5)
    end = start + timedelta(minutes=minutes)
    db = stack.app[DB]
    await db.write(lambda d: d.execute(
        "UPDATE interview_sessions SET state = 'ended', started_at = ?, ended_at = ? "
        "WHERE id = ?", [start.isoformat(), end.isoformat(), sid]))
    w = Writer(stack, sid, start)
    w.event(0, E.ACTOR_SYSTEM, E.SESSION_STARTED)
    tree = stack.data / f"tree-{sid}"
    tree.mkdir()
    (tree / "main.py").write_text("print('hello')\n")
    (tree / "notes.md").write_text("# Notes\n")
    (tree / "solution.py").write_text(SOLUTION)
    history = History(history_path(stack.settings.data_dir, sid))
    first = await history.ainit(tree, start)
    await db.write(lambda d: E.add_snapshot(d, sid, 0, first, start))

    typist: Doc[Any] = Doc()
    source = typist.get("source", type=Text)
    updates: list[tuple[float, str, bytes]] = []
    kind_now = ["system"]
    t_now = [0.0]
    sub = typist.observe(lambda e: updates.append((t_now[0], kind_now[0], e.update)))
    with typist.transaction():
        source.insert(0, SOLUTION)
    doc_id = 0
    if full:
        doc_id = await db.write(lambda d: doc_log.open_doc(
            d, sid, "text:file:bench", "bench", "file", "solution.py", start))
    blobs: dict[str, bytes] = {}
    cast_at: list[tuple[float, str]] = []  # (t, command line) for the terminal
    t, line, snaps = 5.0, 0, 1
    total = minutes * 60.0
    while t < total - 10:
        text = LINES[line % len(LINES)]
        line += 1
        burst_s = len(text) * KEY_S
        kind_now[0] = E.ACTOR_CANDIDATE
        for ch in text:  # one update per key, 8 keys/s
            t_now[0] = t
            with typist.transaction():
                source.insert(len(str(source).encode()), ch)
            t += KEY_S
        t += 1.0  # saved
        content = str(source).encode()
        sha = hashlib.sha256(content).hexdigest()
        blobs[sha] = content
        payload: dict[str, Any] = {"size": len(content), "sha256": sha}
        if full:
            payload.update(via="collaboration", authors={E.ACTOR_CANDIDATE: {
                "ins": len(text), "del": 0}}, doc={"id": doc_id, "n": len(updates)})
        w.event(t, E.ACTOR_CANDIDATE, E.FILE_CHANGED, "solution.py", **payload)
        (tree / "solution.py").write_bytes(content)
        t += 1.5
        sha_commit = await history.asnapshot(tree, start + timedelta(seconds=t))
        if sha_commit is not None:
            seq = w.event(t, E.ACTOR_SYSTEM, E.SNAPSHOT, commit=sha_commit, label="snapshot")
            w.snapshots.append((seq, sha_commit, (start + timedelta(seconds=t)).isoformat()))
            snaps += 1
        if line % 6 == 0:
            w.event(t + 0.5, E.ACTOR_CANDIDATE, E.CELL_EXECUTED, "explore.ipynb",
                    kernel_id="k1", code="print(mean(data), median(data))", status="ok",
                    execution_count=line // 6, duration_ms=40, output="3.875 3.5\n",
                    outputs=1)
        if line % 4 == 0:
            cmd: dict[str, Any] = {"terminal": "1", "line": PYTEST, "duration_ms": 900,
                                   "output": "...F [100%]\n1 failed, 2 passed in 0.05s\n"}
            if full:
                cmd["cast"] = {"id": "1.1", "t": round(t + 1.0, 3)}
            w.event(t + 1.0, E.ACTOR_CANDIDATE, E.TERMINAL_COMMAND, **cmd)
            cast_at.append((t + 1.0, PYTEST))
        t += max(0.0, burst_s * think - 2.5)  # the rest of the pause (save, snapshot: 2.5 s)
        if len(w.rows) >= 200:
            await w.flush()
    w.event(total, E.ACTOR_SYSTEM, E.SESSION_ENDED, why="benchmark")
    await w.flush()
    del sub
    result = Synthetic(sid, w.seq, snaps)
    if full:
        rows = [doc_log.DocUpdate(doc_id, n, start + timedelta(seconds=at), actor,
                          0 if actor == "system" else 1,
                          doc_log.KIND_SERVER if actor == "system" else doc_log.KIND_UPDATE,
                          data)
                for n, (at, actor, data) in enumerate(updates, 1)]
        checkpoints: list[tuple[int, bytes]] = []
        state: Doc[Any] = Doc()
        for n, (_, _, data) in enumerate(updates, 1):
            state.apply_update(data)
            if n % doc_log.CHECKPOINT_EVERY == 0:
                checkpoints.append((n, state.get_update()))
        packed = file_contents.compress(blobs.items())

        def write(d: Any) -> None:
            doc_log.append_updates(d, rows)
            for n, data in checkpoints:
                doc_log.add_checkpoint(d, doc_id, n, data)
            file_contents.store(d, sid, packed)
        await db.write(write)
        result.updates, result.blobs, result.doc_id = len(rows), len(packed), doc_id
        result.cast_bytes = await write_cast(stack, sid, start, cast_at, cast_kib * KiB, rng)
    return result


PYTEST_OUT = ("============================= test session starts ==============================\n"
              "platform linux -- Python 3.11.2, pytest-8.3.4, pluggy-1.5.0\n"
              "rootdir: /workspace\ncollected 3 items\n\n"
              "tests/test_solution.py .F.                                               [100%]\n\n"
              "=================================== FAILURES ===================================\n"
              "_______________________________ test_median ____________________________________\n"
              "    def test_median():\n>       assert median([3, 1, 2]) == 2\n"
              "E       assert 1 == 2\nE        +  where 1 = median([3, 1, 2])\n\n"
              "tests/test_solution.py:9: AssertionError\n"
              "=========================== short test summary info ============================\n"
              "FAILED tests/test_solution.py::test_median - assert 1 == 2\n"
              "========================= 1 failed, 2 passed in 0.05s ==========================\n")


async def write_cast(stack: Stack, sid: str, start: datetime, commands: list[tuple[float, str]],
                     target: int, rng: random.Random) -> int:
    """One terminal connection through the real ``CastStore``: a prompt, each command typed key
    by key and its output; extra ``ls``/``cat`` commands between them until about ``target``
    bytes of output."""
    casts = stack.app[RECORDING].taps.casts
    assert casts is not None
    moment = [start]
    casts.clock = lambda: moment[0]
    try:
        return await _cast(casts, sid, start, moment, commands, target, rng)
    finally:
        casts.clock = now


async def _cast(casts: cast_log.CastStore, sid: str, start: datetime, moment: list[datetime],
                commands: list[tuple[float, str]], target: int, rng: random.Random) -> int:
    cast = await casts.open(sid, "1", E.ACTOR_CANDIDATE)
    cast.clock = lambda: moment[0]

    def frame(at: float, direction: str, *msg: Any) -> None:
        moment[0] = start + timedelta(seconds=at)
        cast.feed(direction, json.dumps(list(msg)))

    prompt = "\x1b]133;A\x07candidate@pairlab:/workspace$ "
    frame(0.0, "in", "set_size", 30, 110, 600, 990)
    frame(0.05, "out", "stdout", prompt)
    listing = "".join(f"{name}\r\n" for name in ("main.py", "notes.md", "solution.py", "tests",
                                                 "explore.ipynb"))
    solution = "".join(LINES).replace("\n", "\r\n")
    per_command = max(1, len(commands))
    pad = max(0, target - per_command * len(PYTEST_OUT)) // per_command
    for at, line in commands:
        t = at - 2.0
        extra = "cat solution.py" if rng.random() < 0.5 else "ls"
        body = solution if extra.startswith("cat") else listing
        out = ""
        while len(out) < pad:
            out += body
        for cmd, output in ((extra, out[:pad]), (line, PYTEST_OUT.replace("\n", "\r\n"))):
            for key in cmd:
                frame(t, "in", "stdin", key)
                frame(t + 0.01, "out", "stdout", key)
                t += KEY_S
            frame(t, "in", "stdin", "\r")
            frame(t + 0.3, "out", "stdout", "\r\n" + output + prompt)
            t += 0.5
    await casts.close(cast)
    return cast.kept


INIT_SCRIPT = """
(() => {
  window.__marks = {};
  const mark = (name) => {
    if (!(name in window.__marks)) { window.__marks[name] = performance.now(); }
  };
  const check = () => {
    const body = document.body;
    if (body && body.dataset.replayReady) { mark("ready"); }
    const pb = document.getElementById("pb-panel");
    if (pb && pb.dataset.ready === "1") { mark("player"); }
    const cast = document.getElementById("pl-cast");
    if (cast && cast.dataset.castId) { mark("xterm"); }
  };
  new MutationObserver(check).observe(document, {attributes: true, subtree: true,
                                                  childList: true});
})();
"""


async def replay_loads(stack: Stack, sessions: dict[str, str], loads: int,
                       warmup: int) -> dict[str, dict[str, list[float]]]:
    from playwright.async_api import async_playwright  # noqa: PLC0415 - only for part (b)

    found: dict[str, dict[str, list[float]]] = {arm: {} for arm in sessions}
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"])
        try:
            login = await browser.new_context()
            page = await login.new_page()
            await page.goto(f"{stack.app_url}/login?next=/")
            await page.fill("#email", EMAIL)
            await page.fill("#password", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{stack.app_url}/")
            state = await login.storage_state()
            await login.close()
            arms = list(sessions.items())
            for i in range(warmup + loads):
                for arm, sid in arms if i % 2 == 0 else arms[::-1]:
                    context = await browser.new_context(storage_state=state,
                                                        viewport={"width": 1366,
                                                                  "height": 900})
                    await context.add_init_script(INIT_SCRIPT)
                    page = await context.new_page()
                    errors: list[str] = []

                    def on_error(exc: Exception, errors: list[str] = errors) -> None:
                        errors.append(str(exc))
                    page.on("pageerror", on_error)
                    await page.goto(f"{stack.app_url}/sessions/{sid}/replay")
                    wanted = ["ready", "player", "xterm"] if arm == "full" else ["ready"]
                    await page.wait_for_function(
                        "names => names.every(n => n in window.__marks)", arg=wanted,
                        timeout=120_000)
                    marks = await page.evaluate("window.__marks")
                    await context.close()
                    if errors:
                        raise RuntimeError(f"page errors on the {arm} replay: {errors[:3]}")
                    if i >= warmup:
                        for name, ms in marks.items():
                            found[arm].setdefault(name, []).append(ms / 1000)
                        found[arm].setdefault("all", []).append(
                            max(marks[n] for n in wanted) / 1000)
        finally:
            await browser.close()
    return found


async def frames_api(stack: Stack, sid: str, doc_id: int) -> float:
    """Seconds to read every frame of the document as the player does (pages of 5000)."""
    began = time.perf_counter()
    first, got, last = 1, 0, 1
    while got < last:
        async with stack.api.get(f"{stack.app_url}/api/v1/sessions/{sid}/docs/{doc_id}/frames"
                                 f"?from={first}&limit=5000") as resp:
            assert resp.status == 200, await resp.text()
            body = await resp.json()
        got += len(body["frames"])
        last, first = body["last_n"], got + 1
        if not body["frames"]:
            break
    return time.perf_counter() - began


def ms_row(label: str, values: list[float]) -> str:
    return (f"  {label:<44} n={len(values):<3} p50 {median(values) * 1000:>8.0f} ms  "
            f"p95 {percentile(values, 95) * 1000:>8.0f} ms  max {max(values) * 1000:>8.0f} ms")


async def replay_first_frame(args: argparse.Namespace, uid_base: int | None) -> None:
    rng = random.Random(args.seed)
    async with Stack("plbp-", warm_pool_size=0, uid_base=uid_base) as stack:
        began = time.monotonic()
        full = await synthesize(stack, True, args.session_minutes, args.cast_kib, args.think,
                                rng)
        rng = random.Random(args.seed)
        base = await synthesize(stack, False, args.session_minutes, args.cast_kib, args.think,
                                rng)
        print(f"\n(b) replay page, a synthetic {args.session_minutes}-minute session "
              f"(written in {time.monotonic() - began:.1f} s): {full.events} events, "
              f"{full.snapshots} snapshots; full record adds {full.updates} doc updates "
              f"(checkpoint every {doc_log.CHECKPOINT_EVERY}), {full.blobs} file versions, "
              f"a cast of {full.cast_bytes / KiB:.0f} KiB of output")
        found = await replay_loads(stack, {"full": full.session_id, "base": base.session_id},
                                   args.loads, args.warmup)
        print("  ms from navigation start, fresh browser context per load, arms alternating")
        print(ms_row("snapshot-only: page ready", found["base"]["ready"]))
        print(ms_row("full record: page ready", found["full"]["ready"]))
        print(ms_row("full record: first code player frame", found["full"]["player"]))
        print(ms_row("full record: first xterm frame", found["full"]["xterm"]))
        print(ms_row("full record: all three", found["full"]["all"]))
        api = [await frames_api(stack, full.session_id, full.doc_id) for _ in range(args.loads)]
        print(ms_row("frames API, every page (no browser)", api))
        ratio = median(found["full"]["ready"]) / median(found["base"]["ready"])
        ratio_all = median(found["full"]["all"]) / median(found["base"]["ready"])
        print(f"  ratio of medians, page ready full / snapshot-only: {ratio:.2f}x; "
              f"everything drawn (full) / page ready (snapshot-only): {ratio_all:.2f}x")


async def main(args: argparse.Namespace) -> None:
    uid_base = env_uid_base()
    if "bytes" in args.only:
        await bytes_per_minute(args, uid_base)
    if "replay" in args.only:
        await replay_first_frame(args, None if uid_base is None else uid_base + 100)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.record", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=5.0,
                        help="length of the scripted session in (a)")
    parser.add_argument("--session-minutes", type=int, default=60,
                        help="length of the synthetic session in (b)")
    parser.add_argument("--cast-kib", type=int, default=256,
                        help="terminal output in the synthetic session's cast, KiB")
    parser.add_argument("--think", type=float, default=1.0,
                        help="in (b), the pause after a typed line as a multiple of its "
                             "typing time (1: ~4 chars/s overall, as in (a))")
    parser.add_argument("--loads", type=int, default=10, help="replay page loads per arm")
    parser.add_argument("--warmup", type=int, default=1, help="uncounted loads per arm")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--only", default="bytes,replay",
                        help="comma-separated parts: bytes, replay")
    args = parser.parse_args(argv)
    args.only = set(args.only.split(","))
    if not args.only <= {"bytes", "replay"}:
        parser.error("--only takes bytes and/or replay")
    if not (0.5 <= args.minutes <= 120 and 5 <= args.session_minutes <= 600
            and 1 <= args.loads <= 1000 and 0 <= args.warmup <= 100
            and 0 <= args.cast_kib <= 65536):
        parser.error("--minutes 0.5-120, --session-minutes 5-600, --loads 1-1000, "
                     "--warmup 0-100, --cast-kib 0-65536")
    return args


if __name__ == "__main__":
    options = parse(sys.argv[1:])
    run_bench("pairlab record benchmark", "bench.record", lambda: main(options))
