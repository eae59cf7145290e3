"""A failure in the workspace is on the interviewer's timeline with its reason, on the demo that
README command 1 starts.

The first thing a fresh deployment got wrong was silent: a kernel the workspace could not start
left no trace on the observe or replay page. Here an admin publishes a task (an environment of
its own), the operator then breaks that environment by mistake (``chmod`` on its ``bin``), a
candidate starts a session and opens a notebook: JupyterLab cannot start the kernel, and the
interviewer sees ``kernel.failed`` with the workspace's own reason on the observe page, and a
"Kernel could not start" marker on the replay page. ``pairlab doctor`` names the environment.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from tests.journeys.conftest import WAIT_MS, Product, logged_in, shot
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


async def test_a_kernel_that_cannot_start_is_on_the_timeline_with_its_reason(
        product: Product, browser: Browser, tmp_path: Path) -> None:
    task_id = unique_id("journey-kernel")
    contexts: list[BrowserContext] = []
    pages: dict[str, Page] = {}
    try:
        with served(tmp_path, {task_id: task_files(task_id,
                                                   requirements=f'["{REQUIREMENT}"]')}) as urls:
            admin_ctx, admin = await logged_in(browser, product, ADMIN)
            contexts.append(admin_ctx)
            await import_through_the_page(admin, product, urls[task_id])
        await click_publish(admin)
        await expect(admin.locator("#rev-status")).to_have_text("published", timeout=WAIT_MS)

        interviewer_ctx, sessions = await logged_in(browser, product, INTERVIEWER)
        contexts.append(interviewer_ctx)
        await sessions.goto(f"{product.app_url}/sessions")
        await sessions.select_option("#task", task_id)
        await sessions.fill("#candidate_name", "Kim Failure")
        await sessions.click('form[action="/sessions"] button[type=submit]')
        link = (await sessions.locator("#candidate-link").inner_text()).strip()
        await sessions.click("#session-link")
        await sessions.click("#observe-link")
        await sessions.wait_for_url(re.compile(r"/sessions/s_\w+/observe$"), timeout=WAIT_MS)
        observe = sessions
        pages["observe"] = observe

        candidate_ctx = await browser.new_context(viewport={"width": 1400, "height": 900})
        contexts.append(candidate_ctx)
        lab_page = await candidate_ctx.new_page()
        pages["candidate"] = lab_page
        await lab_page.goto(link)
        await lab_page.click("#start")
        await lab_page.wait_for_url("**/lab**", timeout=WAIT_MS, wait_until="commit")
        await expect(lab_page.locator("#jp-main-dock-panel")).to_be_visible(timeout=WAIT_MS)

        # The operator's mistake, while the session runs.
        env = product.data_dir / "envs" / environment_key([REQUIREMENT])
        subprocess.run(["chmod", "go-rwx", str(env / "bin")], check=True)

        # The candidate opens a new notebook from the launcher.
        await lab_page.keyboard.press("Control+Shift+L")
        card = lab_page.locator('.jp-LauncherCard[data-category="Notebook"]').first
        await expect(card).to_be_visible(timeout=WAIT_MS)
        await card.click()

        failed = observe.locator('#pl-timeline li[data-kind="kernel.failed"]')
        await expect(failed.first).to_be_visible(timeout=WAIT_MS)
        await expect(failed.first).to_contain_text("Permission denied")
        await expect(failed.first).to_contain_text(str(env / "bin"))
        await expect(failed.first).to_have_class(re.compile(r"\bpl-bad\b"))

        replay = await interviewer_ctx.new_page()
        pages["replay"] = replay
        await replay.goto(observe.url.replace("/observe", "/replay"))
        await expect(replay.locator(".pl-marker", has_text="Kernel could not start").first) \
            .to_be_visible(timeout=WAIT_MS)

        done = product.cli("doctor", "--fast")
        lines = [line for line in done.stdout.splitlines()
                 if line.startswith(f"FAIL environment {env.name}:")]
        assert done.returncode == 1 and len(lines) == 1, done.stdout
        assert f"(tasks: {task_id})" in lines[0]
    except BaseException:
        for name, page in pages.items():
            await shot(page, f"failures-{name}")
        raise
    finally:
        for context in contexts:
            await context.close()
