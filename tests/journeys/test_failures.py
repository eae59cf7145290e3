"""A failure in a workspace is on the interviewer's pages with its reason, on the demo that
README command 1 starts.

The first thing a fresh deployment got wrong was silent: a kernel the workspace could not start
left no trace on the observe or replay page, and hidden checks that could not run read "0 of 0".
Here the operator makes two mistakes a real one could make, while sessions are under way:

- ``chmod`` on a published task's environment during a session: the candidate's first new
  notebook still runs (on the kernel the workspace started with itself, before the mistake),
  their second cannot start its kernel, and the interviewer sees ``kernel.failed`` with the
  workspace's own reason on the observe page and "Kernel could not start" on the replay page;
  after the end, the debrief says why the hidden checks could not run; ``pairlab doctor`` names
  the environment.
- ``chmod o+w`` on the environments folder: a candidate who presses Start gets no workspace,
  the observe page shows ``workspace.failed`` with the reason, and ``pairlab doctor`` fails.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from tests.journeys.conftest import (
    WAIT_MS,
    Product,
    browsing,
    end_session,
    hidden_checks_on_the_debrief,
    schedule_through_the_page,
    start_workspace,
    submit_scorecard,
    timeline_has,
)
from tests.journeys.test_admin import (
    ADMIN,
    INTERVIEWER,
    click_publish,
    import_through_the_page,
    served,
    task_files,
    unique_id,
)
from workspaces.environments import environment_key

pytestmark = [pytest.mark.journey, pytest.mark.integration, pytest.mark.browser,
              pytest.mark.timeout(1500)]
REQUIREMENT = "pluggy"
"""A requirement no other journey's task has: the environment broken here is this task's alone."""
BUILTIN_TASK = "scoring-service-validation"


async def test_a_kernel_that_cannot_start_is_on_the_timeline_with_its_reason(
        product: Product, browser: Browser, tmp_path: Path) -> None:
    task_id = unique_id("journey-kernel")
    async with browsing(browser, product, "failures-kernel") as people:
        admin = await people.as_user(ADMIN, "admin")
        with served(tmp_path, {task_id: task_files(task_id,
                                                   requirements=f'["{REQUIREMENT}"]')}) as urls:
            await import_through_the_page(admin, product, urls[task_id])
        await click_publish(admin)
        await expect(admin.locator("#rev-status")).to_have_text("published", timeout=WAIT_MS)

        observe = await people.as_user(INTERVIEWER, "observe")
        link, session_url = await schedule_and_observe(product, observe, task_id)

        lab_page = await people.anonymous("candidate")
        await start_workspace(lab_page, link)

        # The operator's mistake, while the session runs.
        env = product.data_dir / "envs" / environment_key([REQUIREMENT])
        subprocess.run(["chmod", "go-rwx", str(env / "bin")], check=True)

        # The candidate opens a new notebook from the launcher: it gets the kernel the
        # workspace started with itself (running before the mistake), so they open another,
        # whose kernel must start now.
        for opened in (1, 2):
            if opened == 1:
                await lab_page.keyboard.press("Control+Shift+L")
            else:  # the "+" beside the open notebook's tab: a new launcher
                await lab_page.keyboard.press("Escape")
                await lab_page.locator(".lm-TabBar-addButton:visible").first.click()
            card = lab_page.locator('.jp-LauncherCard[data-category="Notebook"]').first
            await expect(card).to_be_visible(timeout=WAIT_MS)
            await card.click()
            await expect(lab_page.locator(".jp-NotebookPanel")).to_have_count(
                opened, timeout=WAIT_MS)
            if opened == 1:
                await expect(lab_page.get_by_text("Python 3 (task) | Idle").first) \
                    .to_be_visible(timeout=WAIT_MS)

        failed = await timeline_has(observe, "kernel.failed", "Permission denied")
        await expect(failed).to_contain_text(str(env / "bin"))
        await expect(failed).to_have_class(re.compile(r"\bpl-bad\b"))

        replay = await people.another_tab(observe, "replay")
        await replay.goto(f"{session_url}/replay")
        await expect(replay.locator(".pl-marker", has_text="Kernel could not start").first) \
            .to_be_visible(timeout=WAIT_MS)

        done = product.cli("doctor", "--fast")
        lines = [line for line in done.stdout.splitlines()
                 if line.startswith(f"FAIL environment {env.name}:")]
        assert done.returncode == 1 and len(lines) == 1, done.stdout
        assert f"(tasks: {task_id})" in lines[0]

        # After the end, the hidden checks cannot run either: the debrief says why.
        await submit_scorecard(await people.another_tab(observe, "scorecard"), session_url,
                               "Could not run code: the workspace was broken.", "No signal.")
        await end_session(observe)
        line = await hidden_checks_on_the_debrief(
            await people.another_tab(observe, "debrief"), session_url)
        assert line.startswith("Could not run: "), line
        assert "left no per-check results" in line and "Permission denied" in line, line


async def test_a_session_that_cannot_start_is_on_the_timeline_with_its_reason(
        product: Product, browser: Browser) -> None:
    envs = product.data_dir / "envs"
    async with browsing(browser, product, "failures-start") as people:
        observe = await people.as_user(INTERVIEWER, "observe")
        link, _session_url = await schedule_and_observe(product, observe, BUILTIN_TASK)
        lab_page = await people.anonymous("candidate")
        await lab_page.goto(link)

        envs.chmod(envs.stat().st_mode | 0o002)  # the operator's chmod o+w
        try:
            await lab_page.click("#start")
            await lab_page.wait_for_load_state()
            assert "/lab" not in lab_page.url
            failed = await timeline_has(observe, "workspace.failed", "is not safe")
            await failed.locator("summary").click()  # the whole reason, in the event's details
            await expect(failed).to_contain_text("can be changed by another user")
            await expect(observe.locator("#pl-state")).to_have_text("failed", timeout=WAIT_MS)

            done = product.cli("doctor", "--fast")
            assert done.returncode == 1, done.stdout
            assert any(line.startswith("FAIL environments:") and str(envs) in line
                       for line in done.stdout.splitlines()), done.stdout
        finally:
            envs.chmod(envs.stat().st_mode & ~0o002)


async def schedule_and_observe(product: Product, page: Page, task_id: str) -> tuple[str, str]:
    """The interviewer schedules a session on the Sessions page and opens its observe page;
    returns the candidate link and the session's page."""
    link = await schedule_through_the_page(page, product, task_id, "Kim Failure")
    await page.click("#session-link")
    await page.wait_for_url(re.compile(r"/sessions/s_\w+$"), timeout=WAIT_MS)
    session_url = page.url
    await page.goto(f"{session_url}/observe")
    await expect(page.locator("#pl-stream")).to_have_text("live", timeout=WAIT_MS)
    return link, session_url
