"""Load: N live interviews at once through the real proxy, each watched by an interviewer.

    .venv/bin/python -m bench.load [--sizes 10,20,40] [--seconds 30] [--baseline 1]
                                   [--idle 10] [--start-at-once 3]

The real app (``Stack``: sandboxed jupyter-servers, ``warm_pool_size=0``) starts max(sizes)
sessions, ``--start-at-once`` at a time, each with a kernel started through the proxy, and
reads pairlab's CPU for ``--idle`` seconds with all of them idle. Then,
for the baseline (``--baseline`` sessions, no hog) and for each size N, the load client
(``bench.load_client``) runs in a process of its own over the first N sessions for
``--seconds``: per interview, typing in ``main.py`` over the collaboration room WebSocket, a
cell a second over the kernel WebSocket, a shell command every 5 s over the terminal WebSocket,
and the interviewer's live feed (the observe page's Server-Sent Events). In every sized run the
first session also runs a busy loop in a second kernel of its workspace, throughout.

Measured per run:
- action → observer latency: from a candidate event's ``at`` (when pairlab's proxy saw the
  action: a cell's reply, a command's end, a file's save) until the client read it on the
  feed: p50/p99 over all sessions and per kind, and each session's p99 (spread, slowest);
- pairlab's CPU: this process's CPU time (all its threads) during the run, per second and per
  client action (keystroke, cell, terminal key). The client runs in its own process (its CPU
  time is printed apart), and this process does nothing but pairlab meanwhile (bar two small
  samplers: its RSS every 0.5 s, its loop lag every 50 ms), so this is pairlab's; the
  workspaces' jupyter-servers and kernels are other processes, not counted;
- events/s stored (rows of ``events`` of the run's sessions with ``at`` inside the run);
- pairlab's RSS (this process) at the start and at its highest during the run;
- cell round trips per session (starvation shows as slow or few cells), and the load average;
- whether a process works or waits for a CPU: the event-loop lag of pairlab and of the client
  (a 50 ms sleep woken late), their threads' run-queue wait (``/proc/<pid>/task/*/schedstat``),
  the CPU time of the run's workspaces' processes and how busy the machine's CPUs were.
The sessions not in a run stay idle (started, kernel idle, nobody connected).
Target: action → observer p99 <= 50 ms, and no session starved.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from bench.common import (
    Stack,
    loop_lag,
    median,
    percentile,
    run_bench,
    verdict,
    wait_kernel_ready,
)
from common.clock import iso
from workspaces.sandbox.cgroups import Cgroups, CgroupSet

TARGET_P99_MS = 50.0
CLIENT_TIMEOUT_S = 300.0
"""Beyond ``--seconds``: opening every interview's sockets, the last actions, the grace."""


@dataclass(frozen=True)
class Live:
    session_id: str
    workspace_id: str
    kernel_id: str


async def start_sessions(stack: Stack, count: int, at_once: int) -> list[Live]:
    gate = asyncio.Semaphore(at_once)
    began = time.monotonic()

    async def one(i: int) -> Live:
        async with gate:
            session_id, workspace_id = await stack.new_session()
            kernel_id = await stack.new_kernel(workspace_id)
            ws = await stack.proxied_channels(workspace_id, kernel_id)
            try:
                await wait_kernel_ready(ws, timeout_s=120)
            finally:
                await ws.close()
        print(f"  session {i + 1}/{count} live ({time.monotonic() - began:.1f} s)", flush=True)
        return Live(session_id, workspace_id, kernel_id)

    return list(await asyncio.gather(*(one(i) for i in range(count))))


def workspaces_cpu(groups: list[CgroupSet]) -> float:
    """CPU seconds used by everything ever in these workspaces' cgroups (``cpuacct.usage``:
    processes that exited during the run, such as the hog's, are counted too)."""
    return sum((group.cpu_usage_ns() or 0) for group in groups) / 1e9


def scheduling(pid: int) -> dict[int, tuple[int, int]]:
    """Per live thread of ``pid``: (ns it spent runnable but waiting for a CPU, times it was
    given a CPU), the second and third fields of ``/proc/<pid>/task/<tid>/schedstat``."""
    found: dict[int, tuple[int, int]] = {}
    for stat in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().split()
            found[int(stat.parent.name)] = int(fields[1]), int(fields[2])
    return found


def sched_delta(before: dict[int, tuple[int, int]], after: dict[int, tuple[int, int]]
                ) -> tuple[float, int]:
    """(seconds waited for a CPU, times given one) between two ``scheduling`` readings, by the
    threads alive at the second (a thread that ended in between is not counted)."""
    waited = slices = 0
    for tid, (wait, runs) in after.items():
        old_wait, old_runs = before.get(tid, (0, 0))
        waited, slices = waited + wait - old_wait, slices + runs - old_runs
    return waited / 1e9, slices


def machine_busy() -> tuple[float, float]:
    """(busy CPU seconds of the whole machine, all CPU seconds) so far."""
    times = psutil.cpu_times()._asdict()  # guest times are inside user already: not added
    busy = sum(times.get(k, 0.0) for k in ("user", "nice", "system", "irq", "softirq", "steal"))
    return busy, busy + times["idle"] + times.get("iowait", 0.0)


def last_seq(stack: Stack, session_id: str) -> int:
    rows = stack.query("SELECT COALESCE(MAX(seq), 0) FROM events WHERE session_id = ?",
                       (session_id,))
    return int(rows[0][0])


@dataclass
class Run:
    label: str
    seconds: float
    """``--seconds``: how long the interviews act (the window also holds their last action)."""
    sessions: list[dict[str, Any]]
    window_s: float
    client_cpu_s: float
    pairlab_cpu_s: float
    rss_start: int
    rss_max: int
    events: int
    actions: int
    load_before: float
    load_after: float
    workspaces_cpu_s: float
    """CPU time of the run's workspaces' processes (jupyter-servers, kernels, shells)."""
    machine_busy: float
    """Share of the machine's CPUs busy (every process, other users' too) during the run."""
    lag_ms: list[float]
    """pairlab's event loop: how late it woke from 50 ms sleeps during the run."""
    client_lag_ms: list[float]
    """The same in the load client's event loop."""
    pairlab_wait_s: float
    """Time pairlab's threads spent runnable, waiting for a CPU (the scheduler's run queue)."""
    client_wait_s: float
    pairlab_slices: int
    """Times pairlab's threads were given a CPU during the run."""
    pairlab_threads: int


async def run_once(stack: Stack, folder: Path, label: str, lives: list[Live],
                   hog_kernel: str | None, seconds: float) -> Run:
    plan = {
        "data_dir": str(stack.settings.data_dir), "port": stack.settings.port,
        "workspace_port": stack.settings.workspace_port, "seconds": seconds,
        "candidate_cookies": str(folder / "cand.cookies"),
        "interviewer_cookies": str(folder / "api.cookies"),
        "sessions": [{"session_id": live.session_id, "workspace_id": live.workspace_id,
                      "kernel_id": live.kernel_id, "after_seq": last_seq(stack, live.session_id),
                      "hog_kernel": hog_kernel if i == 0 else None}
                     for i, live in enumerate(lives)],
    }
    stack.cand.cookie_jar.save(plan["candidate_cookies"])
    stack.api.cookie_jar.save(plan["interviewer_cookies"])
    plan_path, result_path = folder / f"{label}.plan.json", folder / f"{label}.result.json"
    plan_path.write_text(json.dumps(plan))
    me = psutil.Process()
    load_before = os.getloadavg()[0]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.load_client", str(plan_path), str(result_path),
        stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    rss_start = rss_max = me.memory_info().rss
    cpu_before = cpu_after = ws_before = ws_after = 0.0
    busy_before = busy_after = (0.0, 0.0)
    sched_before: dict[int, tuple[int, int]] = {}
    sched_after: dict[int, tuple[int, int]] = {}
    client_before: dict[int, tuple[int, int]] = {}
    client_after: dict[int, tuple[int, int]] = {}
    groups = [group for live in lives
              if (group := Cgroups().existing(live.workspace_id)) is not None]
    began_at = ended_at = datetime.now(UTC)
    sampler: asyncio.Task[None] | None = None
    lags: list[float] = []
    lagger: asyncio.Task[None] | None = None

    async def sample_rss() -> None:
        nonlocal rss_max
        while True:
            rss_max = max(rss_max, me.memory_info().rss)
            await asyncio.sleep(0.5)

    def cpu() -> float:
        times = me.cpu_times()
        return float(times.user + times.system)

    try:
        async with asyncio.timeout(seconds + CLIENT_TIMEOUT_S):
            async for raw in proc.stdout:
                line = raw.decode().strip()
                # the /proc scans of the workspaces' CPU stay outside pairlab's CPU window
                if line == "ready":
                    ws_before, busy_before = workspaces_cpu(groups), machine_busy()
                    sched_before, client_before = scheduling(os.getpid()), scheduling(proc.pid)
                    cpu_before, began_at = cpu(), datetime.now(UTC)
                    rss_start = me.memory_info().rss
                    sampler = asyncio.create_task(sample_rss())
                    lagger = asyncio.create_task(loop_lag(lags))
                elif line == "done":
                    cpu_after, ended_at = cpu(), datetime.now(UTC)
                    ws_after, busy_after = workspaces_cpu(groups), machine_busy()
                    sched_after, client_after = scheduling(os.getpid()), scheduling(proc.pid)
                    for task in (sampler, lagger):
                        if task is not None:
                            task.cancel()
            code = await proc.wait()
    finally:
        for task in (sampler, lagger):
            if task is not None:
                task.cancel()
        if proc.returncode is None:  # timed out: stop the client this run started
            proc.kill()
            await proc.wait()
    if code != 0:
        raise RuntimeError(f"the load client failed (exit {code}); see its stderr above")
    result = json.loads(result_path.read_text())
    ids = [live.session_id for live in lives]
    marks = ",".join("?" * len(ids))
    events = int(stack.query(
        f"SELECT COUNT(*) FROM events WHERE session_id IN ({marks}) AND at >= ? AND at <= ?",  # noqa: S608 - placeholders only
        (*ids, iso(began_at), iso(ended_at)))[0][0])
    sessions = result["sessions"]
    actions = sum(s["keys"] + s["cells"] + s["terminal_keys"] for s in sessions)
    waited, slices = sched_delta(sched_before, sched_after)
    return Run(label, seconds, sessions, result["window_s"], result["client_cpu_s"],
               cpu_after - cpu_before, rss_start, rss_max, events, actions, load_before,
               os.getloadavg()[0], ws_after - ws_before,
               (busy_after[0] - busy_before[0]) / max(busy_after[1] - busy_before[1], 1e-9),
               [lag * 1000 for lag in lags], result["client_lag_ms"],
               waited, sched_delta(client_before, client_after)[0], slices, len(sched_after))


async def idle_cpu(seconds: float) -> float:
    """This process's CPU time per second while it only serves idle sessions (printed with how
    often its threads were given a CPU, and how long they waited for one)."""
    me = psutil.Process()
    await asyncio.sleep(2.0)  # the last start's after-effects
    before, sched = me.cpu_times(), scheduling(os.getpid())
    began = time.monotonic()
    await asyncio.sleep(seconds)
    after, sched_after = me.cpu_times(), scheduling(os.getpid())
    took = time.monotonic() - began
    used = float((after.user + after.system - before.user - before.system) / took)
    waited, slices = sched_delta(sched, sched_after)
    print(f"pairlab with every session idle (nobody connected), over {seconds:.0f} s: CPU "
          f"{used:.3f} s/s; {len(sched_after)} threads, given a CPU {slices / took:.0f} "
          f"times/s, waiting for one {waited / took:.3f} s/s")
    return used


def ms(value: float) -> str:
    return f"{value:.1f} ms"


def report(run: Run, hog: bool, idle: float) -> list[float]:
    """Print one run; return the p99 of every session (for the summary)."""
    mib = 1024 * 1024
    every = [v for s in run.sessions for kind in s["latency_ms"].values() for v in kind]
    kinds: dict[str, list[float]] = {}
    for s in run.sessions:
        for kind, values in s["latency_ms"].items():
            kinds.setdefault(kind, []).extend(values)
    print(f"\n-- {run.label}: {len(run.sessions)} interview(s)"
          f"{' (session 1 also runs the CPU hog)' if hog else ''}, {run.window_s:.1f} s; "
          f"load average {run.load_before:.2f} -> {run.load_after:.2f}")
    p99 = percentile(every, 99)
    print(f"  action -> observer, all candidate events: n={len(every)} p50 "
          f"{ms(median(every))} p99 {ms(p99)} max {ms(max(every, default=float('nan')))}"
          f"; target p99 <= {TARGET_P99_MS:.0f} ms: {verdict(p99, TARGET_P99_MS)}")
    for kind, values in sorted(kinds.items()):
        print(f"    {kind:<18} n={len(values):<5} p50 {ms(median(values)):>9} "
              f"p99 {ms(percentile(values, 99)):>9}")
    per_session = [(percentile(v, 99), i) for i, s in enumerate(run.sessions)
                   if (v := [x for kind in s["latency_ms"].values() for x in kind])]
    p99s = [p for p, _ in per_session]
    if per_session:
        worst, at = max(per_session)
        print(f"  per-session p99: min {ms(min(p99s))} median {ms(median(p99s))} "
              f"max {ms(worst)} (the slowest: session {at + 1}"
              f"{', the hog' if hog and at == 0 else ''})")
    cells = [s["cells"] for s in run.sessions]
    rts = [median(s["cell_rt_ms"]) for s in run.sessions if s["cell_rt_ms"]]
    p99_rts = [percentile(s["cell_rt_ms"], 99) for s in run.sessions if s["cell_rt_ms"]]
    starved = [i + 1 for i, s in enumerate(run.sessions)
               if not s["latency_ms"] or s["cells"] < 0.5 * max(cells)]
    print(f"  cells per session: min {min(cells)} max {max(cells)} (a cell a second: "
          f"{run.seconds:.0f} at most); cell round trip p50 per "
          f"session: min {ms(min(rts, default=float('nan')))} max "
          f"{ms(max(rts, default=float('nan')))}; p99 max {ms(max(p99_rts, default=float('nan')))}"
          f"; starved (no event seen, or under half the most cells): {starved or 'none'}")
    if hog:
        print(f"  the hog's busy loop (session 1, second kernel): "
              f"{run.sessions[0]['hog'] or 'NO REPLY read'}")
    errors = [f"session {i + 1}: {e}" for i, s in enumerate(run.sessions) for e in s["errors"]]
    for line in errors[:5]:
        print(f"  ERROR {line}")
    keys = sum(s["keys"] for s in run.sessions)
    print(f"  actions: {run.actions} ({keys} keystrokes in rooms, "
          f"{sum(cells)} cells, {sum(s['terminal_keys'] for s in run.sessions)} terminal keys)"
          f" = {run.actions / run.window_s:.1f}/s; events stored {run.events} = "
          f"{run.events / run.window_s:.1f}/s")
    busy = run.pairlab_cpu_s - idle * run.window_s  # less what the idle sessions cost anyway
    print(f"  pairlab CPU: {run.pairlab_cpu_s:.2f} s = {run.pairlab_cpu_s / run.window_s:.3f} "
          f"s/s, {run.pairlab_cpu_s / max(run.actions, 1) * 1000:.3f} ms per action; less the "
          f"idle rate: {busy / run.window_s:.3f} s/s, {busy / max(run.actions, 1) * 1000:.3f} ms"
          f" per action (client process apart: {run.client_cpu_s / run.window_s:.3f} s/s)")
    client_lag = run.client_lag_ms
    print(f"  event-loop lag (a 50 ms sleep woken late by): pairlab p50 {ms(median(run.lag_ms))} "
          f"p99 {ms(percentile(run.lag_ms, 99))}; the load client p50 "
          f"{ms(median(client_lag))} p99 {ms(percentile(client_lag, 99))}")
    print(f"  waiting for a CPU (run-queue wait of all threads, /proc/<pid>/task/*/schedstat): "
          f"pairlab {run.pairlab_wait_s / run.window_s:.3f} s/s, the load client "
          f"{run.client_wait_s / run.window_s:.3f} s/s; pairlab's {run.pairlab_threads} threads "
          f"were given a CPU {run.pairlab_slices / run.window_s:.0f} times/s")
    print(f"  the run's workspaces (servers, kernels, shells): "
          f"{run.workspaces_cpu_s / run.window_s:.3f} s/s CPU; the machine's CPUs were "
          f"{run.machine_busy:.0%} busy (every process, other users' too)")
    print(f"  pairlab RSS: {run.rss_start / mib:.0f} MiB at the start, "
          f"{run.rss_max / mib:.0f} MiB at most")
    return p99s


async def main(args: argparse.Namespace) -> None:
    sizes: list[int] = args.sizes
    runs: list[tuple[str, int, bool]] = [("baseline", args.baseline, False)] \
        if args.baseline else []
    runs += [(f"N={n}", n, True) for n in sizes]
    most = max(n for _, n, _ in runs)
    with tempfile.TemporaryDirectory(prefix="plbl-client-") as tmp:
        async with Stack("plbl-", warm_pool_size=0) as stack:
            print(f"starting {most} sessions, {args.start_at_once} at a time ...", flush=True)
            lives = await start_sessions(stack, most, args.start_at_once)
            hog = await stack.new_kernel(lives[0].workspace_id)
            idle = await idle_cpu(args.idle)
            summary = []
            for label, n, with_hog in runs:
                run = await run_once(stack, Path(tmp), label, lives[:n],
                                     hog if with_hog else None, args.seconds)
                p99s = report(run, with_hog, idle)
                summary.append((label, p99s, run))
            print("\nsummary (action -> observer p99 over all events; per-session p99 spread):")
            for label, p99s, run in summary:
                every = [v for s in run.sessions for k in s["latency_ms"].values() for v in k]
                print(f"  {label:<9} p99 {ms(percentile(every, 99)):>9}  per-session "
                      f"{ms(min(p99s, default=float('nan')))} .. "
                      f"{ms(max(p99s, default=float('nan')))}  pairlab CPU "
                      f"{run.pairlab_cpu_s / run.window_s:.3f} s/s (waits for a CPU "
                      f"{run.pairlab_wait_s / run.window_s:.3f} s/s)  workspaces "
                      f"{run.workspaces_cpu_s / run.window_s:.2f} s/s  machine "
                      f"{run.machine_busy:.0%} busy  events "
                      f"{run.events / run.window_s:.0f}/s  RSS max {run.rss_max >> 20} MiB")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,20,40",
                        help="interviews at once, one run each (comma-separated, 1..60)")
    parser.add_argument("--seconds", type=float, default=30.0,
                        help="how long each run lasts (5..600)")
    parser.add_argument("--baseline", type=int, default=1,
                        help="interviews of the baseline run, without the hog (0: none)")
    parser.add_argument("--idle", type=float, default=10.0,
                        help="seconds pairlab's CPU is read with every session idle (1..120)")
    parser.add_argument("--start-at-once", type=int, default=3,
                        help="sessions started at the same time (1..10)")
    args = parser.parse_args(argv)
    try:
        args.sizes = [int(n) for n in args.sizes.split(",")]
    except ValueError:
        parser.error(f"--sizes must be numbers separated by commas, not {args.sizes!r}")
    if not all(1 <= n <= 60 for n in args.sizes):
        parser.error("every size must be between 1 and 60")
    if not (5 <= args.seconds <= 600 and 0 <= args.baseline <= 60 and 1 <= args.idle <= 120
            and 1 <= args.start_at_once <= 10):
        parser.error("--seconds 5..600, --baseline 0..60, --idle 1..120, --start-at-once 1..10")
    return args


if __name__ == "__main__":
    options = parse(sys.argv[1:])
    run_bench("pairlab load benchmark", "bench.load", lambda: main(options))
