"""Run a task's hidden checks on a session's final state, and its visible tests on each
snapshot, in a fresh sandbox, with pairlab's own harness (``workspaces.grading.harness``).

A copy of the final tree is made (``workspaces.recording.tree_copy.copy_tree``: no link
followed) and prepared as the import prepared its own (``harness.prepare_for_grading``): every
``conftest.py`` and bytecode file of the candidate's is removed, the revision's conftests are
put back, whatever the candidate left at the checks' path is removed and the revision's hidden
checks are put there (for the visible tests: the revision's test files are put back over the
candidate's edits, and the ``tests.run`` event names the edited ones). Then pairlab's runner
runs pytest on the copy with the task environment's Python, isolated (``-I``), with pairlab's
ini, rootdir and confcutdir, in the same sandbox every workspace and every import check runs in
(``workspaces.sandbox.run``: bubblewrap, no network, an unprivileged uid of its own, a
size- and inode-limited tmpfs copy, read-only system and environment, time, memory and process
limits). Per-check results stream back over a pipe pairlab made, never from a file the run
could write; the output is kept as bounded excerpts. A run that cannot happen (no environment,
no sandbox) or that never finished is reported with its reason, never as "0 of 0".

Like any test of candidate code, the checks import what the candidate wrote, in the test
process: see ``workspaces.grading.harness`` for what that leaves.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tasks.revisions import Revision
from tasks.store import TaskStore
from workspaces.environments import ensure_environment
from workspaces.grading.harness import (
    check_canary,
    edited_note,
    harness_job,
    how_graded,
    parse_report,
    plant_canary,
    prepare_for_grading,
    without_canary,
)
from workspaces.recording.history import History
from workspaces.recording.tree_copy import copy_tree, materialize
from workspaces.sandbox.run import TIME_LIMIT, CheckSandbox

log = logging.getLogger(__name__)

MAX_LISTED = 60
DEFAULT_CHECKS_PATH = "hidden_checks"
_REL = re.compile(r"[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*")


@dataclass(frozen=True)
class CheckPlan:
    hidden: Path | None
    """The revision's hidden checks (``TaskStore.hidden``); None runs the tree's own tests."""
    checks_path: str
    """Where they go in the tree, relative (the manifest's ``checks.hidden``)."""
    env_python: Path
    timeout_s: float = 300.0
    revision_tree: Path | None = None
    """The revision's tree: its own ``conftest.py`` files (and, for the visible tests, its test
    files) go back into the copy."""

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


def prepare_copy(work: Path, fill: Callable[[Path], Any],
                 plan: CheckPlan) -> tuple[Path, list[str]]:
    """``work/tree``: the final state made ready for grading (the check run hands it to its
    own uid), and the visible test files the candidate had edited."""
    tree = work / "tree"
    fill(tree)
    edited = prepare_for_grading(tree, plan.checks_path, revision_tree=plan.revision_tree,
                                 hidden=plan.hidden)
    return tree, edited


def summarise(cases: list[dict[str, Any]] | None, code: int | None, stopped: str | None,
              output: str, duration_ms: int, command: str) -> dict[str, Any]:
    counts = {status: 0 for status in ("passed", "failed", "error", "skipped")}
    for case in cases or []:
        counts[case["status"]] += 1
    if stopped or cases is None:  # no per-check results: no verdict to give
        status = "error"
    elif counts["failed"] or counts["error"] or code == 1:
        status = "failed"
    elif code == 0:
        status = "passed"
    else:  # 2 interrupted, 3 internal error, 4 usage error, 5 nothing collected
        status = "error"
    listed = sorted(cases or [], key=lambda c: c["status"] == "passed")[:MAX_LISTED]
    result = {"command": command, "status": status, "passed": counts["passed"],
              "failed": counts["failed"], "errors": counts["error"], "skipped": counts["skipped"],
              "total": len(cases or []), "exit_code": code, "timed_out": stopped == TIME_LIMIT,
              "duration_ms": duration_ms, "checks": listed, "output": output}
    if status == "error":
        result["reason"] = error_reason(code, stopped, output, duration_ms,
                                        results=cases is not None)
    return result


PYTEST_EXITS = {2: "the run was interrupted", 3: "pytest failed internally",
                4: "pytest could not start (a usage or configuration error)",
                5: "no tests were collected"}


def error_reason(code: int | None, stopped: str | None, output: str, duration_ms: int, *,
                 results: bool = True) -> str:
    """Why a run has no verdict, in one sentence with the last line it printed."""
    if stopped:
        return f"the run was stopped at its {stopped} ({duration_ms / 1000:.0f} s)"
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    last = lines[-1][:300] if lines else "no output"
    if code in PYTEST_EXITS:
        what = PYTEST_EXITS[code or 0]
    elif not results:
        what = f"the run ended with exit code {code} and left no per-check results"
    else:
        what = f"the run ended with exit code {code}"
    return f"{what}: {last}"


def run_checks(plan: CheckPlan, work: Path, fill: Callable[[Path], Any],
               sandbox: CheckSandbox) -> dict[str, Any]:
    """Prepare the copy under ``work`` (new), run the checks in ``sandbox``, return the
    ``checks.run`` payload. Blocking."""
    tree, edited = prepare_copy(work, fill, plan)
    canary = plant_canary(tree)
    job = harness_job(plan.checks_path, tree, plan.env_python, plan.timeout_s,
                      checks=plan.hidden, canary=canary)
    with sandbox.run(job) as run:
        cases, _ = parse_report(run.report)
        forged, code, output = None, run.exit_code, run.output
        if cases is not None:
            verdict = check_canary(cases, code, canary)
            cases, code, forged = verdict.cases, verdict.code, verdict.forged
            if verdict.failed:
                output = without_canary(output, canary)
        payload = summarise(cases, code, run.stopped, output, run.duration_ms, plan.command)
    if forged is not None:  # what it reported is not shown as results: it was forged
        payload.update(status="error", reason=forged, tampered=True, checks=[], passed=0,
                       failed=0, errors=0, skipped=0, total=0)
    if edited:
        payload["edited_tests"] = edited
        payload["note"] = edited_note(edited)
    return payload


def _failure_reason(what: str, exc: Exception) -> str:
    """A sentence for the timeline: the domain error's own message, else its type and text."""
    message = getattr(exc, "message", None)
    detail = message if isinstance(message, str) else f"{type(exc).__name__}: {exc}"
    return f"{what} could not run: {detail}"[:500]


async def check_session(session_id: str, rev: Revision, *, timeout_s: float, store: TaskStore,
                        envs_root: Path, root: Path | None, history: History,
                        sandbox: CheckSandbox) -> dict[str, Any]:
    """The ``checks.run`` payload for a session's final state: its workspace folder ``root``
    if it is still there, else the last snapshot of its ``history``; the run is stopped after
    ``timeout_s`` (the ``check_timeout_seconds`` setting)."""
    skipped: dict[str, Any] = {"status": "skipped", "passed": 0, "failed": 0, "errors": 0,
                               "skipped": 0, "total": 0, "checks": []}
    hidden = store.hidden(rev.task_id, rev.id)
    if not hidden.is_dir():
        return {**skipped, "reason": "this task revision has no hidden checks"}
    checks_path = checks_path_from_report(store.report(rev.task_id, rev.id))

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
                         timeout_s=timeout_s,
                         revision_tree=store.tree(rev.task_id, rev.id))
        payload = await asyncio.to_thread(
            sandbox.in_scratch, session_id, lambda work: run_checks(plan, work, fill, sandbox))
        if payload["status"] in ("passed", "failed"):
            payload["graded"] = how_graded(payload["total"], rev.id)
        return payload
    except Exception as exc:
        log.exception("hidden checks of session %s could not run", session_id)
        return {**skipped, "status": "error", "command": f"python -m pytest -q {checks_path}",
                "reason": _failure_reason("the hidden checks", exc)}


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


async def visible_tests(session_id: str, rev: Revision, commit: str, *, timeout_s: float,
                        store: TaskStore, envs_root: Path, history: History,
                        sandbox: CheckSandbox) -> dict[str, Any] | None:
    """The ``tests.run`` payload: the candidate-visible tests on the snapshot ``commit``, in a
    fresh sandbox on a copy (never in the candidate's workspace). None when not runnable."""
    target = visible_target(rev.visible_check)
    if target is None:
        return None
    try:
        env_python = await asyncio.to_thread(ensure_environment, envs_root, rev.requirements)
        plan = CheckPlan(None, target, env_python, timeout_s=timeout_s,
                         revision_tree=store.tree(rev.task_id, rev.id))
        payload = await asyncio.to_thread(
            sandbox.in_scratch, f"{session_id}-tests", lambda work: run_checks(
                plan, work, lambda dest: materialize(history, commit, dest), sandbox))
        return {**payload, "commit": commit, "command": rev.visible_check}
    except Exception as exc:
        log.exception("visible tests of session %s could not run", session_id)
        return {"status": "error", "passed": 0, "failed": 0, "errors": 0, "skipped": 0,
                "total": 0, "checks": [], "commit": commit, "command": rev.visible_check,
                "reason": _failure_reason("the tests", exc)}
