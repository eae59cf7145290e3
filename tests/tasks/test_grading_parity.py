"""The import and the sessions grade hidden checks the same way: a task whose hidden checks
need a fixture from the revision's ROOT ``conftest.py`` publishes green, and then a session with
the solution is graded passed and one with the starter failed (not "error: fixture not found"),
while a root conftest of the candidate's own is still ignored."""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from server.settings import Settings
from server.tasks.service import import_config, sandbox_for, task_store
from tasks.importer import ImportRequest, install_revision, prepare_import
from tests.conftest import MakeSettings, open_db
from tests.fixture_tasks import HOOKWRAPPER, SHARED_ENVS
from tests.task_repos import SOLUTION, TASK_ID, make_repo, tiny_task
from tests.workspaces.conftest import require_sandbox
from workspaces.grading.hidden import check_session
from workspaces.recording.archive import history_path
from workspaces.recording.history import History

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

ROOT_CONFTEST = b'''\
import pytest


@pytest.fixture
def rows():
    return [1, 2, 3]
'''
HIDDEN_NEEDS_ROOT_FIXTURE = b'''\
from zephyrine_totals.totals import total


def test_every_row_counts(rows):
    assert total(rows) == 6
'''
FORGED_ROOT_CONFTEST = HOOKWRAPPER + '''

@pytest.fixture
def rows():
    return [0, 1, 2, 3]
'''


@pytest.fixture
def settings(make_settings: MakeSettings) -> Settings:
    require_sandbox()
    given = os.environ.get("PAIRLAB_SANDBOX_UID_BASE")
    return make_settings(environments_dir=str(SHARED_ENVS), check_timeout_seconds=120.0,
                         sandbox_uid_base=int(given) if given else
                         random.randrange(100_000, 4_000_000, 2000))


async def test_hidden_checks_needing_a_root_conftest_grade_alike_at_import_and_in_sessions(
        settings: Settings, tmp_path: Path) -> None:
    files = tiny_task(extra={"conftest.py": ROOT_CONFTEST,
                             "hidden_checks/test_hidden.py": HIDDEN_NEEDS_ROOT_FIXTURE})
    repo = make_repo(tmp_path / "src", files)
    config = import_config(settings, allow_local=True)
    prepared = prepare_import(ImportRequest(str(repo)), config, lambda step: None)
    summary = prepared.summary
    assert (summary["visible_tests"], summary["hidden_on_solution"],
            summary["hidden_on_starter"]) == ("passed", "passed", "failed"), summary
    assert summary["blockers"] == [], summary
    db = open_db(settings)
    try:
        with db.atomic():
            rev = install_revision(db, config.store, prepared)
    finally:
        db.conn.close()
    store = task_store(settings)
    assert (store.tree(TASK_ID, rev.id) / "conftest.py").is_file()

    async def graded(name: str, written: dict[str, str]) -> dict[str, Any]:
        root = store.checkout(TASK_ID, rev.id, tmp_path / name)
        for rel, text in written.items():
            (root / rel).write_text(text)
        history = History(history_path(settings.data_dir, name))
        history.init(store.tree(TASK_ID, rev.id))
        history.snapshot(root, datetime.now(UTC), "snapshot")
        return await check_session(name, rev, timeout_s=settings.check_timeout_seconds,
                                   store=store,
                                   envs_root=settings.envs_root, root=root, history=history,
                                   sandbox=sandbox_for(settings))

    solution = SOLUTION.replace("Zephyrine", "Acme")
    fixed = await graded("s-solution", {"acme_totals/totals.py": solution})
    assert (fixed["status"], fixed["passed"], fixed["errors"]) == ("passed", 1, 0), fixed
    starter = await graded("s-starter", {})
    assert (starter["status"], starter["failed"], starter["errors"]) == ("failed", 1, 0), starter
    forged = await graded("s-forged", {"conftest.py": FORGED_ROOT_CONFTEST})
    assert (forged["status"], forged["failed"], forged["passed"]) == ("failed", 1, 0), forged
