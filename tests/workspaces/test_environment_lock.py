"""Two processes build the same task environment in one folder at once (a second pairlab on the
host, or ``pairlab task import`` beside ``pairlab serve``): both get it, and it is built once. A
build that holds the lock longer than the waiting process's own time limit fails the waiting one
with a sentence, instead of holding it for ever.

Before the host-wide lock each process removed the other's half-built folder: one failed, or
both ran uv into the same folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from common.file_locks import flock
from server.settings import Settings, prepare_data_dir
from tests.conftest import REPO
from workspaces.environments import EnvironmentBuildFailed, ensure_environment, environment_key

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

BUILD = """
import logging, sys
from pathlib import Path
from workspaces.environments import ensure_environment
from workspaces.sandbox.permissions import set_private_umask
logging.basicConfig(level=logging.INFO, format="%(message)s")
set_private_umask()  # as the pairlab command does first
print(ensure_environment(Path(sys.argv[1]), ()))
"""


def test_two_processes_building_one_environment_both_get_it_and_it_is_built_once() -> None:
    folder = Path(tempfile.mkdtemp(prefix="plenvlock-", dir="/tmp"))
    try:
        envs = prepare_data_dir(Settings(data_dir=folder / "data")).envs_root
        builds = [subprocess.Popen([sys.executable, "-c", BUILD, str(envs)], cwd=REPO,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                  for _ in range(2)]
        done = [build.communicate(timeout=600) for build in builds]
        for build, (_, err) in zip(builds, done, strict=True):
            assert build.returncode == 0, err[-2000:]
        pythons = {out.strip() for out, _ in done}
        assert len(pythons) == 1
        python = Path(pythons.pop())
        assert python.is_file() and python.parent.parent.parent == envs
        built = [err for _, err in done if "building environment" in err]
        assert len(built) == 1, [err[-1000:] for _, err in done]
        assert not list(envs.glob(".*.building"))
        ran = subprocess.run([str(python), "-c", "import ipykernel, pytest"], capture_output=True,
                             text=True, timeout=120)
        assert ran.returncode == 0, ran.stderr
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_a_build_held_past_the_time_limit_fails_the_waiting_process_with_a_sentence(
        tmp_path: Path) -> None:
    envs = prepare_data_dir(Settings(data_dir=tmp_path / "data")).envs_root
    envs.mkdir(parents=True, exist_ok=True)  # as ensure_environment makes it
    holder = flock(envs / f".{environment_key(())}.lock")  # another process is building it
    assert holder is not None
    try:
        with pytest.raises(EnvironmentBuildFailed, match="another process has been building"):
            ensure_environment(envs, (), timeout_s=1.0)
    finally:
        os.close(holder)
    assert not list(envs.glob(".*.building")) and not (envs / environment_key(())).exists()
