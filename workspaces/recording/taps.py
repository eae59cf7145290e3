"""What the proxy shows the recorder: one tap per WebSocket and one call per HTTP request.

- ``/w/<id>/api/kernels/<kernel>/channels``: a ``KernelTracker`` (cell executions, kernel deaths
  and automatic restarts), the kernel's ``KernelLifecycle`` shared by all its connections;
- ``/w/<id>/terminals/websocket/<name>``: a ``TerminalTracker`` (commands and their output),
  polled every ``POLL_S`` so a command is recorded once its terminal has been quiet, and an
  asciicast of the connection (``casts.CastWriter``, whatever the tracker makes of it; flushed
  on the same tick); ``terminal.command`` events say where in it they are (``cast``);
- every WebSocket counts towards presence: ``session.joined`` when someone's first connection
  opens, ``session.left`` when their last one closes;
- HTTP: ``POST /api/kernels`` and ``/api/sessions`` (``kernel.started``, and which notebook
  each kernel belongs to, read back from the workspace's ``/api/sessions``), ``POST
  /api/kernels/<id>/restart`` and ``/interrupt`` (``kernel.restarted`` / ``interrupted``),
  once answered; a contents-API write from before it is forwarded (``http_tap``), so that a
  file change seen before its answer is back waits for it (``attribution.py``).

Every event carries the actor of the connection it came through: the candidate, or
``interviewer:<user id>`` (the proxy's principal ``interviewer-<id>``). A tap never breaks the
connection it watches: a tracker error is logged and that tap stops recording (an error of
``http_tap`` is logged by the proxy, which forwards the request all the same).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import aiohttp
from aiohttp import WSMsgType

from workspaces import jupyter_config as jc
from workspaces.recording import events as E
from workspaces.recording.attribution import Attribution
from workspaces.recording.casts import CastStore, CastWriter
from workspaces.recording.events import Event, Observation, WriteFn
from workspaces.recording.kernel_messages import OUTSIDE, KernelLifecycle, KernelTracker
from workspaces.recording.terminal_lines import TerminalTracker
from workspaces.upstream import (
    UPSTREAM_HOST,
    HttpCall,
    LiveUpstreams,
    Principal,
    Upstream,
    UpstreamClients,
)

if TYPE_CHECKING:
    from workspaces.recording import collab
    from workspaces.recording.collab import Collab, DocLog

log = logging.getLogger(__name__)
POLL_S = 0.5
FAILURE_REPEAT_S = 30.0
UPSTREAM_TIMEOUT_S = 5.0
_KERNEL_WS = re.compile(r"^/api/kernels/([A-Za-z0-9-]{1,64})/channels$")
_TERMINAL_WS = re.compile(r"^/terminals/websocket/([A-Za-z0-9_.-]{1,64})$")
_KERNEL_ACTION = re.compile(r"^/api/kernels/([A-Za-z0-9-]{1,64})/(restart|interrupt)$")
_KERNEL = re.compile(r"^/api/kernels/([A-Za-z0-9-]{1,64})$")
_CONTENTS = re.compile(r"^/api/contents(?:/(.*))?$")
_WRITES = frozenset({"POST", "PATCH", "DELETE", "PUT"})
Record = Callable[[Event], Awaitable[None]]
_DATA = frozenset({WSMsgType.TEXT, WSMsgType.BINARY})
"""The frames a tap reads (a set of the members, not a tuple of attribute look-ups per frame)."""


def actor_of(who: Principal) -> str:
    """The event actor of a proxy principal."""
    if who.kind == "candidate":
        return E.ACTOR_CANDIDATE
    prefix, _, number = who.username.partition("-")
    if prefix == "interviewer" and number.isdigit():
        return E.interviewer_actor(int(number))
    return E.ACTOR_SYSTEM


@dataclass(eq=False)
class _Kernel:
    lifecycle: KernelLifecycle = field(default_factory=KernelLifecycle)
    path: str = ""
    conns: set[KernelTap] = field(default_factory=set)


@dataclass(eq=False)
class _Session:
    session_id: str
    kernels: dict[str, _Kernel] = field(default_factory=dict)
    known: set[str] = field(default_factory=set)
    terminals: set[TerminalTap] = field(default_factory=set)
    present: Counter[str] = field(default_factory=Counter)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    ended: bool = False
    failures: dict[tuple[str, str], float] = field(default_factory=dict)
    """(kind, reason) → when it was last recorded (``_failed``)."""
    attribution: Attribution = field(default_factory=Attribution)
    collab: Collab | None = None

    def kernel(self, kernel_id: str) -> _Kernel:
        return self.kernels.setdefault(kernel_id, _Kernel())


class Tap:
    """A WebSocket that only counts towards presence (RTC rooms, the event stream, ...)."""

    def __init__(self, taps: SessionTaps, state: _Session, who: Principal) -> None:
        self.taps = taps
        self.state = state
        self.who = who
        self.actor = actor_of(who)
        self.broken = False

    async def open(self) -> None:
        state = self.state
        state.present[self.actor] += 1
        if state.present[self.actor] == 1 and not state.ended:
            await self.taps.record(Event(state.session_id, self.actor, E.SESSION_JOINED,
                                         payload={"name": self.who.display_name}))

    async def feed(self, direction: str, kind: WSMsgType, data: str | bytes) -> None:
        if self.broken or kind not in _DATA:
            return
        try:
            found = self.observe("in" if direction == "in" else "out", data)
        except Exception:
            self.broken = True
            log.exception("a recording tap of session %s failed; it stops recording",
                          self.state.session_id)
            return
        if found:  # most frames complete nothing: no coroutine for them
            await self.emit(found)

    def observe(self, direction: str, data: str | bytes) -> list[Observation]:
        return []

    def finish(self) -> list[Observation]:
        return []

    async def emit(self, found: list[Observation]) -> None:
        for obs in found:
            await self.taps.record(obs.event(self.state.session_id, self.actor))

    async def close(self) -> None:
        state = self.state
        if not self.broken:
            await self.emit(self.finish())
        self.detach()
        state.present[self.actor] -= 1
        if state.present[self.actor] <= 0:
            del state.present[self.actor]
            if not state.ended:
                await self.taps.record(Event(state.session_id, self.actor, E.SESSION_LEFT,
                                             payload={"name": self.who.display_name}))

    def detach(self) -> None:
        pass


class KernelTap(Tap):
    def __init__(self, taps: SessionTaps, state: _Session, who: Principal, kernel_id: str,
                 protocol: str) -> None:
        super().__init__(taps, state, who)
        self.kernel_id = kernel_id
        self.kernel = state.kernel(kernel_id)
        self.kernel.conns.add(self)
        self.tracker = KernelTracker(protocol, kernel_id=kernel_id,
                                     lifecycle=self.kernel.lifecycle)

    def observe(self, direction: str, data: str | bytes) -> list[Observation]:
        if direction != "in":
            return self.tracker.feed("out", data)
        requests = self.tracker.requests
        found = self.tracker.feed("in", data)
        if self.tracker.requests != requests:  # an execute request: this viewer ran a cell
            self.state.attribution.active(self.actor)
        return found

    def finish(self) -> list[Observation]:
        return self.tracker.close()

    async def emit(self, found: list[Observation]) -> None:
        for obs in found:
            automatic = obs.kind == E.KERNEL_DIED or bool(obs.payload.get("automatic"))
            actor = E.ACTOR_SYSTEM if automatic else self.actor
            if obs.payload.get("origin") == OUTSIDE:  # the workspace's uid, not this viewer
                actor = E.ACTOR_CANDIDATE
            await self.taps.record(obs.event(self.state.session_id, actor, self.kernel.path))

    def detach(self) -> None:
        self.kernel.conns.discard(self)


class TerminalTap(Tap):
    def __init__(self, taps: SessionTaps, state: _Session, who: Principal, name: str) -> None:
        super().__init__(taps, state, who)
        self.name = name
        self.tracker = TerminalTracker(terminal=name)
        self.cast: CastWriter | None = None
        state.terminals.add(self)

    async def open(self) -> None:
        if self.taps.casts is not None and not self.state.ended:
            try:
                self.cast = await self.taps.casts.open(self.state.session_id, self.name,
                                                       self.actor)
            except Exception:
                log.exception("could not start the terminal cast of %s", self.state.session_id)
        await super().open()

    async def feed(self, direction: str, kind: WSMsgType, data: str | bytes) -> None:
        if self.cast is not None and kind in _DATA:
            try:  # the cast first, and whatever happens to the tracker
                self.cast.feed("in" if direction == "in" else "out", data)
            except Exception:
                log.exception("a terminal cast of %s failed; it stops", self.state.session_id)
                self.cast.closed = True
        await super().feed(direction, kind, data)

    async def emit(self, found: list[Observation]) -> None:
        cast = self.cast
        for obs in found:
            if cast is not None and obs.kind == E.TERMINAL_COMMAND:
                entered = obs.payload.get("entered_at")
                when = datetime.fromisoformat(entered) if isinstance(entered, str) else obs.at
                obs = replace(obs, payload={**obs.payload, "cast": {
                    "id": cast.id, "t": cast.offset(when)}})
            await self.taps.record(obs.event(self.state.session_id, self.actor))

    async def close(self) -> None:
        await super().close()
        if self.cast is not None and self.taps.casts is not None:
            try:
                await self.taps.casts.close(self.cast)
            except Exception:
                log.exception("could not finish the terminal cast of %s", self.state.session_id)

    def observe(self, direction: str, data: str | bytes) -> list[Observation]:
        if direction == "in" and isinstance(data, str) and "\\r" in data:  # Enter (JSON-escaped)
            self.state.attribution.active(self.actor)
        return self.tracker.feed("in" if direction == "in" else "out", data)

    def finish(self) -> list[Observation]:
        return self.tracker.flush()

    def detach(self) -> None:
        self.state.terminals.discard(self)


class SessionTaps:
    """The proxy hooks (``ws_tap``, ``http_tap``) and the terminal poll loop. ``upstreams``
    (the lifecycle's table of live workspaces) says which session a workspace serves;
    ``clients`` reach its jupyter-server."""

    def __init__(self, upstreams: LiveUpstreams, clients: UpstreamClients,
                 record: Record, write: WriteFn | None = None,
                 casts: CastStore | None = None) -> None:
        self.upstreams = upstreams
        self.clients = clients
        self.record = record
        self.casts = casts
        self.write = write
        """The database's writer, for the collaboration log (none: rooms are presence only)."""
        self._doc_log: DocLog | None = None
        self._sessions: dict[str, _Session] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def _state(self, session_id: str) -> _Session:
        state = self._sessions.get(session_id)
        if state is None:
            state = self._sessions[session_id] = _Session(session_id)
        return state

    def _found(self, workspace_id: str) -> tuple[Upstream, str] | None:
        return self.upstreams.get(workspace_id)

    # -- WebSockets -------------------------------------------------------------------------

    async def ws_tap(self, workspace_id: str, path: str, subprotocol: str,
                     who: Principal) -> Tap | None:
        found = self._found(workspace_id)
        if found is None:
            return None
        state = self._state(found[1])
        rel = path.removeprefix(f"/w/{workspace_id}")
        tap: Tap
        from workspaces.recording import collab  # collab builds on this module's Tap
        if match := _KERNEL_WS.match(rel):
            kernel_id = match.group(1)
            tap = KernelTap(self, state, who, kernel_id, subprotocol)
            # started before we were told of it (a kernel already read back, of a console or
            # of none, is not read again on each connection: its sessions come through here)
            if kernel_id not in state.known and not state.kernel(kernel_id).path:
                task = asyncio.get_running_loop().create_task(self._refresh(state, found[0], who))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        elif match := _TERMINAL_WS.match(rel):
            tap = TerminalTap(self, state, who, match.group(1))
        elif self.write is not None and (room := collab.parse_room(rel)):
            tap = collab.CollabTap(self, state, who, await self._room(state, self.write, *room))
        else:
            tap = Tap(self, state, who)
        await tap.open()
        return tap

    async def _room(self, state: _Session, write: WriteFn, name: str, file_id: str,
                    doc_type: str) -> collab.Room:
        from workspaces.recording import collab
        if self._doc_log is None:
            self._doc_log = collab.DocLog(write)
        if state.collab is None:
            state.collab = collab.Collab(state.session_id, write, self._doc_log,
                                         state.attribution)
            state.attribution.pending_saves = state.collab.pending_saves
            state.attribution.save_by_content = state.collab.save_by_content
        return await state.collab.room(name, file_id, doc_type)

    async def attribute(self, session_id: str, path: str, sha256: str = "",
                        old_path: str = "") -> tuple[str, dict[str, Any]]:
        """Who changed ``path`` (``attribution.Attribution.attribute``)."""
        return await self._state(session_id).attribution.attribute(path, sha256, old_path)

    async def flush_docs(self) -> None:
        """Wait until the collaboration log has stored everything fed so far."""
        if self._doc_log is not None:
            await self._doc_log.flush()

    async def poll_loop(self) -> None:
        """Record terminal commands once their terminal has gone quiet."""
        while True:
            await asyncio.sleep(POLL_S)  # a periodic tick, not a readiness wait
            if self.casts is not None:
                try:
                    await self.casts.flush()
                except Exception:
                    log.exception("could not write terminal casts")
            for state in list(self._sessions.values()):
                for tap in list(state.terminals):
                    if not tap.broken:
                        try:
                            found = tap.tracker.poll()
                        except Exception:
                            tap.broken = True
                            log.exception("a terminal tap of %s failed", state.session_id)
                            continue
                        await tap.emit(found)

    async def finish_session(self, session_id: str) -> None:
        """The session ends: report what is pending and who was still there, then forget it."""
        state = self._sessions.pop(session_id, None)
        if state is None:
            return
        for tap in list(state.terminals):
            await tap.emit(tap.tracker.flush())
        if self.casts is not None:
            try:
                await self.casts.close_session(session_id)
            except Exception:
                log.exception("could not finish the terminal casts of %s", session_id)
        for kernel in state.kernels.values():
            for conn in list(kernel.conns):
                await conn.emit(conn.tracker.finish_pending("session ended"))
        state.ended = True
        await self.flush_docs()
        for actor in sorted(state.present):
            await self.record(Event(session_id, actor, E.SESSION_LEFT, payload={}))

    async def finish_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for session_id in list(self._sessions):
            await self.finish_session(session_id)

    # -- HTTP -------------------------------------------------------------------------------

    def http_tap(self, workspace_id: str, method: str, path: str,
                 who: Principal) -> HttpCall | None:
        """Before a proxied request is forwarded: a contents-API write is under way from now
        (``Attribution.begin``; the watcher can see the file before the answer comes back);
        kernel and session requests are looked at once answered (``_HttpCall``)."""
        if method not in _WRITES:
            return None
        found = self._found(workspace_id)
        if found is None:
            return None
        upstream, session_id = found
        state = self._state(session_id)
        rel = path.removeprefix(f"/w/{workspace_id}")
        if match := _CONTENTS.match(rel):
            # a rename's new path comes with the watcher's event as its old_path's claim
            return state.attribution.begin(unquote(match.group(1) or "").strip("/"),
                                           actor_of(who), method)
        if method == "PUT":
            return None
        return _HttpCall(self, state, upstream, method, rel, who)

    async def answered(self, state: _Session, upstream: Upstream, method: str, rel: str,
                       status: int, error: str, who: Principal) -> None:
        if 300 <= status < 400:
            return
        if status >= 400:
            await self._failed(state, method, rel, status, error, who)
            return
        if method == "POST" and rel in ("/api/kernels", "/api/sessions") or \
                method == "PATCH" and rel.startswith("/api/sessions/"):
            await self._refresh(state, upstream, who)
        elif method == "POST" and (match := _KERNEL_ACTION.match(rel)):
            await self._kernel_action(state, match.group(1), match.group(2), who)
        elif method == "DELETE" and (match := _KERNEL.match(rel)):
            kernel = state.kernels.pop(match.group(1), None)
            for conn in list(kernel.conns if kernel else ()):
                await conn.emit(conn.tracker.finish_pending("kernel shut down"))

    async def _failed(self, state: _Session, method: str, rel: str, status: int, error: str,
                      who: Principal) -> None:
        """A kernel or terminal the workspace could not start (or restart): an event with the
        workspace's own reason, so that the interviewer sees why, not just nothing. A 404 (no
        such kernel) is not a failure of the workspace; the same failure again within
        ``FAILURE_REPEAT_S`` is one event (a page retrying, or a candidate's loop)."""
        if method != "POST" or status == 404:
            return
        kind = None
        payload: dict[str, Any] = {"status": status, "request": f"{method} {rel}"}
        path = ""
        if rel in ("/api/kernels", "/api/sessions"):
            kind = E.KERNEL_FAILED
        elif (match := _KERNEL_ACTION.match(rel)) and match.group(2) == "restart":
            kernel = state.kernels.get(match.group(1))
            if kernel is None:
                return
            kind = E.KERNEL_FAILED
            path = kernel.path
            payload["kernel_id"] = match.group(1)
        elif rel == "/api/terminals":
            kind = E.TERMINAL_FAILED
        if kind is None:
            return
        payload["reason"] = jc.refusal_reason(error, status)
        now = asyncio.get_running_loop().time()
        key = (kind, payload["reason"])
        if now - state.failures.get(key, -FAILURE_REPEAT_S) < FAILURE_REPEAT_S:
            return
        if len(state.failures) > 100:
            state.failures.clear()
        state.failures[key] = now
        await self.record(Event(state.session_id, actor_of(who), kind, path, payload))

    async def _kernel_action(self, state: _Session, kernel_id: str, action: str,
                             who: Principal) -> None:
        kernel = state.kernel(kernel_id)
        payload = {"kernel_id": kernel_id, "requested": True}
        if action == "interrupt":
            await self.record(Event(state.session_id, actor_of(who), E.KERNEL_INTERRUPTED,
                                    kernel.path, payload))
            return
        for conn in list(kernel.conns):
            await conn.emit(conn.tracker.finish_pending("kernel restarted"))
        event = Event(state.session_id, actor_of(who), E.KERNEL_RESTARTED, kernel.path, payload)
        kernel.lifecycle.claim(E.KERNEL_RESTARTED, event.at)  # the socket's echo is the same
        await self.record(event)

    async def _get(self, upstream: Upstream, tail: str) -> list[dict[str, Any]]:
        client = self.clients.get(upstream)
        url = f"http://{UPSTREAM_HOST}/w/{upstream.workspace_id}/{tail}"
        try:
            async with asyncio.timeout(UPSTREAM_TIMEOUT_S), client.get(
                    url, headers={"Authorization": f"token {upstream.token}"}) as response:
                if response.status != 200:
                    return []
                data = await response.json(content_type=None)
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError):
            log.info("could not read %s of workspace %s", tail, upstream.workspace_id)
            return []
        return [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []

    async def _refresh(self, state: _Session, upstream: Upstream, who: Principal) -> None:
        """Read the workspace's kernels and sessions: new kernels, and each one's notebook."""
        async with state.lock:
            sessions = await self._get(upstream, "api/sessions")
            kernels = await self._get(upstream, "api/kernels")
            for item in sessions:
                kernel = item.get("kernel")
                if isinstance(kernel, dict) and isinstance(kernel.get("id"), str):
                    path = item.get("path")
                    if item.get("type", "notebook") == "notebook" and isinstance(path, str):
                        state.kernel(kernel["id"]).path = path[:1000]
            for item in kernels:
                kernel_id = item.get("id")
                if not isinstance(kernel_id, str) or kernel_id in state.known:
                    continue
                state.known.add(kernel_id)
                path = state.kernel(kernel_id).path
                payload = {"kernel_id": kernel_id, "name": str(item.get("name", ""))[:100]}
                await self.record(Event(state.session_id, actor_of(who), E.KERNEL_STARTED,
                                        path, payload))


@dataclass(eq=False, slots=True)
class _HttpCall:
    """A kernel, session or terminal request under way (``SessionTaps.http_tap``)."""

    taps: SessionTaps
    state: _Session
    upstream: Upstream
    method: str
    rel: str
    who: Principal

    async def done(self, status: int, error: str) -> None:
        await self.taps.answered(self.state, self.upstream, self.method, self.rel, status, error,
                                 self.who)

    def abandon(self) -> None:
        """Nothing to undo: only answers are recorded."""
