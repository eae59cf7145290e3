"""Read Jupyter kernel WebSocket traffic and turn it into cell executions and kernel lifecycle.

Both framings that jupyter-server speaks are understood:

- legacy: a JSON text frame ``{"header", "parent_header", "metadata", "content", "channel",
  "buffers"}``, or, when the message has buffers, a binary frame (4-byte big-endian part count,
  big-endian offsets, the JSON message, the buffers);
- ``v1.kernel.websocket.jupyter.org`` (JupyterLab 4): a binary frame with an 8-byte
  little-endian offset count, the 8-byte little-endian offsets, then the channel name and the
  JSON parts header, parent_header, metadata, content, followed by any buffers.

``KernelTracker`` follows one WebSocket connection: feed it every frame with its direction (``in``
browser → kernel, ``out`` kernel → browser) and it returns ``Observation``s: a finished cell
execution (code, count, status, duration, error name/value and an ANSI-free traceback tail, a
bounded excerpt of the text outputs, the mimetypes seen), or a kernel restart, death or interrupt.
Times are those at which the proxy saw the frames, never the kernel's own clock. Executions are
followed only when their ``execute_request`` passed through this connection, so the outputs that
jupyter-server copies to every connection of a kernel are not counted twice.

What the kernel ran, beside what the browser sent:

- the kernel's ``execute_input`` echo is compared with the request's code; a difference (a
  replaced kernel) flags the cell ``echo_differs`` and keeps the echo as ``code_echoed``;
- pairlab's IPython profile (``workspaces.ipython_profile``) reports in ``execute_reply``'s
  metadata when the code that ran differs from what stock IPython makes of the cell (an input or
  AST transformer): the cell is flagged ``transformed`` and keeps ``code_ran``; a reply without
  that report (code in an earlier cell undid pairlab's hook, or the kernel is not pairlab's) is
  flagged ``unreported``: nothing says the code that ran is the code recorded;
- an ``execute_input`` whose request no proxied connection of the kernel sent (code run with the
  kernel's connection file, around pairlab) becomes a cell execution with ``origin: "outside
  pairlab"``, recorded once per kernel (``KernelLifecycle.claim_outside``) and finished when the
  kernel goes idle (its reply goes to the outsider only).

JupyterLab restarts and interrupts kernels through the REST API (``POST /api/kernels/<id>/restart``
and ``/interrupt``), not over this socket: the WebSocket only shows the ``restarting``/``dead``
status jupyter-server sends when a kernel died on its own (and ``interrupt_request`` for kernels
with ``interrupt_mode: message``).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import struct
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from common.clock import iso, now
from workspaces.excerpt import HeadTail, clean_terminal, strip_ansi, truncate
from workspaces.recording import events
from workspaces.recording.events import Observation

__all__ = [
    "V1_PROTOCOL",
    "KernelLifecycle",
    "KernelMessage",
    "KernelTracker",
    "parse_frame",
]

log = logging.getLogger(__name__)
V1_PROTOCOL = "v1.kernel.websocket.jupyter.org"
MAX_CONTENT_BYTES = 4 * 1024 * 1024
"""Content parts larger than this are not parsed (their size is still counted)."""
MAX_PARTS = 4096
Direction = Literal["in", "out"]
OUTSIDE = "outside pairlab"
"""The ``origin`` of an execution no proxied connection asked for."""
OUT_KINDS = frozenset({"status", "execute_input", "stream", "execute_result", "display_data",
                       "update_display_data", "error", "input_request", "execute_reply"})
"""The only kernel → browser messages whose content the tracker reads."""
_OUT_ANYWAY = ("execution_state", "execute_input")
"""Names in the kernel → browser messages read when no open execution is theirs: a status (a
restart, a death) and the echo of code that may have been run from outside pairlab."""
_PLAIN_ID = re.compile(r"[A-Za-z0-9_.:-]{1,256}")
"""A message id every JSON encoder writes as it is (UUIDs, jupyter_client's ``<hex>_<n>_<n>``)."""
_OUT_NEEDLES = tuple((name, name.encode()) for name in _OUT_ANYWAY)
SCAN_PENDING = 8
"""With more open executions than this, a JSON frame is parsed rather than searched for each."""
FLAG_ECHO_DIFFERS = "echo_differs"
FLAG_TRANSFORMED = "transformed"
FLAG_UNREPORTED = "unreported"


_DECODER = json.JSONDecoder()
_SCAN: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]
"""The json module's own (C) scanner, called directly: ``decode`` around it adds two regex
matches and two Python calls per frame, for whitespace jupyter-server never writes."""


def _json_dict(raw: bytes | str) -> dict[str, Any]:
    try:
        # utf-8 as jupyter-server writes it (json.loads would first sniff UTF-16/32 in Python)
        text = raw.decode("utf-8", "surrogatepass") if isinstance(raw, bytes) else raw
        try:
            value, end = _SCAN(text, 0)
        except StopIteration:  # no value right at the start (whitespace first, or nothing)
            end = -1
        if end != len(text):  # anything else (whitespace around it, extra data): as json does
            value = _DECODER.decode(text)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: deep nesting
        return {}
    return value if isinstance(value, dict) else {}


@dataclass(slots=True)
class KernelMessage:
    """One kernel message. A v1 frame's parts after its header (parent header, metadata,
    content) are sliced out of the frame and parsed only when first used: most frames need no
    more than their header and parent header, and a big output's content is never copied or
    decoded unless the recorder stores something of it."""

    channel: str
    header: dict[str, Any]
    content_size: int
    _parent: dict[str, Any] | None = None
    _content: dict[str, Any] | None = None
    _metadata: dict[str, Any] | None = None
    _frame: bytes = field(default=b"", repr=False)
    _bounds: tuple[int, ...] = field(default=(), repr=False)
    """Offsets in ``_frame`` of the parent header, metadata and content parts, and its end."""

    def _part(self, index: int, limit: int = MAX_CONTENT_BYTES) -> dict[str, Any]:
        start, end = self._bounds[index], self._bounds[index + 1]
        if end - start > limit or end == start:
            return {}
        return _json_dict(self._frame[start:end])

    @property
    def msg_type(self) -> str:
        return str(self.header.get("msg_type", ""))

    @property
    def msg_id(self) -> str:
        return str(self.header.get("msg_id", ""))

    @property
    def parent_header(self) -> dict[str, Any]:
        if self._parent is None:
            self._parent = self._part(0, len(self._frame)) if self._bounds else {}
        return self._parent

    @property
    def parent_id(self) -> str:
        return str(self.parent_header.get("msg_id", ""))

    @property
    def content(self) -> dict[str, Any]:
        if self._content is None:
            self._content = self._part(2) if self._bounds else {}
        return self._content

    @property
    def content_parsed(self) -> bool:
        """False when the content part was too large to be read."""
        return self.content_size <= MAX_CONTENT_BYTES or not self._bounds

    @property
    def metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            self._metadata = self._part(1) if self._bounds else {}
        return self._metadata


def _offsets(data: bytes, count: int, width: int, order: Literal["little", "big"],
             start: int) -> tuple[int, ...] | None:
    if len(data) < start + count * width:
        return None
    offsets: tuple[int, ...] = _layout(order, count, width).unpack_from(data, start)
    if list(offsets) != sorted(offsets) or offsets[-1] > len(data):
        return None
    return offsets


@functools.lru_cache(maxsize=64)
def _layout(order: Literal["little", "big"], count: int, width: int) -> struct.Struct:
    return struct.Struct(f"{'<' if order == 'little' else '>'}{count}{'Q' if width == 8 else 'I'}")


def _parse_v1(data: bytes) -> KernelMessage | None:
    if len(data) < 8:
        return None
    count = int.from_bytes(data[:8], "little")
    if not 6 <= count <= MAX_PARTS:
        return None
    offsets = _offsets(data, count, 8, "little", 8)
    if offsets is None or offsets[0] != 8 * (count + 1) or offsets[-1] != len(data):
        return None
    try:
        channel = data[offsets[0]:offsets[1]].decode("utf-8")
    except UnicodeDecodeError:
        return None
    header = _json_dict(data[offsets[1]:offsets[2]])
    if not header:
        return None
    return KernelMessage(channel, header, offsets[5] - offsets[4], _frame=data,
                         _bounds=offsets[2:6])


def _from_dict(msg: dict[str, Any], size: int) -> KernelMessage | None:
    header = msg.get("header")
    if not isinstance(header, dict):
        return None
    parent = msg.get("parent_header")
    content = msg.get("content")
    metadata = msg.get("metadata")
    return KernelMessage(str(msg.get("channel") or "shell"), header, size,
                         _parent=parent if isinstance(parent, dict) else {},
                         _content=content if isinstance(content, dict) else {},
                         _metadata=metadata if isinstance(metadata, dict) else {})


def _parse_legacy_binary(data: bytes) -> KernelMessage | None:
    if len(data) < 8:
        return None
    count = int.from_bytes(data[:4], "big")
    if not 1 <= count <= MAX_PARTS:
        return None
    offsets = _offsets(data, count, 4, "big", 4)
    if offsets is None or offsets[0] != 4 * (count + 1):
        return None
    end = offsets[1] if count > 1 else len(data)
    if end - offsets[0] > MAX_CONTENT_BYTES:
        return None
    return _from_dict(_json_dict(data[offsets[0]:end]), end - offsets[0])


def _from_text(data: str) -> KernelMessage | None:
    """A legacy JSON text frame."""
    if len(data) > 4 * MAX_CONTENT_BYTES:
        return None
    return _from_dict(_json_dict(data), len(data))


def parse_frame(data: str | bytes, protocol: str | None = None) -> KernelMessage | None:
    """One WebSocket frame as a message, or None when it is not one we can read.

    ``protocol`` is the negotiated subprotocol (``V1_PROTOCOL`` or ``""`` for legacy); ``None``
    guesses from the frame (text → legacy JSON; binary → v1 if it parses as v1, else legacy).
    """
    if isinstance(data, str):
        return _from_text(data)
    if protocol == V1_PROTOCOL:
        return _parse_v1(data)
    if protocol is not None:
        return _parse_legacy_binary(data)
    return _parse_v1(data) or _parse_legacy_binary(data)


class KernelLifecycle:
    """Shared by the trackers of all connections to one kernel.

    jupyter-server sends its own ``restarting``/``dead`` status to every connection; this keeps
    one event per occurrence (one per ``window_s``). It also remembers the last ``remember``
    execute requests sent through any connection, and the executions from outside pairlab
    already claimed by one, since every connection sees their ``execute_input``.
    """

    def __init__(self, window_s: float = 5.0, remember: int = 4096) -> None:
        self.window_s = window_s
        self._last: dict[str, datetime] = {}
        self._remember = remember
        self._requested: OrderedDict[str, None] = OrderedDict()
        self._outside: OrderedDict[str, None] = OrderedDict()

    def requested(self, msg_id: str) -> None:
        """An execute request with this id went through a proxied connection."""
        _remember(self._requested, msg_id, self._remember)

    def was_requested(self, msg_id: str) -> bool:
        return msg_id in self._requested

    def claim_outside(self, msg_id: str) -> bool:
        """True for the first connection that reports this outside execution."""
        if msg_id in self._outside:
            return False
        _remember(self._outside, msg_id, self._remember)
        return True

    def claim(self, kind: str, at: datetime) -> bool:
        last = self._last.get(kind)
        if last is not None and abs((at - last).total_seconds()) < self.window_s:
            return False
        self._last[kind] = at
        return True


def _mentions(data: str | bytes, needles: Iterable[tuple[str, bytes]]) -> bool:
    """Whether ``data`` contains any of ``needles`` (each as text and as UTF-8)."""
    if isinstance(data, str):
        for text, _ in needles:
            if text in data:
                return True
        return False
    for _, raw in needles:
        if raw in data:
            return True
    return False


def _remember(seen: OrderedDict[str, None], key: str, limit: int) -> None:
    seen[key] = None
    seen.move_to_end(key)
    while len(seen) > limit:
        seen.popitem(last=False)


def _digest(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass
class _Execution:
    msg_id: str
    code: str
    requested_at: datetime
    silent: bool
    cell_id: str
    output: HeadTail
    code_sha256: str = ""
    """Of the request's whole code ("" when it was not read), to compare the kernel's echo."""
    origin: str = ""
    code_echoed: str | None = None
    code_ran: str | None = None
    flags: list[str] = field(default_factory=list)
    started_at: datetime | None = None
    execution_count: int | None = None
    reply_status: str | None = None
    reply_at: datetime | None = None
    idle_at: datetime | None = None
    error: dict[str, str] | None = None
    mimetypes: set[str] = field(default_factory=set)
    outputs: int = 0
    skipped_bytes: int = 0
    reply_error_line: str | None = None
    """The excerpt's line for an error the reply told of before iopub did."""
    needle: tuple[str, bytes] | None = field(default=None, init=False)
    """The id as it appears in a JSON frame (None: it may be escaped there)."""

    def __post_init__(self) -> None:
        if _PLAIN_ID.fullmatch(self.msg_id):
            self.needle = (self.msg_id, self.msg_id.encode())


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "".join(str(v) for v in value)
    return value if isinstance(value, str) else ""


def _ms(start: datetime, end: datetime) -> int:
    return max(0, round((end - start).total_seconds() * 1000))


class KernelTracker:
    """Follows one kernel WebSocket connection (see the module doc)."""

    def __init__(self, protocol: str | None = None, *, kernel_id: str = "",
                 lifecycle: KernelLifecycle | None = None,
                 clock: Callable[[], datetime] = now,
                 max_pending: int = 512, output_chars: int = 4000, code_chars: int = 8000,
                 traceback_chars: int = 2000) -> None:
        self.protocol = protocol
        self.kernel_id = kernel_id
        self.lifecycle = lifecycle
        self._clock = clock
        self._max_pending = max_pending
        self._output_chars = output_chars
        self._code_chars = code_chars
        self._traceback_chars = traceback_chars
        self._pending: dict[str, _Execution] = {}
        self._inputs: dict[str, str] = {}
        self.unreadable_frames = 0
        self.passed_frames = 0
        """JSON frames relayed without being decoded (``_concerns_nothing``)."""
        self.requests = 0
        """Execute requests seen from the browser."""

    @property
    def pending(self) -> int:
        return len(self._pending)

    def feed(self, direction: Direction, data: str | bytes,
             at: datetime | None = None) -> list[Observation]:
        """One frame as it passed the proxy; returns what it completed (often nothing)."""
        # Frames from the browser are always read: the browser is the candidate's, and a frame
        # spelling its type with JSON escapes ("execute\\u005frequest") is decoded by
        # jupyter-server all the same (a silent one would run unrecorded); they are few and small.
        if isinstance(data, str):  # legacy JSON (the checks and calls of the usual case inline)
            if direction == "out" and self._concerns_nothing(data):
                self.passed_frames += 1
                return []
            msg = _from_text(data)
        else:
            if direction == "out" and self.protocol == "" and self._concerns_nothing(data):
                self.passed_frames += 1
                return []
            msg = parse_frame(data, self.protocol)
        if msg is None:
            self.unreadable_frames += 1
            return []
        when = at or self._clock()  # as feed_message
        if direction == "in":
            return self._incoming(msg, when)
        return self._outgoing(msg, when)

    def _concerns_nothing(self, data: str | bytes) -> bool:
        """A JSON-framed (legacy) frame from the kernel's side (re-encoded by jupyter-server,
        which never escapes names) that names none of the messages read from there nor any
        open execution of this connection: it is relayed without being decoded. A substring
        search costs a fraction of decoding the frame (a viewer's connection gets a copy of
        every other connection's outputs). Written here because no JSON library reads only the
        keys asked for; a false match only means the frame is decoded."""
        if len(self._pending) > SCAN_PENDING:
            return False
        # the usual case first: the frame is one of an open execution's (plain loops: this
        # runs for every frame)
        if isinstance(data, str):
            for ex in self._pending.values():
                if ex.needle is None or ex.needle[0] in data:
                    return False
        else:
            for ex in self._pending.values():
                if ex.needle is None or ex.needle[1] in data:
                    return False
        return not _mentions(data, _OUT_NEEDLES)

    def feed_message(self, direction: Direction, msg: KernelMessage,
                     at: datetime | None = None) -> list[Observation]:
        when = at or self._clock()
        if direction == "in":
            return self._incoming(msg, when)
        return self._outgoing(msg, when)

    def close(self, at: datetime | None = None) -> list[Observation]:
        """The connection ended: executions still open are reported with status ``unknown``."""
        return self.finish_pending("connection closed", at)

    def finish_pending(self, reason: str, at: datetime | None = None) -> list[Observation]:
        """Report every open execution now, marked ``incomplete: reason`` (for instance when
        the proxy saw a restart or shutdown requested through the REST API)."""
        when = at or self._clock()
        return [self._finish(ex, when, reason) for ex in self._drain()]

    # -- browser → kernel ---------------------------------------------------------------------

    def _incoming(self, msg: KernelMessage, at: datetime) -> list[Observation]:
        kind = msg.msg_type
        if kind == "execute_request" and msg.msg_id:
            content, metadata = msg.content, msg.metadata
            done: list[Observation] = []
            while len(self._pending) >= self._max_pending:
                oldest = next(iter(self._pending))
                done.append(self._finish(self._pending.pop(oldest), at, "too many open"))
            code = _text(content.get("code"))
            digest = _digest(code) if msg.content_parsed else ""
            if not msg.content_parsed:
                code = f"…[code of {msg.content_size} bytes not read]"
            self._pending[msg.msg_id] = _Execution(
                msg.msg_id, truncate(code, self._code_chars), at, bool(content.get("silent")),
                str(metadata.get("cellId") or "")[:200], HeadTail(self._output_chars),
                code_sha256=digest)
            if self.lifecycle is not None:
                self.lifecycle.requested(msg.msg_id)
            self.requests += 1
            return done
        if kind == "interrupt_request":
            return self._lifecycle(events.KERNEL_INTERRUPTED, at, {"requested": True})
        if kind == "shutdown_request" and msg.content.get("restart"):
            return self._lifecycle(events.KERNEL_RESTARTED, at, {"requested": True})
        if kind == "input_reply":
            ex = self._pending.get(self._inputs.pop(msg.parent_id, ""))
            if ex is not None:
                ex.output.add(_text(msg.content.get("value")) + "\n")
        return []

    # -- kernel → browser ---------------------------------------------------------------------

    def _outgoing(self, msg: KernelMessage, at: datetime) -> list[Observation]:
        kind = msg.msg_type
        if kind == "status":
            state = msg.content.get("execution_state")
            if state == "restarting":
                return self._death(events.KERNEL_RESTARTED, at, "kernel restarted",
                                   {"automatic": True})
            if state == "dead":
                return self._death(events.KERNEL_DIED, at, "kernel died", {})
        parent_id = msg.parent_id
        ex = self._pending.get(parent_id)
        if ex is None:
            if kind != "execute_input" or not parent_id:
                return []
            ex = self._outside(msg, at)
            if ex is None:
                return []
        if not msg.content_parsed:
            ex.skipped_bytes += msg.content_size
            ex.output.add(f"\n…[output of {msg.content_size} bytes not read]\n")
            return []
        if kind not in OUT_KINDS:  # comm_msg, clear_output, ...: the content stays undecoded
            return []  # (an execution finishes on its idle status or its reply, never here)
        content = msg.content
        if kind == "status":
            state = content.get("execution_state")
            if state == "busy" and ex.started_at is None:
                ex.started_at = at
            elif state == "idle":
                ex.idle_at = at
        elif kind == "execute_input":
            ex.execution_count = _count(content.get("execution_count"))
            self._echo(ex, _text(content.get("code")))
        elif kind == "stream":
            ex.outputs += 1
            ex.output.add(_text(content.get("text")))
        elif kind in ("execute_result", "display_data", "update_display_data"):
            ex.outputs += 1
            data = content.get("data")
            if isinstance(data, dict):
                ex.mimetypes.update(str(k)[:100] for k in list(data)[:50])
                plain = _text(data.get("text/plain"))
                if plain:
                    ex.output.add(plain if plain.endswith("\n") else plain + "\n")
            if kind == "execute_result":
                ex.execution_count = _count(content.get("execution_count")) or ex.execution_count
        elif kind == "error":
            ex.outputs += 1
            ex.reply_error_line = None  # the reply came first: shown here, in output order
            self._error(ex, content)
        elif kind == "input_request":
            ex.output.add(_text(content.get("prompt")))
            if len(self._inputs) >= 16:
                self._inputs.pop(next(iter(self._inputs)))
            self._inputs[msg.msg_id] = ex.msg_id
        elif kind == "execute_reply":
            ex.reply_at = at
            ex.reply_status = str(content.get("status") or "unknown")
            self._reported(ex, msg.metadata.get("pairlab"))
            ex.execution_count = _count(content.get("execution_count")) or ex.execution_count
            if ex.reply_status == "error" and ex.error is None:
                # the shell reply may overtake iopub's error: its line waits for it (or the end)
                ex.reply_error_line = self._error(ex, content, show=False)
        if ex.idle_at is not None and (ex.reply_status is not None or ex.origin == OUTSIDE):
            del self._pending[ex.msg_id]
            return [self._finish(ex, at, "")]
        return []

    def _outside(self, msg: KernelMessage, at: datetime) -> _Execution | None:
        """An ``execute_input`` no connection asked for: followed here, once per kernel."""
        parent = msg.parent_id
        lifecycle = self.lifecycle
        if lifecycle is not None and (lifecycle.was_requested(parent)
                                      or not lifecycle.claim_outside(parent)):
            return None
        if len(self._pending) >= self._max_pending:
            return None
        ex = _Execution(parent, "", at, False, "", HeadTail(self._output_chars),
                        origin=OUTSIDE, started_at=at)
        self._pending[parent] = ex
        return ex

    def _echo(self, ex: _Execution, echoed: str) -> None:
        if ex.origin == OUTSIDE:
            ex.code = truncate(echoed, self._code_chars)
        elif ex.code_sha256 and _digest(echoed) != ex.code_sha256:
            ex.code_echoed = truncate(echoed, self._code_chars)
            if FLAG_ECHO_DIFFERS not in ex.flags:
                ex.flags.append(FLAG_ECHO_DIFFERS)

    def _reported(self, ex: _Execution, report: Any) -> None:
        """What pairlab's IPython profile said about the code that ran (a hint: the kernel
        runs the candidate's code, which could change it; that code is in the record)."""
        if not isinstance(report, dict) or not isinstance(report.get("transformed"), bool):
            # an aborted request never ran; anything else should have been reported
            if ex.reply_status != "aborted" and FLAG_UNREPORTED not in ex.flags:
                ex.flags.append(FLAG_UNREPORTED)
            return
        if report["transformed"] is not True:
            return
        ran = report.get("code_ran")
        ex.code_ran = truncate(ran if isinstance(ran, str) else "", self._code_chars)
        if FLAG_TRANSFORMED not in ex.flags:
            ex.flags.append(FLAG_TRANSFORMED)

    def _error(self, ex: _Execution, content: dict[str, Any], show: bool = True) -> str:
        ename = strip_ansi(str(content.get("ename") or ""))[:200]
        evalue = strip_ansi(str(content.get("evalue") or ""))
        trace = content.get("traceback")
        lines = [str(line) for line in trace[-200:]] if isinstance(trace, list) else []
        text = clean_terminal("\n".join(lines))
        if len(text) > self._traceback_chars:
            text = f"…[truncated {len(text) - self._traceback_chars} chars]" + \
                text[-self._traceback_chars:]
        ex.error = {"ename": ename, "evalue": truncate(evalue, 1000), "traceback": text}
        line = f"{ename}: {evalue}\n" if evalue else f"{ename}\n"
        if show:
            ex.output.add(line)
        return line

    def _death(self, kind: str, at: datetime, reason: str,
               extra: dict[str, Any]) -> list[Observation]:
        done = [self._finish(ex, at, reason) for ex in self._drain()]
        return done + self._lifecycle(kind, at, extra)

    def _lifecycle(self, kind: str, at: datetime, extra: dict[str, Any]) -> list[Observation]:
        if self.lifecycle is not None and not self.lifecycle.claim(kind, at):
            return []
        return [Observation(kind, {"kernel_id": self.kernel_id, **extra}, at)]

    def _drain(self) -> list[_Execution]:
        pending = list(self._pending.values())
        self._pending.clear()
        return pending

    def _finish(self, ex: _Execution, at: datetime, reason: str) -> Observation:
        if ex.reply_error_line is not None:  # no iopub error came
            ex.output.add(ex.reply_error_line)
            ex.reply_error_line = None
        status = ex.reply_status or ("error" if ex.error else "unknown")
        if ex.origin == OUTSIDE and ex.reply_status is None and ex.idle_at is not None:
            status = "error" if ex.error else "ok"  # its reply went to the outsider only
        end = min(t for t in (ex.reply_at, ex.idle_at, at) if t is not None)
        start = ex.started_at or ex.requested_at
        payload: dict[str, Any] = {
            "kernel_id": self.kernel_id,
            "code": ex.code,
            "execution_count": ex.execution_count,
            "status": status,
            "requested_at": iso(ex.requested_at),
            "duration_ms": _ms(start, end),
            "queued_ms": _ms(ex.requested_at, ex.started_at) if ex.started_at else None,
            "output": ex.output.render(),
            "output_chars": ex.output.total,
            "outputs": ex.outputs,
            "mimetypes": sorted(ex.mimetypes),
        }
        if ex.cell_id:
            payload["cell_id"] = ex.cell_id
        if ex.silent:
            payload["silent"] = True
        if ex.origin:
            payload["origin"] = ex.origin
        if ex.code_echoed is not None:
            payload["code_echoed"] = ex.code_echoed
        if ex.code_ran is not None:
            payload["code_ran"] = ex.code_ran
        if ex.flags:
            payload["flags"] = list(ex.flags)
        if ex.error:
            payload["error"] = ex.error
        if reason:
            payload["incomplete"] = reason
        return Observation(events.CELL_EXECUTED, payload, at)


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
