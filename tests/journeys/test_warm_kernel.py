"""The first cell runs on a kernel that was already running, on the demo that README command 1
starts (its default warm pool of one workspace per task environment).

An interviewer schedules a session. Once the pool holds a warm workspace, the candidate opens
the link and presses Start: the warm workspace is claimed, JupyterLab opens, the candidate opens
the task's notebook and runs its first cells. The kernel that ran them is the one the warm
workspace started with its server, before Start was pressed (its process is older than the
click, and it is the workspace's only kernel), and it runs in the notebook's folder. The pool is
refilled only after that first cell ran (or after the lifecycle's wait without one): the next
warm workspace's sandbox was started after the session's ``cell.executed`` event. Nothing here
is set up for the test: the demo's own pool, read from its database and ``/proc`` as an operator
would.
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import time
from datetime import datetime
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from tests.journeys.conftest import (
    WAIT_MS,
    Product,
    browsing,
    db_rows,
    observe_scheduled,
    schedule_through_the_page,
    start_workspace,
)
from tests.journeys.test_interview import run_first_cells
from tests.workspaces.conftest import kernel_pids
from workspaces.lifecycle import REFILL_AFTER_S

pytestmark = [pytest.mark.journey, pytest.mark.integration, pytest.mark.browser,
              pytest.mark.timeout(900)]

INTERVIEWER = "interviewer@example.com"
TASK = "daily-features-bug"


def started_at(pid: int) -> float:
    """When process ``pid`` started, in seconds since the epoch: ``/proc``'s start time is in
    clock ticks since boot (``CLOCK_BOOTTIME``), put on the wall clock by the two clocks read
    now (``btime`` in ``/proc/stat`` is whole seconds: up to 1 s off)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[19])  # field 22 of the whole line: starttime
    booted = time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)
    return booted + ticks / os.sysconf("SC_CLK_TCK")


async def warm_workspaces(product: Product) -> list[sqlite3.Row]:
    """The demo's warm workspaces, once there is one (the pool may be refilling)."""
    async with asyncio.timeout(180):
        while not (warm := db_rows(product, "SELECT * FROM workspaces WHERE state = 'warm'")):
            await asyncio.sleep(0.5)
    return warm


async def test_the_first_cell_runs_on_the_kernel_the_warm_workspace_started_with(
        product: Product, browser: Browser) -> None:
    async with browsing(browser, product, "warm-kernel") as people:
        observe = await people.as_user(INTERVIEWER, "observe")
        link = await schedule_through_the_page(observe, product, TASK, "Kay Nell")
        session_url = await observe_scheduled(observe)
        session_id = session_url.rsplit("/", 1)[1]

        before = {row["id"] for row in await warm_workspaces(product)}
        lab_page = await people.anonymous("candidate")
        pressed = time.time()
        lab = await start_workspace(lab_page, link)
        [claimed] = db_rows(product, "SELECT * FROM workspaces WHERE session_id = ?", session_id)
        assert claimed["id"] in before, "a warm workspace was claimed, not a new one started"

        await run_first_cells(lab_page, lab)
        kernels = await asyncio.to_thread(kernel_pids, claimed["uid"])
        assert len(kernels) == 1, f"one kernel in the workspace, not {len(kernels)}"
        assert started_at(kernels[0]) < pressed, "the kernel was running before Start"
        await lab_page.locator(".jp-Notebook .jp-CodeCell").nth(2).locator(
            ".jp-InputArea-editor").click()
        await lab_page.keyboard.press("Escape")
        await lab_page.keyboard.press("b")  # a new cell below, in command mode
        await lab_page.keyboard.press("Enter")
        await lab_page.keyboard.type("import os; print('cwd=' + os.getcwd())")
        await lab_page.keyboard.press("Shift+Enter")
        at_root = re.compile(r"^\s*cwd=/workspace\s*$")  # the folder itself, not one below
        await expect(lab_page.locator(".jp-OutputArea-output", has_text=at_root)
                     .first).to_be_visible(timeout=WAIT_MS)

        # The refill started after the first cell ran (or after the wait without one).
        [first_cell] = db_rows(product, "SELECT min(at) AS at FROM events WHERE session_id = ? "
                                     "AND kind = 'cell.executed'", session_id)
        ran = datetime.fromisoformat(first_cell["at"]).timestamp()
        async with asyncio.timeout(180):
            while not (new := [row for row in db_rows(
                    product, "SELECT * FROM workspaces WHERE state = 'warm'")
                    if row["id"] not in before]):
                await asyncio.sleep(0.5)
        refill_began = started_at(new[0]["pid"])
        assert refill_began >= min(ran, pressed + REFILL_AFTER_S) - 0.5, (
            f"the refill began {ran - refill_began:.1f} s before the first cell ran")
