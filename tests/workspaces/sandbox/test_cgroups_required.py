"""Fail closed without the memory and pids cgroups: no workspace and no check run starts
(their memory and processes would only be bounded per process by rlimits, and a check run's
tmpfs not at all), and ``pairlab doctor`` says FAIL, unless ``unsafe_no_cgroups`` opts out."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import shutil
import tempfile
from pathlib import Path

import pytest

from server.doctor.checks import check_cgroups
from server.settings import Settings
from tests.fixture_tasks import SHARED_ENVS
from tests.workspaces.conftest import free_uid, make_data_dir, remove_data_dir, require_sandbox
from workspaces.environments import ensure_environment
from workspaces.errors import SandboxUnavailable
from workspaces.local import LocalProvisioner
from workspaces.provisioner import WorkspaceSpec
from workspaces.sandbox.cgroups import Cgroups, pids_of_uid
from workspaces.sandbox.mounts import is_mount
from workspaces.sandbox.run import CheckSandbox, SandboxJob

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@pytest.mark.asyncio
async def test_no_cgroups_no_workspace(env_python: Path) -> None:
    """The attack: on a host without the cgroups a workspace ran with only RLIMIT_AS, so its
    processes together could take the host's memory. Now it does not start."""
    require_sandbox()
    data = make_data_dir()
    uid = free_uid()
    provisioner = LocalProvisioner(data / "workspaces", cgroups=Cgroups(root=data / "none"))
    try:
        assert "memory" in (await provisioner.check() or "")
        with pytest.raises(SandboxUnavailable, match="memory and pids cgroups"):
            await provisioner.start(WorkspaceSpec("wsnocg", uid, env_python))
        assert pids_of_uid(uid) == [] and not is_mount(data / "workspaces" / "wsnocg")
    finally:
        await provisioner.close()
        await asyncio.to_thread(remove_data_dir, data)


@pytest.mark.asyncio
async def test_the_opt_out_starts_loudly_without_cgroups(
        env_python: Path, caplog: pytest.LogCaptureFixture) -> None:
    require_sandbox()
    data = make_data_dir()
    provisioner = LocalProvisioner(data / "workspaces", cgroups=Cgroups(root=data / "none"),
                                   require_cgroups=False)
    try:
        with caplog.at_level(logging.WARNING):
            info = await provisioner.start(WorkspaceSpec("wsoptout", free_uid(), env_python))
        assert any("UNSAFE" in r.getMessage() and "cgroup" in r.getMessage()
                   for r in caplog.records)
        await provisioner.stop(info)
    finally:
        await provisioner.close()
        await asyncio.to_thread(remove_data_dir, data)


def test_no_cgroups_no_check_run() -> None:
    require_sandbox()
    data = Path(tempfile.mkdtemp(prefix="plcg-", dir="/tmp"))  # noqa: S108 - private folder
    try:
        python = ensure_environment(SHARED_ENVS, ())
        job = SandboxJob(("python", "-c", "print('ran')"), python, data / "tree", 60)
        (data / "tree").mkdir()
        missing = CheckSandbox(212_000, data, data / "checks", cgroups=Cgroups(root=data / "x"))
        with pytest.raises(SandboxUnavailable, match="memory and pids cgroups"), \
                missing.run(job):
            pass
        opted_out = CheckSandbox(212_000, data, data / "checks",
                                 cgroups=Cgroups(root=data / "x"), require_cgroups=False)
        with opted_out.run(job) as run:
            assert run.exit_code == 0 and "ran" in run.output
    finally:
        shutil.rmtree(data, ignore_errors=True)


def test_doctor_fails_without_cgroups_unless_opted_out(tmp_path: Path) -> None:
    settings = Settings()
    missing = Cgroups(root=tmp_path / "none")
    finding = check_cgroups(settings, missing)
    assert finding.status == "fail" and finding.critical and "memory" in finding.detail
    opted = check_cgroups(dataclasses.replace(settings, unsafe_no_cgroups=True), missing)
    assert opted.status == "warn" and "UNSAFE" in opted.detail
