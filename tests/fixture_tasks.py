"""A published task revision made straight in the task store, as an import would leave it.

Plain code (no pytest), shared by the harness (tests/harness.py), the recording and scoring
fixtures and the tests that need a task, so that each does not carry its own copy.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from server.db import open_migrated
from server.settings import Settings
from tasks import revisions
from tasks.store import TaskStore
from tasks.treerepo import STARTING_POINT, commit_tree

# Environments are keyed by their requirements and built atomically, so one folder can serve
# every test run on this machine (the first run builds the empty-requirements one).
SHARED_ENVS = Path(tempfile.gettempdir()) / "pairlab-test-envs"

NOTEBOOK = """{
 "cells": [
  {"cell_type": "code", "execution_count": null, "id": "c1", "metadata": {}, "outputs": [],
   "source": ["print('answer', 6 * 7)"]}
 ],
 "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                             "name": "python3"}},
 "nbformat": 4, "nbformat_minor": 5
}
"""

DEFAULT_FILES = {
    "main.py": "print('hello')\n",
    "notes.md": "# Notes\n",
    "explore.ipynb": NOTEBOOK,
}


def publish_fake_task(
    settings: Settings,
    task_id: str = "demo-task",
    kind: str = "eval-script",
    requirements: tuple[str, ...] = (),
    *,
    files: Mapping[str, str] = DEFAULT_FILES,
    hidden: Mapping[str, str] | None = None,
    report: Mapping[str, Any] | None = None,
    brief: str | None = None,
    title: str | None = None,
) -> str:
    """Install and publish a revision whose tree is a git repo of ``files``; returns its id.
    ``hidden`` files become the revision's hidden checks."""
    store = TaskStore(settings.data_dir / "tasks")
    staged = Path(tempfile.mkdtemp(dir=settings.data_dir))
    tree = staged / "tree"
    tree.mkdir()
    for name, text in files.items():
        (tree / name).write_text(text)
    commit = commit_tree(tree, STARTING_POINT)
    if hidden is not None:
        (staged / "hidden").mkdir()
        for name, text in hidden.items():
            (staged / "hidden" / name).write_text(text)
    default_brief = f"Brief of {task_id}: <script>alert(1)</script>\n"
    (staged / "brief.md").write_text(default_brief if brief is None else brief)
    (staged / "guide.md").write_text("## Hint ladder\n1. Look at main.py\n")
    (staged / "report.json").write_text(json.dumps(report or {"blockers": []}))
    (staged / "diff.json").write_text("[]")
    db = open_migrated(settings.db_path)
    try:
        with db.atomic():
            rev = revisions.insert_revision(db, revisions.NewRevision(
                task_id=task_id, title=title or f"Title of {task_id}", kind=kind,
                roles=("ml-engineer",), duration_minutes=60, requirements=requirements,
                visible_check="python -m pytest -q", source_url="file:///fixture",
                source_ref="", source_subdir="", source_commit="0" * 40, tree_commit=commit,
                blockers=(), created_by="test",
            ))
            store.install(staged, task_id, rev.id)
            revisions.publish(db, rev.id)
    finally:
        db.conn.close()
    return rev.id


# The candidate's forgery of choice: a conftest hookwrapper that turns every report green.
HOOKWRAPPER = '''\
import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    report.outcome = "passed"
    report.longrepr = None
'''
