"""The admin's "Possible identifiers" in headless Chromium, on the real app on loopback ports,
importing from a real loopback git server: one click on a hint opens the import form prefilled
with the source and the merged rules; a malformed rules text is refused with its reason and
kept for fixing; submitting imports again and the new revision no longer has that identifier."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from playwright.async_api import Locator, Page, expect

from server.app import create_app
from server.http.keys import SETTINGS
from server.settings import Settings
from tests.browser import Browsing, login_in_browser
from tests.conftest import MakeSettings, create_user, login_admin, query
from tests.harness import Loopback
from tests.task_repos import TASK_ID, Client, make_repo, publish_bare, tiny_task, tree_files
from tests.tasks.githttp import serve_git

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.integration,
              pytest.mark.timeout(600)]

ADMIN = "admin@example.com"
WAIT_MS = 180_000
NOTES = ("Raw orders sit in /home/kwame/datasets/orders.csv.\n"
         "Questions: tomas.berg [at] lumenfold [dot] com.\n")
ADMINS_RULES = '# the admin\'s own\n[anonymise.replace]\n"Lumenfold" = "Northwind"\n'
HOME_RULE = '[anonymise.replace] "kwame" = "user"'


def hint_row(page: Page, value: str) -> Locator:
    return page.locator("#identifiers tbody tr").filter(
        has=page.locator("code.hint-value", has_text=value))


async def wait_for_revision(page: Page) -> str:
    """On the import page (it refreshes itself): the new revision's id, once the import ends."""
    await page.wait_for_url(re.compile(r"/admin/tasks/imports/imp_\w+$"), timeout=WAIT_MS)
    link = page.locator("#revision-link")
    await expect(link).to_be_visible(timeout=WAIT_MS)
    await expect(page.locator("#import-status")).to_have_attribute("data-status", "succeeded")
    return (await link.inner_text()).strip()


def revision_text(settings: Settings, rev_id: str) -> str:
    """Everything of the revision a person can be given (the report and diff hold originals)."""
    files = {path: data for path, data in
             tree_files(settings.data_dir / "tasks" / TASK_ID / rev_id).items()
             if "/.git/" not in path and path not in ("report.json", "diff.json")}
    return "\n".join([*files, *(data.decode() for data in files.values())])


async def test_one_click_adds_a_hint_to_the_rules_and_the_new_revision_lacks_it(
    make_settings: MakeSettings, envs_dir: Path, tmp_path: Path, browsing: Browsing
) -> None:
    served = tmp_path / "served"
    served.mkdir()
    make_repo(tmp_path / "work" / "orders", tiny_task(extra={"NOTES.md": NOTES.encode()}))
    publish_bare(tmp_path / "work" / "orders", served, "orders")
    ports = Loopback()
    settings = make_settings(environments_dir=str(envs_dir), git_allow_http=True,
                             git_allowed_hosts="127.0.0.1", import_timeout_seconds=60.0,
                             check_timeout_seconds=120.0, warm_pool_size=0, **ports.fields)
    create_user(settings, ADMIN, "admin")
    page = browsing.page
    with serve_git(served) as (git_base, _pid):
        async with ports.serve(create_app(settings)):
            base = settings.app_url
            source = f"{git_base}/orders.git"
            await login_in_browser(page, base, "/admin/tasks", ADMIN)
            await page.fill("#url", source)
            await page.fill("#rules", ADMINS_RULES)
            await page.click("#import-form button[type=submit]")
            first = await wait_for_revision(page)
            await page.click("#revision-link")

            # The review page lists the home folder's user with its rule.
            home = hint_row(page, "/home/kwame")
            await expect(home).to_have_count(1)
            await expect(home.locator(".hint-rule")).to_have_text(HOME_RULE)
            await expect(home).to_contain_text("NOTES.md:1")
            await expect(hint_row(page, "tomas.berg@northwind.com")).to_have_count(1)

            # "Add all selected": both hints' rules in one form.
            await home.locator("input[type=checkbox]").check()
            await hint_row(page, "tomas.berg").locator("input[type=checkbox]").check()
            await page.click("#add-selected")
            await page.wait_for_url(re.compile(rf"/admin/tasks/revisions/{first}/reimport\?"))
            both = tomllib.loads(await page.input_value("#rules"))["anonymise"]
            assert both["replace"] == {"Lumenfold": "Northwind", "kwame": "user"}
            assert list(both["people"]) == ["Tomas Berg"]
            await page.go_back()

            # One click on the hint's own button: the form, prefilled, the admin's text kept.
            await home.locator("a.add-hint").click()
            await page.wait_for_url(re.compile(rf"/admin/tasks/revisions/{first}/reimport\?"))
            assert await page.input_value("#url") == source
            assert await page.input_value("#ref") == ""
            merged = await page.input_value("#rules")
            assert merged.startswith(ADMINS_RULES.rstrip("\n"))
            assert tomllib.loads(merged) == {"anonymise": {"replace": {
                "Lumenfold": "Northwind", "kwame": "user"}}}
            await expect(page.locator("#added-rules")).to_have_text(HOME_RULE)

            # Bad input: a malformed rules text is refused with why, the form kept as typed.
            broken = merged + '"Quintcorp = "Acme"\n'
            await page.fill("#rules", broken)
            await page.click("#import-form button[type=submit]")
            await expect(page.locator("#import-form-error")).to_contain_text(
                "the rules are not valid TOML")
            assert await page.input_value("#rules") == broken
            assert await page.input_value("#url") == source

            await page.fill("#rules", merged)
            await page.click("#import-form button[type=submit]")
            second = await wait_for_revision(page)
            assert second != first
            await page.click("#revision-link")
            await expect(page.locator("#identifiers")).to_be_visible()
            await expect(hint_row(page, "/home/kwame")).to_have_count(0)
            await expect(hint_row(page, "tomas.berg@northwind.com")).to_have_count(1)

    assert "kwame" in revision_text(settings, first)
    again = revision_text(settings, second)
    assert "kwame" not in again
    assert "/home/user/datasets/orders.csv" in again
    assert browsing.page_errors == []
    assert browsing.csp_violations() == []


async def test_malformed_rules_are_refused_by_the_api_before_any_fetch(
    task_client: Client,
) -> None:
    csrf = await login_admin(task_client)
    body = {"url": "https://git.invalid/team/task.git", "rules": '[anonymise.replace]\n"a = "b"\n'}
    response = await task_client.post("/api/v1/tasks/imports", json=body,
                                      headers={"X-CSRF-Token": csrf})
    assert response.status == 422
    error = (await response.json())["error"]
    assert error["code"] == "invalid_rules"
    assert "the rules are not valid TOML" in error["message"] and "line 2" in error["message"]
    rows = query(task_client.app[SETTINGS], "SELECT COUNT(*) FROM task_imports")
    assert rows == [(0,)]
