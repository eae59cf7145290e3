"""The built-in tasks in tasks/catalog/: manifests, content, and their checks really work.

For each task: the visible command passes on the starter tree (as a workspace would hold
it), the hidden checks fail on the starter, and hidden checks and visible tests pass once
the reference solution is overlaid. Each run is a real ``python -m pytest`` subprocess.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tasks.manifest import KINDS, Manifest, hints_from_guide, load_manifest

CATALOG = Path(__file__).resolve().parents[2] / "tasks" / "catalog"
TASK_IDS = ["churn-eval-extend", "daily-features-bug", "scoring-service-validation"]
RUN_TIMEOUT = 100
# One fake credential per task, so the anonymiser's secret detection has work to do.
CREDENTIAL = re.compile(
    r"AKIA[0-9A-Z]{16}|postgresql://[^:\s]+:[^@\s]+@|glpat-[0-9A-Za-z_-]{20}")


def _files(root: Path) -> list[str]:
    return sorted(
        p.relative_to(root).as_posix() for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and ".pytest_cache" not in p.parts
    )


def _workspace_view(source: Path, manifest: Manifest, dest: Path) -> Path:
    """What a candidate gets: no guide, hidden checks, solution, manifest or dropped files."""
    hidden = manifest.never_in_workspace
    for rel in _files(source):
        if any(rel == h or rel.startswith(h + "/") for h in hidden):
            continue
        if manifest.anonymise.is_dropped(rel):
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / rel, dest / rel)
    return dest


def _start_pytest(cwd: Path, args: list[str]) -> subprocess.Popen[str]:
    # A temporary folder of its own: at exit pytest removes old numbered folders of its
    # basetemp root, and in the shared /tmp/pytest-of-<user> those were other runs' (gigabytes
    # of task environments: a run took more than RUN_TIMEOUT to exit, all its tests passed).
    tmp = cwd.parent / f"{cwd.name}-tmp"
    tmp.mkdir(exist_ok=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd),
           "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", "TMPDIR": str(tmp),
           "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str]:
    try:
        output, _ = proc.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
        pytest.fail(f"pytest did not finish within {RUN_TIMEOUT} s:\n{output}")
    return proc.returncode, output


def _visible_args(manifest: Manifest) -> list[str]:
    words = shlex.split(manifest.checks.visible)
    assert words[:3] == ["python", "-m", "pytest"], words
    return [w for w in words[3:] if w != "-q"]


@pytest.fixture(params=TASK_IDS)
def task(request: pytest.FixtureRequest) -> tuple[Path, Manifest]:
    source = CATALOG / request.param
    return source, load_manifest(source)


def test_catalog_holds_exactly_the_built_in_tasks() -> None:
    found = sorted(p.parent.name for p in CATALOG.glob("*/pairlab-task.toml"))
    assert found == TASK_IDS
    kinds = {load_manifest(CATALOG / t).task.kind for t in TASK_IDS}
    assert kinds == set(KINDS)


def test_manifest_is_complete(task: tuple[Path, Manifest]) -> None:
    source, manifest = task
    assert manifest.task.id == source.name
    assert manifest.role_warnings() == ()
    assert manifest.checks.hidden and manifest.checks.solution
    assert 3 <= len(hints_from_guide((source / manifest.task.guide).read_text())) <= 5
    for req in manifest.environment.requirements:
        assert req.split(">")[0].split("<")[0].strip() in {"pandas", "numpy"}


def test_anonymiser_has_work(task: tuple[Path, Manifest], tmp_path: Path) -> None:
    source, manifest = task
    view = _workspace_view(source, manifest, tmp_path)
    text = "\n".join((view / rel).read_text() for rel in _files(view)).casefold()
    for term in manifest.anonymise.deny_terms:
        assert term.casefold() in text, term
    assert CREDENTIAL.search("\n".join((view / r).read_text() for r in _files(view)))
    assert any(manifest.anonymise.is_dropped(rel) for rel in _files(source))
    assert re.search(r"[a-z.]+@[a-z]+(\.[a-z]+)+", text)


def test_solution_only_changes_starter_files(task: tuple[Path, Manifest]) -> None:
    source, manifest = task
    solution = source / str(manifest.checks.solution)
    changed = _files(solution)
    assert changed
    for rel in changed:
        assert (source / rel).is_file(), rel
        assert (source / rel).read_bytes() != (solution / rel).read_bytes(), rel


def test_notebooks_are_valid(task: tuple[Path, Manifest]) -> None:
    source, _ = task
    reads: Callable[..., Any] = nbformat.reads  # nbformat has no type hints
    validate: Callable[..., Any] = nbformat.validate
    for rel in _files(source):
        if rel.endswith(".ipynb"):
            validate(reads((source / rel).read_text(), as_version=4))
            assert json.loads((source / rel).read_text())["nbformat"] == 4


def test_visible_checks_pass_on_the_starter(task: tuple[Path, Manifest], tmp_path: Path) -> None:
    source, manifest = task
    view = _workspace_view(source, manifest, tmp_path / "ws")
    returncode, output = _finish(_start_pytest(view, _visible_args(manifest)))
    assert returncode == 0, output
    assert " passed" in output


@pytest.mark.slow
def test_hidden_checks_fail_on_starter_and_pass_with_solution(
    task: tuple[Path, Manifest], tmp_path: Path
) -> None:
    source, manifest = task
    hidden, solution = str(manifest.checks.hidden), str(manifest.checks.solution)
    no_cache = shutil.ignore_patterns("__pycache__")
    starter = _workspace_view(source, manifest, tmp_path / "starter")
    shutil.copytree(source / hidden, starter / hidden, ignore=no_cache)
    solved = _workspace_view(source, manifest, tmp_path / "solved")
    shutil.copytree(source / solution, solved, dirs_exist_ok=True, ignore=no_cache)
    shutil.copytree(source / hidden, solved / hidden, ignore=no_cache)

    on_starter = _start_pytest(starter, [hidden])
    on_solution = _start_pytest(solved, [hidden, *_visible_args(manifest)])
    returncode, output = _finish(on_starter)
    assert returncode == 1, output  # 1: tests ran and failed (not a usage or collection error)
    assert " failed" in output
    returncode, output = _finish(on_solution)
    assert returncode == 0, output
    assert " failed" not in output
