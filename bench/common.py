"""Shared pieces of the workspace benchmarks: the real app on loopback ports (``Stack``),
statistics and printing, the machine's load, and Jupyter kernel-protocol round trips.

Everything talks to 127.0.0.1 or to Unix sockets. A ``Stack`` owns a short data folder under
/tmp (AF_UNIX socket paths must stay under 108 bytes) and a random range of sandbox uids (other
runs on this machine may be using some); leaving it ends every session it started, stops the
app (warm pool and all), checks that no process of its uids is left, and removes the folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import random
import re
import shutil
import socket
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import nbformat
from aiohttp import WSMsgType, web
from yarl import URL

from common import audit
from common.loopback import LoopbackResolver
from server.app import create_app
from server.db import open_migrated
from server.http.accesslog import ScrubbedAccessLogger
from server.people import accounts as people
from server.people.passwords import hash_password
from server.sessions.keys import SESSIONS
from server.sessions.wiring import WORKSPACE_APP
from server.settings import Settings, prepare_data_dir
from tasks import revisions
from tasks.importer import Prepared, install_revision
from tasks.store import TaskStore
from tasks.treerepo import STARTING_POINT, commit_tree
from workspaces.lifecycle import SessionManager
from workspaces.recording.kernel_messages import V1_PROTOCOL
from workspaces.sandbox.cgroups import pids_of_uid
from workspaces.sandbox.peer import PeerCheckedConnector
from workspaces.sandbox.run import sandbox_uids
from workspaces.sandbox.uid_locks import uid_block
from workspaces.upstream import Upstream

SHORT_TMP = "/tmp"  # noqa: S108 - short on purpose: AF_UNIX socket paths are <= 107 bytes
EMAIL = "bench@example.com"
PASSWORD = "correct horse battery"  # noqa: S105 - a throwaway user in a throwaway database
TASK = "bench-task"
# Task environments are keyed by their requirements and built atomically: the benchmarks share
# the folder the test suite builds its empty-requirements environment in (built once a machine).
SHARED_ENVS = Path(tempfile.gettempdir()) / "pairlab-test-envs"
Clock = Callable[[], float]
now: Clock = time.perf_counter


# ---- statistics and printing ---------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); ``q`` in 0..100."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def fmt(seconds: float, unit: str = "ms") -> str:
    if math.isnan(seconds):
        return "n/a"
    return f"{seconds * 1000:.2f} ms" if unit == "ms" else f"{seconds:.3f} s"


def row(label: str, values: Sequence[float], unit: str = "ms", p99: bool = False) -> str:
    """``label  n=.. p50 .. p95 .. [p99 ..] min .. max ..`` (values in seconds)."""
    parts = [f"{label:<46} n={len(values):<4}",
             f"p50 {fmt(median(values), unit):>11}", f"p95 {fmt(percentile(values, 95), unit):>11}"]
    if p99:
        parts.append(f"p99 {fmt(percentile(values, 99), unit):>11}")
    if values:
        parts += [f"min {fmt(min(values), unit):>11}", f"max {fmt(max(values), unit):>11}"]
    return "  ".join(parts)


def verdict(value: float, limit: float) -> str:
    return "meets" if value <= limit else "MISSES"


def load_line(when: str) -> str:
    one, five, fifteen = os.getloadavg()
    line = (f"[{when}] os.getloadavg() = ({one:.2f}, {five:.2f}, {fifteen:.2f}) on "
            f"{os.cpu_count()} CPUs")
    if one > 2:
        line += ("  <- LOADED: load average > 2 (other work on this machine); "
                 "latencies are pessimistic")
    return line


def header(title: str, argv: Sequence[str]) -> None:
    print(f"== {title} ==")
    print("command:", " ".join(argv))
    print(load_line("start"))


# ---- the app on loopback -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def task_files() -> dict[str, str]:
    """The benchmark task's tree: a script, notes and a one-cell notebook."""
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("print('answer', 6 * 7)", id="c1")])
    return {"main.py": "print('hello')\n", "notes.md": "# Notes\n",
            "explore.ipynb": nbformat.writes(notebook)}


def env_uid_base() -> int | None:
    """``$PAIRLAB_SANDBOX_UID_BASE`` when it is a number (a benchmark run beside the tests or
    another pairlab gives its own block), else None."""
    raw = os.environ.get("PAIRLAB_SANDBOX_UID_BASE", "")
    return int(raw) if raw.isdigit() else None


UID_BLOCK_STEP = 2000
"""Apart from one benchmark pairlab's sandbox uid base to the next (a block is 1064 uids)."""


def sandbox_uid_base() -> int:
    """The sandbox uid block of a benchmark's pairlab: ``env_uid_base()``, else a random one.
    ``Stack`` holds its block host-wide while it runs (``uid_locks.uid_block``, as ``pairlab
    serve`` does): one overlapping another running pairlab's is refused, never shared."""
    given = env_uid_base()
    return given if given is not None else random.randrange(100_000, 4_000_000, UID_BLOCK_STEP)


def publish_task(settings: Settings, files: dict[str, str] | None = None) -> str:
    """The benchmark task (main.py, notes.md, a notebook, and ``files``) installed by the
    importer's own last step (``install_revision``, as if its checks had passed) and published,
    and the benchmark's interviewer."""
    staged = Path(tempfile.mkdtemp(dir=settings.data_dir)) / "staged"
    tree = staged / "tree"
    tree.mkdir(parents=True)
    for name, text in {**task_files(), **(files or {})}.items():
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_text(text)
    meta = {"brief.md": "Brief of the benchmark task\n", "guide.md": "## Hint ladder\n",
            "report.json": json.dumps({"blockers": []}), "diff.json": "[]"}
    for name, text in meta.items():
        (staged / name).write_text(text)
    revision = revisions.NewRevision(
        task_id=TASK, title="Benchmark task", kind="eval-script", roles=("ml-engineer",),
        duration_minutes=60, requirements=(), visible_check="python -m pytest -q",
        source_url="file:///bench", source_ref="", source_subdir="", source_commit="0" * 40,
        tree_commit=commit_tree(tree, STARTING_POINT), blockers=(), created_by="bench",
    )
    db = open_migrated(settings.db_path)
    try:
        with db.atomic():
            rev = install_revision(db, TaskStore(settings.data_dir / "tasks"),
                                   Prepared(staged, revision, {}))
            revisions.publish(db, rev.id)
            people.add_user(db, audit.CLI, EMAIL, "interviewer", hash_password(PASSWORD))
    finally:
        db.conn.close()
    return rev.id


@dataclass(frozen=True)
class Scheduled:
    session_id: str
    link: str


class Candidate:
    """The candidate's side of running workspaces: ``cand``, a browser holding the candidate
    cookies, reaching each workspace's own origin through pairlab's proxy. A ``Stack`` is one;
    a load client in another process builds one from the same settings and saved cookies."""

    settings: Settings
    cand: aiohttp.ClientSession

    def proxied(self, workspace_id: str, tail: str) -> str:
        return f"{self.settings.workspace_origin(workspace_id)}/w/{workspace_id}/{tail}"

    async def new_kernel(self, workspace_id: str) -> str:
        async with self.cand.post(self.proxied(workspace_id, "api/kernels"),
                                  json={"name": "python3"},
                                  headers={"Origin": self.settings.workspace_origin(
                                      workspace_id)}) as resp:
            assert resp.status == 201, await resp.text()
            return str((await resp.json())["id"])

    async def proxied_channels(self, workspace_id: str, kernel_id: str,
                               v1: bool = False) -> aiohttp.ClientWebSocketResponse:
        """``v1``: ask for JupyterLab 4's framing (``exchange`` speaks it)."""
        url = self.proxied(workspace_id, f"api/kernels/{kernel_id}/channels"
                                         f"?session_id={uuid.uuid4().hex}")
        # compress=15: permessage-deflate offered, as Chromium offers it on every WebSocket
        return await framed(await self.cand.ws_connect(
            url, origin=self.settings.workspace_origin(workspace_id), max_msg_size=0,
            compress=15, protocols=[V1_PROTOCOL] if v1 else ()), v1)


class Client(Candidate):
    """The HTTP side of a benchmark, over a pairlab listening at ``settings``'s URLs (in this
    process, as ``Stack``, or a ``pairlab serve`` subprocess): ``api`` is a logged-in
    interviewer, ``cand`` a browser holding the candidate cookies of every session it admitted.
    Call ``open_clients`` first; ``_clients`` are closed by the owner."""

    settings: Settings

    def __init__(self) -> None:
        self.started: list[str] = []
        self._clients: list[aiohttp.ClientSession] = []

    async def open_clients(self, settings: Settings, email: str = EMAIL,
                           password: str = PASSWORD) -> None:
        self.settings = settings
        timeout = aiohttp.ClientTimeout(total=180)
        self.api = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True),
                                         timeout=timeout)
        self.cand = aiohttp.ClientSession(  # reaches w-<id>.localhost, as a browser does
            cookie_jar=aiohttp.CookieJar(unsafe=True), timeout=timeout,
            connector=aiohttp.TCPConnector(resolver=LoopbackResolver()))
        self._clients += [self.api, self.cand]
        async with self.api.post(f"{self.app_url}/api/v1/auth/login",
                                 json={"email": email, "password": password}) as resp:
            assert resp.status == 200, await resp.text()
            self.csrf = (await resp.json())["csrf_token"]

    async def close_clients(self) -> None:
        for client in self._clients:
            await client.close()

    @property
    def app_url(self) -> str:
        return self.settings.app_url

    @property
    def ws_url(self) -> str:
        return self.settings.workspace_url

    # ---- sessions ----

    async def schedule(self) -> Scheduled:
        async with self.api.post(
            f"{self.app_url}/api/v1/sessions",
            json={"task": TASK, "candidate_name": "Ada Lovelace"},
            headers={"X-CSRF-Token": self.csrf, "Origin": self.app_url},
        ) as resp:
            assert resp.status == 201, await resp.text()
            body = await resp.json()
        return Scheduled(body["session_id"], body["candidate_link"])

    async def admit(self, scheduled: Scheduled) -> str:
        """Open the candidate link (token → cookie → landing page); return the page's CSRF."""
        async with self.cand.get(scheduled.link) as resp:
            assert resp.status == 200, await resp.text()
            html = await resp.text()
        match = re.search(r'name="csrf_token" value="([^"]+)"', html)
        assert match, "the landing page has no csrf_token"
        return match.group(1)

    async def start(self, session_id: str, csrf: str) -> tuple[float, str]:
        """``POST /api/v1/sessions/{id}/start`` as the candidate; (seconds, workspace id)."""
        self.started.append(session_id)
        began = now()
        async with self.cand.post(
            f"{self.ws_url}/api/v1/sessions/{session_id}/start",
            headers={"X-CSRF-Token": csrf, "Origin": self.ws_url},
        ) as resp:
            text = await resp.text()
            elapsed = now() - began
        assert resp.status == 200, f"start failed: HTTP {resp.status}: {text[:500]}"
        state = json.loads(text)["session"]
        workspace_id = URL(state["workspace_url"]).path.split("/")[2]
        async with self.cand.get(state["open_url"]) as resp:  # the workspace host's cookie
            assert resp.status == 200, f"entering failed: HTTP {resp.status}"
        return elapsed, workspace_id

    async def new_session(self) -> tuple[str, str]:
        """Schedule, admit and start one session; (session id, workspace id)."""
        scheduled = await self.schedule()
        csrf = await self.admit(scheduled)
        _, workspace_id = await self.start(scheduled.session_id, csrf)
        return scheduled.session_id, workspace_id

    async def end_by_api(self, session_id: str) -> None:
        """``POST /api/v1/sessions/{id}/end`` as the interviewer."""
        async with self.api.post(
            f"{self.app_url}/api/v1/sessions/{session_id}/end",
            headers={"X-CSRF-Token": self.csrf, "Origin": self.app_url},
        ) as resp:
            assert resp.status == 200, f"end failed: HTTP {resp.status}: {await resp.text()}"

    async def observe(self, session_id: str) -> aiohttp.ClientResponse:
        """The interviewer's live event stream of the session (Server-Sent Events), open once
        its first bytes arrived; the caller releases it."""
        resp = await self.api.get(f"{self.app_url}/api/v1/sessions/{session_id}/events/stream",
                                  timeout=aiohttp.ClientTimeout(total=None, connect=60,
                                                                sock_read=None))
        try:
            assert resp.status == 200, f"observing failed: HTTP {resp.status}"
            await asyncio.wait_for(resp.content.readany(), timeout=60)
        except BaseException:
            resp.release()
            raise
        return resp


class Stack(Client):
    """The real ``create_app(settings)`` (real ``LocalProvisioner``, sandboxed servers) served
    on two loopback ports in this process, with the HTTP side of ``Client``.
    ``start_times[session_id]`` is the server-side duration of ``SessionManager.start_session``
    for that session."""

    def __init__(self, prefix: str, warm_pool_size: int = 0, uid_base: int | None = None,
                 files: dict[str, str] | None = None, max_parallel_starts: int = 0) -> None:
        super().__init__()
        self.prefix = prefix
        self.warm_pool_size = warm_pool_size
        self.max_parallel_starts = max_parallel_starts
        """The setting of that name (0: one cold start per core at once)."""
        self.uid_base = uid_base
        """Sandbox uids from here (default: ``sandbox_uid_base()``); held while it runs."""
        self._uid_block = contextlib.ExitStack()
        self.files = files
        """Files the task has besides ``task_files()``."""
        self.start_times: dict[str, float] = {}
        self.phases: dict[str, list[float]] = {}
        """Durations of the provisioner's ``start`` (a sandboxed server until ready) and
        ``fill`` (the task copied in) calls, and of the lifecycle hooks (``hooks:live``: the
        recorder's history repository and watcher), in call order."""
        self.ended_at: dict[str, float] = {}
        """Wall-clock time (``time.time()``) at which the last call of each timed phase ended."""
        self._runners: list[web.AppRunner] = []
        self._direct: dict[str, aiohttp.ClientSession] = {}
        self.data = Path(tempfile.mkdtemp(prefix=prefix, dir=SHORT_TMP))

    async def __aenter__(self) -> Stack:
        try:
            await self._setup()
        except BaseException:
            await self._teardown()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._teardown()

    async def _setup(self) -> None:
        base = self.uid_base if self.uid_base is not None else sandbox_uid_base()
        self._uid_block.enter_context(uid_block(sandbox_uids(base), f"benchmark {self.data}"))
        self.settings = prepare_data_dir(Settings(
            data_dir=self.data, port=free_port(), workspace_port=free_port(),
            warm_pool_size=self.warm_pool_size, environments_dir=str(SHARED_ENVS),
            max_parallel_starts=self.max_parallel_starts, sandbox_uid_base=base,
        ))
        await asyncio.to_thread(publish_task, self.settings, self.files)
        self.app = create_app(self.settings)
        for one, port in ((self.app, self.settings.port),
                          (self.app[WORKSPACE_APP], self.settings.workspace_port)):
            runner = web.AppRunner(one, access_log_class=ScrubbedAccessLogger,
                                   handle_signals=False)
            await runner.setup()
            self._runners.append(runner)
            await web.TCPSite(runner, "127.0.0.1", port).start()
        self._time_start_session()
        await self.open_clients(self.settings)

    def _time_start_session(self) -> None:
        """Wrap this process's manager so every start (API or page) is timed server side."""
        manager = self.manager
        inner = manager.start_session

        async def timed(session_id: str, actor: audit.Actor) -> Any:
            began = now()
            try:
                return await inner(session_id, actor)
            finally:
                self.start_times[session_id] = now() - began

        manager.start_session = timed  # type: ignore[method-assign]
        for name in ("start", "fill"):
            self._time_call(manager.provisioner, name)
        emit = manager._emit  # noqa: SLF001 - timing the lifecycle hooks (recording)

        async def timed_emit(kind: str, *args: Any) -> None:
            began = now()
            try:
                await emit(kind, *args)
            finally:
                self.phases.setdefault(f"hooks:{kind}", []).append(now() - began)

        manager._emit = timed_emit  # type: ignore[method-assign]  # noqa: SLF001

    def _time_call(self, owner: Any, name: str) -> None:
        """Append the duration of every ``owner.name(...)`` call to ``phases[name]``."""
        inner = getattr(owner, name)
        durations = self.phases.setdefault(name, [])

        async def timed(*args: Any, **kwargs: Any) -> Any:
            began = now()
            try:
                return await inner(*args, **kwargs)
            finally:
                durations.append(now() - began)
                self.ended_at[name] = time.time()

        setattr(owner, name, timed)

    @property
    def manager(self) -> SessionManager:
        return self.app[SESSIONS]

    # ---- sessions ----

    async def end(self, session_id: str) -> None:
        await self.manager.end_session(session_id, audit.SYSTEM, "benchmark done")

    def warm_count(self) -> int:
        """Warm workspaces ready in the pool (0 while one is still being started)."""
        return self.manager.pool.ready()

    async def wait_warm(self, timeout_s: float = 180.0) -> float:
        """Wait until the pool holds ``warm_pool_size`` workspaces; seconds waited."""
        began = now()
        delay = 0.01
        while self.warm_count() < self.warm_pool_size:
            if now() - began > timeout_s:
                raise TimeoutError(f"the warm pool did not fill within {timeout_s:.0f} s")
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 0.1)
        return now() - began

    # ---- through the proxy, and directly ----

    def upstream(self, workspace_id: str) -> Upstream:
        return self.manager.upstreams[workspace_id][0]

    def direct_client(self, workspace_id: str) -> aiohttp.ClientSession:
        """A client over the workspace's Unix socket (the same one the proxy uses)."""
        found = self._direct.get(workspace_id)
        if found is None:
            upstream = self.upstream(workspace_id)
            found = aiohttp.ClientSession(
                connector=PeerCheckedConnector(upstream.socket_path, upstream.server),
                timeout=aiohttp.ClientTimeout(total=60),
            )
            self._direct[workspace_id] = found
            self._clients.append(found)
        return found

    def direct_url(self, workspace_id: str, tail: str) -> str:
        return f"http://workspace/w/{workspace_id}/{tail}"

    def direct_headers(self, workspace_id: str) -> dict[str, str]:
        return {"Authorization": f"token {self.upstream(workspace_id).token}"}

    async def direct_channels(self, workspace_id: str, kernel_id: str,
                              v1: bool = False) -> aiohttp.ClientWebSocketResponse:
        url = self.direct_url(workspace_id, f"api/kernels/{kernel_id}/channels"
                                            f"?session_id={uuid.uuid4().hex}")
        return await framed(await self.direct_client(workspace_id).ws_connect(
            url, headers=self.direct_headers(workspace_id), max_msg_size=0, compress=15,
            protocols=[V1_PROTOCOL] if v1 else ()), v1)

    def uid_of(self, workspace_id: str) -> int:
        return int(self.query("SELECT uid FROM workspaces WHERE id = ?", (workspace_id,))[0][0])

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(self.settings.db_path)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    # ---- teardown ----

    async def _teardown(self) -> None:
        uids: list[int] = []
        if self._runners:
            for session_id in self.started:
                try:
                    await self.end(session_id)
                except Exception as exc:  # keep cleaning up the rest
                    print(f"  (ending session {session_id} failed: {exc})")
            uids = [int(r[0]) for r in self.query("SELECT uid FROM workspaces")]
        await self.close_clients()
        for runner in reversed(self._runners):
            await runner.cleanup()  # stops the warm pool and anything still running
        left = {uid: pids for uid in uids if (pids := await asyncio.to_thread(pids_of_uid, uid))}
        if left:
            print(f"  WARNING: processes left behind by sandbox uids: {left}")
        await asyncio.to_thread(shutil.rmtree, self.data, True)
        self._uid_block.close()
        print(f"cleanup: {len(uids)} workspaces stopped, leftover processes: "
              f"{sum(len(p) for p in left.values())}, removed {self.data}")


# ---- the kernel protocol (/api/kernels/<id>/channels: legacy JSON or JupyterLab 4's v1) -----


V1_PARTS = ("header", "parent_header", "metadata", "content")
"""A v1 kernel WebSocket frame's JSON parts, in order (after its channel)."""


async def framed(ws: aiohttp.ClientWebSocketResponse,
                 v1: bool) -> aiohttp.ClientWebSocketResponse:
    """``ws``, closed and refused unless the server took the v1 framing when it was asked for
    (else ``exchange`` would speak legacy JSON while the benchmark says v1)."""
    if v1 and ws.protocol != V1_PROTOCOL:
        await ws.close()
        raise ConnectionError(f"the server did not take {V1_PROTOCOL} (it answered "
                              f"{ws.protocol!r})")
    return ws


def ws_v1(parts: list[bytes], channel: str) -> bytes:
    """A v1 frame as jupyter-server writes it (its own function: imported on first use, so
    that a benchmark measuring this process's memory does not carry jupyter-server)."""
    from jupyter_server.services.kernels.connection.base import serialize_msg_to_ws_v1
    frame: bytes = serialize_msg_to_ws_v1(parts, channel)  # type: ignore[no-untyped-call]
    return frame


def from_ws_v1(frame: bytes) -> tuple[str, list[bytes]]:
    """A v1 frame's channel and parts, as jupyter-server reads them."""
    from jupyter_server.services.kernels.connection.base import deserialize_msg_from_ws_v1
    channel, parts = deserialize_msg_from_ws_v1(frame)  # type: ignore[no-untyped-call]
    return str(channel), list(parts)


def kernel_message(msg_type: str, content: dict[str, Any]) -> dict[str, Any]:
    return {
        "header": {"msg_id": uuid.uuid4().hex, "username": "bench", "session": uuid.uuid4().hex,
                   "msg_type": msg_type, "version": "5.3",
                   "date": datetime.now(UTC).isoformat()},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": content,
    }


def execute_request(code: str) -> dict[str, Any]:
    return kernel_message("execute_request", {
        "code": code, "silent": False, "store_history": True, "user_expressions": {},
        "allow_stdin": False, "stop_on_error": True,
    })


@dataclass
class Exchange:
    reply_s: float
    """From sending the request to its ``*_reply`` on the shell channel."""
    idle_s: float
    """From sending the request to the kernel's ``idle`` status for it (iopub)."""
    text: str
    """``text/plain`` results and stream output."""

    @property
    def done_s(self) -> float:
        """Until both the reply and the idle status arrived (a frontend's "cell finished")."""
        return max(self.reply_s, self.idle_s)


async def exchange(ws: aiohttp.ClientWebSocketResponse, message: dict[str, Any],
                   timeout_s: float = 60.0) -> Exchange:
    """Send ``message``; read until its reply and its idle status; time both."""
    msg_id = message["header"]["msg_id"]
    reply_type = message["header"]["msg_type"].replace("_request", "_reply")
    reply_s = idle_s = math.nan
    text = ""
    v1 = ws.protocol == V1_PROTOCOL
    began = now()
    if v1:  # as JupyterLab 4 sends it
        await ws.send_bytes(ws_v1([json.dumps(message[part]).encode() for part in V1_PARTS],
                                  message["channel"]))
    else:
        await ws.send_str(json.dumps(message))
    while math.isnan(reply_s) or math.isnan(idle_s):
        left = timeout_s - (now() - began)
        if left <= 0:
            raise TimeoutError(f"no {reply_type} / idle within {timeout_s:.0f} s")
        msg = await ws.receive(timeout=left)
        at = now() - began
        if msg.type != (WSMsgType.BINARY if v1 else WSMsgType.TEXT):
            raise ConnectionError(f"the kernel WebSocket closed ({msg.type.name})")
        if v1:  # as JupyterLab 4 reads it: the four JSON parts after the channel
            _channel, parts = from_ws_v1(msg.data)
            data = dict(zip(V1_PARTS, (json.loads(part) for part in parts[:4]), strict=True))
        else:
            data = json.loads(msg.data)
        if data.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind = data["header"]["msg_type"]
        if kind == reply_type:
            reply_s = at
        elif kind == "status" and data["content"]["execution_state"] == "idle":
            idle_s = at
        elif kind in ("execute_result", "display_data"):
            text += data["content"]["data"].get("text/plain", "")
        elif kind == "stream":
            text += data["content"]["text"]
        elif kind == "error":
            text += f"{data['content']['ename']}: {data['content']['evalue']}"
    return Exchange(reply_s, idle_s, text)


async def wait_kernel_ready(ws: aiohttp.ClientWebSocketResponse, timeout_s: float = 60.0) -> None:
    """Until the kernel answers a ``kernel_info_request`` (it may still be starting)."""
    await exchange(ws, kernel_message("kernel_info_request", {}), timeout_s)


async def loop_lag(into: list[float], period_s: float = 0.05) -> None:
    """Until cancelled: how late this event loop wakes from a ``period_s`` sleep (seconds, into
    ``into``): the time a ready callback waits for the loop, or the process for a CPU."""
    while True:
        began = now()
        await asyncio.sleep(period_s)
        into.append(max(0.0, now() - began - period_s))


def run_bench(title: str, module: str, run: Callable[[], Coroutine[Any, Any, object]], *,
              quiet: bool = True) -> None:
    """A benchmark's ``__main__``: pairlab's logging quiet (unless not ``quiet``), the header
    with the command and the load average, ``run()`` to its end, and the load average then
    (after a failure too)."""
    if quiet:
        quiet_logging()
    header(title, ["python", "-m", module, *sys.argv[1:]])
    try:
        asyncio.run(run())
    finally:
        print(load_line("end"))


def quiet_logging() -> None:
    """pairlab's warnings (a failed start, a crash) go to stderr; the rest stays silent."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
