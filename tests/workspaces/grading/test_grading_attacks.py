"""Grading the candidate cannot touch, and check runs that cannot hurt each other, tried as the
attacks a candidate with a browser and a kernel would make.

An unfixed starter (``pricing.total`` is off by one) with six hidden checks that fail on it:
whatever the candidate plants in the tree to change how pytest runs or what it reports (a
``conftest.py`` hookwrapper, a ``pytest.py``, ``addopts``/``-p`` in an ini, a forged
``junit.xml``, a ``sitecustomize.py``, a pre-made ``hidden_checks`` folder, planted bytecode)
must leave the hidden checks FAILING, and the continuous visible-test run not green. The fixed
code passes the same checks (so the harness does not simply fail everything).

Then the limits, each on real sandbox runs: memory, disk and inodes, processes per uid, and the
per-session fair queue.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from server.settings import Settings
from server.tasks.service import sandbox_for, task_store
from tasks import revisions
from tests.conftest import REPO, MakeSettings, open_db
from tests.fixture_tasks import HOOKWRAPPER, SHARED_ENVS, publish_fake_task
from tests.workspaces.conftest import require_sandbox
from workspaces.environments import ensure_environment
from workspaces.grading.hidden import CheckPlan, check_session, run_checks, visible_tests
from workspaces.grading.queue import FairQueue
from workspaces.recording.archive import history_path
from workspaces.recording.history import History
from workspaces.sandbox.limits import Limits, MiB
from workspaces.sandbox.run import SCRATCH_INODES, CheckSandbox, SandboxJob, SandboxRun

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

TASK_ID = "pricing-bug"
STARTER = "def total(prices):\n    return sum(prices) - 1  # the bug\n"
FIXED = "def total(prices):\n    return sum(prices)\n"
VISIBLE_TEST = '''\
from pricing import total


def test_total_of_two():
    assert total([1, 2]) == 3
'''
# The revision's hidden checks, with their own conftest (as the built-in tasks have one).
HIDDEN_CONFTEST = '''\
import pytest


@pytest.fixture
def prices():
    return [1, 2, 3]
'''
HIDDEN_TESTS = '''\
from pricing import total


def test_sum(prices):
    assert total(prices) == 6


def test_empty():
    assert total([]) == 0


def test_one():
    assert total([5]) == 5


def test_negative():
    assert total([-1, 1]) == 0


def test_floats():
    assert total([0.5, 0.5]) == 1.0


class TestLarge:
    def test_many(self):
        assert total(list(range(100))) == 4950
'''
HIDDEN_COUNT = 6

FORGED_JUNIT = ('<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" '
                'errors="0" failures="0" skipped="0" tests="6">'
                + "".join(f'<testcase classname="hidden_checks.test_hidden" name="test_{i}" '
                          'time="0.001"/>' for i in range(6))
                + "</testsuite></testsuites>")
# A stand-in for pytest itself: prints a green summary, writes the junit file pairlab used to
# read, and exits 0.
FAKE_PYTEST = f'''\
import os
import sys

print("......\\n6 passed in 0.01s")
for folder in ("/run/pairlab", "."):
    try:
        with open(os.path.join(folder, "junit.xml"), "w") as fh:
            fh.write({FORGED_JUNIT!r})
    except OSError:
        pass
sys.exit(0)
'''
# The candidate's own module, imported by the hidden checks: at exit it writes an all-green
# junit.xml where pytest wrote its own and makes the process exit 0.
JUNIT_AT_EXIT = STARTER + f'''

import atexit
import os


def _forge():
    try:
        with open("/run/pairlab/junit.xml", "w") as fh:
            fh.write({FORGED_JUNIT!r})
    except OSError:
        pass
    os._exit(0)


atexit.register(_forge)
'''
PLUGIN = "forge_plugin.py"
# Start-up files that would turn the plugin on, if Python ever read them from the tree.
SITECUSTOMIZE = ('import os, sys\nsys.path.insert(0, "/workspace")\n'
                 f'os.environ["PYTEST_ADDOPTS"] = "-p {PLUGIN[:-3]}"\n')

ATTACKS: dict[str, dict[str, str]] = {
    "conftest-hookwrapper": {"conftest.py": HOOKWRAPPER, "sub/conftest.py": HOOKWRAPPER,
                             "sub/__init__.py": ""},
    "pytest-py-shadowing": {"pytest.py": FAKE_PYTEST},
    "pytest-ini-addopts-plugin": {"pytest.ini": f"[pytest]\naddopts = -p {PLUGIN[:-3]}\n",
                                  PLUGIN: HOOKWRAPPER},
    "pyproject-addopts-plugin": {
        "pyproject.toml": f'[tool.pytest.ini_options]\naddopts = "-p {PLUGIN[:-3]}"\n'
                          'pythonpath = ["."]\n', PLUGIN: HOOKWRAPPER},
    "tox-ini-and-setup-cfg-addopts": {"tox.ini": f"[pytest]\naddopts = -p {PLUGIN[:-3]}\n",
                                      "setup.cfg": f"[tool:pytest]\naddopts = -p {PLUGIN[:-3]}\n",
                                      PLUGIN: HOOKWRAPPER},
    "junit-forged-at-exit": {"pricing.py": JUNIT_AT_EXIT},
    "sitecustomize-usercustomize-pth": {"sitecustomize.py": SITECUSTOMIZE,
                                        "usercustomize.py": SITECUSTOMIZE,
                                        "forge.pth": "import forge_plugin\n",
                                        PLUGIN: HOOKWRAPPER},
    "hidden-checks-folder-pre-made": {"hidden_checks/conftest.py": HOOKWRAPPER,
                                      "hidden_checks/test_hidden.py": "def test_ok():\n"
                                                                      "    pass\n"},
    "bytecode-planted": {"__pycache__/pricing.cpython-311.pyc": "forged",
                         "hidden_checks/__pycache__/conftest.cpython-311-pytest-9.2.0.pyc":
                         "forged"},
}


@dataclass
class Graded:
    settings: Settings
    rev: revisions.Revision
    sandbox: CheckSandbox
    tmp: Path

    def workspace(self, name: str, files: dict[str, str]) -> tuple[Path, History]:
        """The candidate's workspace (the revision's checkout) with ``files`` written, and its
        history with one snapshot of it."""
        store = task_store(self.settings)
        root = store.checkout(TASK_ID, self.rev.id, self.tmp / name)
        for rel, text in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)
        history = History(history_path(self.settings.data_dir, name))
        history.init(store.tree(TASK_ID, self.rev.id))
        history.snapshot(root, datetime.now(UTC), "snapshot")  # None: nothing changed
        return root, history

    async def hidden(self, name: str, files: dict[str, str]) -> dict[str, Any]:
        root, history = self.workspace(name, files)
        return await check_session(
            name, self.rev, timeout_s=self.settings.check_timeout_seconds,
            store=task_store(self.settings),
            envs_root=self.settings.envs_root, root=root, history=history,
            sandbox=self.sandbox)

    async def visible(self, name: str, files: dict[str, str]) -> dict[str, Any]:
        _, history = self.workspace(name, files)
        payload = await visible_tests(
            name, self.rev, history.commits()[-1][0],
            timeout_s=self.settings.check_timeout_seconds,
            store=task_store(self.settings), envs_root=self.settings.envs_root,
            history=history, sandbox=self.sandbox)
        assert payload is not None
        return payload


def uid_base() -> int:
    """This engineer's/CI's block of sandbox uids, else a random one."""
    given = os.environ.get("PAIRLAB_SANDBOX_UID_BASE")
    return int(given) if given else random.randrange(100_000, 4_000_000, 2000)


@pytest.fixture
def graded(make_settings: MakeSettings, tmp_path: Path) -> Graded:
    require_sandbox()
    settings = make_settings(environments_dir=str(SHARED_ENVS), check_timeout_seconds=120.0,
                             sandbox_uid_base=uid_base())
    report = {"blockers": [], "checks": {"hidden_on_starter": {
        "command": "python -m pytest -q hidden_checks", "passed": False}}}
    rev_id = publish_fake_task(
        settings, TASK_ID, files={"pricing.py": STARTER, "test_pricing.py": VISIBLE_TEST},
        hidden={"conftest.py": HIDDEN_CONFTEST, "test_hidden.py": HIDDEN_TESTS}, report=report)
    db = open_db(settings)
    try:
        rev = revisions.get_revision(db, rev_id)
    finally:
        db.conn.close()
    ensure_environment(settings.envs_root, [])
    return Graded(settings, rev, sandbox_for(settings), tmp_path)


def assert_failing(payload: dict[str, Any]) -> None:
    summary = {k: payload.get(k) for k in ("status", "passed", "failed", "errors", "total",
                                           "reason", "output")}
    assert payload["status"] == "failed", summary
    assert (payload["passed"], payload["failed"], payload["total"]) == (
        0, HIDDEN_COUNT, HIDDEN_COUNT), summary
    assert all(c["status"] == "failed" for c in payload["checks"]), payload["checks"]


# ---- 1. the verdict -----------------------------------------------------------------------


async def test_the_fixed_code_passes_and_the_starter_fails(graded: Graded) -> None:
    """The control: pairlab's harness gives the real verdict both ways, with the revision's
    conftest fixture, and the debrief's sentence says how."""
    fixed = await graded.hidden("s-fixed", {"pricing.py": FIXED})
    assert (fixed["status"], fixed["passed"], fixed["total"]) == (
        "passed", HIDDEN_COUNT, HIDDEN_COUNT), fixed
    assert fixed["graded"] == (
        f"6 hidden checks of revision {graded.rev.id} ran with pairlab's own pytest setup on "
        "the final code; the candidate's conftest, ini files and plugins are not used.")
    names = sorted(c["name"] for c in fixed["checks"])
    assert "hidden_checks/test_hidden.py::TestLarge::test_many" in names, names
    assert_failing(await graded.hidden("s-starter", {}))


@pytest.mark.parametrize("attack", list(ATTACKS))
async def test_a_planted_forgery_leaves_the_hidden_checks_failing(graded: Graded,
                                                                  attack: str) -> None:
    payload = await graded.hidden(f"s-{attack}", ATTACKS[attack])
    assert_failing(payload)
    assert "6 passed" not in payload["output"], payload["output"]


async def test_a_forged_continuous_run_is_not_green(graded: Graded) -> None:
    """The visible tests of a broken tree, with the candidate's hookwrapper conftest at the
    root and beside the tests: the timeline's ``tests.run`` stays failed."""
    forged = {"pricing.py": "def total(prices):\n    return 0\n", "conftest.py": HOOKWRAPPER,
              "pytest.ini": f"[pytest]\naddopts = -p {PLUGIN[:-3]}\n", PLUGIN: HOOKWRAPPER}
    payload = await graded.visible("s-visible", forged)
    assert (payload["status"], payload["passed"], payload["failed"]) == ("failed", 0, 1), payload
    (case,) = payload["checks"]
    assert case["name"] == "test_pricing.py::test_total_of_two", case


# The candidate's own module, imported by the checks: it patches pytest's report from inside
# the test process (what no configuration can stop) so that every test reads as passed.
PATCHES_PYTEST = STARTER + '''

import _pytest.reports

_original = _pytest.reports.TestReport.from_item_and_call.__func__


def _forged(cls, item, call):
    report = _original(cls, item, call)
    report.outcome = "passed"
    report.longrepr = None
    return report


_pytest.reports.TestReport.from_item_and_call = classmethod(_forged)
'''


async def test_code_that_patches_pytest_from_inside_trips_the_canary(graded: Graded) -> None:
    """The residual attack: the candidate's module rewrites pytest's reports as the checks
    import it. The planted canary comes back passed, so neither the hidden checks nor the
    continuous run give a verdict; the control run of honest code keeps its real verdict."""
    hidden = await graded.hidden("s-patched", {"pricing.py": PATCHES_PYTEST})
    assert (hidden["status"], hidden.get("tampered")) == ("error", True), hidden
    assert "planted to fail as passed" in hidden["reason"], hidden
    assert "graded" not in hidden, hidden
    # What the forged run reported is not shown as results.
    assert (hidden["checks"], hidden["passed"], hidden["total"]) == ([], 0, 0), hidden
    visible = await graded.visible("s-patched-visible", {"pricing.py": PATCHES_PYTEST})
    assert (visible["status"], visible.get("tampered")) == ("error", True), visible
    honest = await graded.hidden("s-honest", {"pricing.py": FIXED})
    assert (honest["status"], honest["total"], honest.get("tampered")) == (
        "passed", HIDDEN_COUNT, None), honest


EDITED_VISIBLE_TEST = "def test_total_of_two():\n    pass\n"
PLUGINS_IN_TEST_MODULE = f"pytest_plugins = [{PLUGIN[:-3]!r}]\n\n\ndef test_mine():\n    pass\n"


async def test_an_edited_visible_test_does_not_make_the_continuous_run_green(
        graded: Graded) -> None:
    """The candidate rewrites the task's visible test to pass on the unfixed starter (and
    deletes nothing else): the revision's own test file runs, stays red, and the ``tests.run``
    event names the file the candidate changed."""
    payload = await graded.visible("s-edited", {"test_pricing.py": EDITED_VISIBLE_TEST})
    assert (payload["status"], payload["passed"], payload["failed"]) == ("failed", 0, 1), payload
    assert payload["edited_tests"] == ["test_pricing.py"], payload
    assert payload["note"] == ("tests edited by the candidate: test_pricing.py (the revision's "
                               "version ran)"), payload
    untouched = await graded.visible("s-untouched", {"pricing.py": FIXED})
    assert untouched["status"] == "passed" and "edited_tests" not in untouched, untouched


async def test_a_test_module_cannot_load_a_plugin_with_pytest_plugins(graded: Graded) -> None:
    """A test module of the candidate's with ``pytest_plugins = ["forge_plugin"]`` (pytest's
    consider_module would load the hookwrapper from the tree): the run stays red and says why."""
    forged = {"test_mine.py": PLUGINS_IN_TEST_MODULE, PLUGIN: HOOKWRAPPER}
    payload = await graded.visible("s-plugins", forged)
    assert payload["status"] == "failed" and payload["passed"] == 0, payload
    errors = [c for c in payload["checks"] if c["status"] == "error"]
    assert [c["name"] for c in errors] == ["test_mine.py"], payload["checks"]
    assert "pytest_plugins" in errors[0]["message"], errors[0]


ASYNC_TESTS = '''\
import asyncio

import pytest


@pytest.mark.asyncio
async def test_awaits():
    await asyncio.sleep(0)


def test_fails():
    assert False
'''
# The revision's root conftest asks for a plugin by name (a built-in one), as tasks do.
PYTESTER_CONFTEST = 'pytest_plugins = ["pytester"]\n'
# A distribution planted in the tree whose pytest11 entry points name the forging plugin under
# every name pytest might look up (the environment's plugins, the conftest's "pytester").
PLANTED_DIST = {
    "forge-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: forge\nVersion: 1.0\n",
    "forge-1.0.dist-info/entry_points.txt": (
        f"[pytest11]\nforge = {PLUGIN[:-3]}\nasyncio = {PLUGIN[:-3]}\n"
        f"pytest_asyncio.plugin = {PLUGIN[:-3]}\npytester = {PLUGIN[:-3]}\n"),
    PLUGIN: HOOKWRAPPER,
}


def test_the_task_environments_plugins_load_and_a_planted_dist_info_does_not(
        sandbox: CheckSandbox, tmp_path: Path) -> None:
    """A task whose environment has pytest-asyncio: its async test passes under the harness;
    the entry points of a ``.dist-info`` planted in the tree are never loaded (the failing test
    stays failed)."""
    python = ensure_environment(SHARED_ENVS, ["pytest-asyncio"])
    files = {"test_async.py": ASYNC_TESTS, "conftest.py": PYTESTER_CONFTEST, **PLANTED_DIST}
    revision = tmp_path / "revision"
    revision.mkdir()
    (revision / "test_async.py").write_text(ASYNC_TESTS)
    (revision / "conftest.py").write_text(PYTESTER_CONFTEST)

    def fill(dest: Path) -> None:
        for rel, text in files.items():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            (dest / rel).write_text(text)

    work = sandbox.scratch("plugins")
    try:
        payload = run_checks(CheckPlan(None, ".", python, timeout_s=120,
                                       revision_tree=revision), work, fill, sandbox)
    finally:
        sandbox.release(work)
    outcomes = {c["name"]: c["status"] for c in payload["checks"]}
    assert outcomes == {"test_async.py::test_awaits": "passed",
                        "test_async.py::test_fails": "failed"}, payload


# ---- 2. bounded runs ------------------------------------------------------------------------


SMALL = Limits(processes=64, memory_bytes=256 * MiB, file_size_bytes=1024 * MiB,
               disk_bytes=64 * MiB, tmp_bytes=32 * MiB, disk_check_interval_s=60.0)


@pytest.fixture
def sandbox(graded: Graded) -> CheckSandbox:
    return graded.sandbox


@pytest.fixture
def python(graded: Graded) -> Path:
    return ensure_environment(graded.settings.envs_root, [])


def run_in_scratch(sandbox: CheckSandbox, python: Path, code: str, *, limits: Limits = SMALL,
                   timeout_s: float = 120, files: dict[str, str] | None = None,
                   on_tree: Callable[[Path], None] | None = None) -> SandboxRun:
    """``code`` in a sandbox run on a scratch copy (its tmpfs), to completion."""
    work = sandbox.scratch("attack", limits)
    try:
        tree = work / "tree"
        tree.mkdir()
        for rel, text in (files or {}).items():
            (tree / rel).write_text(text)
        if on_tree is not None:
            on_tree(tree)
        with sandbox.run(SandboxJob(("python", "-c", code), python, tree, timeout_s,
                                    limits=limits)) as run:
            return run
    finally:
        sandbox.release(work)


def in_threads(*jobs: Callable[[], SandboxRun]) -> list[SandboxRun]:
    results: list[SandboxRun | BaseException | None] = [None] * len(jobs)

    def one(i: int) -> None:
        try:
            results[i] = jobs[i]()
        except BaseException as exc:  # noqa: BLE001 - re-raised below, in the test's thread
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        if isinstance(r, BaseException):
            raise r
    return [r for r in results if isinstance(r, SandboxRun)]


HOG = ("import sys\nchunks = []\nfor i in range(12):\n"
       "    chunks.append(b'x' * (256 * 1024 * 1024))\n"
       "    print('holding', (i + 1) * 256, 'MiB', flush=True)\nprint('ALL-ALLOCATED')\n")


def test_a_memory_hungry_run_is_killed_while_another_sessions_run_passes(
        sandbox: CheckSandbox, python: Path) -> None:
    wanted = 3 * 1024
    hog, other = in_threads(
        lambda: run_in_scratch(sandbox, python, HOG),
        lambda: run_in_scratch(sandbox, python,
                               "print(sum(range(1000)), 'from the other session')"))
    assert "ALL-ALLOCATED" not in hog.output and hog.exit_code != 0, hog.output
    assert f"holding {wanted} MiB" not in hog.output
    assert other.exit_code == 0 and "499500 from the other session" in other.output, other


FILL = '''\
import errno, os, shutil, time
def fill(path, chunk=1024 * 1024, total=192):
    written = 0
    try:
        with open(path, "wb") as fh:
            for _ in range(total):
                fh.write(b"x" * chunk)
                fh.flush()
                written += 1
    except OSError as exc:
        return f"{errno.errorcode[exc.errno]} after {written} MiB"
    return f"wrote all {written} MiB"
print("tree:", fill("fill.bin"), flush=True)
print("tmp:", fill("/tmp/fill.bin"), flush=True)
os.remove("fill.bin")
try:
    fd = os.open("sparse.bin", os.O_WRONLY | os.O_CREAT)
    os.posix_fallocate(fd, 0, 1024 ** 3)
    print("fallocate: allowed", flush=True)
except OSError as exc:
    print("fallocate:", errno.errorcode[exc.errno], flush=True)
print("tree again:", fill("fill.bin"), flush=True)
made = 0
try:
    os.mkdir("many")
    while made < LIMIT + 100:
        open(f"many/{made}", "w").close()
        made += 1
    print("inodes: all", made, flush=True)
except OSError as exc:
    print("inodes:", errno.errorcode[exc.errno], "after", made, flush=True)
shutil.rmtree("many")  # inodes back for "ready" and the host's "go"
open("ready", "w").close()  # holding the data while the host is measured
while not os.path.exists("go"):
    time.sleep(0.05)
'''


def wait_for(path: Path, seconds: float = 120.0) -> None:
    """Until the run made ``path`` (a bound so a broken run fails the test, not hangs it)."""
    for _ in range(int(seconds / 0.05)):
        if path.exists():
            return
        threading.Event().wait(0.05)
    raise AssertionError(f"{path.name} never appeared")


def test_writing_past_the_disk_and_inode_limits_fails_inside_and_spares_the_host(
        graded: Graded, sandbox: CheckSandbox, python: Path) -> None:
    """192 MiB, a 1 GiB fallocate and more files than the inode limit, into a 64 MiB
    scratch copy: each fails with ENOSPC inside; while the run holds what it got, the host's
    disk under the data dir has lost far less than what was attempted."""
    before = os.statvfs(graded.settings.data_dir)
    held: dict[str, os.statvfs_result] = {}

    def measure_while_held(tree: Path) -> None:
        def measure() -> None:
            wait_for(tree / "ready")
            held["during"] = os.statvfs(graded.settings.data_dir)
            (tree / "go").touch()
        threading.Thread(target=measure, daemon=True).start()

    run = run_in_scratch(sandbox, python, FILL.replace("LIMIT", str(SCRATCH_INODES)),
                         on_tree=measure_while_held)
    assert run.exit_code == 0 and run.stopped is None, run.output
    lines = dict(line.split(": ", 1) for line in run.output.splitlines() if ": " in line)
    for key, most in (("tree", 64), ("tmp", 32), ("tree again", 64)):
        assert lines[key].startswith("ENOSPC after "), run.output
        assert int(lines[key].split()[2]) <= most, run.output
    assert lines["fallocate"] == "ENOSPC", run.output
    assert lines["inodes"].startswith("ENOSPC after "), run.output
    assert int(lines["inodes"].split()[2]) < SCRATCH_INODES, run.output
    used = (before.f_bavail - held["during"].f_bavail) * before.f_frsize
    assert used < 128 * MiB, f"the host's disk lost {used // MiB} MiB to the run"


NPROC = '''\
import os, subprocess, time
children = []
try:
    for _ in range(40):
        children.append(subprocess.Popen(["sleep", "60"]))
    started = "started all"
except OSError as exc:
    started = f"refused after {len(children)}: {exc}"
open("ready", "w").close()
while not os.path.exists("go"):
    time.sleep(0.05)
print(os.getuid(), started, flush=True)
for child in children:
    child.kill()
'''


def test_one_runs_processes_never_count_against_anothers_nproc(
        sandbox: CheckSandbox, python: Path) -> None:
    """Two runs at once, 41 processes each under a 64-process limit: fine if each is its own
    uid, refused if RLIMIT_NPROC counted both runs' processes together."""
    trees: list[Path] = []

    def release_when_both_ready() -> None:
        for _ in range(2400):  # each run started its children (or was refused): let them go
            if len(trees) == 2 and all((t / "ready").exists() for t in trees):
                break
            threading.Event().wait(0.05)
        for tree in trees:
            (tree / "go").touch()

    waiter = threading.Thread(target=release_when_both_ready)
    waiter.start()
    first, second = in_threads(
        *[lambda: run_in_scratch(sandbox, python, NPROC, on_tree=trees.append)] * 2)
    waiter.join()
    (uid_a, said_a), (uid_b, said_b) = (r.output.strip().split(" ", 1) for r in (first, second))
    assert said_a == said_b == "started all", (first.output, second.output)
    assert uid_a != uid_b and {int(uid_a), int(uid_b)} <= set(sandbox.uids())


async def test_one_sessions_sleeper_does_not_delay_anothers_run(
        sandbox: CheckSandbox, python: Path) -> None:
    """Session A queues three runs that sleep until told; session B's one run, queued after
    them, starts and finishes while A's first still sleeps and A's others still wait."""
    queue = FairQueue(slots=2, per_session=1)
    started: list[str] = []
    trees: dict[str, Path] = {}
    sleeper = ("import os, time\nopen('ready', 'w').close()\n"
               "while not os.path.exists('go'):\n    time.sleep(0.05)\nprint('woke')\n")

    async def run(session: str, name: str, code: str) -> SandboxRun:
        async with queue.slot(session):
            started.append(name)
            return await asyncio.to_thread(
                run_in_scratch, sandbox, python, code,
                on_tree=lambda tree: trees.__setitem__(name, tree))

    sleepers = [asyncio.create_task(run("A", f"A{i}", sleeper)) for i in range(3)]
    await asyncio.sleep(0)  # let A's three queue first
    other = await run("B", "B1", "print('B ran')")
    assert "B ran" in other.output and other.exit_code == 0
    assert started == ["A0", "B1"], started
    state = queue.state()
    assert state == {"running": {"A": 1}, "waiting": {"A": 2}}, state
    assert not sleepers[0].done()
    for i in range(3):  # wake A's runs one by one, in order
        name = f"A{i}"
        while name not in trees or not (trees[name] / "ready").exists():
            await asyncio.sleep(0.05)
        (trees[name] / "go").touch()
        assert "woke" in (await sleepers[i]).output
    assert started == ["A0", "B1", "A1", "A2"]
    assert queue.state() == {"running": {}, "waiting": {}}


def test_a_scratch_copy_is_a_tmpfs_of_its_own_gone_after_release(sandbox: CheckSandbox) -> None:
    work = sandbox.scratch("probe", SMALL)
    try:
        assert os.path.ismount(work)
        info = os.statvfs(work)
        assert info.f_blocks * info.f_frsize == 64 * MiB
        assert info.f_files == SCRATCH_INODES
        assert (work.stat().st_mode & 0o777, work.stat().st_uid) == (0o700, 0)
    finally:
        sandbox.release(work)
    assert not work.exists()
    with pytest.raises(FileNotFoundError):
        os.statvfs(work)
    left = sandbox.scratch("attack-left", SMALL)  # a pairlab killed mid-run left it mounted
    past = datetime.now(UTC).timestamp() - 3600
    os.utime(left, (past, past))
    assert sandbox.sweep(600) == 1
    assert not left.exists() and not os.path.ismount(left)


@pytest.fixture(autouse=True)
def _no_leftover_mounts(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    with open("/proc/self/mounts") as mounts:
        left = [line for line in mounts if line.startswith("pairlab-check ")
                and "/attack-" in line]
    assert left == [], left


@pytest.mark.parametrize("with_solution", [True, False], ids=["solution", "starter"])
def test_a_built_in_tasks_checks_give_the_same_verdict_under_the_harness(
        sandbox: CheckSandbox, python: Path, tmp_path: Path, with_solution: bool) -> None:
    """The import ran these checks with the task's plain command; pairlab's harness (no
    ``pythonpath`` from the task's pyproject, its own ini) must agree: the solution passes,
    the starter fails."""
    catalog = REPO / "tasks" / "catalog" / "scoring-service-validation"

    def fill(dest: Path) -> None:
        shutil.copytree(catalog, dest, ignore=shutil.ignore_patterns(
            "hidden_checks", "solution", "__pycache__"))
        if with_solution:
            shutil.copytree(catalog / "solution", dest, dirs_exist_ok=True)

    work = sandbox.scratch("builtin")
    try:
        payload = run_checks(CheckPlan(catalog / "hidden_checks", "hidden_checks", python,
                                       timeout_s=120), work, fill, sandbox)
    finally:
        sandbox.release(work)
    assert payload["total"] >= 3, payload
    if with_solution:
        assert (payload["status"], payload["failed"]) == ("passed", 0), payload
    else:
        assert payload["status"] == "failed" and payload["failed"] >= 1, payload
