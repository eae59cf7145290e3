"""Provisioning latency: bare ``jupyter lab`` (the anchor), cold and warm session starts, the
first cell result after a cold start, and a burst of sessions requested at once.

    .venv/bin/python -m bench.provisioning [--runs 5] [--warmup 1] [--burst 10] [--burst-bound 0]
                                           [--only anchor,cold,previous,warm,burst]

(a) anchor: ``python -m jupyterlab --no-browser`` on a free loopback port, from spawn until
    ``/api/status`` answers 200 (polled every 10 ms), then stopped (SIGTERM, SIGKILL after 5 s).
(b) cold (``warm_pool_size=0``): ``POST /api/v1/sessions/{id}/start`` as the candidate; the
    client-side HTTP time and the server-side ``SessionManager.start_session`` time.
(d) first cell, in the same cold runs: from that POST until ``1+1`` has returned ``2`` over
    the proxied kernel WebSocket (kernel started with ``POST /w/<id>/api/kernels``).
(c) warm (``warm_pool_size=1``): once the pool holds a started server (plus ``--settle``
    seconds), the same POST; ``start_session`` = claim + copying the task in. The session is
    then ended and the pool refilled before the next run (the refill time is printed too).
(b') previous (with ``cold``): each cold run is preceded by one on the code path before issue 15
    (``bench.previous_start``: yarn lookup, IPython, back-off readiness) in the same app.
(e) burst (``warm_pool_size=0``): ``--burst`` sessions started with one ``asyncio.gather``,
    on three apps in the same run, rounds alternating: "gated" (``max_parallel_starts`` default,
    one cold start per core at once, the rest in the start queue; a start made while others
    wait starts its spare kernel when JupyterLab loads), "gated, spare now" (the same, every
    spare started with its server, as before) and "unbounded" (``max_parallel_starts`` =
    ``--burst``); for each, when the first start answered, the
    median one and the last (each answers once its workspace is ready), with the load average
    before and after each round. Each app first starts one workspace, not counted; the order
    of the modes flips every round. Then each candidate's first cell, as in the walk
    through the demo: JupyterLab asks for the kernelspecs ``LAB_LOAD_S`` after its start
    answered (a start made while others waited starts its spare kernel only then), a
    notebook's kernel ``OPEN_NOTEBOOK_S`` later and ``1+1`` on it; seconds from the burst.

Figures are compared with the targets in ``../shared/DESIGN.md`` and with the anchor's p50
measured in the same run. Warm-up runs (``--warmup``) are not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import re
import secrets
import shutil
import signal
import sys
import tempfile
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from bench.common import (
    SHORT_TMP,
    UID_BLOCK_STEP,
    Stack,
    exchange,
    execute_request,
    fmt,
    free_port,
    load_line,
    median,
    now,
    percentile,
    row,
    run_bench,
    sandbox_uid_base,
    verdict,
)
from bench.previous_start import previous_code_path
from workspaces.provisioner import WorkspaceSpec
from workspaces.sandbox.cgroups import pids_of_uid

READY_TIMEOUT_S = 120.0
POLL_S = 0.01


@dataclass
class Results:
    anchor: list[float] = field(default_factory=list)
    anchor_cpu: list[float] = field(default_factory=list)
    cold_client: list[float] = field(default_factory=list)
    cold_server: list[float] = field(default_factory=list)
    cold_launch: list[float] = field(default_factory=list)
    cold_fill: list[float] = field(default_factory=list)
    cold_hooks: list[float] = field(default_factory=list)
    cold_cpu: list[float] = field(default_factory=list)
    first_cell: list[float] = field(default_factory=list)
    first_kernel_post: list[float] = field(default_factory=list)
    ready_lag: list[float] = field(default_factory=list)
    warm_client: list[float] = field(default_factory=list)
    warm_server: list[float] = field(default_factory=list)
    warm_refill: list[float] = field(default_factory=list)
    warm_fill: list[float] = field(default_factory=list)
    warm_hooks: list[float] = field(default_factory=list)
    warm_first_cell: list[float] = field(default_factory=list)
    warm_first_cell_on_request: list[float] = field(default_factory=list)
    bursts: dict[str, list[list[float]]] = field(default_factory=dict)
    """Per burst mode ("gated", "gated, spare now", "unbounded"), each round's client times of
    every start."""
    burst_cells: dict[str, list[list[float]]] = field(default_factory=dict)
    """Per burst mode, each round's times of every candidate's first cell (from the burst)."""
    burst_size: int = 0


# ---- (a) the anchor: bare jupyter lab ------------------------------------------------------


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is not None:
        return
    proc.terminate()  # jupyter-server stops cleanly on SIGTERM
    try:
        await asyncio.wait_for(proc.wait(), timeout=5)
    except TimeoutError:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        await proc.wait()


def _loopback(address: str) -> bool:
    return ipaddress.ip_address(address.split("%")[0]).is_loopback


async def jupyter_lab_once(base: Path) -> tuple[float, float]:
    """Start bare JupyterLab, time spawn → ``/api/status`` 200, stop it; (wall seconds, CPU
    seconds the server used until then: less sensitive to other load on the machine)."""
    root, home = base / "root", base / "home"
    for folder in (root, home):
        folder.mkdir(parents=True, exist_ok=True)
    token, port = secrets.token_hex(24), free_port()
    argv = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--ServerApp.token={token}",
            f"--port={port}", "--ServerApp.ip=127.0.0.1", "--ServerApp.port_retries=0",
            f"--ServerApp.root_dir={root}"]
    if os.geteuid() == 0:
        argv.append("--allow-root")  # jupyter-server refuses root otherwise
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(home),
           "LANG": "C.UTF-8", "JUPYTER_CONFIG_DIR": str(base / "config"),
           "JUPYTER_DATA_DIR": str(base / "data"), "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
           "JUPYTER_PLATFORM_DIRS": "1"}
    url = f"http://127.0.0.1:{port}/api/status"
    log = await asyncio.to_thread(open, base / "server.log", "ab")
    try:
        began = now()
        proc = await asyncio.create_subprocess_exec(
            *argv, env=env, cwd=str(root), stdin=asyncio.subprocess.DEVNULL, stdout=log,
            stderr=log, start_new_session=True)
    finally:
        log.close()  # the child has its own copy
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as client:
            while now() - began < READY_TIMEOUT_S:
                if proc.returncode is not None:
                    raise RuntimeError(f"jupyter lab exited ({proc.returncode}); see "
                                       f"{base / 'server.log'}")
                try:
                    async with client.get(url, headers={"Authorization": f"token {token}"}) \
                            as resp:
                        if resp.status == 200:
                            took = now() - began
                            server = psutil.Process(proc.pid)
                            cpu = server.cpu_times()
                            outside = [c for c in server.net_connections(kind="inet")
                                       if c.raddr and not _loopback(c.raddr.ip)]
                            assert not outside, f"jupyter lab connected out: {outside}"
                            return took, cpu.user + cpu.system
                except (aiohttp.ClientError, OSError):
                    pass
                await asyncio.sleep(POLL_S)
        raise TimeoutError(f"jupyter lab did not answer within {READY_TIMEOUT_S:.0f} s")
    finally:
        await _stop(proc)


async def run_anchor(res: Results, runs: int, warmup: int) -> None:
    print("\n(a) anchor: bare `python -m jupyterlab --no-browser --ServerApp.token=... "
          "--port=<free> --ServerApp.root_dir=<tmp>`" +
          (" --allow-root (running as root)" if os.geteuid() == 0 else ""))
    base = Path(tempfile.mkdtemp(prefix="plba-", dir=SHORT_TMP))
    try:
        for i in range(warmup + runs):
            took, cpu = await jupyter_lab_once(base / f"run{i}")
            counted = i >= warmup
            if counted:
                res.anchor.append(took)
                res.anchor_cpu.append(cpu)
            print(f"  run {i + 1}: ready in {fmt(took, 's')} ({cpu:.2f} CPU s)"
                  f"{'' if counted else ' (warm-up)'}")
    finally:
        shutil.rmtree(base, ignore_errors=True)


# ---- (b)+(d) cold starts and the first cell ------------------------------------------------


def uid_cpu_seconds(uid: int) -> float:
    """CPU time (user+sys) used so far by the processes of a sandbox uid (its server, just
    after it became ready: comparable with the anchor's, and less sensitive to load)."""
    total = 0.0
    for pid in pids_of_uid(uid):
        try:
            cpu = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        total += cpu.user + cpu.system
    return total


RUNNING = re.compile(r"\[I (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) ServerApp\] "
                     r"Jupyter Server \S+ is running at")


def readiness_lag(stack: Stack, workspace_id: str) -> float | None:
    """Seconds from the server's "is running at" log line (written just before it starts
    serving; the sandbox has no time zone, so UTC) until the provisioner's ``start`` returned:
    how late readiness is noticed. None if the line is not found."""
    log = stack.manager.provisioner.root / workspace_id / "server.log"  # type: ignore[attr-defined]
    match = RUNNING.search(log.read_text(errors="replace"))
    if match is None:
        return None
    logged = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)
    return stack.ended_at["start"] - logged.timestamp()


async def _cold_once(stack: Stack, res: Results, counted: bool, label: str) -> None:
    scheduled = await stack.schedule()
    csrf = await stack.admit(scheduled)
    began = now()
    client_s, workspace_id = await stack.start(scheduled.session_id, csrf)
    cpu = await asyncio.to_thread(uid_cpu_seconds, stack.uid_of(workspace_id))
    lag = readiness_lag(stack, workspace_id)
    first, kernel_s, parts = await _first_cell(stack, workspace_id, began)
    server_s = stack.start_times[scheduled.session_id]
    launch_s, fill_s = stack.phases["start"][-1], stack.phases["fill"][-1]
    hooks_s = stack.phases["hooks:live"][-1]
    await stack.end(scheduled.session_id)
    if counted:
        res.cold_client.append(client_s)
        res.cold_server.append(server_s)
        res.cold_launch.append(launch_s)
        res.cold_fill.append(fill_s)
        res.cold_hooks.append(hooks_s)
        res.cold_cpu.append(cpu)
        res.first_cell.append(first)
        res.first_kernel_post.append(kernel_s)
        if lag is not None:
            res.ready_lag.append(lag)
    print(f"  {label}: start_session {fmt(server_s, 's')} (sandboxed server ready "
          f"{fmt(launch_s, 's')} using {cpu:.2f} CPU s, noticed "
          f"{'?' if lag is None else fmt(lag)} after it logged running, task copied in "
          f"{fmt(fill_s)}, live hooks {fmt(hooks_s)}), POST /start "
          f"{fmt(client_s, 's')}, kernel created at {fmt(kernel_s, 's')}, "
          f"1+1 -> 2 at {fmt(first, 's')} ({parts}){'' if counted else ' (warm-up)'}")


async def run_cold(res: Results, runs: int, warmup: int, previous: Results | None) -> None:
    """Cold runs; with ``previous``, each run is preceded by one on the previous code path
    (``bench.previous_start``) in the same app, whose figures go to ``previous``."""
    print("\n(b) cold: warm_pool_size=0, POST /start as the candidate; "
          "(d) then POST /w/<id>/api/kernels and `1+1` over the proxied kernel WebSocket" +
          ("; each run alternates with one on the previous code path (bench.previous_start)"
           if previous is not None else ""))
    async with Stack("plbc-", warm_pool_size=0) as stack:
        for i in range(warmup + runs):
            if previous is not None:
                with previous_code_path():
                    await _cold_once(stack, previous, i >= warmup, f"run {i + 1} previous")
            await _cold_once(stack, res, i >= warmup, f"run {i + 1}")


# ---- (c) warm starts ------------------------------------------------------------------------


async def _first_cell(stack: Stack, workspace_id: str,
                      began: float) -> tuple[float, float, str]:
    """``POST /w/<id>/api/kernels`` and ``1+1`` over the proxied kernel WebSocket: seconds from
    ``began`` until the result came back and until the kernel POST answered, and where the time
    went."""
    asked = now()
    kernel_id = await stack.new_kernel(workspace_id)
    posted = now()
    ws = await stack.proxied_channels(workspace_id, kernel_id)
    connected = now()
    try:
        result = await exchange(ws, execute_request("1+1"), timeout_s=90)
        at = now() - began
    finally:
        await ws.close()
    assert result.text == "2", result.text
    return at, posted - began, (f"kernel POST {fmt(posted - asked)}, WebSocket "
                                f"{fmt(connected - posted)}, 1+1 {fmt(now() - connected)}")


async def run_warm(res: Results, runs: int, warmup: int, settle_s: float) -> None:
    print(f"\n(c) warm: warm_pool_size=1; each run waits for a warm server (+{settle_s:.1f} s "
          "settle), then POST /start (claim + copy the task in) and the first cell (`1+1` on "
          "the kernel the workspace started with it); the same-run baseline: the same POST "
          "/start time plus a second kernel started on request and its `1+1` (the path before "
          "spare kernels); end; wait for the refill (after the first cell)")
    async with Stack("plbw-", warm_pool_size=1) as stack:
        filled = await stack.wait_warm()
        print(f"  initial pool fill: {fmt(filled, 's')} after the app started")
        for i in range(warmup + runs):
            scheduled = await stack.schedule()
            csrf = await stack.admit(scheduled)
            await stack.wait_warm()
            await asyncio.sleep(settle_s)
            claimed_at = now()
            client_s, workspace_id = await stack.start(scheduled.session_id, csrf)
            first, _, parts = await _first_cell(stack, workspace_id, claimed_at)
            server_s = stack.start_times[scheduled.session_id]
            fill_s, hooks_s = stack.phases["fill"][-1], stack.phases["hooks:live"][-1]
            asked = now()
            on_request, _, _ = await _first_cell(stack, workspace_id, asked)
            on_request += client_s
            await stack.wait_warm()
            refill = now() - claimed_at
            await stack.end(scheduled.session_id)
            counted = i >= warmup
            if counted:
                res.warm_client.append(client_s)
                res.warm_server.append(server_s)
                res.warm_refill.append(refill)
                res.warm_fill.append(fill_s)
                res.warm_hooks.append(hooks_s)
                res.warm_first_cell.append(first)
                res.warm_first_cell_on_request.append(on_request)
            print(f"  run {i + 1}: start_session {fmt(server_s)} (task copied in "
                  f"{fmt(fill_s)}, live hooks {fmt(hooks_s)}), POST /start {fmt(client_s)}, "
                  f"first cell {fmt(first)} ({parts}; kernel started on request: "
                  f"{fmt(on_request)}), "
                  f"pool warm again {fmt(refill, 's')} after the claim"
                  f"{'' if counted else ' (warm-up)'}")


# ---- (e) many at once -----------------------------------------------------------------------


async def run_burst(res: Results, size: int, rounds: int, bound: int = 0) -> None:
    modes = {"gated": bound, "unbounded": size}
    cores = "" if bound else f": {os.cpu_count()} CPUs"
    print(f"\n(e) burst: warm_pool_size=0, {size} starts in one asyncio.gather; gated "
          f"(max_parallel_starts={bound}{cores}) vs the same with every spare kernel started "
          f"with its server vs unbounded (max_parallel_starts={size}), rounds alternating")
    res.burst_size = size
    base = sandbox_uid_base()  # three pairlabs at once: a block of uids each
    async with Stack("plbg-", warm_pool_size=0, max_parallel_starts=modes["gated"],
                     uid_base=base) as gated, \
            Stack("plbs-", warm_pool_size=0, max_parallel_starts=modes["gated"],
                  uid_base=base + UID_BLOCK_STEP) as before, \
            Stack("plbu-", warm_pool_size=0, max_parallel_starts=modes["unbounded"],
                  uid_base=base + 2 * UID_BLOCK_STEP) as free:
        _spare_always_now(before)
        stacks = {"gated": gated, "gated, spare now": before, "unbounded": free}
        for mode, stack in stacks.items():  # the first start of an app is slower: not counted
            warm_up = await _burst_once(stack, 1)
            print(f"  warm-up {mode}: one start {fmt(warm_up[0], 's')} (not counted)")
        for r in range(rounds):
            order = list(stacks.items())
            for mode, stack in order if r % 2 == 0 else order[::-1]:
                cells: list[float] = []
                each = await _burst_once(stack, size, cells)
                res.bursts.setdefault(mode, []).append(each)
                res.burst_cells.setdefault(mode, []).append(cells)
                print(f"  round {r + 1} {mode:16} (K={stack.manager.gate.max_parallel:2}): "
                      f"first ready {fmt(min(each), 's')}, median {fmt(median(each), 's')}, "
                      f"all {size} ready {fmt(max(each), 's')}; first cells (JupyterLab "
                      f"+{LAB_LOAD_S:.1f} s, notebook +{OPEN_NOTEBOOK_S:.1f} s): median "
                      f"{fmt(median(cells), 's')}, last {fmt(max(cells), 's')}")
                print(f"    {load_line('after')}")


LAB_LOAD_S = 1.9
"""From the redirect to JupyterLab asking for the kernelspecs (its dock drawn after 1.9 s in
the walk through the demo, README)."""
OPEN_NOTEBOOK_S = 2.0
"""From JupyterLab loaded to the candidate's notebook asking for its kernel (a quick one)."""


def _spare_always_now(stack: Stack) -> None:
    """The code before deferred spares: every workspace starts its spare kernel with its
    server, also while others wait to start (the same-run baseline of "gated")."""
    provisioner = stack.manager.provisioner
    start = provisioner.start

    async def spare_now(spec: WorkspaceSpec) -> Any:
        return await start(replace(spec, spare_kernel="now"))

    provisioner.start = spare_now  # type: ignore[method-assign]


async def _burst_once(stack: Stack, size: int,
                      first_cells: list[float] | None = None) -> list[float]:
    scheduled = [await stack.schedule() for _ in range(size)]
    csrfs = [await stack.admit(s) for s in scheduled]
    print(f"    {load_line('before')}")
    cells: list[asyncio.Task[float]] = []

    async def first_cell(workspace_id: str, t0: float) -> float:
        await asyncio.sleep(LAB_LOAD_S)
        async with stack.cand.get(stack.proxied(workspace_id, "api/kernelspecs")) as resp:
            assert resp.status == 200, await resp.text()
        await asyncio.sleep(OPEN_NOTEBOOK_S)
        await _first_cell(stack, workspace_id, t0)
        return now() - t0

    async def one(session_id: str, csrf: str, t0: float) -> float:
        _, workspace_id = await stack.start(session_id, csrf)
        ready = now() - t0
        if first_cells is not None:
            cells.append(asyncio.create_task(first_cell(workspace_id, t0)))
        return ready

    gate = stack.manager.gate
    seen = {"most": 0, "memory": 0}

    async def sample() -> None:  # what the gate did: starts at once, holds for memory
        while True:
            seen["most"] = max(seen["most"], gate.running)
            seen["memory"] += gate.held_for_memory
            await asyncio.sleep(0.02)

    sampler = asyncio.create_task(sample())
    began = now()
    try:
        each = await asyncio.gather(*(one(s.session_id, c, began)
                                      for s, c in zip(scheduled, csrfs, strict=True)))
    finally:
        sampler.cancel()
    print(f"    at most {seen['most']} starts at once; held for memory in"
          f" {seen['memory']} samples of 20 ms; MemAvailable now"
          f" {psutil.virtual_memory().available / 2**30:.1f} GiB")
    if first_cells is not None:
        first_cells.extend(await asyncio.gather(*cells))
    await asyncio.gather(*(stack.end(s.session_id) for s in scheduled))
    return list(each)


# ---- report ---------------------------------------------------------------------------------


def report_previous(res: Results, previous: Results) -> None:
    """The previous code path's cold figures beside today's, from the same app and runs."""
    if not previous.cold_server or not res.cold_server:
        return

    def vs(values: list[float], before: list[float]) -> str:
        return f"   now {fmt(median(values), 's')} = {median(values) / median(before):.2f} x"

    print("\n== previous code path (bench.previous_start), alternating with (b)/(d) ==")
    print(row("(b) cold start_session, previous", previous.cold_server, "s") +
          vs(res.cold_server, previous.cold_server))
    print(row("    sandboxed server until ready, previous", previous.cold_launch, "s") +
          vs(res.cold_launch, previous.cold_launch))
    print(row("    its CPU time until ready, previous", previous.cold_cpu, "s") +
          vs(res.cold_cpu, previous.cold_cpu))
    if previous.ready_lag and res.ready_lag:
        print(row("    readiness noticed after 'running', previous", previous.ready_lag, "ms") +
              vs(res.ready_lag, previous.ready_lag))
    print(row("(d) first cell, previous", previous.first_cell, "s") +
          vs(res.first_cell, previous.first_cell))


def report(res: Results) -> None:
    anchor = median(res.anchor) if res.anchor else float("nan")

    def ratio(values: list[float]) -> str:
        if not values or not res.anchor:
            return ""
        return f"   = {median(values) / anchor:.2f} x anchor p50"

    print("\n== summary (seconds unless noted) ==")
    if res.anchor:
        print(row("(a) anchor: bare jupyter lab ready", res.anchor, "s"))
        print(row("    its CPU time (user+sys) until ready", res.anchor_cpu, "s"))
    if res.cold_server:
        print(row("(b) cold: start_session (server side)", res.cold_server, "s") +
              ratio(res.cold_server))
        print(row("(b) cold: POST /start -> response (client)", res.cold_client, "s") +
              ratio(res.cold_client))
        print(row("    of which: sandboxed server until ready", res.cold_launch, "s"))
        print(row("    its CPU time (user+sys) until ready", res.cold_cpu, "s") +
              (f"   = {median(res.cold_cpu) / median(res.anchor_cpu):.2f} x anchor CPU p50"
               if res.anchor_cpu else ""))
        if res.ready_lag:
            print(row("    readiness noticed after 'running' logged", res.ready_lag, "ms"))
        print(row("    of which: task copied in (fill)", res.cold_fill, "ms"))
        print(row("    of which: live hooks (recorder)", res.cold_hooks, "ms"))
        print(f"    target cold p50 <= 1.2 s: {verdict(median(res.cold_server), 1.2)} "
              f"(server side {fmt(median(res.cold_server), 's')}, "
              f"client side {fmt(median(res.cold_client), 's')})")
        print(row("(d) first cell: POST /start -> 1+1 result", res.first_cell, "s") +
              ratio(res.first_cell))
        print(row("    of which: until the kernel POST answered", res.first_kernel_post, "s"))
        print(f"    target first cell <= 2.0 s (p50): {verdict(median(res.first_cell), 2.0)}; "
              f"p95 {fmt(percentile(res.first_cell, 95), 's')}")
    if res.warm_server:
        print(row("(c) warm: start_session (server side)", res.warm_server, "ms") +
              ratio(res.warm_server))
        print(row("(c) warm: POST /start -> response (client)", res.warm_client, "ms") +
              ratio(res.warm_client))
        print(row("    of which: task copied in (fill)", res.warm_fill, "ms"))
        print(row("    of which: live hooks (recorder)", res.warm_hooks, "ms"))
        print(row("(c) warm: first cell: POST /start -> 1+1 result", res.warm_first_cell,
                  "ms"))
        ratio_s = median(res.warm_first_cell) / median(res.warm_first_cell_on_request)
        print(row("    baseline: kernel started on request", res.warm_first_cell_on_request,
                  "ms") + f"   first cell = {ratio_s:.2f} x baseline p50")
        print(f"    goal warm first cell p50 <= 100 ms: "
              f"{verdict(median(res.warm_first_cell), 0.100)}")
        print(row("(c) warm: pool warm again after a claim", res.warm_refill, "s"))
        print(f"    target warm p50 <= 50 ms: {verdict(median(res.warm_server), 0.050)}, "
              f"p95 <= 150 ms: {verdict(percentile(res.warm_server, 95), 0.150)}")
    for mode, rounds in res.bursts.items():
        n = res.burst_size
        print(row(f"(e) burst {mode}: first of {n} ready", [min(r) for r in rounds], "s"))
        print(row(f"(e) burst {mode}: median of {n} ready", [median(r) for r in rounds], "s"))
        print(row(f"(e) burst {mode}: all {n} ready", [max(r) for r in rounds], "s") +
              ratio([max(r) for r in rounds]))
        cells = res.burst_cells.get(mode, [])
        if cells:
            print(row(f"(e) burst {mode}: last first cell of {n}", [max(c) for c in cells],
                      "s") + f"   (median {fmt(median([median(c) for c in cells]), 's')})")
        worst = max(max(r) for r in rounds)
        size_note = "" if n == 10 else " (the targets are for 10)"
        print(f"    target {n} at once all ready <= 8 s (DESIGN){size_note}: "
              f"{verdict(worst, 8.0)}; <= 4 s (issue 15): {verdict(worst, 4.0)} "
              f"(worst round {fmt(worst, 's')})")


async def main(args: argparse.Namespace) -> None:
    only = set(args.only.split(","))
    res = Results()
    previous = Results() if "previous" in only else None
    try:
        if "anchor" in only:
            await run_anchor(res, args.runs, args.warmup)
        if "cold" in only:
            await run_cold(res, args.runs, args.warmup, previous)
        if "warm" in only:
            await run_warm(res, args.runs, args.warmup, args.settle)
        if "burst" in only:
            await run_burst(res, args.burst, args.burst_rounds, args.burst_bound)
    finally:
        report(res)
        if previous is not None:
            report_previous(res, previous)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.provisioning", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="counted runs of (a)-(d) each")
    parser.add_argument("--warmup", type=int, default=1, help="uncounted runs before each")
    parser.add_argument("--burst", type=int, default=10, help="sessions started at once in (e)")
    parser.add_argument("--burst-rounds", type=int, default=1, help="rounds of (e)")
    parser.add_argument("--burst-bound", type=int, default=0,
                        help="max_parallel_starts of (e)'s gated app (0: the default, one per"
                             " core)")
    parser.add_argument("--settle", type=float, default=1.0,
                        help="seconds to wait after the pool is warm before a warm start")
    parser.add_argument("--only", default="anchor,cold,warm,burst",
                        help="comma-separated subset of anchor,cold,warm,burst,previous "
                             "(previous: each cold run alternates with one on the previous "
                             "code path, bench.previous_start)")
    args = parser.parse_args(argv)
    if not (1 <= args.runs <= 1000 and 0 <= args.warmup <= 10 and 1 <= args.burst <= 50
            and 1 <= args.burst_rounds <= 20 and 0 <= args.burst_bound <= 64):
        parser.error("--runs 1..1000, --warmup 0..10, --burst 1..50, --burst-rounds 1..20,"
                     " --burst-bound 0..64")
    return args


if __name__ == "__main__":
    options = parse(sys.argv[1:])
    run_bench("pairlab provisioning benchmark", "bench.provisioning", lambda: main(options))
