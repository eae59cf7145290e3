"""The attack: code in a real sandboxed workspace busy-loops in more processes than the host has
cores to take every core (starving the proxy, the recorder and the other interviews). With the
workspace's cpu cgroup it gets its cap (``Limits.cpus``, what ``workspace_cpus`` sets) and no
more, and the kernel says it throttled it. Measured from the host, as pairlab would see it."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from tests.workspaces.conftest import (
    WorkspaceClient,
    free_uid,
    make_data_dir,
    remove_data_dir,
    require_sandbox,
)
from workspaces.local import LocalProvisioner
from workspaces.provisioner import WorkspaceSpec
from workspaces.sandbox.cgroups import Cgroups
from workspaces.sandbox.limits import Limits

CORES = os.cpu_count() or 1
HOGS = max(3, CORES + 1)
HOG = f"""
import subprocess, sys
code = "import time\\nend = time.time() + 25\\nwhile time.time() < end: pass"
hogs = [subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
        for _ in range({HOGS})]
print("hogs", len(hogs))
"""


@pytest.mark.integration
@pytest.mark.asyncio
@pytest.mark.timeout(300)
async def test_a_busy_loop_on_every_core_gets_its_cap_and_is_throttled(env_python: Path) -> None:
    require_sandbox()
    if Cgroups().cpu_missing() is not None:
        if os.environ.get("CI"):
            pytest.fail("no cpu cgroup on this CI machine")
        pytest.skip("no writable cpu cgroup here")
    # A cap well below what even a busy shared host leaves the hog (it got 0.3-0.6 CPU of 2
    # with the load at 10-12 and no cap), so the quota, not the neighbours, is what holds it.
    limits = Limits(cpus=0.1)
    assert limits.cpus is not None
    data = make_data_dir()
    provisioner = LocalProvisioner(data / "workspaces", limits=limits)
    try:
        info = await provisioner.start(WorkspaceSpec("wscpu", free_uid(), env_python))
        groups = provisioner.cgroups.existing("wscpu")  # as recovery after a restart finds them
        assert groups is not None and groups.cpu_stat(), "no cpu group for the workspace"
        assert groups.cpu_usage_ns() is not None, "no cpuacct group for the workspace"
        async with WorkspaceClient(info) as client:
            kernel = await client.start_kernel()
            throttled_at_start, hogs_started = groups.cpu_stat()["nr_throttled"], time.monotonic()
            assert (await client.execute(kernel, HOG)).strip() == f"hogs {HOGS}"
        await asyncio.sleep(1.0)  # the hogs are running: settle before measuring
        periods_before = groups.cpu_stat()["nr_periods"]
        used_before, at_before = groups.cpu_usage_ns(), time.monotonic()
        await asyncio.sleep(4.0)  # the window measured, not a readiness wait
        used_after, at_after = groups.cpu_usage_ns(), time.monotonic()
        stat = groups.cpu_stat()
        assert used_before is not None and used_after is not None
        cpus_used = (used_after - used_before) / 1e9 / (at_after - at_before)
        print(f"the hog used {cpus_used:.3f} CPUs (cap {limits.cpus}), {stat}")
        # the attack works if the hog gets more than its cap (on 2 cores: up to both of them)
        assert cpus_used <= limits.cpus * 1.15 + 0.02, f"the hog used {cpus_used:.2f} CPUs"
        assert stat["nr_periods"] > periods_before, stat  # the quota is armed (else no periods)
        # Throttled: the hogs hit the quota in some period (a group without a quota never is).
        # On a shared, busy host they may get less than the cap for a while: wait for it, at
        # most until they end by themselves.
        while groups.cpu_stat()["nr_throttled"] == throttled_at_start:
            assert time.monotonic() - hogs_started < 24, \
                f"never throttled (load {os.getloadavg()[0]:.1f}): {groups.cpu_stat()}"
            await asyncio.sleep(0.5)  # cpu.stat's pace, not a readiness wait
        assert cpus_used >= limits.cpus / 4, f"the hog barely ran ({cpus_used:.2f} CPUs)"
        await provisioner.stop(info)
        assert groups.pids() == set()
        assert not any(d.exists() for d in groups.dirs)
    finally:
        await provisioner.close()
        await asyncio.to_thread(remove_data_dir, data)
