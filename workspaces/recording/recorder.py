"""The session recorder: the event log, the proxy taps, the file watcher, snapshot history, and
the hidden checks at the end. Web-free: the server builds it (``server/sessions/wiring.py``) with
what it needs and hands its lifecycle hook to the session manager and its taps to the proxy.

- One ``EventRecorder`` over the database's single writer: events are stored in batches with a
  gap-free ``seq`` per session and only then shown to observers (``recorder.subscribe``).
- The proxy's hooks (``workspaces/recording/taps.py``) record cell executions, terminal
  commands, kernel lifecycle and presence, with the actor of the connection.
- A lifecycle hook records ``session.*``/``workspace.*``/``time.extended``. When a session goes
  live (or comes back) its history repository ``DATA_DIR/history/<session>.git`` starts from
  the revision's tree (a snapshot row at ``seq`` 0), a watcher records ``file.*`` events as the
  candidate, and a snapshot is committed ``SNAPSHOT_QUIET_S`` after the last change (at most
  ``SNAPSHOT_MAX_DELAY_S`` after the first), recorded as a ``snapshot`` event whose ``seq`` the
  ``snapshots`` table maps to the commit.
- At the end: pending terminal/kernel output is recorded, a final snapshot is taken, then the
  task's hidden checks run on the final state in a fresh sandbox (``hidden_checks``, given) and a
  ``checks.run`` event holds the results. After a restart, whatever the previous process
  could not finish (a session that ended while it was down, checks not yet run, live sessions
  restored before this service started) is picked up again.
- The hook and the taps record only between ``start`` and ``close``: the session manager's
  recovery (before ``start``) is picked up by ``_reconcile`` instead, as listed above.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar

from common.clock import now
from common.db import Database
from tasks import revisions
from tasks.revisions import Revision
from tasks.store import TaskStore
from workspaces import records
from workspaces import sessions as S
from workspaces.excerpt import safe_text
from workspaces.grading.queue import FairQueue
from workspaces.provisioner import WorkspaceInfo
from workspaces.recording import attribution, file_contents
from workspaces.recording import events as E
from workspaces.recording.archive import history_path, workspace_root
from workspaces.recording.casts import CastStore
from workspaces.recording.events import (
    Event,
    EventRecorder,
    RecorderClosed,
    StoredEvent,
    add_snapshot,
    encode_payload,
    last_seq,
)
from workspaces.recording.history import History
from workspaces.recording.taps import SessionTaps, Tap
from workspaces.recording.watcher import watch_workspace
from workspaces.upstream import HttpCall, LiveUpstreams, Principal, UpstreamClients

log = logging.getLogger(__name__)
T = TypeVar("T")
BATCH_MS = 20
"""Group-commit window of the event writer: what a kill -9 can lose at most, and the floor of
the event → observer latency (bench/events.py: ~11 ms median idle; 50 ms gave ~41 ms)."""
SNAPSHOT_QUIET_S = 1.5
SNAPSHOT_MAX_DELAY_S = 15.0
STOP_WAIT_S = max(attribution.SAVE_WAIT_S, attribution.REQUEST_WAIT_S) + 2.0
"""How long the file watcher gets to report its last changes when recording stops: longer than
attribution's waits, or a change waiting for a save or a request's answer would be lost."""
READY_WAIT_S = 10.0
WATCH_SETTLE_S = 0.5
"""At the end, how long the watcher gets to report its last debounce window (300 ms)."""
PARALLEL_CHECKS = 2
"""Check runs (hidden checks and continuous tests) at once for the whole server, at most one
per session (``check_queue.FairQueue``: sessions take turns)."""
_ENDED_UNRECORDED = """
SELECT s.id FROM interview_sessions s
WHERE s.state IN ('ended', 'failed') AND s.workspace_id IS NOT NULL
  AND EXISTS (SELECT 1 FROM events e WHERE e.session_id = s.id)
  AND NOT EXISTS (SELECT 1 FROM events e WHERE e.session_id = s.id AND e.kind = 'session.ended')
"""
_CHECKS_PENDING = """
SELECT s.id FROM interview_sessions s
WHERE s.workspace_id IS NOT NULL
  AND EXISTS (SELECT 1 FROM events e WHERE e.session_id = s.id AND e.kind = 'session.ended')
  AND NOT EXISTS (SELECT 1 FROM events e WHERE e.session_id = s.id AND e.kind = 'checks.run')
"""

UserIdOf = Callable[[Any, str], int]
"""(database, email) -> that user's id; raises when there is no such user (the accounts
domain's ``find_user``)."""


class HiddenChecks(Protocol):
    """Runs a revision's hidden checks on a session's final state (its workspace folder
    ``root`` if it is still there, else its history's last snapshot): the ``checks.run``
    payload."""

    async def __call__(self, session_id: str, rev: Revision, *, root: Path | None,
                       history: History) -> dict[str, Any]: ...


class VisibleTests(Protocol):
    """Runs a revision's visible tests on the snapshot ``commit``: the ``tests.run`` payload,
    or None when they are not runnable."""

    async def __call__(self, session_id: str, rev: Revision, commit: str, *,
                       history: History) -> dict[str, Any] | None: ...


@dataclass(eq=False)
class _Recording:
    """One session being recorded: its folder, history, watcher and pending snapshot."""

    session_id: str
    root: Path
    opened: asyncio.Task[History]
    """The history repository, once created from the revision's tree."""
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    watcher: asyncio.Task[None] | None = None
    debounce: asyncio.Task[None] | None = None
    dirty_since: float | None = None
    last_change: float = 0.0
    stopped: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    tests: asyncio.Task[None] | None = None
    """The running continuous visible-test run, if any."""
    tests_pending: str | None = None
    """A newer snapshot to test once the running one finishes (runs coalesce)."""


class RecordingService:
    """Records sessions. ``upstreams`` is the session manager's table of live workspaces (read
    only here), ``clients`` reach their jupyter-servers; ``on_lifecycle`` is the manager's hook
    and ``ws_tap``/``http_tap`` the proxy's."""

    def __init__(
        self, db: Database, store: TaskStore, data_dir: Path, *, upstreams: LiveUpstreams,
        clients: UpstreamClients, user_id_of: UserIdOf, hidden_checks: HiddenChecks,
        visible_tests: VisibleTests, continuous_checks: bool,
    ) -> None:
        self.db = db
        self.store = store
        self.data_dir = data_dir
        self.upstreams = upstreams
        self.user_id_of = user_id_of
        self.hidden_checks = hidden_checks
        self.visible_tests = visible_tests
        self.continuous_checks = continuous_checks
        """Run the visible tests on every snapshot (``tests.run`` events)."""
        self.recorder = EventRecorder(db.write_unsynced, db.read, batch_ms=BATCH_MS)
        self.taps = SessionTaps(upstreams, clients, self.record, db.write,
                                CastStore(db, data_dir))
        self.closing = asyncio.Event()
        """Set when the server shuts down: live streams end."""
        self._recording = False
        """Between ``start`` and ``close``: the lifecycle hook and the taps record."""
        self._live: dict[str, _Recording] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._poll: asyncio.Task[None] | None = None
        self._checks = FairQueue(slots=PARALLEL_CHECKS, per_session=1)

    def history(self, session_id: str) -> History:
        return History(history_path(self.data_dir, session_id))

    def _spawn(self, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- start and stop ---------------------------------------------------------------------

    async def start(self) -> None:
        await self.recorder.start()
        self._recording = True
        self._poll = asyncio.get_running_loop().create_task(self.taps.poll_loop())
        self._spawn(self._reconcile())

    async def close(self) -> None:
        self._recording = False
        self.closing.set()
        if self._poll is not None:
            self._poll.cancel()
            await asyncio.gather(self._poll, return_exceptions=True)
        for rec in list(self._live.values()):
            await self._stop(rec)
            await self._snapshot(rec, "server stopping")
        self._live.clear()
        await self.taps.finish_all()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.recorder.close()

    async def _reconcile(self) -> None:
        """Finish what the previous process could not (see the module doc)."""
        try:
            pending = await self.db.read(lambda d: d.execute(_CHECKS_PENDING).fetchall())
            for (session_id,) in pending:
                self._spawn(self._hidden_checks(session_id))
            if self.taps.casts is not None and (cut := await self.taps.casts.close_cut()):
                log.info("closed %d terminal casts the previous run left open", cut)
            ended = await self.db.read(lambda d: d.execute(_ENDED_UNRECORDED).fetchall())
            for (session_id,) in ended:
                await self._end(session_id, {"why": "ended while pairlab was not running"})
            for workspace_id, (_, session_id) in list(self.upstreams.items()):
                row = await self.db.read(partial(_root_of, workspace_id=workspace_id))
                if row is not None and session_id not in self._live:
                    await self.record(Event(session_id, E.ACTOR_SYSTEM, E.WORKSPACE_RESTARTED,
                                            payload={"workspace_id": workspace_id,
                                                     "after": "server restart"}))
                    await self._begin(session_id, row)
        except Exception:
            log.exception("could not pick up the recording work of the previous run")

    # -- recording --------------------------------------------------------------------------

    async def record(self, event: Event) -> None:
        """Queue an event (waits while the queues are full); stored, then shown."""
        try:
            await self.recorder.record(event)
        except RecorderClosed:
            log.warning("%s of session %s not recorded: the recorder is closed", event.kind,
                        event.session_id)

    async def record_stored(self, event: Event) -> StoredEvent:
        """Record ``event`` and return it once stored (with its ``seq``)."""
        sid = safe_text(event.session_id)
        after = self.recorder.published_seq(sid)
        if after is None:
            after = await self.db.read(lambda d: last_seq(d, sid))
        payload_json = encode_payload(event.payload)
        actor = safe_text(event.actor)
        async with self.recorder.subscribe(sid, after) as sub:
            await self.recorder.record(event)
            async for stored in sub:
                if stored.kind == event.kind and stored.actor == actor and \
                        stored.at == event.at and stored.payload_json == payload_json:
                    return stored
        raise RecorderClosed("the recorder closed before the event was stored")

    async def first_cell(self, session_id: str, limit_s: float) -> bool | None:
        """True once a cell of the session has run (its ``cell.executed`` is stored, now or
        before), False after ``limit_s`` seconds without one, None if the recorder closed."""
        try:
            async with asyncio.timeout(limit_s), \
                    self.recorder.subscribe(safe_text(session_id)) as sub:
                async for stored in sub:
                    if stored.kind == E.CELL_EXECUTED:
                        return True
        except TimeoutError:
            return False
        return None

    async def _actor(self, label: Any) -> tuple[str, dict[str, str]]:
        """The event actor for an audit label (an email, ``candidate:…``, ``system``)."""
        if not isinstance(label, str) or label in ("", "system", "cli"):
            return E.ACTOR_SYSTEM, {}
        if label.startswith("candidate:"):
            return E.ACTOR_CANDIDATE, {}
        if "@" in label:
            try:
                user_id = await self.db.read(lambda d: self.user_id_of(d, label))
            except Exception:  # noqa: S110 - an unknown label is kept as text below
                pass
            else:
                return E.interviewer_actor(user_id), {}
        return E.ACTOR_SYSTEM, {"by": label[:200]}

    # -- the proxy's taps -------------------------------------------------------------------

    async def ws_tap(self, workspace_id: str, path: str, subprotocol: str,
                     who: Principal) -> Tap | None:
        """The proxy's ``TapFactory``: a tap for this WebSocket (none outside start..close)."""
        if not self._recording:
            return None
        return await self.taps.ws_tap(workspace_id, path, subprotocol, who)

    def http_tap(self, workspace_id: str, method: str, path: str,
                 who: Principal) -> HttpCall | None:
        """The proxy's ``HttpTap`` (nothing is recorded outside start..close)."""
        if not self._recording:
            return None
        return self.taps.http_tap(workspace_id, method, path, who)

    # -- the lifecycle hook -----------------------------------------------------------------

    async def on_lifecycle(self, kind: str, session_id: str, info: WorkspaceInfo | None,
                           detail: dict[str, Any]) -> None:
        """The session manager's ``LifecycleHook`` (nothing is recorded outside start..close:
        ``_reconcile`` picks up what happened before)."""
        if not self._recording:
            return
        workspace = {"workspace_id": info.workspace_id} if info is not None else {}
        if kind == "live" and info is not None:
            actor, extra = await self._actor(detail.get("by"))
            await self.record(Event(session_id, actor, E.SESSION_STARTED, payload=extra))
            await self.record(Event(session_id, E.ACTOR_SYSTEM, E.WORKSPACE_READY,
                                    payload=workspace))
            await self._begin(session_id, info.root)
        elif kind == "restarted" and info is not None:
            await self.record(Event(session_id, E.ACTOR_SYSTEM, E.WORKSPACE_RESTARTED, payload={
                **workspace, "after": str(detail.get("after", ""))}))
            await self._begin(session_id, info.root)
        elif kind == "crashed":
            await self.record(Event(session_id, E.ACTOR_SYSTEM, E.WORKSPACE_CRASHED,
                                    payload=workspace))
        elif kind == "failed":
            actor, extra = await self._actor(detail.get("by"))
            await self.record(Event(session_id, actor, E.WORKSPACE_FAILED, payload={
                **workspace, **extra, "reason": str(detail.get("reason", ""))[:500]}))
        elif kind == "extended":
            actor, extra = await self._actor(detail.get("by"))
            await self.record(Event(session_id, actor, E.TIME_EXTENDED, payload={
                "minutes": detail.get("minutes"), "ends_at": detail.get("ends_at"), **extra}))
        elif kind == "ended":
            await self._end(session_id, detail)

    async def _begin(self, session_id: str, root: Path) -> None:
        """Start recording the workspace; returns once its watcher is watching (so nothing the
        candidate does after the workspace is handed over is missed)."""
        rec = self._live.get(session_id)
        if rec is not None:  # back after a crash: same folder, same watcher
            rec.root = root
            self._dirty(rec)
            return
        rec = _Recording(session_id, root, self._spawn(self._open_history(session_id)))
        self._live[session_id] = rec
        ready = asyncio.Event()
        rec.watcher = self._spawn(self._watch(rec, ready))
        waiting = self._spawn(ready.wait())
        await asyncio.wait({waiting, rec.watcher}, timeout=READY_WAIT_S,
                           return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        self._dirty(rec)  # anything changed before the watch began is in the next snapshot

    async def _open_history(self, session_id: str) -> History:
        """The session's history, created from the revision's tree if new."""
        session = await self.db.read(lambda d: S.get_session(d, session_id))
        tree = self.store.tree(session.task_id, session.revision_id)
        history = self.history(session_id)
        when = S.parse_time(session.started_at) if session.started_at else now()
        first = await history.ainit(tree, when)
        await self.db.write(lambda d: add_snapshot(d, session_id, 0, first, when))
        return history

    async def _watch(self, rec: _Recording, ready: asyncio.Event) -> None:
        try:
            async for batch in watch_workspace(rec.root, stop_event=rec.stop, ready=ready,
                                               keep_content=file_contents.KEEP_PER_BATCH):
                await file_contents.keep(self.db, rec.session_id, batch)
                for change in batch:
                    actor, why = await self.taps.attribute(rec.session_id, change.path,
                                                           change.sha256, change.old_path)
                    await self.record(Event(rec.session_id, actor, change.event_kind,
                                            change.path, {**change.payload(), **why}))
                self._dirty(rec)
        except Exception:
            log.exception("the file watcher of session %s stopped", rec.session_id)

    def _dirty(self, rec: _Recording) -> None:
        now = asyncio.get_running_loop().time()
        rec.last_change = now
        if rec.dirty_since is None:
            rec.dirty_since = now
        if not rec.stopped and (rec.debounce is None or rec.debounce.done()):
            rec.debounce = self._spawn(self._debounced(rec))

    async def _debounced(self, rec: _Recording) -> None:
        loop = asyncio.get_running_loop()
        while rec.dirty_since is not None and not rec.stopped:
            due = min(rec.last_change + SNAPSHOT_QUIET_S, rec.dirty_since + SNAPSHOT_MAX_DELAY_S)
            if (delay := due - loop.time()) > 0:
                await asyncio.sleep(delay)  # the debounce itself, not a readiness wait
                continue
            rec.dirty_since = None
            await self._snapshot(rec, "snapshot")

    async def _snapshot(self, rec: _Recording, label: str) -> str | None:
        """Commit the workspace if it changed; record the ``snapshot`` event and its row."""
        async with rec.lock:
            when = now()
            try:
                history = await rec.opened
                sha = await history.asnapshot(rec.root, when, label)
            except Exception:
                log.exception("snapshot of session %s failed", rec.session_id)
                return None
            if sha is None:
                return None
            try:
                stored = await self.record_stored(Event(
                    rec.session_id, E.ACTOR_SYSTEM, E.SNAPSHOT, "",
                    {"commit": sha, "label": label}, when))
            except RecorderClosed:
                log.warning("snapshot %s of %s has no event: the recorder closed", sha,
                            rec.session_id)
                return sha
            await self.db.write(lambda d: add_snapshot(d, rec.session_id, stored.seq, sha, when))
            if self.continuous_checks:
                self._schedule_tests(rec, sha)
            return sha

    def _schedule_tests(self, rec: _Recording, sha: str) -> None:
        """Run the visible tests on this snapshot, or on the newest one after the current run."""
        if rec.tests is not None and not rec.tests.done():
            rec.tests_pending = sha
            return
        rec.tests = self._spawn(self._tests_loop(rec, sha))

    async def _tests_loop(self, rec: _Recording, sha: str | None) -> None:
        session = await self.db.read(lambda d: S.get_session(d, rec.session_id))
        rev = await self.db.read(lambda d: revisions.get_revision(d, session.revision_id))
        while sha is not None:
            async with self._checks.slot(rec.session_id):
                payload = await self.visible_tests(
                    rec.session_id, rev, sha, history=self.history(rec.session_id))
            if payload is not None:
                try:
                    await self.record(Event(rec.session_id, E.ACTOR_SYSTEM, E.TESTS_RUN,
                                            payload=payload))
                except RecorderClosed:
                    return
            sha, rec.tests_pending = rec.tests_pending, None

    async def _stop(self, rec: _Recording, *, settle: bool = False) -> None:
        """Stop the watcher and the debounce (a snapshot being written is let finish);
        ``settle``: first let the watcher report the changes of its last window."""
        if settle and rec.watcher is not None and not rec.watcher.done():
            await asyncio.sleep(WATCH_SETTLE_S)
        rec.stopped = True
        rec.stop.set()
        debounce = rec.debounce
        if debounce is not None and not debounce.done():
            if not rec.lock.locked():
                debounce.cancel()
            await asyncio.gather(debounce, return_exceptions=True)
        if rec.watcher is not None:
            done, _ = await asyncio.wait({rec.watcher}, timeout=STOP_WAIT_S)
            if not done:
                rec.watcher.cancel()
                await asyncio.gather(rec.watcher, return_exceptions=True)

    async def _end(self, session_id: str, detail: dict[str, Any]) -> None:
        actor, extra = await self._actor(detail.get("by"))
        await self.taps.finish_session(session_id)
        rec = self._live.pop(session_id, None)
        if rec is not None:
            await self._stop(rec, settle=True)
        else:
            rec = await self._offline(session_id)
        if rec is not None:
            await self._snapshot(rec, "final")
        await self.record(Event(session_id, actor, E.SESSION_ENDED, payload={
            "why": str(detail.get("why", ""))[:300], **extra}))
        self._spawn(self._hidden_checks(session_id))

    async def _offline(self, session_id: str) -> _Recording | None:
        """A stopped session's folder and history (for its final snapshot), if it has one."""
        try:
            session = await self.db.read(lambda d: S.get_session(d, session_id))
            root = await self.db.read(lambda d: workspace_root(d, session))
            if root is None:
                return None
            rec = _Recording(session_id, root, self._spawn(self._open_history(session_id)))
            rec.stopped = True
            return rec
        except Exception:
            log.exception("could not open the recording of session %s", session_id)
            return None

    # -- hidden checks ----------------------------------------------------------------------

    async def _hidden_checks(self, session_id: str) -> None:
        async with self._checks.slot(session_id):
            payload = await self._run_hidden_checks(session_id)
        if payload is not None:
            await self.record(Event(session_id, E.ACTOR_SYSTEM, E.CHECKS_RUN, payload=payload))

    async def _run_hidden_checks(self, session_id: str) -> dict[str, Any] | None:
        session = await self.db.read(lambda d: S.get_session(d, session_id))
        if not session.workspace_id:
            return None
        rev = await self.db.read(lambda d: revisions.get_revision(d, session.revision_id))
        root = await self.db.read(lambda d: workspace_root(d, session))
        return await self.hidden_checks(session.id, rev, root=root,
                                        history=self.history(session_id))


def _root_of(d: Any, workspace_id: str) -> Path | None:
    row = records.get(d, workspace_id)
    return Path(row["root"]) if row is not None else None
