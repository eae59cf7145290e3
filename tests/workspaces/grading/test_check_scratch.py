"""A session's check run cancelled while its scratch folder is being made (pairlab shutting
down) still releases that folder: the tmpfs mount and its release are one thread call
(``CheckSandbox.in_scratch``). Before, the coroutine never got the folder it was cancelled
waiting for, and the mount stayed (a test run left them under /tmp until the next start's
sweep). Shutting down waits for that thread (``wait_idle``): a data dir removed while it still
ran kept an empty ``checks`` folder."""

from __future__ import annotations

import asyncio
import sys
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from tasks.revisions import Revision
from tasks.store import TaskStore
from workspaces.grading import hidden
from workspaces.recording.history import History
from workspaces.sandbox.limits import Limits
from workspaces.sandbox.run import CHECK_LIMITS, CheckSandbox


class SlowScratch(CheckSandbox):
    """A sandbox whose ``scratch`` is still mounting when the test cancels the check."""

    def __init__(self, root: Path) -> None:
        super().__init__(212_000, root, root / "checks")
        self.root = root
        self.entered = threading.Event()
        self.go_on = threading.Event()
        self.released: list[Path] = []
        self.done = threading.Event()

    def scratch(self, prefix: str, limits: Limits = CHECK_LIMITS) -> Path:
        self.entered.set()
        assert self.go_on.wait(60)
        folder = self.root / prefix
        folder.mkdir()
        return folder

    def release(self, folder: Path) -> None:
        self.released.append(folder)
        self.done.set()


@pytest.mark.parametrize("which", ["hidden checks", "visible tests"])
async def test_a_check_cancelled_while_its_folder_is_made_still_releases_it(
        which: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "hidden").mkdir()
    store = SimpleNamespace(hidden=lambda task, rev: tmp_path / "hidden",
                            report=lambda task, rev: {}, tree=lambda task, rev: tmp_path)
    rev = SimpleNamespace(task_id="t", id="t-r1", requirements=(),
                          visible_check="python -m pytest -q tests")
    monkeypatch.setattr(hidden, "ensure_environment", lambda root, wanted: Path(sys.executable))
    def run_checks(plan: Any, work: Path, fill: Any, sandbox: Any) -> dict[str, Any]:
        return {"status": "passed", "passed": 1, "failed": 0, "errors": 0, "skipped": 0,
                "total": 1, "checks": []}

    monkeypatch.setattr(hidden, "run_checks", run_checks)
    sandbox = SlowScratch(tmp_path)
    common: dict[str, Any] = {
        "timeout_s": 30.0, "store": cast(TaskStore, store), "envs_root": tmp_path,
        "history": cast(History, SimpleNamespace()), "sandbox": sandbox}
    revision = cast(Revision, rev)
    check = asyncio.create_task(
        hidden.check_session("s_1", revision, root=None, **common) if which == "hidden checks"
        else hidden.visible_tests("s_1", revision, "abc123", **common))
    assert await asyncio.to_thread(sandbox.entered.wait, 60)  # the folder is being mounted
    check.cancel()  # pairlab shuts down
    assert not await asyncio.to_thread(sandbox.wait_idle, 0.2)  # its thread still runs
    sandbox.go_on.set()
    with pytest.raises(asyncio.CancelledError):
        await check
    assert await asyncio.to_thread(sandbox.wait_idle, 60)  # what shutting down waits for
    assert sandbox.done.is_set(), "the folder was never released"
    assert sandbox.released == [tmp_path / ("s_1" if which == "hidden checks" else "s_1-tests")]
