"""Terminal screens as asciicast v2 files: exactly what each terminal connection's xterm drew.

One cast per terminal WebSocket connection, ``DATA_DIR/casts/<session>/<terminal>.<conn>.cast``
(``conn`` counts the session's terminal connections from 1; the cast's id is
``<terminal>.<conn>``). The format is asciinema's v2 (docs.asciinema.org/manual/asciicast/v2):
a JSON header line ``{"version": 2, "width", "height", "timestamp", "env", "title"}``, then one
JSON array a line, ``[t, code, data]`` with ``t`` seconds since the cast began and ``code``
``"o"`` (terminado ``stdout``: what the terminal drew, the reconnect replay included), ``"i"``
(``stdin``: keys and pastes), ``"r"`` (``set_size``, as ``"COLSxROWS"``) or ``"m"`` (a marker:
pairlab's own notes, such as output it did not record).

The header waits for the connection's first ``set_size`` (its width and height), at most
``HEADER_WAIT_S``, else it says 80x24. Nothing in the content changes what is recorded: the cast
does not depend on the command-line tracker (``terminal_lines``). Output is bounded:
``RATE_BYTES`` a second and ``CAST_BYTES`` per cast, ``SESSION_BYTES`` per session; past a bound
the output is not kept and a marker ``[pairlab: N bytes not recorded]`` says so, at most once a
second. Keys and resizes have their own bounds, which output never uses up: ``INPUT_BYTES`` per
cast and ``SESSION_INPUT_BYTES`` per session (a browser can send any number of pastes and
resizes; typing never comes near), past which ``[pairlab: N bytes of input not recorded]``.
Lines are written to disk off the event loop by ``CastStore.flush`` (the proxy taps' 0.5 s tick)
and at the end of the connection.

Why hand-written: the only asciicast writer on PyPI worth the name lives inside the
``asciinema`` recorder (a CLI that records its own pty, no writer API for a stream that is
already running elsewhere); v2 is one JSON object a line, a few lines of code here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from common.clock import iso, now
from common.db import Database
from workspaces.recording.terminal_lines import parse_terminal_frame

log = logging.getLogger(__name__)
HEADER_WAIT_S = 1.0
RATE_BYTES = 1 << 20
CAST_BYTES = 64 << 20
SESSION_BYTES = 256 << 20
INPUT_BYTES = 16 << 20
SESSION_INPUT_BYTES = 64 << 20
RESIZE_BYTES = 32
"""What a resize counts for in the input bounds (its line in the file, roughly)."""
DEFAULT_SIZE = (80, 24)
CAST_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}\.[0-9]{1,9}")
ENV = {"SHELL": "/bin/bash", "TERM": "xterm-256color"}


def cast_dir(data_dir: Path, session_id: str) -> Path:
    return data_dir / "casts" / session_id


def marker(dropped: int) -> str:
    return f"[pairlab: {dropped} bytes not recorded]"


def input_marker(dropped: int) -> str:
    return f"[pairlab: {dropped} bytes of input not recorded]"


@dataclass
class _Gap:
    """Bytes of one stream (output, or input) not kept since its last marker was written."""

    say: Callable[[int], str]
    """The marker's text for that many bytes (``marker`` or ``input_marker``)."""
    unreported: int = 0
    reported_t: float = -1.0


@dataclass
class _Budget:
    """What a session's casts have kept so far (``SESSION_BYTES``)."""

    used: int = 0
    input_used: int = 0


@dataclass(eq=False)
class CastWriter:
    """One terminal connection's cast: ``feed`` it every frame, in order, as it passes."""

    session_id: str
    id: str
    terminal: str
    conn: int
    actor: str
    path: Path
    started: datetime
    budget: _Budget
    clock: Callable[[], datetime] = now
    size: tuple[int, int] | None = None
    header_written: bool = False
    pending: list[tuple[float, str, str]] = field(default_factory=list)
    kept: int = 0
    """Output bytes kept (UTF-8)."""
    dropped: int = 0
    """Output bytes not kept (a bound was reached)."""
    input_kept: int = 0
    """Input (keys, pastes, resizes) kept, as counted for the input bounds."""
    input_dropped: int = 0
    closed: bool = False
    _window: int = -1
    _window_bytes: int = 0
    _out_gap: _Gap = field(default_factory=lambda: _Gap(marker))
    _in_gap: _Gap = field(default_factory=lambda: _Gap(input_marker))
    _last_t: float = 0.0

    def t(self, at: datetime | None = None) -> float:
        """Seconds since the cast began, never going back."""
        when = at or self.clock()
        value = max(self._last_t, (when - self.started).total_seconds())
        self._last_t = value
        return value

    def offset(self, at: datetime) -> float:
        """Where in the cast a moment is (for ``terminal.command`` events)."""
        return round(max(0.0, (at - self.started).total_seconds()), 3)

    def feed(self, direction: str, data: str | bytes) -> None:
        if self.closed:
            return
        msg = parse_terminal_frame(data)
        if msg is None:
            return
        kind, arg = msg
        if direction == "in" and kind == "stdin" and isinstance(arg, str):
            self._input("i", arg, len(arg.encode("utf-8", "surrogatepass")))
        elif direction == "in" and kind == "set_size":
            size = _size(data)
            if size is not None:
                if self.size is None:
                    self.size = size
                self._input("r", f"{size[0]}x{size[1]}", RESIZE_BYTES)
        elif direction == "out" and kind == "stdout" and isinstance(arg, str):
            self._output(arg)

    def note(self, text: str) -> None:
        """A pairlab marker in the cast."""
        if not self.closed:
            self.pending.append((self.t(), "m", text))

    def _output(self, text: str) -> None:
        t = self.t()
        n = len(text.encode("utf-8", "surrogatepass"))
        second = int(t)
        if second != self._window:
            self._window, self._window_bytes = second, 0
        if (self._window_bytes + n > RATE_BYTES or self.kept + n > CAST_BYTES
                or self.budget.used + n > SESSION_BYTES):
            self.dropped += n
            self._drop(t, n, self._out_gap)
            return
        self._mark(t, self._out_gap)
        self._window_bytes += n
        self.kept += n
        self.budget.used += n
        self.pending.append((t, "o", text))

    def _input(self, code: str, text: str, n: int) -> None:
        t = self.t()
        if self.input_kept + n > INPUT_BYTES or \
                self.budget.input_used + n > SESSION_INPUT_BYTES:
            self.input_dropped += n
            self._drop(t, n, self._in_gap)
            return
        self._mark(t, self._in_gap)
        self.input_kept += n
        self.budget.input_used += n
        self.pending.append((t, code, text))

    def _drop(self, t: float, n: int, gap: _Gap) -> None:
        """``n`` bytes not kept: counted, and said at most once a second."""
        gap.unreported += n
        if t - gap.reported_t >= 1.0:
            self._mark(t, gap)

    def _mark(self, t: float, gap: _Gap) -> None:
        """The marker of what ``gap`` has not said yet, if anything."""
        if gap.unreported:
            self.pending.append((t, "m", gap.say(gap.unreported)))
            gap.unreported, gap.reported_t = 0, t

    def take(self, *, final: bool = False) -> tuple[str | None, list[tuple[float, str, str]]]:
        """What to write now: the header (once its size is known or waited for) and lines."""
        if final:
            for gap in (self._out_gap, self._in_gap):
                self._mark(self.t(), gap)
        header = None
        if not self.header_written:
            waited = (self.clock() - self.started).total_seconds() >= HEADER_WAIT_S
            if self.size is None and not (waited or final):
                return None, []
            width, height = self.size or DEFAULT_SIZE
            header = json.dumps({"version": 2, "width": width, "height": height,
                                 "timestamp": int(self.started.timestamp()), "env": ENV,
                                 "title": f"terminal {self.terminal} ({self.actor})"})
            self.header_written = True
        lines, self.pending = self.pending, []
        return header, lines


def _size(data: str | bytes) -> tuple[int, int] | None:
    """``(cols, rows)`` of a terminado ``["set_size", rows, cols, ...]`` frame."""
    try:
        msg = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(msg, list) or len(msg) < 3:
        return None
    rows, cols = msg[1], msg[2]
    if not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 10_000
               for v in (rows, cols)):
        return None
    return int(cols), int(rows)


def _append(path: Path, header: str | None, lines: list[tuple[float, str, str]]) -> None:
    text = "".join(json.dumps([round(t, 6), code, data], ensure_ascii=False) + "\n"
                   for t, code, data in lines)
    if header is not None:
        text = header + "\n" + text
    if not text:
        return
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, text.encode("utf-8", "surrogatepass"))
    finally:
        os.close(fd)


class CastStore:
    """Opens, flushes and closes the casts of every session; rows in the ``casts`` table."""

    def __init__(self, db: Database, data_dir: Path,
                 clock: Callable[[], datetime] = now) -> None:
        self.db = db
        self.data_dir = data_dir
        self.clock = clock
        self._budgets: dict[str, _Budget] = {}
        self._next_conn: dict[str, int] = {}
        self._open: set[CastWriter] = set()
        self._lock = asyncio.Lock()
        self._flush_lock = asyncio.Lock()

    async def open(self, session_id: str, terminal: str, actor: str) -> CastWriter:
        async with self._lock:
            if session_id not in self._next_conn:
                found = await self.db.read(lambda d: d.execute(
                    "SELECT coalesce(max(conn), 0), coalesce(sum(bytes), 0) FROM casts"
                    " WHERE session_id = ?", [session_id]).fetchone())
                self._next_conn[session_id] = int(found[0]) + 1
                self._budgets.setdefault(session_id, _Budget(int(found[1])))
            conn = self._next_conn[session_id]
            self._next_conn[session_id] = conn + 1
        folder = cast_dir(self.data_dir, session_id)
        cast_id = f"{terminal}.{conn}"
        path = folder / f"{cast_id}.cast"
        started = self.clock()
        writer = CastWriter(session_id, cast_id, terminal, conn, actor, path, started,
                            self._budgets.setdefault(session_id, _Budget()), self.clock)
        await asyncio.to_thread(folder.mkdir, mode=0o700, parents=True, exist_ok=True)
        row = {"session_id": session_id, "id": cast_id, "terminal": terminal, "conn": conn,
               "actor": actor, "file": f"{cast_id}.cast", "started_at": iso(started)}
        await self.db.write(lambda d: d.table("casts").insert(row))
        self._open.add(writer)
        return writer

    async def flush(self) -> None:
        """Write what every open cast has gathered (the taps' tick)."""
        async with self._flush_lock:
            work = [(w.path, *w.take()) for w in list(self._open)]
            work = [item for item in work if item[1] is not None or item[2]]
            if work:
                await asyncio.to_thread(_append_all, work)

    async def close(self, writer: CastWriter) -> None:
        """The connection ended: write the rest, note the totals."""
        if writer.closed:
            return
        async with self._flush_lock:
            header, lines = writer.take(final=True)
            writer.closed = True
            self._open.discard(writer)
            await asyncio.to_thread(_append, writer.path, header, lines)
        values = {"ended_at": iso(self.clock()), "bytes": writer.kept,
                  "dropped_bytes": writer.dropped,
                  "width": (writer.size or DEFAULT_SIZE)[0],
                  "height": (writer.size or DEFAULT_SIZE)[1]}
        key = (writer.session_id, writer.id)
        await self.db.write(lambda d: d.table("casts").update(key, values))

    async def close_cut(self) -> int:
        """Close the casts a previous run left open (it stopped without closing them): ended
        when their file was last written, ``bytes`` the file's size (an upper bound of the
        output kept). Casts open in this run are left alone. Returns how many were closed."""
        open_now = {(w.session_id, w.id) for w in self._open}

        def cut(d: sqlite_utils.Database) -> int:
            rows = d.execute("SELECT session_id, id, file, started_at FROM casts"
                             " WHERE ended_at IS NULL").fetchall()
            closed = 0
            for session_id, cast_id, file, started_at in rows:
                if (session_id, cast_id) in open_now:
                    continue
                try:
                    info = (cast_dir(self.data_dir, session_id) / file).lstat()
                    ended, size = iso(datetime.fromtimestamp(info.st_mtime, UTC)), info.st_size
                except OSError:
                    ended, size = started_at, 0
                d.table("casts").update((session_id, cast_id), {"ended_at": ended,
                                                                "bytes": size})
                closed += 1
            return closed

        return await self.db.write(cut)

    async def close_session(self, session_id: str) -> None:
        for writer in [w for w in self._open if w.session_id == session_id]:
            await self.close(writer)
        self._budgets.pop(session_id, None)
        self._next_conn.pop(session_id, None)


def _append_all(work: list[tuple[Path, str | None, list[tuple[float, str, str]]]]) -> None:
    for path, header, lines in work:
        try:
            _append(path, header, lines)
        except OSError:
            log.exception("could not write the cast %s", path)


# ---- reading ---------------------------------------------------------------------------------

_COLUMNS = ("id", "terminal", "conn", "actor", "started_at", "ended_at", "width", "height",
            "bytes", "dropped_bytes")


def list_casts(db: sqlite_utils.Database, session_id: str) -> list[dict[str, Any]]:
    """A session's casts, oldest first."""
    rows = db.execute(
        "SELECT id, terminal, conn, actor, started_at, ended_at, width, height, bytes,"
        " dropped_bytes FROM casts WHERE session_id = ? ORDER BY conn", [session_id]).fetchall()
    return [dict(zip(_COLUMNS, row, strict=True)) for row in rows]


def cast_file(data_dir: Path, db: sqlite_utils.Database, session_id: str,
              cast_id: str) -> Path | None:
    """The file of one recorded cast, or None."""
    if not CAST_ID.fullmatch(cast_id):
        return None
    row = db.execute("SELECT file FROM casts WHERE session_id = ? AND id = ?",
                     [session_id, cast_id]).fetchone()
    if row is None:
        return None
    path = cast_dir(data_dir, session_id) / row[0]
    return path if path.is_file() and not path.is_symlink() else None


def export_casts(db: sqlite_utils.Database, data_dir: Path, session_id: str,
                 dest: Path) -> int:
    """Copy a session's cast files into ``dest`` with an ``index.json`` (the rows); returns
    how many casts were copied. A file that is gone is listed with ``"file": null``."""
    rows = list_casts(db, session_id)
    if not rows:
        return 0
    dest.mkdir(mode=0o700)
    copied = 0
    for row in rows:
        source = cast_file(data_dir, db, session_id, row["id"])
        row["file"] = None
        if source is not None:
            target = dest / source.name
            with source.open("rb") as src, target.open("wb") as out:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
            row["file"] = target.name
            copied += 1
    (dest / "index.json").write_text(json.dumps({"casts": rows}, indent=1) + "\n")
    return copied
