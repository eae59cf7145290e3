"""The interview session lifecycle: provisioning, the warm pool, deadlines, crashes, and
recovery after a restart. Domain rules live in ``workspaces.sessions``; this engine drives them
with the provisioner, the database writer and the table of live upstreams (which the proxy and
the recorder read). It knows no web framework: the server builds it (``server/sessions/
wiring.py``) with everything it needs, the recorder's lifecycle hook included.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from common import audit
from common.db import Database
from tasks import revisions
from tasks.store import TaskStore
from workspaces import records
from workspaces import sessions as S
from workspaces.admission import AdmissionGate
from workspaces.environments import EnvironmentBuildFailed, ensure_environment
from workspaces.provisioner import (
    Provisioner,
    SpareKernel,
    WorkspaceInfo,
    WorkspaceSpec,
    new_workspace_id,
)
from workspaces.sandbox.bwrap import WORKSPACE_UIDS
from workspaces.sandbox.cgroups import pids_of_uid
from workspaces.session_errors import (
    LinkClosed,
    SessionConflict,
    SessionError,
    WorkspaceUnavailable,
)
from workspaces.upstream import LiveUpstreams, Upstream, UpstreamClients
from workspaces.warm_pool import WarmPool

log = logging.getLogger(__name__)


class LifecycleHook(Protocol):
    """Told about lifecycle moments: ``kind`` is live, ended, crashed, restarted, extended or
    failed (the workspace could not be started; ``detail["reason"]`` says why)."""

    async def __call__(self, kind: str, session_id: str, info: WorkspaceInfo | None,
                       detail: dict[str, Any]) -> None: ...


EndSession = Callable[[Any, str, audit.Actor, str], S.Session]
"""The write transaction that ends a session (database, session id, actor, why): the server's
``scheduling.end``, which also queues the ``session.ended`` webhook."""
StartHook = Callable[[Any, S.Session], None]
"""Run inside the write transaction that starts a session (database, session): the scoring
domain's ``session_scoring.repin_at_start`` (the rubric version is pinned at the start)."""
FirstCell = Callable[[str, float], Awaitable[bool | None]]
"""Waits until the session's first cell has run (True), at most that many seconds (False), or
until the recorder closes (None: pairlab is shutting down): the recorder's ``first_cell``."""
UID_RANGE = WORKSPACE_UIDS
HANDOFF_TTL = timedelta(seconds=60)
WATCH_INTERVAL_S = 2.0
REFILL_AFTER_S = 20.0
"""A claimed workspace is replaced in the pool after the session's first cell has run, or after
this long without one: a refill (a jupyter-server and its spare kernel starting, ~1.5 CPU
seconds) during the candidate's first cell would compete with it."""


class SessionManager:
    """Starts, watches and ends sessions' workspaces. ``upstreams`` (shared with the proxy and
    the recorder) is written here only; ``hooks`` are told of every lifecycle moment."""

    def __init__(
        self, db: Database, provisioner: Provisioner, store: TaskStore, envs_root: Path, *,
        uid_base: int, warm_pool_size: int, workspace_url: str, end: EndSession,
        on_start: StartHook, upstreams: LiveUpstreams, clients: UpstreamClients,
        hooks: Sequence[LifecycleHook] = (), first_cell: FirstCell | None = None,
        gate: AdmissionGate | None = None,
    ) -> None:
        self.db = db
        self.provisioner = provisioner
        self.store = store
        self.envs_root = envs_root
        self.uid_base = uid_base
        self.workspace_url = workspace_url
        """Where interviewers' handoff links point (the workspace origin)."""
        self._end = end
        self._on_start = on_start
        self.upstreams = upstreams
        self.clients = clients
        self.hooks = tuple(hooks)
        self._first_cell = first_cell
        self.refill_after_s = REFILL_AFTER_S
        self.gate = gate or AdmissionGate()
        """Cold starts (a session's or a refill's) wait their turn here; warm claims do not."""
        self._uids: set[int] = set()
        self.pool = WarmPool(db, provisioner, warm_pool_size, self._start_workspace)
        self._locks: dict[str, asyncio.Lock] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._stopping: set[str] = set()

    # ---- helpers -----------------------------------------------------------------------

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _lock(self, session_id: str) -> asyncio.Lock:
        return self._locks.setdefault(session_id, asyncio.Lock())

    def _allocate_uid(self) -> int:
        base = self.uid_base
        for uid in range(base, base + UID_RANGE):
            # A uid that still runs processes (another pairlab, a stale sandbox) is skipped.
            if uid not in self._uids and not pids_of_uid(uid):
                self._uids.add(uid)
                return uid
        raise SessionError("no free sandbox uid is left; end some sessions first")

    def _register(self, info: WorkspaceInfo, session_id: str) -> None:
        upstream = Upstream(info.workspace_id, str(info.socket_path), info.token, info.server)
        self.upstreams[info.workspace_id] = (upstream, session_id)

    async def _env_python(self, requirements: Sequence[str]) -> Path:
        try:
            return await asyncio.to_thread(ensure_environment, self.envs_root, requirements)
        except EnvironmentBuildFailed as exc:
            raise WorkspaceUnavailable(
                f"the task environment could not be built: {exc.message}") from None

    async def _start_workspace(self, env_python: Path, session_id: str | None) -> WorkspaceInfo:
        """A cold start, for the session ``session_id`` or (None) a pool refill, once the
        admission gate lets it in."""
        async with self.gate.slot(session_id, refill=session_id is None):
            uid = self._allocate_uid()
            # While other sessions wait to start, this session's spare kernel (~0.5 s of a core)
            # starts when its JupyterLab loads, not with the server: the starts behind it go
            # sooner. A pool refill's always starts with it (whoever claims it gets it ready).
            spare: SpareKernel = "lab_load" \
                if session_id is not None and self.gate.waiting_sessions else "now"
            spec = WorkspaceSpec(new_workspace_id(), uid, env_python, spare_kernel=spare)
            try:
                return await self.provisioner.start(spec)
            except BaseException:
                self._uids.discard(uid)
                raise

    # ---- warm pool ----------------------------------------------------------------------

    async def warm_up(self) -> None:
        """Start warm pools for the environments of every published task."""
        if self.pool.size < 1:
            return
        current = await self.db.read(revisions.list_revisions)
        wanted = {tuple(r.requirements) for r in current if r.is_current}
        for requirements in sorted(wanted):
            try:
                self.pool.refill(await self._env_python(requirements))
            except Exception:
                log.exception("could not build the environment for %s", requirements)

    # ---- lifecycle ----------------------------------------------------------------------

    async def start_session(self, session_id: str, actor: audit.Actor) -> S.Session:
        async with self._lock(session_id):
            session = await self.db.read(lambda d: S.get_session(d, session_id))
            if session.state in ("provisioning", "live"):
                return session
            if not session.link_open():
                raise LinkClosed("this session is not open now (before its start or ended)")
            session = await self.db.write(lambda d: _begin(d, session_id, actor, self._on_start))
            try:
                rev = await self.db.read(lambda d: revisions.get_revision(d, session.revision_id))
                env_python = await self._env_python(rev.requirements)
                info = await self.pool.claim(env_python, session_id)
                await self.provisioner.fill(info, self.store.tree(rev.task_id, rev.id))
            except Exception as exc:
                reason = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
                log.warning("session %s failed to start: %s", session_id, reason)
                await self.db.write(lambda d: _fail(d, session_id, str(reason)))
                await self._emit("failed", session_id, None, {"by": actor.label,
                                                              "reason": str(reason)})
                if isinstance(exc, SessionError) or getattr(exc, "status", None):
                    raise
                raise WorkspaceUnavailable(f"the workspace could not be started: {reason}") \
                    from exc
            self._register(info, session_id)
            session = await self.db.write(lambda d: _go_live(d, session_id, info, actor))
            await self._emit("live", session_id, info, {"by": actor.label})
            self._spawn(self._watch(info, session_id))
            if self.pool.size > 0:
                self._spawn(self._refill_after_first_cell(env_python, session_id))
            return session

    async def _refill_after_first_cell(self, env_python: Path, session_id: str) -> None:
        """Refill the pool once the session's first cell has run (or ``REFILL_AFTER_S``)."""
        if self._first_cell is not None and \
                await self._first_cell(session_id, self.refill_after_s) is None:
            return  # shutting down: no workspace is started now
        self.pool.refill(env_python)

    async def _emit(self, kind: str, session_id: str, info: WorkspaceInfo | None,
                    detail: dict[str, Any]) -> None:
        for hook in self.hooks:
            try:
                await hook(kind, session_id, info, detail)
            except Exception:
                log.exception("lifecycle hook failed for %s %s", kind, session_id)

    def refill_for(self, revision_id: str) -> None:
        """Make sure the revision's environment has a warm pool (in the background)."""

        async def run() -> None:
            rev = await self.db.read(lambda d: revisions.get_revision(d, revision_id))
            self.pool.refill(await self._env_python(rev.requirements))

        if self.pool.size > 0:
            self._spawn(run())

    async def extend(self, session_id: str, minutes: int, actor: audit.Actor) -> S.Session:
        def run(d: Any) -> S.Session:
            session = S.extend(d, session_id, minutes)
            audit.record(d, actor, "session.extend", "session", session_id, minutes=minutes)
            return session

        session = await self.db.write(run)
        await self._emit("extended", session_id, None, {"minutes": minutes, "by": actor.label,
                                                        "ends_at": session.ends_at})
        return session

    async def handoff_url(self, session_id: str, actor: audit.Actor) -> str:
        """A one-time link that lets the interviewer ``actor`` (a user, with the address they
        asked from) into the workspace origin."""
        session = await self.db.read(lambda d: S.get_session(d, session_id))
        if session.state != "live":
            raise SessionConflict(f"the session is {session.state}; there is no workspace to join")

        def run(d: Any) -> str:
            token = S.grant(d, session_id, "handoff", user_id=actor.user_id, ttl=HANDOFF_TTL,
                            address=actor.address)
            audit.record(d, actor, "session.join", "session", session_id)
            return token

        token = await self.db.write(run)
        return f"{self.workspace_url}/handoff/{token}"

    async def end_session(self, session_id: str, actor: audit.Actor, why: str) -> S.Session:
        async with self._lock(session_id):
            session = await self.db.read(lambda d: S.get_session(d, session_id))
            if session.state in ("ended", "failed"):
                return session
            ended = await self._end_now(session_id, actor, why)
            if ended is None:  # moved on meanwhile: as it is now
                ended = await self.db.read(lambda d: S.get_session(d, session_id))
            return ended

    async def _end_now(self, session_id: str, actor: audit.Actor,
                       why: str) -> S.Session | None:
        """End the session (the caller holds its lock, or deliberately does not): the state,
        its workspaces stopped, the event. None if it moved on meanwhile (the write refused)."""
        try:
            session = await self.db.write(lambda d: self._end(d, session_id, actor, why))
        except SessionConflict:
            return None
        if session.workspace_id:
            await self._stop_workspace(session.workspace_id)
        else:  # never live: a workspace claimed for it before a start failed half-way
            await self._stop_claimed(session_id)
        await self._emit("ended", session_id, None, {"by": actor.label, "why": why})
        return session

    async def _stop_workspace(self, workspace_id: str) -> None:
        self._stopping.add(workspace_id)
        self.upstreams.pop(workspace_id, None)
        await self.clients.drop(workspace_id)
        row = await self.db.read(lambda d: records.get(d, workspace_id))
        if row is None:
            return
        info = records.info_from_row(row)
        try:
            await self.provisioner.stop(info)
            await self.provisioner.make_read_only(info)
        finally:
            self._uids.discard(info.uid)
            await self.db.write(lambda d: records.set_state(d, workspace_id, "stopped"))

    async def _watch(self, info: WorkspaceInfo, session_id: str) -> None:
        """Restart a crashed jupyter-server while its session is live."""
        while info.workspace_id not in self._stopping:
            await asyncio.sleep(WATCH_INTERVAL_S)
            if info.workspace_id in self._stopping:
                return
            if await self.provisioner.status(info) == "running":
                continue
            log.warning("workspace %s of session %s crashed; restarting", info.workspace_id,
                        session_id)
            await self._emit("crashed", session_id, info, {})
            try:
                info = await self.provisioner.restore(info)
            except Exception:
                log.exception("could not restart workspace %s", info.workspace_id)
                continue
            self._register(info, session_id)
            await self.db.write(partial(_restarted, info=info, session_id=session_id))
            await self._emit("restarted", session_id, info, {"after": "crash"})

    async def deadline_loop(self) -> None:
        while True:
            await asyncio.sleep(WATCH_INTERVAL_S)
            try:
                open_ = await self.db.read(
                    lambda d: S.sessions_in_state(d, "scheduled", "provisioning", "live"))
                for session in open_:
                    if session.seconds_left() == 0:
                        await self._end_overdue(session)
                live_ids = {s.id for s in open_ if s.state == "live"}
                for workspace_id, (_, session_id) in list(self.upstreams.items()):
                    if session_id in live_ids:
                        continue
                    # Read again: a session being started registers its upstream before it is
                    # live in the database, possibly after ``live`` was read; only one that
                    # ended elsewhere (e.g. the CLI) is stopped.
                    current = await self.db.read(partial(S.get_session, session_id=session_id))
                    if current.state in ("ended", "failed"):
                        await self._stop_workspace(workspace_id)
                        await self._emit("ended", session_id, None, {"why": "ended elsewhere"})
            except Exception:
                log.exception("deadline check failed")

    async def _end_overdue(self, session: S.Session) -> None:
        """End a session whose scheduled end has passed, whatever its state: live, never
        started, or stuck starting (a workspace claimed and never live would otherwise run
        for good). A start still under way holds the session's lock, maybe for ever (a hung
        claim or fill): it is not waited for. The session is ended and the workspaces claimed
        for it are stopped now; should that start come back, it finds the session ended (its
        move to live is refused) and an upstream it registered is stopped at the next check."""
        if session.state == "live" or not self._lock(session.id).locked():
            await self.end_session(session.id, audit.SYSTEM, "time is up")
            return
        # Should it have moved on meanwhile (live, failed or ended), the next check sees it.
        await self._end_now(session.id, audit.SYSTEM, "time is up before the workspace was ready")

    async def _stop_claimed(self, session_id: str) -> None:
        """Stop every workspace still claimed for the session (its ``workspace_id`` is set
        only once it is live)."""
        for workspace_id in await self.db.read(partial(records.live_of_session,
                                                       session_id=session_id)):
            await self._stop_workspace(workspace_id)

    async def recover(self) -> None:
        """After a restart: warm leftovers are removed, live workspaces come back."""
        await self.pool.recover()
        await self.db.write(_reset_provisioning)
        for row in await self.db.read(lambda d: records.in_state(d, "live")):
            info = records.info_from_row(row)
            session_id = row["session_id"]
            session = await self.db.read(partial(S.get_session, session_id=session_id))
            self._uids.add(info.uid)
            if session.state != "live" or session.seconds_left() == 0:
                await self._stop_workspace(info.workspace_id)
                if session.state == "live":
                    await self.end_session(session.id, audit.SYSTEM, "time ran out while down")
                continue
            try:
                info = await self.provisioner.restore(info)
            except Exception as exc:
                log.exception("could not restore workspace %s", info.workspace_id)
                reason = f"the workspace could not be restored: {exc}"
                await self.db.write(partial(_fail, session_id=session_id, reason=reason))
                await self._emit("failed", session_id, info, {"reason": reason})
                continue
            self._register(info, session_id)
            await self.db.write(partial(_restarted, info=info, session_id=session_id))
            await self._emit("restarted", session_id, info, {"after": "server restart"})
            self._spawn(self._watch(info, session_id))
        sweep = getattr(self.provisioner, "sweep", None)
        if sweep is not None:  # disk images no restored workspace uses (see LocalProvisioner)
            await sweep()

    async def close(self) -> None:
        for task in list(self._background):
            task.cancel()
        await self.pool.cancel_fills()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.pool.close()
        close = getattr(self.provisioner, "close", None)
        if close is not None:  # live workspaces stop now and are restored at the next start
            await close()
        await self.clients.close()


# ---- write-transaction bodies ------------------------------------------------------------


def _begin(d: Any, session_id: str, actor: audit.Actor, on_start: StartHook) -> S.Session:
    session = S.set_state(d, session_id, "provisioning", expect=("scheduled",))
    on_start(d, session)
    audit.record(d, actor, "session.start", "session", session_id)
    return session


def _fail(d: Any, session_id: str, reason: str) -> None:
    S.set_state(d, session_id, "failed", expect=("provisioning", "live"), reason=reason[:500])
    audit.record(d, audit.SYSTEM, "session.failed", "session", session_id, reason=reason[:500])


def _go_live(d: Any, session_id: str, info: WorkspaceInfo, actor: audit.Actor) -> S.Session:
    return S.set_state(
        d, session_id, "live", expect=("provisioning",), workspace_id=info.workspace_id
    )


def _restarted(d: Any, info: WorkspaceInfo, session_id: str) -> None:
    records.update_process(d, info, restarted=True)
    audit.record(d, audit.SYSTEM, "workspace.restarted", "session", session_id,
                 workspace=info.workspace_id)


def _reset_provisioning(d: Any) -> None:
    for session in S.sessions_in_state(d, "provisioning"):
        S.set_state(d, session.id, "scheduled", expect=("provisioning",))
