"""Run a task's hidden checks on a session's final state, in a fresh sandbox.

A copy of the final tree is made (``session_export.copy_tree``: no link followed), whatever the
candidate left at the checks' path is removed and the revision's hidden checks are put there,
and the copy is handed to an unprivileged uid. Then ``python -m pytest -q <checks>`` runs with
the task environment's Python inside bubblewrap: its own PID, network (none), IPC and UTS
namespaces, ``--die-with-parent``, the system and the Python trees read-only, only the copy
(``/workspace``) and a results folder writable, ``setpriv`` to the uid (no groups, capabilities
or new privileges) and ``prlimit``, with a time limit after which the whole sandbox is killed.
Per-check results come from pytest's JUnit XML; the output is kept as bounded excerpts.

Like any test of candidate code, the checks import what the candidate wrote: the sandbox keeps
that code away from the host, not from the verdict.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import logging
import os
import pwd
import re
import shlex
import shutil
import signal
import tempfile
import time
import xml.etree.ElementTree as ET  # noqa: N817
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from server.session_export import copy_tree, materialize
from server.settings import Settings
from tasks.revisions import Revision
from tasks.store import TaskStore
from workspaces.environments import ensure_environment
from workspaces.excerpt import HeadTail, truncate, truncation_marker
from workspaces.history import History
from workspaces.sandbox import TOP_LINKS, find_tools, python_trees

log = logging.getLogger(__name__)

OUTPUT_CHARS = 4000
CHECK_CHARS = 1200
MESSAGE_CHARS = 300
MAX_LISTED = 60
JUNIT_MAX_BYTES = 8 * 1024 * 1024
TMP_BYTES = 256 * 1024 * 1024
DEFAULT_CHECKS_PATH = "hidden_checks"
CHECK_UID_OFFSET = 1000
"""Hidden checks run as ``sandbox_uid_base + 1000``, just past the workspaces' 1000 uids."""
_REL = re.compile(r"[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*")


@dataclass(frozen=True)
class CheckPlan:
    hidden: Path | None
    """The revision's hidden checks (``TaskStore.hidden``); None runs the tree's own tests."""
    checks_path: str
    """Where they go in the tree, relative (the manifest's ``checks.hidden``)."""
    env_python: Path
    uid: int
    timeout_s: float = 300.0
    memory_bytes: int = 4 * 1024 * 1024 * 1024
    processes: int = 256

    @property
    def command(self) -> str:
        return f"python -m pytest -q {self.checks_path}"


def checks_path_from_report(report: dict[str, Any]) -> str:
    """The relative path the import ran the hidden checks at (else ``hidden_checks``)."""
    checks = report.get("checks") if isinstance(report, dict) else None
    for key in ("hidden_on_starter", "hidden_on_solution"):
        result = checks.get(key) if isinstance(checks, dict) else None
        command = result.get("command") if isinstance(result, dict) else None
        try:
            words = shlex.split(command) if isinstance(command, str) else []
        except ValueError:
            words = []
        if words:
            candidate = words[-1].rstrip("/")
            if _REL.fullmatch(candidate) and ".." not in candidate.split("/"):
                return candidate
    return DEFAULT_CHECKS_PATH


def _overlay(src: Path, dest: Path) -> None:
    """Copy the hidden checks' regular files (never links) into ``dest``."""
    for path in sorted(src.rglob("*")):
        if path.is_file() and not path.is_symlink():
            target = dest / path.relative_to(src)
            target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())


def prepare_copy(work: Path, fill: Callable[[Path], Any], plan: CheckPlan) -> tuple[Path, Path]:
    """``work/tree`` (final state + hidden checks) and ``work/out``, owned by the check uid."""
    tree, out = work / "tree", work / "out"
    fill(tree)
    if plan.hidden is not None:
        target = tree / plan.checks_path
        if target.is_symlink() or target.is_file():
            target.unlink()
        elif target.exists():
            shutil.rmtree(target)
        _overlay(plan.hidden, target)
    out.mkdir(mode=0o700)
    for folder in (tree, out):
        for _dirpath, dirnames, filenames, dirfd in os.fwalk(folder, follow_symlinks=False):
            for name in (*dirnames, *filenames):
                os.chown(name, plan.uid, plan.uid, dir_fd=dirfd, follow_symlinks=False)
        os.chown(folder, plan.uid, plan.uid)
    return tree, out


def sandbox_argv(plan: CheckPlan, tree: Path, out: Path, protected: Path) -> list[str]:
    tools = find_tools("bwrap")
    if isinstance(tools, str):
        raise RuntimeError(tools)
    if os.geteuid() != 0:
        raise RuntimeError("pairlab must run as root to run checks as an unprivileged uid")
    try:
        owner = pwd.getpwuid(plan.uid).pw_name
    except KeyError:
        owner = None
    if owner is not None:
        raise RuntimeError(f"the check uid {plan.uid} belongs to the host user {owner!r}")
    assert tools.bwrap is not None  # noqa: S101 - find_tools was asked for it
    args = [tools.bwrap, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--die-with-parent", "--new-session",
            "--hostname", "pairlab-checks", "--ro-bind", "/usr", "/usr"]
    for name in TOP_LINKS:
        host = Path("/") / name
        if host.is_symlink():
            args += ["--symlink", os.readlink(host), str(host)]
        elif host.is_dir():
            args += ["--ro-bind", str(host), str(host)]
    args += ["--proc", "/proc", "--dev", "/dev",
             "--perms", "1777", "--size", str(TMP_BYTES), "--tmpfs", "/tmp"]  # noqa: S108
    made = {Path("/"), Path("/usr"), Path("/tmp"), *(Path("/") / n for n in TOP_LINKS)}  # noqa: S108
    for src, dest in python_trees(plan.env_python):
        if protected.is_relative_to(src):
            raise RuntimeError(f"refusing to expose {src}: it holds pairlab's data folder")
        for parent in reversed(dest.parents):  # bwrap would make them owner-only
            if parent not in made:
                args += ["--perms", "0755", "--dir", str(parent)]
                made.add(parent)
        args += ["--ro-bind", str(src), str(dest)]
        made.add(dest)
    args += ["--bind", str(tree), "/workspace", "--perms", "0755", "--dir", "/run",
             "--bind", str(out), "/run/checks",
             "--chdir", "/workspace", "--remount-ro", "/", "--",
             tools.setpriv, f"--reuid={plan.uid}", f"--regid={plan.uid}", "--clear-groups",
             "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all", "--pdeathsig=KILL",
             "--", tools.prlimit, f"--nproc={plan.processes}", f"--as={plan.memory_bytes}",
             f"--fsize={256 * 1024 * 1024}", "--nofile=1024", "--core=0", "--",
             str(Path(os.path.abspath(plan.env_python))), "-m", "pytest", "-q",
             "-p", "no:cacheprovider", "--junitxml=/run/checks/junit.xml",
             "-o", "junit_logging=out-err", "-o", "junit_family=xunit2", plan.checks_path]
    return args


async def _run(argv: list[str], timeout_s: float) -> tuple[int | None, bool, str, int]:
    """``(exit code, timed out, output excerpt, duration ms)``; the sandbox never outlives it."""
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8",  # noqa: S108 - inside
           "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0"}
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, env=env, cwd="/", start_new_session=True)
    output = HeadTail(OUTPUT_CHARS)
    decoder = codecs.getincrementaldecoder("utf-8")("replace")

    async def pump() -> None:
        assert proc.stdout is not None  # noqa: S101 - asked for a pipe
        while chunk := await proc.stdout.read(65536):
            output.add(decoder.decode(chunk))
        output.add(decoder.decode(b"", final=True))
        await proc.wait()

    timed_out = False
    try:
        async with asyncio.timeout(timeout_s):
            await pump()
    except TimeoutError:
        timed_out = True
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # bwrap; --die-with-parent takes the rest
        await proc.wait()
    text = output.render()
    if timed_out:
        text += f"\n[timed out after {timeout_s:.0f} s]"
    return (None if timed_out else proc.returncode), timed_out, text, \
        round((time.monotonic() - started) * 1000)


def _tail(text: str, limit: int) -> str:
    """The end of ``text`` (where a traceback says what failed), with a marker if cut."""
    if len(text) <= limit:
        return text
    return f"{truncation_marker(len(text) - limit)}\n{text[-limit:]}"


def _case(case: ET.Element) -> dict[str, Any]:
    cls, name = case.get("classname", ""), case.get("name", "")
    result: dict[str, Any] = {"name": f"{cls}::{name}" if cls else name, "status": "passed"}
    with contextlib.suppress(ValueError):
        result["duration_ms"] = round(float(case.get("time", "0")) * 1000)
    for tag, status in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
        found = case.find(tag)
        if found is not None:
            result["status"] = status
            result["message"] = truncate(found.get("message", ""), MESSAGE_CHARS)
            if found.text:
                result["output"] = _tail(found.text, CHECK_CHARS)
            break
    if result["status"] != "passed" and "output" not in result:
        captured = "".join((case.findtext("system-out") or "", case.findtext("system-err") or ""))
        if captured:
            result["output"] = truncate(captured, CHECK_CHARS)
    return result


def parse_junit(path: Path) -> list[dict[str, Any]] | None:
    """Per-check results from pytest's JUnit XML, or None if there is none to read."""
    try:
        if path.is_symlink() or path.stat().st_size > JUNIT_MAX_BYTES:
            return None
        # Written by pytest in the sandbox; ElementTree resolves no external entities and this
        # Python's expat refuses entity-expansion bombs.
        root = ET.parse(path).getroot()  # noqa: S314
    except (OSError, ET.ParseError):
        return None
    return [_case(case) for case in root.iter("testcase")]


def summarise(cases: list[dict[str, Any]] | None, code: int | None, timed_out: bool,
              output: str, duration_ms: int, command: str) -> dict[str, Any]:
    counts = {status: 0 for status in ("passed", "failed", "error", "skipped")}
    for case in cases or []:
        counts[case["status"]] += 1
    if timed_out:
        status = "error"
    elif counts["failed"] or counts["error"] or code == 1:
        status = "failed"
    elif code == 0:
        status = "passed"
    else:  # 2 interrupted, 3 internal error, 4 usage error, 5 nothing collected
        status = "error"
    listed = sorted(cases or [], key=lambda c: c["status"] == "passed")[:MAX_LISTED]
    return {"command": command, "status": status, "passed": counts["passed"],
            "failed": counts["failed"], "errors": counts["error"], "skipped": counts["skipped"],
            "total": len(cases or []), "exit_code": code, "timed_out": timed_out,
            "duration_ms": duration_ms, "checks": listed, "output": output}


async def run_checks(plan: CheckPlan, work: Path, fill: Callable[[Path], Any],
                     protected: Path) -> dict[str, Any]:
    """Prepare the copy under ``work`` (new), run the checks, return the ``checks.run``
    payload. ``protected`` (pairlab's data dir) must never be visible in the sandbox."""
    tree, out = await asyncio.to_thread(prepare_copy, work, fill, plan)
    argv = sandbox_argv(plan, tree, out, protected)
    code, timed_out, output, duration = await _run(argv, plan.timeout_s)
    cases = await asyncio.to_thread(parse_junit, out / "junit.xml")
    return summarise(cases, code, timed_out, output, duration, plan.command)


async def check_session(session_id: str, rev: Revision, *, settings: Settings, store: TaskStore,
                        envs_root: Path, root: Path | None, history: History) -> dict[str, Any]:
    """The ``checks.run`` payload for a session's final state: its workspace folder ``root``
    if it is still there, else the last snapshot of its ``history``."""
    skipped: dict[str, Any] = {"status": "skipped", "passed": 0, "failed": 0, "errors": 0,
                               "skipped": 0, "total": 0, "checks": []}
    hidden = store.hidden(rev.task_id, rev.id)
    if not hidden.is_dir():
        return {**skipped, "reason": "this task revision has no hidden checks"}
    if settings.unsafe_no_sandbox:
        return {**skipped, "reason": "hidden checks only run sandboxed, and the sandbox is off "
                                     "(--unsafe-no-sandbox)"}
    checks_path = checks_path_from_report(store.report(rev.task_id, rev.id))
    work: Path | None = None

    def fill(dest: Path) -> None:
        if root is not None:
            copy_tree(root, dest, links=True)
            return
        commits = history.commits()
        if commits:
            materialize(history, commits[-1][0], dest)
        else:
            dest.mkdir(mode=0o755)

    try:
        env_python = await asyncio.to_thread(ensure_environment, envs_root, rev.requirements)
        plan = CheckPlan(hidden, checks_path, env_python,
                         settings.sandbox_uid_base + CHECK_UID_OFFSET,
                         timeout_s=settings.check_timeout_seconds)
        base = settings.data_dir / "checks"
        base.mkdir(mode=0o700, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f"{session_id}-", dir=base))
        return await run_checks(plan, work, fill, settings.data_dir)
    except Exception as exc:
        log.exception("hidden checks of session %s could not run", session_id)
        return {**skipped, "status": "error", "command": f"python -m pytest -q {checks_path}",
                "reason": f"the checks could not run: {type(exc).__name__}: {exc}"[:500]}
    finally:
        if work is not None:
            await asyncio.to_thread(shutil.rmtree, work, True)


VISIBLE_UID_OFFSET = CHECK_UID_OFFSET + 1
"""Continuous visible-test runs use their own uid, next to the hidden checks' one."""


def visible_target(command: str) -> str | None:
    """The single path a task's visible check runs pytest on (``.`` for none), or None when
    the command is not a plain ``python -m pytest`` run (then it is not run continuously)."""
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    if words[:3] not in (["python", "-m", "pytest"], ["python3", "-m", "pytest"]):
        return None
    targets = [w for w in words[3:] if not w.startswith("-")]
    if not targets:
        return "."
    target = targets[0].rstrip("/")
    if len(targets) == 1 and _REL.fullmatch(target) and ".." not in target.split("/"):
        return target
    return None


async def visible_tests(session_id: str, rev: Revision, commit: str, *, settings: Settings,
                        envs_root: Path, history: History) -> dict[str, Any] | None:
    """The ``tests.run`` payload: the candidate-visible tests on the snapshot ``commit``, in a
    fresh sandbox on a copy (never in the candidate's workspace). None when not runnable."""
    target = visible_target(rev.visible_check)
    if target is None or settings.unsafe_no_sandbox:
        return None
    work: Path | None = None
    try:
        env_python = await asyncio.to_thread(ensure_environment, envs_root, rev.requirements)
        plan = CheckPlan(None, target, env_python, settings.sandbox_uid_base + VISIBLE_UID_OFFSET,
                         timeout_s=settings.check_timeout_seconds)
        base = settings.data_dir / "checks"
        base.mkdir(mode=0o700, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f"{session_id}-tests-", dir=base))
        payload = await run_checks(plan, work, lambda dest: materialize(history, commit, dest),
                                   settings.data_dir)
        return {**payload, "commit": commit, "command": rev.visible_check}
    except Exception as exc:
        log.exception("visible tests of session %s could not run", session_id)
        return {"status": "error", "passed": 0, "failed": 0, "errors": 0, "skipped": 0,
                "total": 0, "checks": [], "commit": commit, "command": rev.visible_check,
                "reason": f"the tests could not run: {type(exc).__name__}: {exc}"[:500]}
    finally:
        if work is not None:
            await asyncio.to_thread(shutil.rmtree, work, True)
