"""The attack: code in a real sandboxed workspace busy-loops in more processes than the host has
cores to take every core (starving the proxy, the recorder and the other interviews). With the
workspace's cpu cgroup it gets its cap (``Limits.cpus``, the ``workspace_cpus`` default) and no
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
    if CORES < 2:
        pytest.skip("one core: a cap of 1 CPU is the whole host, nothing to take")
    if Cgroups().cpu_missing() is not None:
        if os.environ.get("CI"):
            pytest.fail("no cpu cgroup on this CI machine")
        pytest.skip("no writable cpu cgroup here")
    limits = Limits()  # the default cap, as workspace_cpus gives it
    assert limits.cpus is not None and limits.cpus < CORES
    data = make_data_dir()
    provisioner = LocalProvisioner(data / "workspaces", limits=limits)
    try:
        info = await provisioner.start(WorkspaceSpec("wscpu", free_uid(), env_python))
        groups = provisioner.cgroups.existing("wscpu")  # as recovery after a restart finds them
        assert groups is not None and groups.cpu_stat(), "no cpu group for the workspace"
        assert groups.cpu_usage_ns() is not None, "no cpuacct group for the workspace"
        async with WorkspaceClient(info) as client:
            kernel = await client.start_kernel()
            assert (await client.execute(kernel, HOG)).strip() == f"hogs {HOGS}"
        await asyncio.sleep(1.0)  # the hogs are running: settle before measuring
        throttled_before = groups.cpu_stat()["nr_throttled"]
        used_before, at_before = groups.cpu_usage_ns(), time.monotonic()
        await asyncio.sleep(4.0)  # the window measured, not a readiness wait
        used_after, at_after = groups.cpu_usage_ns(), time.monotonic()
        stat = groups.cpu_stat()
        assert used_before is not None and used_after is not None
        cpus_used = (used_after - used_before) / 1e9 / (at_after - at_before)
        # the attack works if the hog gets more than its cap (on 2 cores: both of them)
        assert cpus_used <= limits.cpus * 1.15 + 0.05, f"the hog used {cpus_used:.2f} CPUs"
        assert stat["nr_throttled"] - throttled_before >= 20, stat  # ~40 periods in 4 s
        assert cpus_used >= 0.2, f"the hog barely ran ({cpus_used:.2f} CPUs): nothing measured"
        await provisioner.stop(info)
        assert groups.pids() == set()
        assert not any(d.exists() for d in groups.dirs)
    finally:
        await provisioner.close()
        await asyncio.to_thread(remove_data_dir, data)
