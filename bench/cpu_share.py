"""A busy neighbour: proxied HTTP to one workspace while another workspace hogs the CPU, with
the hog's cpu cgroup cap on and off in the same run.

    .venv/bin/python -m bench.cpu_share [--http 300] [--rounds 2] [--hog-seconds 60]

Two live sessions on the real app (``workspace_cpus`` at its default, 1 CPU). The victim's
``GET /w/<id>/api/status`` through pairlab's proxy is timed request by request (one in flight;
the client shares pairlab's process and event loop, as in ``bench.proxy``):

- idle: nothing else runs;
- cap on: the neighbour's kernel busy-loops in (cores + 1) processes, its cpu group as pairlab
  made it (quota ``workspace_cpus``, ``cpu.shares`` 512 on it and on the shared parent);
- cap off: the same hogs, the same group with quota -1 and ``cpu.shares`` 1024 on it and the
  parent (a workspace as it was before the cpu group).

On and off alternate for ``--rounds`` rounds (the order swaps each round). For each arm the
hog's CPU use over its window (``cpuacct.usage``) and its throttled periods are printed with the
p50 / p95 of the requests. The hogs are killed at the end of every arm.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import (
    Stack,
    exchange,
    execute_request,
    fmt,
    median,
    now,
    percentile,
    row,
    run_bench,
    wait_kernel_ready,
)
from workspaces.sandbox.cgroups import Cgroups, CgroupSet
from workspaces.sandbox.limits import Limits

HOGS = (os.cpu_count() or 1) + 1


def hog_code(seconds: float) -> str:
    return ("import subprocess, sys\n"
            f"code = 'import time\\nend = time.time() + {seconds:.0f}\\n"
            "while time.time() < end: pass'\n"
            f"hogs = [subprocess.Popen([sys.executable, '-c', code]) for _ in range({HOGS})]\n"
            "print(len(hogs))")


KILL = "for h in hogs: h.kill()\nfor h in hogs: h.wait()\nprint('killed')"


@dataclass
class Arm:
    wall: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    """The hog's CPUs used over each window (cpuacct)."""
    throttled: int = 0


def cpu_dir(groups: CgroupSet) -> Path:
    return next(d for d in groups.dirs if (d / "cpu.cfs_quota_us").exists())


def set_cap(groups: CgroupSet, on: bool) -> None:
    """On: the files as pairlab writes them; off: no quota and a nice-0 process's weight."""
    cpu, limits = cpu_dir(groups), Limits(cpus=1.0)
    (cpu / "cpu.cfs_quota_us").write_text(str(limits.cpu_quota_us if on else -1))
    for folder in (cpu, cpu.parent):
        (folder / "cpu.shares").write_text(str(limits.cpu_shares if on else 1024))


async def requests(stack: Stack, workspace_id: str, n: int, arm: Arm) -> None:
    url = stack.proxied(workspace_id, "api/status")
    for _ in range(n):
        began = now()
        async with stack.cand.get(url) as resp:
            await resp.read()
        arm.wall.append(now() - began)
        assert resp.status == 200, resp.status


async def with_hog(stack: Stack, hog_ws: str, hog_kernel: str, groups: CgroupSet,
                   victim: str, n: int, seconds: float, arm: Arm) -> None:
    channels = await stack.proxied_channels(hog_ws, hog_kernel)
    try:
        await wait_kernel_ready(channels)
        started = await exchange(channels, execute_request(hog_code(seconds)))
        assert started.text.strip() == str(HOGS), started.text
        await asyncio.sleep(1.0)  # the hogs reach the cores before the window opens
        used, throttled, at = groups.cpu_usage_ns(), groups.cpu_stat()["nr_throttled"], now()
        await requests(stack, victim, n, arm)
        took = now() - at
        assert took < seconds - 1, f"the window ({took:.0f} s) outlived the hogs; raise " \
                                   "--hog-seconds"
        arm.cpus.append(((groups.cpu_usage_ns() or 0) - (used or 0)) / 1e9 / took)
        arm.throttled += groups.cpu_stat()["nr_throttled"] - throttled
        killed = await exchange(channels, execute_request(KILL))
        assert killed.text.strip() == "killed", killed.text
    finally:
        await channels.close()


def report(label: str, arm: Arm, idle: Arm | None) -> None:
    print(row(label, arm.wall, "ms", p99=True))
    extra = ""
    if idle is not None:
        extra = (f"; p50 x{median(arm.wall) / median(idle.wall):.2f}, "
                 f"p95 x{percentile(arm.wall, 95) / percentile(idle.wall, 95):.2f} of idle")
    if arm.cpus:
        cpus = ", ".join(f"{c:.2f}" for c in arm.cpus)
        extra = f"    hog used {cpus} CPUs per window, throttled {arm.throttled} periods" + extra
    if extra:
        print(extra.lstrip(";").rstrip())


async def main(args: argparse.Namespace) -> None:
    async with Stack("plbc-", warm_pool_size=0) as stack:
        _, victim = await stack.new_session()
        _, hog_ws = await stack.new_session()
        hog_kernel = await stack.new_kernel(hog_ws)
        groups = Cgroups().existing(hog_ws)
        if groups is None or not groups.cpu_stat():
            raise SystemExit("no cpu cgroup for the hog's workspace: nothing to compare")
        cpu = cpu_dir(groups)
        print(f"victim {victim}, hog {hog_ws} ({HOGS} busy processes); hog's cpu group {cpu}: "
              f"quota {(cpu / 'cpu.cfs_quota_us').read_text().strip()} us per "
              f"{(cpu / 'cpu.cfs_period_us').read_text().strip()} us, shares "
              f"{(cpu / 'cpu.shares').read_text().strip()}")
        await requests(stack, victim, 30, Arm())  # warm-up, uncounted
        idle, on, off = Arm(), Arm(), Arm()
        began = now()
        await requests(stack, victim, args.http, idle)
        for i in range(args.rounds):
            order = ((True, on), (False, off)) if i % 2 == 0 else ((False, off), (True, on))
            for cap, arm in order:
                set_cap(groups, cap)
                await with_hog(stack, hog_ws, hog_kernel, groups, victim, args.http,
                               args.hog_seconds, arm)
        set_cap(groups, True)
        print(f"\nGET /w/<victim>/api/status through the proxy, {args.http} per window, "
              f"{args.rounds} round(s) of cap on / off ({fmt(now() - began, 's')})")
        report("idle (no hog)", idle, None)
        report("hog, cap on (1 CPU, shares 512)", on, idle)
        report("hog, cap off (no quota, shares 1024)", off, idle)
        print(f"    cap on / cap off: p50 x{median(on.wall) / median(off.wall):.2f}, "
              f"p95 x{percentile(on.wall, 95) / percentile(off.wall, 95):.2f}")
        print()


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.cpu_share", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--http", type=int, default=300, help="GET requests per window")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of cap on and cap off")
    parser.add_argument("--hog-seconds", type=float, default=60.0,
                        help="how long each arm's hogs may spin at most (they are killed after)")
    args = parser.parse_args(argv)
    if not (1 <= args.http <= 100_000 and 1 <= args.rounds <= 20
            and 5 <= args.hog_seconds <= 600):
        parser.error("--http 1-100000, --rounds 1-20, --hog-seconds 5-600")
    return args


if __name__ == "__main__":
    options = parse(sys.argv[1:])
    run_bench("pairlab CPU share benchmark", "bench.cpu_share", lambda: main(options))
