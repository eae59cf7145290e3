"""Task environments, built the way the product builds them (``umask 077``, as the ``pairlab``
command sets it), are runnable by a sandbox uid; one left owner-only by an older pairlab is fixed
at its next use; one an operator broke is named by the sandbox probe with the reason."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from workspaces.environments import ensure_environment
from workspaces.sandbox.permissions import PRIVATE_UMASK, is_published
from workspaces.sandbox.run import CheckSandbox

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def built() -> Iterator[tuple[Path, Path]]:
    """A fresh data dir (0700) with the base environment built under umask 077."""
    data = Path(tempfile.mkdtemp(prefix="plenv-", dir="/tmp"))
    data.chmod(0o700)
    old = os.umask(PRIVATE_UMASK)
    try:
        python = ensure_environment(data / "envs", ())
    finally:
        os.umask(old)
    yield data, python
    shutil.rmtree(data, ignore_errors=True)


def sandbox(data: Path) -> CheckSandbox:
    return CheckSandbox(random.randrange(200_000, 3_000_000, 2000), data, data / "checks")


def test_built_under_umask_077_a_sandbox_uid_runs_it(built: tuple[Path, Path]) -> None:
    data, python = built
    env = python.parent.parent
    assert is_published(env)
    assert (data / "envs").stat().st_mode & 0o077 == 0  # the folder above stays private
    assert sandbox(data).probe_python(python) is None


def test_an_owner_only_environment_is_published_at_its_next_use(
        built: tuple[Path, Path]) -> None:
    data, python = built
    env = python.parent.parent
    subprocess.run(["chmod", "-R", "go-rwx", str(env)], check=True)  # as pairlab 0.1 left it
    problem = sandbox(data).probe_python(python)
    assert problem is not None and "Permission denied" in problem
    assert ensure_environment(data / "envs", ()) == python
    assert sandbox(data).probe_python(python) is None


def test_a_broken_environment_is_named_with_the_reason(built: tuple[Path, Path]) -> None:
    data, python = built
    lib = python.parent.parent / "lib"
    subprocess.run(["chmod", "-R", "go-rwx", str(lib)], check=True)  # an operator's mistake
    try:
        problem = sandbox(data).probe_python(python)
        assert problem is not None
        assert problem.startswith(f"{python} cannot run as a sandbox uid: ")
        assert "ipykernel" in problem or "Permission denied" in problem
    finally:
        subprocess.run(["chmod", "-R", "go+rX", str(lib)], check=True)
