"""The admin imports from the Tasks page what the operator's settings allow, in a real browser.

- On the demo as README command 1 starts it (git from 127.0.0.1 over plain HTTP allowed, as
  conftest's ``product`` sets), a local repository typed into the Tasks page's form is refused
  at once: the sentence names the setting that would allow it (``PAIRLAB_GIT_ALLOW_LOCAL=true``,
  ``git_allow_local``), the form comes back with what was typed, and no import is started.
- On a second demo started with ``PAIRLAB_GIT_ALLOW_LOCAL=true`` (the operator's choice), the
  same repository imports through the same form to a revision; the import page lists each step
  with its state. A local folder that is not a task fails, and the page says
  "failed: <the reason>", once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from tests.journeys.conftest import (
    WAIT_MS,
    Product,
    another_block,
    browsing,
    free_port,
    start_demo,
    stop_demo,
)
from tests.journeys.test_admin import (
    IMPORT_STEPS,
    task_files,
    title_of,
    unique_id,
    watch_import,
)
from tests.task_repos import commit_files

pytestmark = [pytest.mark.journey, pytest.mark.integration, pytest.mark.browser,
              pytest.mark.timeout(1500)]

ADMIN = "admin@example.com"
SETTING = "PAIRLAB_GIT_ALLOW_LOCAL=true (setting git_allow_local)"
RULES = '[anonymise.replace]\n"Halcyon" = "Contoso"\n'


@pytest.fixture(scope="module")
def local_demo(product: Product, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Product]:
    """A second ``pairlab demo``, as the first but with ``PAIRLAB_GIT_ALLOW_LOCAL=true``."""
    env = {**product.env, "PAIRLAB_PORT": str(free_port()),
           "PAIRLAB_WORKSPACE_PORT": str(free_port()), "PAIRLAB_GIT_ALLOW_LOCAL": "true"}
    demo = start_demo(tmp_path_factory.mktemp("journey-local"), another_block(env))
    try:
        yield demo
    finally:
        stop_demo(demo)


async def submit_import(page: Page, product: Product, **fields: str) -> None:
    """Type into the Tasks page's import form and press Import."""
    await page.goto(f"{product.app_url}/admin/tasks")
    for name, value in fields.items():
        await page.fill(f"#{name}", value)
    await page.click('form[action="/admin/tasks/imports"] button[type=submit]')
    await page.wait_for_load_state()


async def test_a_local_repository_is_refused_naming_the_setting(
    product: Product, browser: Browser, tmp_path: Path,
) -> None:
    task_id = unique_id("journey-local")
    repo = tmp_path / "repo"
    commit_files(repo, task_files(task_id))
    typed = {"url": str(repo), "ref": "main", "subdir": "", "rules": RULES}
    async with browsing(browser, product, "web-import-refused") as people:
        admin = await people.as_user(ADMIN, "admin")
        await admin.goto(f"{product.app_url}/admin/tasks")
        await expect(admin.locator("#import-sources")).to_contain_text("https:// from public hosts")
        await expect(admin.locator("#import-sources")).not_to_contain_text("local paths")
        response_statuses: list[int] = []
        admin.on("response", lambda r: response_statuses.append(r.status)
                 if r.url.endswith("/admin/tasks/imports") else None)
        await submit_import(admin, product, **typed)

        error = admin.locator("#import-form-error")
        await expect(error).to_have_text(
            f"local paths and file:// URLs are refused: the operator can set {SETTING}",
            timeout=WAIT_MS)
        assert response_statuses == [400], response_statuses
        for name, value in typed.items():  # the form kept what was typed
            await expect(admin.locator(f"#{name}")).to_have_value(value)
        # Nothing was started: the Tasks page lists no import of that folder.
        await admin.goto(f"{product.app_url}/admin/tasks")
        await expect(admin.locator("#imports")).not_to_contain_text(str(repo))


async def test_with_the_setting_a_local_repository_imports_through_the_page(
    local_demo: Product, browser: Browser, tmp_path: Path,
) -> None:
    task_id = unique_id("journey-local")
    repo = tmp_path / "repo"
    commit_files(repo, task_files(task_id))
    not_a_task = tmp_path / "not-a-task"
    commit_files(not_a_task, {"README.md": b"just notes\n"})
    async with browsing(browser, local_demo, "web-import-local") as people:
        admin = await people.as_user(ADMIN, "admin")
        await admin.goto(f"{local_demo.app_url}/admin/tasks")
        await expect(admin.locator("#import-sources")).to_contain_text(
            "local paths, file:// URLs")

        await submit_import(admin, local_demo, url=str(repo), ref="main")
        await admin.wait_for_url(re.compile(r"/admin/tasks/imports/imp_\w+$"), timeout=WAIT_MS)
        seen = await watch_import(admin)
        assert seen[-1] == "Status: succeeded — done", seen
        steps = admin.locator("#import-steps li")
        await expect(steps).to_have_count(len(IMPORT_STEPS) - 2)  # not "queued", not "done"
        states = await steps.evaluate_all("els => els.map(e => e.dataset.state)")
        assert set(states) <= {"done", "skipped"} and states[0] == "done", states
        await admin.click("#revision-link")
        await admin.wait_for_url(re.compile(rf"/admin/tasks/revisions/{task_id}-r1$"),
                                 timeout=WAIT_MS)
        await expect(admin.locator("h1")).to_contain_text(title_of(task_id))
        await expect(admin.locator("#rev-status")).to_have_text("review")

        # A folder that is not a task: the page says why, once, and where it stopped.
        await submit_import(admin, local_demo, url=f"file://{not_a_task}")
        await admin.wait_for_url(re.compile(r"/admin/tasks/imports/imp_\w+$"), timeout=WAIT_MS)
        seen = await watch_import(admin)
        status = seen[-1]
        assert status.startswith("Status: failed: ") and "pairlab-task.toml" in status, seen
        assert "— failed" not in status
        reason = status.removeprefix("Status: failed: ")
        assert (await admin.locator("main").inner_text()).count(reason) == 1
        failed = admin.locator('#import-steps li[data-state="failed"]')
        await expect(failed).to_contain_text("reading the manifest")
        await expect(admin.locator('#import-steps li[data-state="not reached"]').first
                     ).to_be_visible()
        print("import pages showed:", *seen, sep="\n  ")
