"""After each snapshot the task's visible tests run in a fresh sandbox on a copy, and the
timeline gets a ``tests.run`` event, so reviewers see when the tests first went green."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import query
from tests.server.recording.conftest import RecFactory, kinds
from workspaces.grading.hidden import visible_target
from workspaces.recording import events as E

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

TEST_FILE = '''\
from pathlib import Path


def test_main_was_fixed():
    assert "fixed" in Path("main.py").read_text()
'''


async def test_tests_run_after_snapshots_and_go_green(make_rec: RecFactory) -> None:
    rec = await make_rec(continuous_checks=True)
    sid, _ = await rec.start()
    await rec.call(sid, "PUT", "api/contents/test_fix.py", {"content": TEST_FILE})
    found = await rec.wait_for(sid, lambda f: bool(kinds(f, E.TESTS_RUN)), within=180)
    first = kinds(found, E.TESTS_RUN)[0]
    assert first["actor"] == "system"
    assert first["payload"]["status"] == "failed" and first["payload"]["failed"] == 1
    assert first["payload"]["command"] == "python -m pytest -q"

    await rec.call(sid, "PUT", "api/contents/main.py", {"content": "print('fixed')\n"})
    found = await rec.wait_for(
        sid, lambda f: any(e["payload"]["status"] == "passed" for e in kinds(f, E.TESTS_RUN)),
        within=180)
    runs = kinds(found, E.TESTS_RUN)
    green = next(e for e in runs if e["payload"]["status"] == "passed")
    assert green["payload"]["passed"] == 1 and green["payload"]["failed"] == 0
    snapshots = {e["payload"]["commit"] for e in kinds(found, E.SNAPSHOT)}
    assert {e["payload"]["commit"] for e in runs} <= snapshots  # each run names its snapshot
    # the candidate's workspace itself was never touched by the run
    (root,) = query(rec.settings, "SELECT root FROM workspaces WHERE session_id = ?", (sid,))[0]
    names = {p.name for p in Path(root).rglob("*")}
    assert names == {"main.py", "notes.md", "test_fix.py", ".git"} | {
        p.name for p in (Path(root) / ".git").rglob("*")}


def test_visible_target() -> None:
    assert visible_target("python -m pytest -q tests") == "tests"
    assert visible_target("python -m pytest -q") == "."
    assert visible_target("python3 -m pytest tests/unit/") == "tests/unit"
    assert visible_target("make test") is None
    assert visible_target("python -m pytest ../outside") is None
    assert visible_target("python -m pytest a b") is None
