"""Memory per idle session, and how many idle sessions fit on one host.

    .venv/bin/python -m bench.memory [--sessions 5] [--settle 5] [--host-gib 24]
    .venv/bin/python -m bench.memory --control-plane 3
    .venv/bin/python -m bench.memory --control-plane-sessions 50 [--no-previous]

Starts ``--sessions`` sessions (``warm_pool_size=0``), each with a kernel started through the
proxy (``POST /w/<id>/api/kernels``) and answering a ``kernel_info_request``; nothing else is
opened (no JupyterLab page, no RTC room). After ``--settle`` seconds it reads, with psutil,
every process whose real uid is the session's sandbox uid (the jupyter-server and the kernel)
and sums their USS (private memory: pages only that process maps, what stopping it frees);
PSS and RSS are shown too. bubblewrap's own processes (not of the uid) are listed apart.
This process's RSS is the control plane's (pairlab's app and this benchmark's client).

``--control-plane N`` measures only the control plane, apart: a fresh ``pairlab serve`` (a
data dir with one admin, no warm pool), its RSS and USS once ``/readyz`` answers and the admin's
home page has been served (+1 s), then stopped; ``N`` rounds, each alternating with the previous
import set (``python -c 'import scipy.stats, krippendorff, pandas; ...main()' serve``: what the
modules imported at import time before issue 15: scipy.stats in ``scoring.validity``, numpy and
krippendorff in ``scoring.agreement``, pandas and numpy in sqlite-utils).

``--control-plane-sessions N`` measures the ``pairlab serve`` process (its pid only) idle and
with ``N`` live sessions started through its HTTP API, each with a kernel that ran ``1+1`` over
the proxied WebSocket (left open) and the interviewer's event stream open; previous import set
first, then today's, in the same run (``--no-previous``: today's only).

The extrapolation divides the host's memory, less the control plane, by the median USS:
shared pages (the interpreter, libraries, the read-only environment in page cache) are
counted once for the host, there is no swap, every session stays idle (a working kernel
grows with the candidate's data), and nothing else runs on the host.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sqlite3
import sys
import tempfile
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from bench.common import (
    SHARED_ENVS,
    SHORT_TMP,
    Client,
    Stack,
    exchange,
    execute_request,
    free_port,
    median,
    publish_task,
    run_bench,
    sandbox_uid_base,
    verdict,
    wait_kernel_ready,
)
from common import audit
from server.db import open_migrated
from server.people import accounts as people
from server.people.passwords import hash_password
from server.settings import Settings, prepare_data_dir
from workspaces.sandbox.cgroups import CgroupSet, pids_of_uid

MIB = 1024 * 1024
GIB = 1024 * MIB
STARTS_AT_ONCE = 4
"""Sessions being started at once by ``--control-plane-sessions`` (the server queues cold
starts beyond ``max_parallel_starts``)."""


@dataclass
class Usage:
    workspace_id: str
    uid: int
    server_uss: int = 0
    kernel_uss: int = 0
    other_uss: int = 0
    pss: int = 0
    rss: int = 0
    helper_uss: int = 0
    processes: int = 0
    cgroup_rss: int | None = None
    """The workspace's memory cgroup: anonymous memory (``rss`` in ``memory.stat``)."""
    cgroup_cache: int | None = None
    """... and page cache charged to it (files it read or wrote, its tmpfs; reclaimable)."""

    @property
    def uss(self) -> int:
        return self.server_uss + self.kernel_uss + self.other_uss


def measure(workspace_id: str, uid: int, sandbox_pid: int, groups: CgroupSet | None) -> Usage:
    usage = Usage(workspace_id, uid)
    for folder in groups.dirs if groups is not None else ():
        stat = folder / "memory.stat"
        if stat.exists():
            fields = dict(line.split() for line in stat.read_text().splitlines())
            usage.cgroup_rss, usage.cgroup_cache = int(fields["rss"]), int(fields["cache"])
    for pid in pids_of_uid(uid):
        try:
            proc = psutil.Process(pid)
            mem = proc.memory_full_info()
            cmdline = " ".join(proc.cmdline())
        except psutil.Error:
            continue
        usage.processes += 1
        usage.pss += mem.pss
        usage.rss += mem.rss
        if "ipykernel_launcher" in cmdline:
            usage.kernel_uss += mem.uss
        elif "jupyterlab" in cmdline or "ServerApp" in cmdline:
            usage.server_uss += mem.uss
        else:
            usage.other_uss += mem.uss
    try:
        top = psutil.Process(sandbox_pid)
        for proc in [top, *top.children(recursive=True)]:
            if proc.uids().real != uid:
                usage.helper_uss += proc.memory_full_info().uss
    except psutil.Error:
        pass
    return usage


def mib(value: float) -> str:
    return f"{value / MIB:.1f} MiB"


async def main(args: argparse.Namespace) -> None:
    me = psutil.Process()
    async with Stack("plbm-", warm_pool_size=0) as stack:
        idle_rss = me.memory_info().rss
        workspaces: list[str] = []
        for i in range(args.sessions):
            _, workspace_id = await stack.new_session()
            kernel_id = await stack.new_kernel(workspace_id)
            ws = await stack.proxied_channels(workspace_id, kernel_id)
            try:
                await wait_kernel_ready(ws, timeout_s=120)
            finally:
                await ws.close()
            workspaces.append(workspace_id)
            print(f"  session {i + 1}/{args.sessions}: workspace {workspace_id} live, "
                  "kernel answering")
        print(f"settling {args.settle:.0f} s ...")
        await asyncio.sleep(args.settle)
        usages = []
        for workspace_id in workspaces:
            uid = stack.uid_of(workspace_id)
            sandbox_pid = int(stack.query("SELECT pid FROM workspaces WHERE id = ?",
                                          (workspace_id,))[0][0])
            cgroups = getattr(stack.manager.provisioner, "cgroups", None)  # LocalProvisioner's
            groups = cgroups.existing(workspace_id) if cgroups is not None else None
            usages.append(await asyncio.to_thread(measure, workspace_id, uid, sandbox_pid,
                                                  groups))
        plane = me.memory_full_info()

        print("\nper idle session (processes of the sandbox uid):")
        print(f"  {'workspace':<14} {'procs':>5} {'server USS':>13} {'kernel USS':>13} "
              f"{'total USS':>13} {'PSS':>13} {'RSS':>13} {'bwrap USS':>13} "
              f"{'cgroup anon':>13} {'cgroup cache':>13}")
        for u in usages:
            print(f"  {u.workspace_id:<14} {u.processes:>5} {mib(u.server_uss):>13} "
                  f"{mib(u.kernel_uss):>13} {mib(u.uss):>13} {mib(u.pss):>13} "
                  f"{mib(u.rss):>13} {mib(u.helper_uss):>13} "
                  f"{mib(u.cgroup_rss) if u.cgroup_rss is not None else 'n/a':>13} "
                  f"{mib(u.cgroup_cache) if u.cgroup_cache is not None else 'n/a':>13}")
        totals = [u.uss for u in usages]
        med, worst = median(totals), max(totals)
        pss = median([u.pss for u in usages])
        helpers = median([u.helper_uss for u in usages])
        print(f"\nper-session USS (server + kernel): median {mib(med)}, max {mib(worst)}  "
              f"(PSS median {mib(pss)}; bwrap helpers, not counted: median {mib(helpers)})")
        print(f"  target <= 100 MiB private per idle session: "
              f"{'meets' if med <= 100 * MIB else 'MISSES'} (median), "
              f"{'meets' if worst <= 100 * MIB else 'MISSES'} (max)")
        print(f"control plane (this process: pairlab app + benchmark client): RSS "
              f"{mib(plane.rss)} with {len(usages)} live sessions "
              f"({mib(idle_rss)} with none), USS {mib(plane.uss)}")

        growth = max(0.0, (plane.rss - idle_rss) / len(usages))
        print(f"  control plane growth per live session: {mib(growth)}")

        host = args.host_gib * GIB

        def fit(total: float, each: float) -> int:
            return int((total - idle_rss) // (each + growth))

        fit_med = fit(host, med)
        fit_worst = fit(host, worst + max(u.helper_uss for u in usages))
        fit_gb = fit(24e9, med)
        print(f"\nidle sessions that fit in {args.host_gib:g} GiB at the measured USS "
              "((host memory - the control plane with no session) / (per-session USS + the "
              "control plane's growth per session)):")
        print(f"  at the median USS: {fit_med}; at the max USS plus bwrap: {fit_worst}; "
              f"in 24 GB (10^9 bytes) at the median: {fit_gb}")
        print(f"  target >= 150 idle sessions per 24 GB host: "
              f"{'meets' if fit_gb >= 150 else 'MISSES'}")
        print("  assumes: shared pages (interpreter, libraries, the read-only environment) "
              "counted once; no swap; idle kernels (a working kernel grows with the "
              "candidate's data; the cgroup's page cache is reclaimable and not counted); "
              "nothing else on the host")
        total = psutil.virtual_memory()
        print(f"  (this machine: {total.total / GIB:.1f} GiB total, "
              f"{total.available / GIB:.1f} GiB available now)")


ADMIN, ADMIN_PASSWORD = "admin@example.com", "bench admin password"


def create_admin(settings: Settings, email: str, password: str) -> None:
    db = open_migrated(settings.db_path)
    try:
        with db.atomic():
            people.add_user(db, audit.CLI, email, "admin", hash_password(password))
    finally:
        db.conn.close()


PREVIOUS_IMPORTS = ("import sys, scipy.stats, krippendorff, pandas\n"
                    "from server.cli.main import main\n"
                    "sys.exit(main())\n")


@asynccontextmanager
async def serving(data: Path, previous: bool, port: int, workspace_port: int,
                  env: dict[str, str] | None = None) -> AsyncIterator[asyncio.subprocess.Process]:
    """``pairlab serve`` over ``data / "data"`` on the two loopback ports (``previous``: with the
    previous import set; ``env``: more ``PAIRLAB_*`` settings), once ``/readyz`` answers;
    stopped (SIGTERM, then SIGKILL after 30 s) on the way out."""
    full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
                "HOME": str(data), "PAIRLAB_DATA_DIR": str(data / "data"),
                "PAIRLAB_WARM_POOL_SIZE": "0", "PAIRLAB_CONTINUOUS_CHECKS": "false",
                **(env or {})}
    code = ["-c", PREVIOUS_IMPORTS] if previous else ["-m", "server.cli.main"]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *code, "serve", "--port", str(port), "--workspace-port",
        str(workspace_port), env=full_env, cwd=str(data), stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as client:
            for _ in range(600):
                if proc.returncode is not None:
                    raise RuntimeError(f"pairlab serve exited ({proc.returncode})")
                try:
                    async with client.get(f"http://127.0.0.1:{port}/readyz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise TimeoutError("pairlab serve was not ready within 60 s")
        yield proc
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), timeout=30)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def _serve_once(data: Path, previous: bool) -> tuple[float, float]:
    """Start ``pairlab serve`` over ``data``, serve the admin's home page, read its memory
    (RSS, USS) and stop it."""
    port, workspace_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    async with serving(data, previous, port, workspace_port) as proc:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True),
                                         timeout=aiohttp.ClientTimeout(total=30)) as client:
            async with client.post(f"{base}/api/v1/auth/login", json={
                    "email": ADMIN, "password": ADMIN_PASSWORD}) as resp:
                assert resp.status == 200, resp.status
            async with client.get(f"{base}/") as resp:
                assert resp.status == 200, resp.status
        await asyncio.sleep(1.0)
        info = psutil.Process(proc.pid).memory_full_info()
        return float(info.rss), float(info.uss)


async def control_plane(rounds: int) -> None:
    print(f"\ncontrol plane: fresh `pairlab serve`, idle after /readyz and the admin's home page; "
          f"{rounds} rounds, each: previous import set, then today's")
    data = Path(tempfile.mkdtemp(prefix="plbcp-", dir=SHORT_TMP))
    try:
        settings = prepare_data_dir(Settings(data_dir=data / "data"))
        create_admin(settings, ADMIN, ADMIN_PASSWORD)
        now_rss, now_uss, prev_rss, prev_uss = [], [], [], []
        for i in range(rounds):
            rss, uss = await _serve_once(data, previous=True)
            prev_rss.append(rss)
            prev_uss.append(uss)
            rss2, uss2 = await _serve_once(data, previous=False)
            now_rss.append(rss2)
            now_uss.append(uss2)
            print(f"  round {i + 1}: previous RSS {mib(rss)} (USS {mib(uss)}), "
                  f"now RSS {mib(rss2)} (USS {mib(uss2)})")
        print(f"control-plane RSS idle: previous p50 {mib(median(prev_rss))}, now p50 "
              f"{mib(median(now_rss))} = {median(now_rss) / median(prev_rss):.2f} x previous; "
              f"USS {mib(median(prev_uss))} -> {mib(median(now_uss))}")
        print(f"  target idle <= 80 MiB: {verdict(median(now_rss), 80 * MIB)}")
    finally:
        shutil.rmtree(data, ignore_errors=True)


@dataclass
class PlaneWithSessions:
    """The ``pairlab serve`` process's own memory (psutil, its pid only), idle and live."""
    sessions: int
    idle_rss: float
    idle_uss: float
    live_rss: float = 0.0
    live_uss: float = 0.0

    def per_session(self, live: float, idle: float) -> float:
        return (live - idle) / self.sessions


async def _serve_with_sessions(previous: bool, sessions: int, settle: float,
                               uid_base: int) -> PlaneWithSessions:
    """A fresh ``pairlab serve`` (as ``_serve_once``, with the benchmark task published and
    sandbox uids from ``uid_base``); its memory after ``settle`` s idle, then again ``settle`` s
    after ``sessions`` live sessions were started through its HTTP API, each holding a kernel
    that ran ``1+1`` over the proxied WebSocket (left open) and the interviewer's open event
    stream. Ends every session by the API, stops the server and checks no process of its uids
    is left."""
    data = Path(tempfile.mkdtemp(prefix="plbcs-", dir=SHORT_TMP))
    port, workspace_port = free_port(), free_port()
    settings = prepare_data_dir(Settings(
        data_dir=data / "data", port=port, workspace_port=workspace_port, warm_pool_size=0,
        environments_dir=str(SHARED_ENVS), sandbox_uid_base=uid_base))
    client = Client()
    channels: list[aiohttp.ClientWebSocketResponse] = []
    streams: list[aiohttp.ClientResponse] = []
    try:
        await asyncio.to_thread(publish_task, settings)
        env = {"PAIRLAB_ENVIRONMENTS_DIR": str(SHARED_ENVS),
               "PAIRLAB_SANDBOX_UID_BASE": str(uid_base)}
        async with serving(data, previous, port, workspace_port, env) as proc:
            serve = psutil.Process(proc.pid)
            try:
                await client.open_clients(settings)
                async with client.api.get(f"{client.app_url}/") as resp:
                    assert resp.status == 200, resp.status
                await asyncio.sleep(settle)
                idle = serve.memory_full_info()
                reading = PlaneWithSessions(sessions, float(idle.rss), float(idle.uss))
                gate = asyncio.Semaphore(STARTS_AT_ONCE)
                done = 0

                async def one() -> None:
                    nonlocal done
                    async with gate:
                        session_id, workspace_id = await client.new_session()
                        kernel_id = await client.new_kernel(workspace_id)
                        ws = await client.proxied_channels(workspace_id, kernel_id)
                        channels.append(ws)
                        await wait_kernel_ready(ws, timeout_s=120)
                        result = await exchange(ws, execute_request("1+1"), timeout_s=60)
                        if result.text.strip() != "2":
                            raise RuntimeError(f"1+1 gave {result.text!r} in {workspace_id}")
                        streams.append(await client.observe(session_id))
                        done += 1
                        print(f"  session {done}/{sessions}: workspace {workspace_id} live, "
                              "1+1 = 2, observer open")

                async with asyncio.TaskGroup() as group:
                    for _ in range(sessions):
                        group.create_task(one())
                print(f"  settling {settle:.0f} s ...")
                await asyncio.sleep(settle)
                live = serve.memory_full_info()
                reading.live_rss, reading.live_uss = float(live.rss), float(live.uss)
                return reading
            finally:
                for stream in streams:
                    stream.release()
                for ws in channels:
                    await ws.close()
                for session_id in client.started:
                    try:
                        await client.end_by_api(session_id)
                    except Exception as exc:  # keep cleaning up the rest
                        print(f"  (ending session {session_id} failed: {exc})")
                await client.close_clients()
    finally:
        uids = await asyncio.to_thread(_workspace_uids, settings)
        left = {uid: pids for uid in uids if (pids := await asyncio.to_thread(pids_of_uid, uid))}
        if left:
            print(f"  WARNING: processes left behind by sandbox uids: {left}")
        await asyncio.to_thread(shutil.rmtree, data, True)
        print(f"cleanup: {len(uids)} workspaces stopped, leftover processes: "
              f"{sum(len(p) for p in left.values())}, removed {data}")


def _workspace_uids(settings: Settings) -> list[int]:
    if not settings.db_path.exists():
        return []
    conn = sqlite3.connect(settings.db_path)
    try:
        return [int(r[0]) for r in conn.execute("SELECT uid FROM workspaces").fetchall()]
    finally:
        conn.close()


async def control_plane_sessions(sessions: int, settle: float, previous: bool) -> None:
    uid_base = sandbox_uid_base()
    arms = [("previous imports", True)] if previous else []
    arms.append(("now", False))
    print(f"\ncontrol plane with live sessions: a fresh `pairlab serve` per arm "
          f"({', '.join(name for name, _ in arms)}), its own RSS and USS (its pid only, not "
          f"the workspaces) {settle:.0f} s after the admin's home page, then {settle:.0f} s "
          f"after {sessions} live sessions (kernel ran 1+1 over the proxied WebSocket, left "
          f"open; interviewer's event stream open); sandbox uids from {uid_base}")
    readings: dict[str, PlaneWithSessions] = {}
    for name, old in arms:
        print(f"{name}:")
        readings[name] = r = await _serve_with_sessions(old, sessions, settle, uid_base)
        rss_each, uss_each = (r.per_session(r.live_rss, r.idle_rss) / MIB,
                              r.per_session(r.live_uss, r.idle_uss) / MIB)
        print(f"  {name}: RSS idle {mib(r.idle_rss)}, with {sessions} sessions "
              f"{mib(r.live_rss)} ({rss_each:+.2f} MiB per session); "
              f"USS idle {mib(r.idle_uss)}, with {sessions} {mib(r.live_uss)} "
              f"({uss_each:+.2f} MiB per session)")
    now_reading = readings["now"]
    print(f"  target idle <= 80 MiB RSS: {verdict(now_reading.idle_rss, 80 * MIB)}; "
          f"with {sessions} sessions <= 100 MiB RSS: {verdict(now_reading.live_rss, 100 * MIB)}"
          + ("" if sessions == 50 else " (the target is for 50)"))


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=5, help="idle sessions to start")
    parser.add_argument("--settle", type=float, default=5.0,
                        help="seconds to wait after the last kernel answered")
    parser.add_argument("--host-gib", type=float, default=24.0, help="host memory to fill")
    parser.add_argument("--control-plane", type=int, default=0, metavar="ROUNDS",
                        help="measure only the idle control plane, now vs previous imports")
    parser.add_argument("--control-plane-sessions", type=int, default=0, metavar="N",
                        help="measure a `pairlab serve` process idle and with N live sessions")
    parser.add_argument("--no-previous", action="store_true",
                        help="with --control-plane-sessions: skip the previous-imports arm")
    args = parser.parse_args(argv)
    if not (1 <= args.sessions <= 50 and 0 <= args.settle <= 120 and args.host_gib > 0
            and 0 <= args.control_plane <= 20 and 0 <= args.control_plane_sessions <= 50):
        parser.error("--sessions 1..50, --settle 0..120, --host-gib > 0, --control-plane 0..20,"
                     " --control-plane-sessions 1..50")
    if args.control_plane and args.control_plane_sessions:
        parser.error("--control-plane and --control-plane-sessions are separate runs")
    return args


def _run(options: argparse.Namespace) -> Coroutine[Any, Any, object]:
    """The run the options ask for."""
    if options.control_plane:
        return control_plane(options.control_plane)
    if options.control_plane_sessions:
        return control_plane_sessions(options.control_plane_sessions, options.settle,
                                      previous=not options.no_previous)
    return main(options)


if __name__ == "__main__":
    options = parse(sys.argv[1:])
    run_bench("pairlab memory benchmark", "bench.memory", lambda: _run(options))
