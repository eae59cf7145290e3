"""Imports through the JSON API and the admin pages, from a real loopback smart-HTTP git server.

Each import runs for real in the background (fetch, anonymise, post-scan, checks); the tests
poll the import with a deadline, then read the report, the diff and the pages, and publish.
After every import: nothing is left in the staging folder and no git process of ours is alive.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient

from server.app import create_app
from server.settings import Settings
from tests.conftest import (
    MakeSettings,
    create_token,
    create_user,
    form_csrf_token,
    login,
    login_admin,
    query,
)
from tests.task_repos import (
    COMPANY,
    FAKE_AWS_KEY,
    FAKE_PASSWORD,
    TASK_ID,
    Client,
    make_repo,
    notebook,
    publish_bare,
    staging_leftovers,
    tiny_task,
    tree_files,
    wait_for_import,
)
from tests.tasks.githttp import serve_git

# The first test to need the shared environments folder builds it (about a minute).
# slow: whole imports from a git server, checks in the sandbox
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

ADMIN = "admin@example.com"
Check = Callable[[int | None], None]


def serve_repo(tmp_path: Path, served: Path, name: str, files: dict[str, bytes] | None = None,
               **kwargs: Any) -> str:
    make_repo(tmp_path / "work" / name, files, **kwargs)
    publish_bare(tmp_path / "work" / name, served, name)
    return f"{name}.git"


async def admin_csrf(client: Client, settings: Settings) -> dict[str, str]:
    return {"X-CSRF-Token": await login_admin(client, ADMIN)}


async def start_import(client: Client, headers: dict[str, str], **body: str) -> str:
    response = await client.post("/api/v1/tasks/imports", json=body, headers=headers)
    assert response.status == 202, await response.text()
    data = await response.json()
    assert data["status_url"] == f"/api/v1/tasks/imports/{data['import_id']}"
    return str(data["import_id"])


async def import_and_wait(client: Client, headers: dict[str, str], **body: str) -> dict[str, Any]:
    return await wait_for_import(client, await start_import(client, headers, **body), headers)


async def get_json(client: Client, path: str, headers: dict[str, str] | None = None,
                   status: int = 200) -> Any:
    response = await client.get(path, headers=headers)
    assert response.status == status, await response.text()
    return await response.json()


async def page(client: Client, path: str) -> str:
    response = await client.get(path)
    assert response.status == 200, path
    assert response.content_type == "text/html"
    return await response.text()


async def test_http_import_review_and_publish_with_a_session(
    task_client: Client, task_settings: Settings, tmp_path: Path, served: Path,
    git_server: tuple[str, int], no_stray_git: Check,
) -> None:
    base, server_pid = git_server
    extra = {
        "notes.md": b"Halcyon is the codename of the old pipeline.\n",
        "explore.ipynb": notebook(source=f"print(os.environ['{COMPANY.upper()}_KEY'])\n",
                                  output=f"{FAKE_AWS_KEY} {FAKE_PASSWORD}"),
    }
    name = serve_repo(tmp_path, served, "tiny", tiny_task(extra=extra))
    headers = await admin_csrf(task_client, task_settings)
    rules = '[anonymise.replace]\n"Halcyon" = "Contoso"\n'
    import_id = await start_import(
        task_client, headers, url=f"{base}/{name}", ref="main", rules=rules
    )
    row = await wait_for_import(task_client, import_id)
    assert (row["status"], row["step"], row["error"]) == ("succeeded", "done", None), row
    rev_id = row["revision_id"]
    assert rev_id == f"{TASK_ID}-r1"
    no_stray_git(server_pid)
    assert staging_leftovers(task_settings) == []

    body = await get_json(task_client, f"/api/v1/task-revisions/{rev_id}")
    revision, report = body["revision"], body["report"]
    assert revision["status"] == "review" and revision["blockers"] == []
    assert revision["source"]["url"] == f"{base}/{name}" and revision["source"]["ref"] == "main"
    assert report["post_scan"]["clean"] and report["blockers"] == []
    assert report["checks"]["visible"]["passed"]
    assert report["checks"]["hidden_on_solution"]["passed"]
    assert not report["checks"]["hidden_on_starter"]["passed"]
    terms = {r["before"] for r in report["anonymisation"]["replacements"] if r["rule"] == "term"}
    assert {"Halcyon", COMPANY} <= terms, terms

    diff = await get_json(task_client, f"/api/v1/task-revisions/{rev_id}/diff")
    raw = json.dumps(body) + json.dumps(diff)
    for secret in (FAKE_AWS_KEY, FAKE_PASSWORD):
        assert secret not in raw
    config = next(f for f in diff["files"] if f["path"] == "config/service.toml")
    assert "[secret masked]" in [row[1] for row in config["rows"]]
    assert next(f for f in diff["files"] if f["path"] == "deploy/prod.env")["status"] == "dropped"
    explore = next(f for f in diff["files"] if f["path"] == "explore.ipynb")
    assert "[secret masked]" in [row[1] for row in explore["rows"]]  # the removed output

    for path in ("/admin/tasks", f"/admin/tasks/imports/{import_id}",
                 f"/admin/tasks/revisions/{rev_id}"):
        html = await page(task_client, path)
        assert rev_id in html
        assert "<script>alert" not in html
        assert FAKE_AWS_KEY not in html and FAKE_PASSWORD not in html
    assert "&lt;script&gt;alert(" in html  # the README line, escaped, in the side-by-side diff

    refused = await task_client.post(f"/api/v1/task-revisions/{rev_id}/publish")
    assert refused.status == 403  # a cookie without the CSRF token
    response = await task_client.post(f"/api/v1/task-revisions/{rev_id}/publish",
                                      headers=headers)
    assert response.status == 200, await response.text()
    published = (await response.json())["revision"]
    assert published["status"] == "published" and published["current"]
    tasks = (await get_json(task_client, "/api/v1/tasks"))["tasks"]
    assert [(t["id"], t["current_revision"]) for t in tasks] == [(TASK_ID, rev_id)]


async def test_two_imports_make_two_revisions_with_a_bearer_token(
    task_client: Client, task_settings: Settings, tmp_path: Path, served: Path,
    git_server: tuple[str, int], no_stray_git: Check,
) -> None:
    base, server_pid = git_server
    files = {f"tasks/tiny/{path}": data for path, data in tiny_task().items()}
    name = serve_repo(tmp_path, served, "mono", {**files, "README.md": b"other things\n"})
    create_user(task_settings, ADMIN, "admin")
    bearer = {"Authorization": f"Bearer {create_token(task_settings, ADMIN)}"}
    first = await import_and_wait(task_client, bearer, url=f"{base}/{name}", subdir="tasks/tiny")
    second = await import_and_wait(task_client, bearer, url=f"{base}/{name}",
                                   subdir="tasks/tiny/")
    assert (first["revision_id"], second["revision_id"]) == (f"{TASK_ID}-r1", f"{TASK_ID}-r2")
    assert first["source_subdir"] == "tasks/tiny"
    no_stray_git(server_pid)

    response = await task_client.post(f"/api/v1/task-revisions/{TASK_ID}-r2/publish",
                                      headers=bearer)
    assert response.status == 200, await response.text()
    r1 = await get_json(task_client, f"/api/v1/task-revisions/{TASK_ID}-r1", bearer)
    r2 = await get_json(task_client, f"/api/v1/task-revisions/{TASK_ID}-r2", bearer)
    assert r1["revision"]["status"] == "review" and not r1["revision"]["current"]
    assert r2["revision"]["status"] == "published" and r2["revision"]["current"]
    assert r1["revision"]["tree_commit"] == r2["revision"]["tree_commit"]
    assert r1["revision"]["source"]["subdir"] == "tasks/tiny"
    assert r1["report"]["post_scan"]["clean"] and r1["report"]["fetch"]["files"] == 11
    task = (await get_json(task_client, f"/api/v1/tasks/{TASK_ID}", bearer))["task"]
    assert task["current_revision"] == f"{TASK_ID}-r2"
    assert [r["id"] for r in task["revision_list"]] == [f"{TASK_ID}-r1", f"{TASK_ID}-r2"]


async def test_blocked_revisions_are_refused_with_409_until_acknowledged(
    task_client: Client, task_settings: Settings, tmp_path: Path, served: Path,
    git_server: tuple[str, int],
) -> None:
    base, _ = git_server
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 24
    flagged = serve_repo(tmp_path, served, "flagged",
                         tiny_task("flagged-task", extra={"docs/chart.png": png}))
    failing = serve_repo(tmp_path, served, "failing",
                         tiny_task("failing-task", visible_passes=False))
    headers = await admin_csrf(task_client, task_settings)
    started = [await start_import(task_client, headers, url=f"{base}/{n}")
               for n in (flagged, failing)]  # both run at once
    rows = [await wait_for_import(task_client, i) for i in started]
    assert [r["revision_id"] for r in rows] == ["flagged-task-r1", "failing-task-r1"], rows

    response = await task_client.post("/api/v1/task-revisions/failing-task-r1/publish",
                                      headers=headers)
    assert response.status == 409
    error = (await response.json())["error"]
    assert error["code"] == "not_publishable"
    assert "visible tests fail" in error["message"]

    response = await task_client.post("/api/v1/task-revisions/flagged-task-r1/publish",
                                      headers=headers)
    assert response.status == 409
    assert "acknowledgement" in (await response.json())["error"]["message"]
    html = await page(task_client, "/admin/tasks/revisions/flagged-task-r1")
    assert "docs/chart.png" in html and "/acknowledge" in html
    response = await task_client.post("/api/v1/task-revisions/flagged-task-r1/acknowledge",
                                      headers=headers)
    assert response.status == 200
    assert (await response.json())["revision"]["flags_acknowledged_by"] == ADMIN
    response = await task_client.post("/api/v1/task-revisions/flagged-task-r1/publish",
                                      headers=headers)
    assert response.status == 200, await response.text()


async def test_local_paths_are_refused_on_the_web(
    task_client: Client, task_settings: Settings, tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path / "local")
    headers = await admin_csrf(task_client, task_settings)
    for url in (str(repo), f"file://{repo}"):
        response = await task_client.post("/api/v1/tasks/imports", json={"url": url},
                                          headers=headers)
        assert response.status == 400, url  # said at once: no import is started
        message = (await response.json())["error"]["message"]
        assert "local paths and file:// URLs are refused" in message
        assert "PAIRLAB_GIT_ALLOW_LOCAL=true (setting git_allow_local)" in message
        assert staging_leftovers(task_settings) == []
    assert query(task_settings, "SELECT id FROM task_imports") == []
    assert (await get_json(task_client, "/api/v1/tasks"))["tasks"] == []
    assert not (task_settings.data_dir / "tasks" / TASK_ID).exists()


async def test_hostile_urls_and_refs_never_reach_git(
    task_client: Client, task_settings: Settings, tmp_path: Path, served: Path,
    git_server: tuple[str, int], no_stray_git: Check,
) -> None:
    base, server_pid = git_server
    name = serve_repo(tmp_path, served, "tiny")
    sentinel = tmp_path / "pwned"
    headers = await admin_csrf(task_client, task_settings)
    attempts = [
        ({"url": f"ext::sh -c touch% {sentinel}"}, ""),
        ({"url": f"ext::sh%20-c%20touch%20{sentinel}"}, ""),
        ({"url": "fd::17"}, ""),
        ({"url": f"{base}/{name}", "ref": f"--upload-pack=touch {sentinel}"}, "ref"),
        ({"url": f"https://ex<b>ample.com/{name}"}, ""),
    ]
    for body, word in attempts:
        response = await task_client.post("/api/v1/tasks/imports", json=body, headers=headers)
        if response.status != 202:
            assert 400 <= response.status < 500, body
            continue
        row = await wait_for_import(task_client, (await response.json())["import_id"])
        assert row["status"] == "failed" and row["error"], row
        assert word in row["error"]
        html = await page(task_client, f"/admin/tasks/imports/{row['id']}")
        assert "<b>" not in html
    assert not sentinel.exists()
    assert staging_leftovers(task_settings) == []
    no_stray_git(server_pid)


async def test_symlinks_are_reported_and_left_out(
    task_client: Client, task_settings: Settings, tmp_path: Path, served: Path,
    git_server: tuple[str, int], no_stray_git: Check,
) -> None:
    base, server_pid = git_server
    links = {"passwd": "/etc/passwd", "data/up": "../../..", "config/link.toml": "service.toml"}
    name = serve_repo(tmp_path, served, "links", tiny_task(), symlinks=links)
    headers = await admin_csrf(task_client, task_settings)
    row = await import_and_wait(task_client, headers, url=f"{base}/{name}")
    assert row["status"] == "succeeded", row
    report = (await get_json(task_client, f"/api/v1/task-revisions/{row['revision_id']}"))["report"]
    skipped = {path: reason for path, reason in report["fetch"]["skipped"]}
    assert set(skipped) == set(links)
    assert all("symlink" in reason for reason in skipped.values())
    tree = task_settings.data_dir / "tasks" / TASK_ID / row["revision_id"] / "tree"
    files = tree_files(tree)  # asserts that no symlink is in the tree
    assert not set(links) & set(files)
    assert not any(b"root:x:0:0" in data for data in files.values())
    assert staging_leftovers(task_settings) == []
    no_stray_git(server_pid)


async def test_a_tree_over_the_entry_cap_fails_naming_the_limit(
    aiohttp_client: AiohttpClient, make_settings: MakeSettings, envs_dir: Path, tmp_path: Path,
    served: Path, git_server: tuple[str, int], no_stray_git: Check,
) -> None:
    base, server_pid = git_server
    settings = make_settings(environments_dir=str(envs_dir), git_allow_http=True,
                             git_allowed_hosts="127.0.0.1", import_max_entries=5)
    client = await aiohttp_client(create_app(settings))
    name = serve_repo(tmp_path, served, "tiny")
    headers = await admin_csrf(client, settings)
    row = await import_and_wait(client, headers, url=f"{base}/{name}")
    assert row["status"] == "failed", row
    assert "max_entries=5" in row["error"]
    assert staging_leftovers(settings) == []
    no_stray_git(server_pid)


async def test_bad_requests_get_clear_json_errors(
    task_client: Client, task_settings: Settings,
) -> None:
    assert (await task_client.get("/api/v1/tasks/imports/imp_0")).status == 401
    create_user(task_settings, "interviewer@example.com", "interviewer")
    csrf = await login(task_client, "interviewer@example.com")
    response = await task_client.post("/api/v1/tasks/imports", json={"url": "https://x.test/r"},
                                      headers={"X-CSRF-Token": csrf})
    assert response.status == 403
    assert (await response.json())["error"]["code"] == "forbidden"
    assert (await task_client.get("/api/v1/task-revisions/x-r1")).status == 403
    await task_client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})

    headers = await admin_csrf(task_client, task_settings)
    cases: list[tuple[Any, int, str]] = [
        ({}, 422, "url"),
        ({"url": 5}, 422, "url"),
        ({"url": "   "}, 422, "URL"),
        ({"url": "https://x.test/r", "force": True}, 422, "force"),
        ({"url": "/srv/tasks/tiny", "allow_local": True}, 422, "allow_local"),
    ]
    for body, status, word in cases:
        response = await task_client.post("/api/v1/tasks/imports", json=body, headers=headers)
        assert response.status == status, body
        assert word in (await response.json())["error"]["message"]
    response = await task_client.post(
        "/api/v1/tasks/imports", data=b'{"url": ', headers={**headers,
                                                           "Content-Type": "application/json"})
    assert response.status == 400
    assert "not valid JSON" in (await response.json())["error"]["message"]

    for path in ("/api/v1/task-revisions/nope-r1", "/api/v1/task-revisions/nope-r1/diff",
                 "/api/v1/tasks/imports/imp_nope", "/api/v1/tasks/nope"):
        body = await get_json(task_client, path, status=404)
        assert body["error"]["code"] in ("revision_not_found", "task_not_found")
        assert "nope" in body["error"]["message"]
    for action in ("publish", "reject", "acknowledge"):
        response = await task_client.post(f"/api/v1/task-revisions/nope-r1/{action}",
                                          headers=headers)
        assert response.status == 404
        assert (await response.json())["error"]["code"] == "revision_not_found"
    response = await task_client.get("/admin/tasks/revisions/nope-r1")
    assert response.status == 404 and response.content_type == "text/html"


async def test_admin_forms_import_and_publish(
    task_client: Client, task_settings: Settings, tmp_path: Path, served: Path,
    git_server: tuple[str, int],
) -> None:
    base, _ = git_server
    name = serve_repo(tmp_path, served, "tiny")
    await admin_csrf(task_client, task_settings)
    csrf = form_csrf_token(await page(task_client, "/admin/tasks"))
    form = {"csrf_token": csrf, "url": f"{base}/{name}", "ref": "", "subdir": "", "rules": ""}
    response = await task_client.post("/admin/tasks/imports", data=form, allow_redirects=False)
    assert response.status == 303
    location = response.headers["Location"]
    import_id = location.rsplit("/", 1)[1]
    assert location == f"/admin/tasks/imports/{import_id}"
    row = await wait_for_import(task_client, import_id)
    assert row["status"] == "succeeded", row
    html = await page(task_client, location)
    assert 'data-status="succeeded"' in html and row["revision_id"] in html

    rev_page = f"/admin/tasks/revisions/{row['revision_id']}"
    csrf = form_csrf_token(await page(task_client, rev_page))
    response = await task_client.post(f"{rev_page}/publish", data={"csrf_token": csrf},
                                      allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == rev_page
    assert '<strong id="rev-status">published</strong>' in await page(task_client, rev_page)
    assert "(current)" in await page(task_client, "/admin/tasks")


async def test_invalid_rules_fail_the_import_naming_the_file_and_key(
    task_client: Client, task_settings: Settings, tmp_path: Path, served: Path,
    git_server: tuple[str, int], monkeypatch: pytest.MonkeyPatch,
) -> None:
    base, _ = git_server
    name = serve_repo(tmp_path, served, "tiny")
    headers = await admin_csrf(task_client, task_settings)
    # the rules file is made in this process: in a folder of this test's own (another test
    # process on the host makes its own in /tmp meanwhile)
    rules_tmp = tmp_path / "tmp"
    rules_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(rules_tmp))
    before = set(Path(tempfile.gettempdir()).glob("pairlab-rules-*"))
    row = await import_and_wait(task_client, headers, url=f"{base}/{name}",
                                rules='[anonymise.replace]\n"Halcyon" = 3\n')
    assert row["status"] == "failed", row
    assert "rules.toml: anonymise.replace.Halcyon: must be a string" in row["error"]
    assert set(Path(tempfile.gettempdir()).glob("pairlab-rules-*")) <= before
    assert staging_leftovers(task_settings) == []


async def test_an_id_with_a_deny_listed_term_fails_the_import_naming_field_and_term(
    task_client: Client, task_settings: Settings, tmp_path: Path, served: Path,
    git_server: tuple[str, int],
) -> None:
    base, _ = git_server
    task_id = f"{COMPANY.lower()}-totals"
    name = serve_repo(tmp_path, served, "named", tiny_task(task_id))
    headers = await admin_csrf(task_client, task_settings)
    row = await import_and_wait(task_client, headers, url=f"{base}/{name}")
    assert (row["status"], row["revision_id"]) == ("failed", None), row
    assert row["error"] == (
        f"the task manifest is invalid: pairlab-task.toml: task.id: {task_id!r} contains the "
        f"deny-listed term {COMPANY!r}; an id is a stable key and is never rewritten: choose "
        "an id without it")
    assert (await get_json(task_client, "/api/v1/tasks"))["tasks"] == []
    assert staging_leftovers(task_settings) == []


async def test_an_import_that_cannot_be_stored_does_not_stay_running(
    task_client: Client, task_settings: Settings, tmp_path: Path, served: Path,
    git_server: tuple[str, int],
) -> None:
    base, _ = git_server
    name = serve_repo(tmp_path, served, "tiny")
    headers = await admin_csrf(task_client, task_settings)
    (task_settings.data_dir / "tasks").mkdir(exist_ok=True)
    (task_settings.data_dir / "tasks" / TASK_ID).write_text("in the way\n")
    row = await import_and_wait(task_client, headers, url=f"{base}/{name}")
    # failed in the step it was in (the import page marks it), not in a step called "failed"
    assert (row["status"], row["step"], row["revision_id"]) == (
        "failed", "writing the report", None), row
    assert "could not be stored" in row["error"]
    assert staging_leftovers(task_settings) == []
    assert (await get_json(task_client, "/api/v1/tasks"))["tasks"] == []


async def test_a_hanging_server_and_a_stopped_server_leave_nothing_running(
    aiohttp_client: AiohttpClient, make_settings: MakeSettings, envs_dir: Path, served: Path,
    no_stray_git: Check,
) -> None:
    settings = make_settings(environments_dir=str(envs_dir), git_allow_http=True,
                             git_allowed_hosts="127.0.0.1", import_timeout_seconds=3.0)
    with serve_git(served, mode="hang") as (base, server_pid):
        first = await aiohttp_client(create_app(settings))
        headers = await admin_csrf(first, settings)
        import_id = await start_import(first, headers, url=f"{base}/tiny.git")
        row = await wait_for_step(first, import_id, "fetching one snapshot")
        await first.close()  # the server stops while git waits for the hanging server
        assert query(settings, "SELECT status FROM task_imports WHERE id = ?", (import_id,)) == [
            ("running",)
        ]

        second = await aiohttp_client(create_app(settings))
        headers = {"X-CSRF-Token": await login(second, ADMIN)}
        row = await wait_for_import(second, import_id)
        assert row["status"] == "failed"
        assert "the server stopped during the import" in row["error"]

        row = await import_and_wait(second, headers, url=f"{base}/tiny.git")
        assert row["status"] == "failed" and "did not finish in time" in row["error"], row
        no_stray_git(server_pid)  # the abandoned fetch was cut off too
        assert staging_leftovers(settings) == []


async def wait_for_step(client: Client, import_id: str, step: str) -> dict[str, Any]:
    for _ in range(400):
        response = await client.get(f"/api/v1/tasks/imports/{import_id}")
        row: dict[str, Any] = (await response.json())["import"]
        if row["step"] == step:
            return row
        assert row["status"] == "running", row
        await asyncio.sleep(0.05)
    raise AssertionError(f"import {import_id} never reached {step!r}")
