"""The check runner: one command to completion in the workspace sandbox, as a check uid of its
own, with a deadline after which nothing of it is left."""

from __future__ import annotations

import random
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixture_tasks import SHARED_ENVS
from workspaces.cgroups import pids_of_uid
from workspaces.environments import ensure_environment
from workspaces.sandbox_run import CHECK_UID_OFFSET, CHECK_UIDS, CheckSandbox, SandboxJob

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@pytest.fixture
def data() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="plsr-", dir="/tmp"))
    folder.chmod(0o700)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def sandbox(data: Path) -> CheckSandbox:
    return CheckSandbox(random.randrange(200_000, 3_000_000, 2000), data, data / "checks")


@pytest.fixture(scope="module")
def python() -> Path:
    return ensure_environment(SHARED_ENVS, ())


def tree(data: Path, files: dict[str, str]) -> Path:
    root = Path(tempfile.mkdtemp(dir=data))
    for name, text in files.items():
        (root / name).write_text(text)
    return root


def test_a_run_is_a_check_uid_in_the_tree_with_its_output(sandbox: CheckSandbox, data: Path,
                                                          python: Path) -> None:
    code = ("import os, pathlib; print(os.getuid(), os.getcwd(), os.listdir('.'));"
            "pathlib.Path('made.txt').write_text('x'); print(open('/etc/passwd').read())")
    work = tree(data, {"given.txt": "hello"})
    with sandbox.run(SandboxJob(("python", "-c", code), python, work, 60)) as run:
        assert run.exit_code == 0, run.output
        assert run.out.is_dir()
    uid_text, cwd, listing = run.output.splitlines()[0].split(" ", 2)
    assert int(uid_text) in sandbox.uids()
    assert cwd == "/workspace" and "given.txt" in listing
    assert f"candidate:x:{uid_text}" in run.output
    assert (work / "made.txt").read_text() == "x"  # the tree is the run's, writable
    assert not list((data / "checks").glob("run-*"))  # the run's host folders are gone


def test_the_deadline_leaves_nothing_running(sandbox: CheckSandbox, data: Path,
                                             python: Path) -> None:
    code = ("import subprocess, time; subprocess.Popen(['sleep', '600']);"
            "print('started', flush=True); time.sleep(600)")
    with sandbox.run(SandboxJob(("python", "-c", code), python, tree(data, {}), 3)) as run:
        uid = next(u for u in sandbox.uids() if (data / "checks" / f".uid-{u}.lock").exists())
        assert run.timed_out and run.exit_code is None
        assert "started" in run.output and "[timed out after 3 s]" in run.output
    assert pids_of_uid(uid) == []


def test_runs_at_the_same_time_get_uids_of_their_own(sandbox: CheckSandbox, data: Path,
                                                     python: Path) -> None:
    seen: list[int] = []
    code = "import os, time; time.sleep(1); print(os.getuid())"

    def one() -> None:
        with sandbox.run(SandboxJob(("python", "-c", code), python, tree(data, {}), 60)) as run:
            seen.append(int(run.output.strip()))

    threads = [threading.Thread(target=one) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == 3
    assert all(uid - sandbox.uid_base - CHECK_UID_OFFSET in range(CHECK_UIDS) for uid in seen)


def test_a_python_the_sandbox_cannot_run_is_named_with_the_reason(sandbox: CheckSandbox,
                                                                  data: Path,
                                                                  python: Path) -> None:
    assert sandbox.probe_python(python) is None
    problem = sandbox.probe_python(python, imports=("no_such_module_here",))
    assert problem == (f"{python} cannot run as a sandbox uid: ModuleNotFoundError: "
                       "No module named 'no_such_module_here'")
