"""The admin's import form and API: which sources they take (the ``git_*`` settings), what a
refusal says (the setting that would allow it, the form again as typed, no import started),
and the import page's steps and failure reason. Real app, real SQLite, real local git repos;
the imports that run go through the real sandbox."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient

from server.app import create_app
from server.settings import Settings
from tasks.import_steps import IMPORT_STEPS
from tests.conftest import MakeSettings, form_csrf_token, login_admin, query
from tests.task_repos import (
    TASK_ID,
    Client,
    commit_files,
    make_repo,
    staging_leftovers,
    wait_for_import,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

LOCAL_SETTING = "PAIRLAB_GIT_ALLOW_LOCAL=true (setting git_allow_local)"
RULES = '[anonymise.replace]\n"Halcyon" = "Contoso"\n'


async def submit_form(client: Client, **fields: str) -> tuple[int, str, str]:
    """The Tasks page's import form, submitted as a browser does: status, final URL, body."""
    page = await client.get("/admin/tasks")
    data = {"csrf_token": form_csrf_token(await page.text()), "url": "", "ref": "",
            "subdir": "", "rules": "", **fields}
    response = await client.post("/admin/tasks/imports", data=data)
    return response.status, str(response.url.path), await response.text()


def form_values(body: str) -> dict[str, str]:
    """What the re-rendered form holds, as a browser would read it."""
    values = {name: html.unescape(m.group(1)) for name in ("url", "ref", "subdir")
              if (m := re.search(rf'<input id="{name}" name="{name}"[^>]* value="([^"]*)"', body))}
    if m := re.search(r'<textarea id="rules"[^>]*>(.*?)</textarea>', body, re.S):
        values["rules"] = html.unescape(m.group(1))
    return values


def step_states_on(body: str) -> dict[str, str]:
    """The import page's list of steps: step -> state, in the page's order."""
    found = re.findall(r'<li data-state="([^"]+)"><span class="step-name">([^<]+)<', body)
    return {html.unescape(step): state for state, step in found}


def import_rows(settings: Settings) -> list[tuple[Any, ...]]:
    return query(settings, "SELECT id, status FROM task_imports")


async def test_a_local_repository_is_refused_at_once_naming_the_setting(
    task_client: Client, task_settings: Settings, tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path / "local")
    await login_admin(task_client)
    typed = {"url": str(repo), "ref": "main", "subdir": "tasks/<b>one</b>", "rules": RULES}
    status, path, body = await submit_form(task_client, **typed)
    assert (status, path) == (400, "/admin/tasks/imports")
    error = re.search(r'id="import-form-error">([^<]*)<', body)
    assert error is not None, body
    assert html.unescape(error.group(1)) == (
        f"local paths and file:// URLs are refused: the operator can set {LOCAL_SETTING}")
    assert form_values(body) == typed  # as typed, escaped
    assert "<b>one</b>" not in body
    assert import_rows(task_settings) == []  # nothing was started

    response = await task_client.post(
        "/api/v1/tasks/imports", json={"url": f"file://{repo}"},
        headers={"X-CSRF-Token": form_csrf_token(body)})
    assert response.status == 400
    error_json = (await response.json())["error"]
    assert error_json["code"] == "invalid_source" and LOCAL_SETTING in error_json["message"]
    assert import_rows(task_settings) == []
    assert staging_leftovers(task_settings) == []


async def test_attacks_on_the_form_are_refused_and_never_reach_git(
    aiohttp_client: AiohttpClient, make_settings: MakeSettings, envs_dir: Path, tmp_path: Path,
) -> None:
    sentinel = tmp_path / "pwned"
    (tmp_path / "elsewhere").symlink_to("/etc")
    # Each attack with the setting off, and those that stay refused with it on.
    off = ["file:///etc", "/etc", "../../../../etc", str(tmp_path / "elsewhere"),
           f"file://{tmp_path}/elsewhere"]
    always = [f"ext::sh -c touch% {sentinel}", f"ext::touch {sentinel}", "ext::sh", "fd::17",
              "fd::0,1", "https://admin:hunter2@127.0.0.1/x.git", "ssh://127.0.0.1/x.git",
              "git@127.0.0.1:x.git", "file::/etc", "https://169.254.169.254/latest/meta-data"]
    for allow_local, urls in ((False, off + always), (True, always)):
        settings = make_settings(environments_dir=str(envs_dir), git_allow_local=allow_local,
                                 data_dir=tmp_path / f"data-{allow_local}")
        client = await aiohttp_client(create_app(settings))
        await login_admin(client)
        for url in urls:
            status, _, body = await submit_form(client, url=url)
            assert status == 400, (allow_local, url)
            assert 'id="import-form-error"' in body and "hunter2" not in body.split(
                'id="url"')[0], url
            if url in off:
                assert LOCAL_SETTING in body
        assert import_rows(settings) == []
    assert not sentinel.exists()


async def test_each_remote_refusal_names_its_setting(
    aiohttp_client: AiohttpClient, make_settings: MakeSettings, envs_dir: Path,
) -> None:
    settings = make_settings(environments_dir=str(envs_dir))
    client = await aiohttp_client(create_app(settings))
    await login_admin(client)
    said = {}
    for url in ("http://127.0.0.1:9/x.git", "https://127.0.0.1:9/x.git"):
        status, _, body = await submit_form(client, url=url)
        assert status == 400
        match = re.search(r'id="import-form-error">([^<]*)<', body)
        assert match is not None
        said[url] = html.unescape(match.group(1))
    assert "PAIRLAB_GIT_ALLOW_HTTP=true (setting git_allow_http)" in said[
        "http://127.0.0.1:9/x.git"]
    assert said["https://127.0.0.1:9/x.git"] == (
        "the host '127.0.0.1' resolves to a non-public address (127.0.0.1): the operator can add "
        "'127.0.0.1' to PAIRLAB_GIT_ALLOWED_HOSTS (setting git_allowed_hosts, comma-separated), "
        f"or set {LOCAL_SETTING}")
    assert "allow_http" not in said["http://127.0.0.1:9/x.git"].replace("git_allow_http", "")
    assert import_rows(settings) == []


async def test_with_git_allow_local_a_local_repository_imports_through_the_form(
    aiohttp_client: AiohttpClient, make_settings: MakeSettings, envs_dir: Path, tmp_path: Path,
) -> None:
    settings = make_settings(environments_dir=str(envs_dir), git_allow_local=True,
                             check_timeout_seconds=120.0)
    client = await aiohttp_client(create_app(settings))
    await login_admin(client)
    tasks_page = await (await client.get("/admin/tasks")).text()
    assert "local paths, file:// URLs" in tasks_page  # the form says what it takes

    good = make_repo(tmp_path / "good")
    status, path, body = await submit_form(client, url=str(good), ref="main")
    assert status == 200 and re.fullmatch(r"/admin/tasks/imports/imp_\w+", path), (status, body)
    row = await wait_for_import(client, path.rsplit("/", 1)[1])
    assert (row["status"], row["step"], row["revision_id"]) == ("succeeded", "done",
                                                              f"{TASK_ID}-r1"), row
    assert row["steps"][0] == IMPORT_STEPS[0] and row["steps"][-1] == IMPORT_STEPS[-1], row
    body = await (await client.get(path)).text()
    assert "Status: <strong>succeeded</strong> — done" in body
    states = step_states_on(body)
    assert list(states) == list(IMPORT_STEPS)
    assert {states[s] for s in row["steps"]} == {"done"}
    assert set(states.values()) <= {"done", "skipped"}, states

    # A repository without a manifest fails in "reading the manifest", said once on the page.
    bare = tmp_path / "no-manifest"
    commit_files(bare, {"README.md": b"nothing here\n"})
    status, path, _ = await submit_form(client, url=f"file://{bare}")
    assert status == 200, path
    row = await wait_for_import(client, path.rsplit("/", 1)[1])
    assert (row["status"], row["step"]) == ("failed", "reading the manifest"), row
    body = await (await client.get(path)).text()
    status_line = re.search(r'<p id="import-status"[^>]*>(.*?)</p>', body, re.S)
    assert status_line is not None
    text = html.unescape(re.sub(r"<[^>]+>", "", status_line.group(1)))
    assert text == f"Status: failed: {row['error']}" and "pairlab-task.toml" in text
    assert body.count(html.escape(row["error"], quote=False)) == 1
    assert "failed — failed" not in body
    states = step_states_on(body)
    assert states["validating the source"] == states["fetching one snapshot"] == "done"
    assert states["reading the manifest"] == "failed"
    assert states["writing the report"] == "not reached"
    assert staging_leftovers(settings) == []
