"""Task code outside a workspace runs only in the sandbox, tried as attacks on the three paths
where pairlab runs it: the import's checks (a repository's visible tests and hidden checks), the
continuous visible tests on a snapshot, and the end-of-session hidden checks on the final state.

Each time, hostile code (a ``conftest.py`` pytest imports before any test) records who it runs
as and what it can reach: its uids and capabilities; pairlab's data dir, cookie secret and
database; writes outside its own tree (host ``/tmp``, the data dir, the Python trees mounted
read-only); a TCP listener this test opened on the host's 127.0.0.1; a public name; this test's
own process. A failing test then carries the findings out as its message (JSON between two
markers), so they come back through the output pairlab keeps of the run. The host side is then
checked as well: no escape file, no connection accepted, no secret in any output, no process of
the run's uid left.
"""

from __future__ import annotations

import json
import os
import random
import re
import secrets
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from server.settings import Settings
from server.tasks.service import import_config, sandbox_for, task_store
from tasks import revisions
from tasks.importer import ImportRequest, prepare_import
from tests.conftest import MakeSettings, open_db
from tests.fixture_tasks import SHARED_ENVS, publish_fake_task
from tests.task_repos import make_repo, tiny_task
from tests.workspaces.conftest import require_sandbox
from workspaces.environments import ensure_environment
from workspaces.grading.hidden import check_session, visible_tests
from workspaces.recording.archive import history_path
from workspaces.recording.history import History
from workspaces.sandbox.cgroups import pids_of_uid

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

TASK_ID = "attack-task"

# What the planted conftest runs. It names nothing of the host itself: the paths, the port and
# the markers come in a hex blob (so the import's anonymiser has nothing to rewrite in it).
ATTACK_CONFTEST = '''\
"""Planted: what this code can reach from where it is run."""
import json
import os
import socket
import sysconfig
import time

import pytest

CFG = json.loads(bytes.fromhex("{blob}").decode())


def _err(exc):
    return "err:" + type(exc).__name__


def _attempt(fn):
    try:
        return "ok:" + str(fn())[:120]
    except BaseException as exc:
        return _err(exc)


def _status():
    found = {{}}
    with open("/proc/self/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb", "NoNewPrivs"):
                found[key] = value.strip()
    return found


def _read(path):
    if os.path.isdir(path):
        return ",".join(sorted(os.listdir(path)))
    with open(path, "rb") as fh:
        return fh.read(120).decode("utf-8", "replace")


def _write(path):
    with open(path, "x") as fh:
        fh.write("escaped\\n")
    return path


def _connect():
    socket.create_connection(("127.0.0.1", CFG["port"]), timeout=5).close()


def _resolve():
    return socket.getaddrinfo(CFG["public_name"], 443)[0][4]


def _linger():
    """A detached child that tries to outlive the run."""
    pid = os.fork()
    if pid:
        return pid
    try:
        os.setsid()
        os.closerange(0, 65536)
        time.sleep(30)
    finally:
        os._exit(0)


def _attack():
    found = {{"uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(),
              "groups": os.getgroups()}}
    try:
        found["status"] = _status()
    except OSError as exc:
        found["status"] = _err(exc)
    found["read"] = {{name: _attempt(lambda p=path: _read(p))
                     for name, path in CFG["reads"].items()}}
    writes = dict(CFG["writes"])
    if CFG["env_site"]:
        writes["env_site"] = os.path.join(sysconfig.get_paths()["purelib"],
                                          CFG["token"] + ".pth")
    found["write"] = {{name: _attempt(lambda p=path: _write(p))
                      for name, path in writes.items()}}
    found["connect"] = _attempt(_connect)
    found["resolve"] = _attempt(_resolve)
    host_pid = CFG["host_pid"]
    found["kill"] = _attempt(lambda: os.kill(host_pid, 0))
    found["host_pid_seen"] = os.path.exists("/proc/%d" % host_pid)
    found["pids"] = sorted(int(n) for n in os.listdir("/proc") if n.isdigit())[:40]
    found["env_leaks"] = sorted(k for k, v in os.environ.items()
                                if "PAIRLAB" in k.upper() or CFG["reads"]["data_dir"] in v)
    found["linger"] = _attempt(_linger) if CFG["linger"] else "skipped"
    found["setuid0"] = _attempt(lambda: os.setuid(0))
    return found


REPORT = CFG["mark"] + json.dumps(_attack(), sort_keys=True, separators=(",", ":")) + CFG["mark"]


@pytest.fixture
def attack_report():
    return REPORT


if CFG["hijack"]:
    def pytest_runtest_call(item):
        """Every test under this folder fails with the findings (the hidden checks too)."""
        pytest.fail(REPORT, pytrace=False)
'''

ATTACK_TEST = '''\
import pytest


def test_attack_report(attack_report):
    pytest.fail(attack_report, pytrace=False)
'''

# The same planted code as a module of the candidate's that a test imports (pairlab's harness
# loads no conftest of the candidate's: tests reach candidate code only by importing it).
ATTACK_MODULE_TEST = '''\
import pytest

from attack_probe import REPORT


def test_attack_report():
    pytest.fail(REPORT, pytrace=False)
'''

HIDDEN_CHECK = '''\
from pathlib import Path


def test_main_was_fixed():
    import main  # the candidate's code, as hidden checks use it

    assert "fixed" in Path("main.py").read_text()
'''


# An attempt the sandbox stops fails with one of these (anything else, e.g. a NameError in
# the planted code, would be a toothless attack, not a contained one).
READ_REFUSED = {"err:FileNotFoundError", "err:PermissionError", "err:NotADirectoryError"}
WRITE_REFUSED = READ_REFUSED | {"err:OSError"}  # OSError: EROFS, a read-only mount
CONNECT_REFUSED = {"err:ConnectionRefusedError", "err:OSError", "err:TimeoutError"}


@dataclass
class Attack:
    """One attack's settings, listener and planted files, and the checks of what it found."""

    settings: Settings
    env_python: Path
    listener: socket.socket
    token: str = field(default_factory=lambda: f"pairlab-escape-{secrets.token_hex(8)}")

    @property
    def mark(self) -> str:
        return f"@@{self.token[-16:]}@@"

    @property
    def env_venv(self) -> Path:
        return Path(os.path.abspath(self.env_python)).parent.parent

    def writes(self) -> dict[str, Path]:
        """Host paths outside the tree under test that the planted code tries to create."""
        data = self.settings.data_dir
        return {
            "tmp": Path("/tmp") / self.token,  # the sandbox has its own /tmp
            "var_tmp": Path("/var/tmp") / self.token,
            "data_dir": data / self.token,
            "check_runs": data / "checks" / self.token,
            "tasks": data / "tasks" / self.token,
            "pairlab_venv": Path(sys.prefix) / self.token,
            "env": self.env_venv / self.token,
        }

    def reads(self, extra: dict[str, Path]) -> dict[str, Path]:
        data = self.settings.data_dir
        return {"data_dir": data, "cookie_secret": data / "cookie_secret",
                "db": self.settings.db_path, "tasks": data / "tasks",
                "host_environ": Path(f"/proc/{os.getpid()}/environ"), **extra}

    def conftest(self, *, hijack: bool = False, reads: dict[str, Path] | None = None,
                 control: bool = False) -> str:
        """The planted ``conftest.py``. ``control``: for a run straight on the host (no writes
        into the Python trees, no lingering child, a name that resolves from /etc/hosts)."""
        writes = self.writes()
        if control:
            writes = {k: v for k, v in writes.items() if k in ("tmp", "data_dir")}
        cfg = {
            "mark": self.mark, "token": self.token, "hijack": hijack,
            "port": self.listener.getsockname()[1],
            "public_name": "localhost" if control else "example.com",
            "host_pid": os.getpid(), "env_site": not control, "linger": not control,
            "reads": {k: str(v) for k, v in self.reads(reads or {}).items()},
            "writes": {k: str(v) for k, v in writes.items()},
        }
        return ATTACK_CONFTEST.format(blob=json.dumps(cfg).encode().hex())

    def findings(self, text: str) -> dict[str, Any]:
        """The planted code's findings, from the output of a run that carried them."""
        match = re.search(f"{re.escape(self.mark)}(.*?){re.escape(self.mark)}", text, re.S)
        assert match, f"the planted code's findings are not in the output:\n{text}"
        found: dict[str, Any] = json.loads(match.group(1))
        return found

    def assert_contained(self, found: dict[str, Any]) -> None:
        """Inside: an unprivileged check uid with no capability; nothing of the host."""
        uids = sandbox_for(self.settings).uids()
        summary = json.dumps(found, indent=1, sort_keys=True)
        assert found["uid"] == found["euid"] == found["gid"], summary
        assert found["uid"] in uids, summary
        assert found["uid"] >= self.settings.sandbox_uid_base and found["uid"] != 0, summary
        assert found["groups"] == [], summary
        status = found["status"]
        for cap in ("CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb"):
            assert int(status[cap], 16) == 0, (cap, summary)
        assert status["NoNewPrivs"] == "1", summary
        assert found["setuid0"] == "err:PermissionError", summary
        assert set(found["read"]) >= set(self.reads({})), summary
        for name, result in found["read"].items():
            assert result in READ_REFUSED, (f"read {name}", summary)
        assert set(found["write"]) == {*self.writes(), "env_site"}, summary
        for name, result in found["write"].items():
            if name == "tmp":  # its own private /tmp: may succeed inside, checked on the host
                continue
            assert result in WRITE_REFUSED, (f"write {name}", summary)
        assert found["connect"] in CONNECT_REFUSED, summary
        assert found["resolve"] == "err:gaierror", summary
        assert found["kill"] == "err:ProcessLookupError", summary
        assert found["host_pid_seen"] is False, summary
        assert os.getpid() not in found["pids"] and len(found["pids"]) < 20, summary
        assert found["env_leaks"] == [], summary
        assert found["linger"].startswith("ok:"), summary  # it did fork, inside
        assert pids_of_uid(found["uid"]) == [], "a process of the check uid outlived its run"

    def assert_host_untouched(self, *outputs: Any) -> None:
        escaped = [str(p) for p in self.writes().values() if os.path.lexists(p)]
        escaped += [str(p) for p in self.env_venv.glob(f"lib/*/site-packages/{self.token}.pth")]
        assert escaped == [], f"the planted code wrote outside its tree: {escaped}"
        try:
            connection, peer = self.listener.accept()
        except BlockingIOError:
            pass
        else:
            connection.close()
            raise AssertionError(f"the host listener accepted a connection from {peer}")
        text = json.dumps(outputs)
        secret = str(self.settings.cookie_secret)
        assert len(secret) >= 32
        assert secret not in text, "the cookie secret reached the run's output"

    def cleanup(self) -> None:
        """Whatever an escape left on the host (a .pth file would poison the shared
        environment for every later run)."""
        for path in [*self.writes().values(),
                     *self.env_venv.glob(f"lib/*/site-packages/{self.token}.pth")]:
            if path.is_file() and path.name.startswith(self.token):
                path.unlink()


@pytest.fixture
def attack(make_settings: MakeSettings) -> Iterator[Attack]:
    require_sandbox()
    settings = make_settings(
        environments_dir=str(SHARED_ENVS), check_timeout_seconds=120.0,
        sandbox_uid_base=random.randrange(100_000, 4_000_000, 1000),
    )
    open_db(settings).conn.close()  # the real database file, for the planted code to look for
    env_python = ensure_environment(settings.envs_root, [])
    listener = socket.create_server(("127.0.0.1", 0))
    listener.setblocking(False)
    found = Attack(settings, env_python, listener)
    try:
        yield found
    finally:
        listener.close()
        found.cleanup()


def test_the_planted_code_finds_the_host_when_run_outside_the_sandbox(
    attack: Attack, tmp_path: Path
) -> None:
    """A control: the same planted code run straight on the host, as pairlab's own user,
    reports what the sandbox hides, so the assertions below can fail."""
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "conftest.py").write_text(attack.conftest(control=True))
    (tree / "test_attack.py").write_text(ATTACK_TEST)
    done = subprocess.run(  # our own interpreter, our own files
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_attack.py"],
        cwd=tree, capture_output=True, text=True, timeout=120, check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"})
    assert done.returncode == 1, done.stdout + done.stderr
    found = attack.findings(done.stdout)
    secret = str(attack.settings.cookie_secret)
    assert (found["uid"], found["read"]["cookie_secret"]) == (0, f"ok:{secret}"), found
    assert found["read"]["db"].startswith("ok:SQLite format 3"), found
    assert found["write"]["data_dir"] == f"ok:{attack.writes()['data_dir']}", found
    assert (found["connect"], found["kill"], found["host_pid_seen"]) == ("ok:None", "ok:None",
                                                                         True), found
    with pytest.raises(AssertionError):
        attack.assert_contained(found)
    with pytest.raises(AssertionError, match="wrote outside its tree"):
        attack.assert_host_untouched()
    attack.cleanup()
    with pytest.raises(AssertionError, match="accepted a connection"):
        attack.assert_host_untouched()
    with pytest.raises(AssertionError, match="cookie secret"):
        attack.assert_host_untouched(done.stdout)
    attack.assert_host_untouched()  # nothing is left of it


# ---- 1. the import's checks --------------------------------------------------------------


def test_an_imported_repositorys_checks_run_sandboxed(attack: Attack, tmp_path: Path) -> None:
    """The repository's conftests run in the visible tests and in both hidden-check runs."""
    planted = attack.conftest().encode()
    repo = make_repo(tmp_path / "src", tiny_task(extra={
        "tests/conftest.py": planted,
        "tests/test_attack.py": ATTACK_TEST.encode(),
        "hidden_checks/conftest.py": planted,
        "hidden_checks/test_attack.py": ATTACK_TEST.encode(),
    }))
    steps: list[str] = []
    prepared = prepare_import(ImportRequest(str(repo)),
                              import_config(attack.settings, allow_local=True), steps.append)
    try:
        report = json.loads((prepared.staged / "report.json").read_text())
    finally:
        shutil.rmtree(prepared.staged.parent, ignore_errors=True)

    assert report["environment"]["problem"] is None, report["environment"]
    assert "running the hidden checks on the starter" in steps
    checks = report["checks"]
    assert set(checks) == {"visible", "hidden_on_solution", "hidden_on_starter"}
    for name, result in checks.items():
        assert result is not None, name
        assert result["passed"] is False and result["exit_code"] == 1, (name, result)
        assert result["timed_out"] is False, (name, result)
        assert "test_attack.py" in result["output"], (name, result["output"])
        attack.assert_contained(attack.findings(result["output"]))
    assert prepared.summary["visible_tests"] == "failed"
    assert "1 failed, 1 passed" in checks["visible"]["output"]  # the task's own test still ran
    attack.assert_host_untouched(report, prepared.summary)


# ---- 2. continuous visible tests on a snapshot --------------------------------------------


@dataclass
class Session:
    rev: revisions.Revision
    history: History
    workspace: Path


def candidate_session(attack: Attack, tmp_path: Path, session_id: str,
                      checks_path: str = "hidden_checks") -> Session:
    """A published revision with hidden checks (run at ``checks_path``), a history started from
    its tree and the candidate's workspace (a checkout of it)."""
    settings = attack.settings
    report = {"blockers": [], "checks": {"hidden_on_starter": {
        "command": f"python -m pytest -q {checks_path}", "passed": False}}}
    rev_id = publish_fake_task(settings, TASK_ID, files={"main.py": "print('hello')\n"},
                               hidden={"test_hidden.py": HIDDEN_CHECK}, report=report)
    db = open_db(settings)
    try:
        rev = revisions.get_revision(db, rev_id)
    finally:
        db.conn.close()
    store = task_store(settings)
    assert (store.hidden(TASK_ID, rev.id) / "test_hidden.py").is_file()
    history = History(history_path(settings.data_dir, session_id))
    history.init(store.tree(TASK_ID, rev.id))
    workspace = store.checkout(TASK_ID, rev.id, tmp_path / "workspace")
    return Session(rev, history, workspace)


def plant(session: Session, files: dict[str, str], label: str) -> str:
    """The candidate writes ``files``; the recorder snapshots the workspace."""
    for name, text in files.items():
        (session.workspace / name).write_text(text)
    commit = session.history.snapshot(session.workspace, datetime.now(UTC), label)
    assert commit is not None
    assert {path for path, _ in session.history.tree_at(commit)} >= set(files)
    return commit


def store_reads(attack: Attack, session: Session, session_id: str) -> dict[str, Path]:
    """The revision's hidden checks and the session's history, in the host's data dir."""
    store = task_store(attack.settings)
    return {"hidden": store.hidden(TASK_ID, session.rev.id) / "test_hidden.py",
            "history": history_path(attack.settings.data_dir, session_id) / "HEAD"}


async def test_continuous_visible_tests_run_sandboxed(attack: Attack, tmp_path: Path) -> None:
    session_id = "s-visible"
    session = candidate_session(attack, tmp_path, session_id)
    commit = plant(session, {
        "attack_probe.py": attack.conftest(reads=store_reads(attack, session, session_id)),
        "test_attack.py": ATTACK_MODULE_TEST}, "snapshot")

    payload = await visible_tests(session_id, session.rev, commit,
                                  timeout_s=attack.settings.check_timeout_seconds,
                                  store=task_store(attack.settings),
                                  envs_root=attack.settings.envs_root, history=session.history,
                                  sandbox=sandbox_for(attack.settings))
    assert payload is not None
    assert (payload["status"], payload["commit"]) == ("failed", commit), (
        payload.get("reason"), payload)
    assert (payload["failed"], payload["passed"], payload["total"]) == (1, 0, 1), payload
    (case,) = payload["checks"]
    assert case["name"].endswith("test_attack_report") and case["status"] == "failed", case
    found = attack.findings(payload["output"])
    assert attack.findings(case["output"]) == found
    attack.assert_contained(found)
    attack.assert_host_untouched(payload)


# ---- 3. end-of-session hidden checks ------------------------------------------------------


@pytest.mark.parametrize("from_workspace", [True, False], ids=["workspace", "last-snapshot"])
async def test_end_of_session_hidden_checks_run_sandboxed(
    attack: Attack, tmp_path: Path, from_workspace: bool
) -> None:
    """The candidate's ``main.py``, which the hidden check imports, fails it with its
    findings; the final state is the workspace folder or, once it is gone, the last
    snapshot."""
    session_id = "s-hidden"
    session = candidate_session(attack, tmp_path, session_id)
    planted = attack.conftest(reads=store_reads(attack, session, session_id))
    plant(session, {
        "main.py": f"{planted}\npytest.fail(REPORT, pytrace=False)  # fixed\n"}, "final")

    payload = await check_session(
        session_id, session.rev, timeout_s=attack.settings.check_timeout_seconds,
        store=task_store(attack.settings),
        envs_root=attack.settings.envs_root,
        root=session.workspace if from_workspace else None, history=session.history,
        sandbox=sandbox_for(attack.settings))
    assert payload["command"] == "python -m pytest -q hidden_checks", payload
    assert (payload["status"], payload["failed"], payload["total"]) == ("failed", 1, 1), (
        payload.get("reason"), payload)
    (case,) = payload["checks"]
    assert case["name"].endswith("test_main_was_fixed") and case["status"] == "failed", case
    found = attack.findings(payload["output"])
    assert attack.findings(case["output"]) == found
    attack.assert_contained(found)
    attack.assert_host_untouched(payload)


# ---- 3b. the final state's links, on the host side of the end-of-session checks ------------


async def test_hidden_checks_are_never_written_through_the_candidates_links(
    attack: Attack, tmp_path: Path
) -> None:
    """pairlab (root) puts the hidden checks into a copy of the final state, at the path the
    import ran them at (here two folders deep). The copy keeps the candidate's links as links,
    so a candidate who made the first folder a link to a host folder must not get pairlab to
    delete or write there; the checks still run, on a real folder in the copy."""
    session_id = "s-links"
    session = candidate_session(attack, tmp_path, session_id, checks_path="checks/hidden")
    victim = tmp_path / "host-folder"
    (victim / "hidden").mkdir(parents=True)
    (victim / "hidden" / "precious.txt").write_text("the host's own file\n")
    (session.workspace / "checks").symlink_to(victim)

    payload = await check_session(
        session_id, session.rev, timeout_s=attack.settings.check_timeout_seconds,
        store=task_store(attack.settings),
        envs_root=attack.settings.envs_root, root=session.workspace, history=session.history,
        sandbox=sandbox_for(attack.settings))
    on_host = sorted(str(p.relative_to(victim)) for p in victim.rglob("*"))
    assert on_host == ["hidden", "hidden/precious.txt"], (on_host, payload)
    assert (victim / "hidden" / "precious.txt").read_text() == "the host's own file\n"
    assert payload["command"] == "python -m pytest -q checks/hidden", payload
    assert (payload["status"], payload["failed"], payload["total"]) == ("failed", 1, 1), (
        payload.get("reason"), payload)
