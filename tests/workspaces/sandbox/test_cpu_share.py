"""The CPU share of a workspace: the ``workspace_cpus`` setting, the cgroup v1 ``cpu`` files
written for it (real groups on this host), a hierarchy shared by ``cpu`` and ``cpuacct``, a
host without a cpu controller (a warning, never a refusal, while memory and pids are there),
and a check run held to its one CPU."""

from __future__ import annotations

import contextlib
import logging
import os
import random
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from server.doctor.checks import check_cpu_share
from server.settings import Settings, SettingsError, load_settings
from tests.fixture_tasks import SHARED_ENVS
from workspaces.environments import ensure_environment
from workspaces.local import LocalProvisioner
from workspaces.sandbox.bwrap import Tools, find_tools, join_cgroups_argv
from workspaces.sandbox.cgroups import Cgroups, CgroupSet
from workspaces.sandbox.limits import CPU_PERIOD_US, CPU_SHARES, Limits
from workspaces.sandbox.run import CHECK_LIMITS, CheckSandbox, SandboxJob

CGROUP = Path("/sys/fs/cgroup")
CORES = os.cpu_count() or 1


def _real_cgroups(name: str) -> Cgroups:
    cgroups = Cgroups(parent_name=f"pairlab-test-{name}-{os.getpid()}")
    if not {"memory", "pids", "cpu", "cpuacct"} <= set(cgroups.available()):
        pytest.skip("no writable cgroup v1 memory, pids, cpu and cpuacct controllers here")
    return cgroups


def _wait_for(condition: Callable[[], bool], limit_s: float = 10.0) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


# ---- the setting ----------------------------------------------------------------------------


def test_the_default_is_one_cpu_and_a_fraction_is_taken() -> None:
    assert load_settings(environ={}).workspace_cpus == 1.0
    assert load_settings(environ={"PAIRLAB_WORKSPACE_CPUS": "0.5"}).workspace_cpus == 0.5
    assert load_settings(environ={"PAIRLAB_WORKSPACE_CPUS": str(CORES)}).workspace_cpus == CORES


@pytest.mark.parametrize("raw", ["0", "-1", "0.001", "nan", "inf", str(CORES + 1)])
def test_a_cap_that_is_no_cap_or_more_than_the_host_is_refused_naming_the_setting(
        raw: str) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(environ={"PAIRLAB_WORKSPACE_CPUS": raw})
    message = str(refused.value)
    assert message.startswith("workspace_cpus: ")
    assert f"{CORES} cores" in message and "0.01" in message


def test_a_word_is_refused_as_not_a_number() -> None:
    with pytest.raises(SettingsError, match=r"^workspace_cpus: 'two' from .* is not a number"):
        load_settings(environ={"PAIRLAB_WORKSPACE_CPUS": "two"})


def test_limits_refuse_a_quota_below_the_kernels_smallest() -> None:
    with pytest.raises(ValueError, match="cpus: must be at least 0.01"):
        Limits(cpus=0.0)
    with pytest.raises(ValueError, match="cpu_shares"):
        Limits(cpu_shares=1)
    assert Limits(cpus=1.5).cpu_quota_us == 150_000
    assert Limits(cpus=None).cpu_quota_us == -1


# ---- the files written --------------------------------------------------------------------


def test_the_cpu_group_holds_the_cap_and_the_weight_and_goes_with_the_others() -> None:
    cgroups = _real_cgroups("files")
    group = cgroups.create("ws1", Limits(cpus=0.75))
    proc: subprocess.Popen[bytes] | None = None
    try:
        cpu = next(d for d in group.dirs if (d / "cpu.cfs_quota_us").exists())
        assert cpu.is_relative_to(CGROUP / "cpu")
        assert int((cpu / "cpu.cfs_period_us").read_text()) == CPU_PERIOD_US
        assert int((cpu / "cpu.cfs_quota_us").read_text()) == 75_000
        assert int((cpu / "cpu.shares").read_text()) == CPU_SHARES < 1024
        # the shared parent competes with pairlab's own threads (1024 each): it weighs less
        assert int((cpu.parent / "cpu.shares").read_text()) == CPU_SHARES
        assert any((d / "cpuacct.usage").exists() for d in group.dirs)
        assert cgroups.existing("ws1") == group  # recovery after a restart finds all four
        assert len(group.dirs) == 4
        tools = find_tools("bwrap")
        assert isinstance(tools, Tools), tools
        proc = subprocess.Popen([*join_cgroups_argv(tools, group.procs_files), "sh", "-c",
                                 "while :; do :; done"])
        _wait_for(lambda: proc is not None and proc.pid in group.pids())
        assert str(proc.pid) in (cpu / "cgroup.procs").read_text().split()
        _wait_for(lambda: (group.cpu_usage_ns() or 0) > 50_000_000)  # it is counted
        assert set(group.cpu_stat()) >= {"nr_periods", "nr_throttled", "throttled_time"}
    finally:
        assert group.remove()
    assert proc.wait(timeout=30) == -9  # killed through the groups, cpu among them
    assert not any(d.exists() for d in group.dirs)
    assert cgroups.existing("ws1") is None


def test_no_cap_writes_minus_one() -> None:
    cgroups = _real_cgroups("nocap")
    group = cgroups.create("ws2", Limits(cpus=None))
    try:
        cpu = next(d for d in group.dirs if (d / "cpu.cfs_quota_us").exists())
        assert (cpu / "cpu.cfs_quota_us").read_text().strip() == "-1"
    finally:
        assert group.remove()


def test_a_cap_the_parent_refuses_leaves_the_workspace_uncapped_not_unstartable(
        caplog: pytest.LogCaptureFixture) -> None:
    """pairlab itself under a smaller CPU quota (systemd's CPUQuota=20%): the kernel refuses a
    bigger quota below it (EINVAL). The workspace's groups are still made (memory and pids
    hold), the CPU cap is said to be missing, nothing fails."""
    cgroups = _real_cgroups("capped")
    own = next(line.split(":", 2)[2] for line in Path("/proc/self/cgroup").read_text()
               .splitlines() if "cpu" in line.split(":")[1].split(","))
    parent = CGROUP / "cpu" / own.lstrip("/") / cgroups.parent_name
    parent.mkdir(exist_ok=True)
    (parent / "cpu.cfs_quota_us").write_text("20000")
    try:
        with caplog.at_level("WARNING"):
            group = cgroups.create("ws5", Limits(cpus=1.0))
        try:
            assert len(group.dirs) == 4
            assert "CPU cap could not be set" in caplog.text
            cpu = next(d for d in group.dirs if (d / "cpu.shares").exists())
            assert (cpu / "cpu.shares").read_text().strip() == "512"  # its weight still holds
            assert (parent / "cpu.shares").read_text().strip() == "512"
        finally:
            assert group.remove()
    finally:
        with contextlib.suppress(OSError):  # removing the last group may have taken it
            (parent / "cpu.cfs_quota_us").write_text("-1")
            parent.rmdir()


def _fake_root(tmp_path: Path, links: dict[str, str]) -> Path:
    """A cgroup root whose entries are symlinks to this host's real hierarchies."""
    root = tmp_path / "cgroup"
    root.mkdir()
    for name, target in links.items():
        (root / name).symlink_to(CGROUP / target)
    return root


def test_cpu_and_cpuacct_on_one_hierarchy_make_one_folder(tmp_path: Path) -> None:
    """The usual mount is ``cpu,cpuacct`` with ``cpu`` and ``cpuacct`` symlinks to it: the
    workspace must get one folder there (two would make ``create`` remove its own group)."""
    _real_cgroups("probe")
    root = _fake_root(tmp_path, {"memory": "memory", "pids": "pids", "cpu": "cpu",
                                 "cpuacct": "cpu"})
    proc_cgroup = tmp_path / "cgroup-of-self"
    own = Path("/proc/self/cgroup").read_text()
    cpu_path = next(line.split(":", 2)[2] for line in own.splitlines()
                    if line.split(":")[1] == "cpu")
    proc_cgroup.write_text(own + f"99:cpu,cpuacct:{cpu_path}\n")
    cgroups = Cgroups(root=root, parent_name=f"pairlab-test-shared-{os.getpid()}",
                      proc_cgroup=proc_cgroup)
    assert cgroups.available() == ("memory", "pids", "cpu")
    group = cgroups.create("ws3", Limits(cpus=0.5))
    try:
        assert len(group.dirs) == 3
        assert sum((d / "cpu.cfs_quota_us").exists() for d in group.dirs) == 1
        assert cgroups.existing("ws3") == group
    finally:
        assert group.remove()


# ---- a host without a cpu controller ----------------------------------------------------------


@pytest.mark.asyncio
async def test_without_a_cpu_controller_workspaces_may_start_with_a_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _real_cgroups("probe")
    cgroups = Cgroups(root=_fake_root(tmp_path, {"memory": "memory", "pids": "pids"}))
    assert cgroups.missing() is None and cgroups.available() == ("memory", "pids")
    assert "no writable cpu cgroup" in (cgroups.cpu_missing() or "")
    provisioner = LocalProvisioner(tmp_path / "workspaces", cgroups=cgroups)
    with caplog.at_level(logging.WARNING, logger="workspaces.local"):
        assert await provisioner.check() is None  # not refused
    assert any("without a CPU cap" in r.getMessage() for r in caplog.records)
    finding = check_cpu_share(Settings(), cgroups)
    assert finding.status == "warn" and "without a CPU cap" in finding.detail


def test_doctor_says_the_cap_on_this_host() -> None:
    _real_cgroups("probe")
    finding = check_cpu_share(Settings(workspace_cpus=1.5))
    assert finding.status == "ok" and "1.5 CPUs" in finding.detail


# ---- check runs ---------------------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_a_check_run_busy_on_every_core_is_held_to_one_cpu(tmp_path: Path) -> None:
    """Check runs go through the same groups (``CHECK_LIMITS``: 1 CPU): a run that spins on
    every core is in a cpu group with the 1-CPU quota while it runs, and it is counted."""
    cgroups = _real_cgroups("check")
    data = Path(tempfile.mkdtemp(prefix="plcs-", dir="/tmp"))  # noqa: S108 - short paths
    data.chmod(0o700)
    sandbox = CheckSandbox(random.randrange(200_000, 3_000_000, 2000), data, data / "checks",
                           cgroups=cgroups)
    work = Path(tempfile.mkdtemp(dir=data))
    code = ("import subprocess, sys, time\n"
            "spin = 'import time\\nend = time.time() + 4\\nwhile time.time() < end: pass'\n"
            f"hogs = [subprocess.Popen([sys.executable, '-c', spin]) for _ in range({CORES + 1})]"
            "\nfor h in hogs: h.wait()\nprint('spun')")
    seen: dict[str, str | dict[str, int]] = {}

    def watch() -> None:
        parent = cgroups._parent("cpu")  # noqa: SLF001 - where the run's group is made
        assert parent is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "periods" not in seen:
            for group in parent.glob("check-*") if parent.is_dir() else []:
                try:
                    seen["quota"] = (group / "cpu.cfs_quota_us").read_text().strip()
                    stat = CgroupSet((group,)).cpu_stat()
                except OSError:
                    continue
                if stat.get("nr_periods", 0) > 5:
                    seen["periods"] = stat
            time.sleep(0.1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with sandbox.run(SandboxJob(("python", "-c", code), ensure_environment(SHARED_ENVS, ()),
                                    work, 120)) as run:
            assert run.exit_code == 0 and "spun" in run.output, run.output
    finally:
        watcher.join()
        shutil.rmtree(data, ignore_errors=True)
    assert seen.get("quota") == str(round(CHECK_LIMITS.cpus or 0) * CPU_PERIOD_US) == "100000"
    assert "periods" in seen, seen  # the quota was armed while it spun
