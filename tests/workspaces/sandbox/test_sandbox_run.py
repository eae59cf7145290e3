"""The check runner: one command to completion in the workspace sandbox, as a check uid of its
own, with a deadline after which nothing of it is left."""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixture_tasks import SHARED_ENVS
from workspaces.environments import ensure_environment
from workspaces.sandbox.cgroups import pids_of_uid
from workspaces.sandbox.limits import Limits, MiB
from workspaces.sandbox.run import (
    CHECK_UID_OFFSET,
    CHECK_UIDS,
    DISK_LIMIT,
    CheckSandbox,
    SandboxJob,
)

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
    code = ("import os, subprocess, time; subprocess.Popen(['sleep', '600']);"
            "print('started as', os.getuid(), flush=True); time.sleep(600)")
    with sandbox.run(SandboxJob(("python", "-c", code), python, tree(data, {}), 3)) as run:
        assert run.timed_out and run.exit_code is None
        assert "[timed out after 3 s]" in run.output
    uid = int(run.output.split("started as ", 1)[1].split()[0])
    assert uid in sandbox.uids()
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
    assert not problem.killed
    # Killed without a word (as by another pairlab's cleanup of the same uid): said so, not
    # "exit code 137".
    killed = sandbox.probe_python(python, imports=("os; os.kill(os.getpid(), 9)",))
    assert killed == (f"{python} cannot run as a sandbox uid: it was killed by signal 9 (its "
                      "cgroup's memory limit, or another process killing the sandbox uid's "
                      "processes)")
    assert killed is not None and killed.killed  # the doctor says to try again


def test_a_run_that_fills_the_disk_is_stopped(sandbox: CheckSandbox, data: Path,
                                              python: Path) -> None:
    limits = Limits(processes=128, memory_bytes=512 * MiB, file_size_bytes=256 * MiB,
                    disk_bytes=32 * MiB, tmp_bytes=64 * MiB, disk_check_interval_s=0.5)
    code = ("import time\nwith open('fill.bin', 'wb') as f:\n"
            "    for _ in range(64):\n        f.write(b'x' * 1048576); f.flush()\n"
            "print('written', flush=True)\ntime.sleep(120)\n")
    work = tree(data, {})
    job = SandboxJob(("python", "-c", code), python, work, 100, limits=limits)
    with sandbox.run(job) as run:
        assert run.stopped == DISK_LIMIT and not run.timed_out and run.exit_code is None
        assert "[stopped: the run's files took more than 32 MiB of disk]" in run.output
        assert run.duration_ms < 60_000


def test_what_a_killed_pairlab_left_is_swept_and_nothing_younger(sandbox: CheckSandbox,
                                                                 data: Path) -> None:
    root = data / "checks"
    old, young = root / "run-0ld0ld0ld0ld", root / "s_1-tests-young"
    for folder in (old, young):
        (folder / "tree").mkdir(parents=True)
    (root / ".uid-41000.lock").write_text("")
    past = time.time() - 3600
    os.utime(old, (past, past))
    assert sandbox.sweep(600) == 1
    assert not old.exists() and young.is_dir() and (root / ".uid-41000.lock").exists()


def test_results_come_over_the_pipe_and_nothing_the_run_writes_is_read_back(
        sandbox: CheckSandbox, data: Path, python: Path) -> None:
    """The report pipe carries what the command wrote to it; ``/run/pairlab`` (where a
    ``junit.xml`` used to be read from) and the job's config files are not the run's to write."""
    code = ("import os\nos.write(int(os.environ['PAIRLAB_REPORT_FD']), b'one line\\n')\n"
            "for path in ('/run/pairlab/junit.xml', '/etc/pairlab/harness/run.py'):\n"
            "    try:\n        open(path, 'w').close()\n        print(path, 'written')\n"
            "    except OSError as exc:\n        print(path, type(exc).__name__, exc.errno)\n"
            "print(open('/etc/pairlab/harness/run.py').read())\n")
    job = SandboxJob(("python", "-c", code), python, tree(data, {}), 60,
                     config_files={"harness/run.py": b"# pairlab's runner"}, report=True)
    with sandbox.run(job) as run:
        assert run.exit_code == 0, run.output
        assert run.report == b"one line\n"
        assert not list(run.out.iterdir())
    assert "/run/pairlab/junit.xml PermissionError 13" in run.output
    assert "/etc/pairlab/harness/run.py OSError 30" in run.output  # EROFS
    assert "# pairlab's runner" in run.output
