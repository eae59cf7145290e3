"""Names hidden inside encodings, imported for real, and accepting post-scan findings.

A real git repository served over loopback HTTP holds the company name, a declared person and an
internal host inside a gzip, a zip member, a zlib pickle, a notebook attachment's PNG, a PNG, a
JPEG, a base64 run in a .py file and a UTF-16 file. The import finds each under its label;
acknowledging the binary files does not make the revision publishable; an empty reason, an
unknown finding and a published revision are refused with a status and a sentence; accepting
every finding with a reason (the API, and the review page in Chromium) does, and the audit log
and the page show the reasons.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import async_playwright, expect

from server.settings import Settings
from tests.browser import CHROMIUM, CHROMIUM_ARGS, login_in_browser
from tests.conftest import login_admin, query
from tests.task_repos import (
    Client,
    make_repo,
    publish_bare,
    tiny_task,
    wait_for_import,
)
from tests.tasks.encoded import EXPECTED, PEOPLE_TABLE, planted
from tests.tasks.githttp import serve_git

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.timeout(400)]

ADMIN = "admin@example.com"
TASK = "encoded-task"
WAIT_MS = 20_000


@pytest.fixture
def repo_url(tmp_path: Path) -> Iterator[str]:
    files = tiny_task(TASK, extra=planted())
    files["pairlab-task.toml"] += PEOPLE_TABLE.encode()
    make_repo(tmp_path / "work", files)
    served = tmp_path / "served"
    served.mkdir()
    publish_bare(tmp_path / "work", served, "encoded")
    with serve_git(served) as (base, _pid):
        yield f"{base}/encoded.git"


async def call(client: Client, path: str, headers: dict[str, str], status: int,
               body: dict[str, Any] | None = None) -> Any:
    response = await client.post(path, json=body, headers=headers)
    assert response.status == status, await response.text()
    return await response.json()


async def test_encoded_leaks_block_until_each_is_accepted_with_a_reason(
    task_client: Client, task_settings: Settings, repo_url: str,
) -> None:
    headers = {"X-CSRF-Token": await login_admin(task_client, ADMIN)}
    started = await call(task_client, "/api/v1/tasks/imports", headers, 202, {"url": repo_url})
    row = await wait_for_import(task_client, started["import_id"], headers)
    assert row["status"] == "succeeded", row
    rev_id = row["revision_id"]
    api = f"/api/v1/task-revisions/{rev_id}"

    # 1. every planted leak is found under its label
    response = await task_client.get(api, headers=headers)
    data = await response.json()
    findings = data["report"]["post_scan"]["findings"]
    found = {(f["path"], f["kind"]) for f in findings}
    for name, expected in EXPECTED.items():
        assert expected <= found, (name, sorted(found))
    flagged = {f["path"] for f in data["report"]["anonymisation"]["flags"]}
    assert {"data/cache.pkl.gz", "docs/photo.jpg", "docs/notes.txt"} <= flagged

    # 2. acknowledging the binary files does not make it publishable
    await call(task_client, f"{api}/acknowledge", headers, 200)
    refused = await call(task_client, f"{api}/publish", headers, 409)
    assert refused["error"]["code"] == "not_publishable"
    assert f"{len(findings)} of them not accepted" in refused["error"]["message"]

    # 3. bad acceptances: a status and a sentence each
    first = findings[0]["id"]
    empty = await call(task_client, f"{api}/acceptances", headers, 422,
                       {"finding": first, "reason": "   "})
    assert empty["error"]["message"] == "Write why this may be published: the reason is empty."
    long = await call(task_client, f"{api}/acceptances", headers, 422,
                      {"finding": first, "reason": "x" * 2001})
    assert "keep it to 2000" in long["error"]["message"]
    unknown = await call(task_client, f"{api}/acceptances", headers, 404,
                         {"finding": "0123456789abcdef", "reason": "fine"})
    assert "has no post-scan finding '0123456789abcdef'" in unknown["error"]["message"]
    both = await call(task_client, f"{api}/acceptances", headers, 422,
                      {"finding": first, "path": "docs/chart.png", "reason": "fine"})
    assert "not both" in both["error"]["message"]
    assert query(task_settings, "SELECT COUNT(*) FROM task_finding_acceptances") == [(0,)]

    # 4. the API accepts a whole file (and what is inside it), then single findings; the
    #    notebook's and the JPEG's are left for the page
    zipped = await call(task_client, f"{api}/acceptances", headers, 201,
                        {"path": "data/bundle.zip", "reason": "the zip is synthetic test data"})
    assert {a["path"] for a in zipped["acceptances"]} == {"data/bundle.zip › inner/notes.txt"}
    again = await call(task_client, f"{api}/acceptances", headers, 409,
                       {"path": "data/bundle.zip", "reason": "again"})
    assert "already accepted" in again["error"]["message"]
    by_page = ("notebooks/explore.ipynb", "docs/photo.jpg")
    for f in findings:
        if f["path"].startswith(("data/bundle.zip", *by_page)):
            continue
        await call(task_client, f"{api}/acceptances", headers, 201,
                   {"finding": f["id"], "reason": f"reviewed {f['path']}: a made-up sample"})
    still = await call(task_client, f"{api}/publish", headers, 409)
    assert "not accepted" in still["error"]["message"]

    # 5. the review page in Chromium: an empty reason is refused, a reason is shown
    base = str(task_client.make_url("")).rstrip("/")
    page_path = f"/admin/tasks/revisions/{rev_id}"
    notebook_finding = next(f for f in findings if f["path"].startswith(by_page[0]))
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            await login_in_browser(page, base, page_path, ADMIN)
            row_form = page.locator(
                f'tr[data-finding="{notebook_finding["id"]}"] form.accept-finding')
            await row_form.locator("button").click()
            await page.wait_for_load_state()
            error = page.locator('p.error[data-code="invalid_acceptance"]')
            await expect(error).to_have_text(
                "Write why this may be published: the reason is empty.", timeout=WAIT_MS)

            await page.goto(base + page_path)
            reason = "the logo's metadata was written by a stock tool; harmless"
            await row_form.locator('input[name="reason"]').fill(reason)
            await row_form.locator("button").click()
            await page.wait_for_load_state()
            accepted = page.locator(f'tr[data-finding="{notebook_finding["id"]}"] .accepted')
            await expect(accepted).to_contain_text(f"Accepted by {ADMIN}", timeout=WAIT_MS)
            await expect(accepted.locator("q.reason")).to_have_text(reason)

            form = page.locator("#accept-file")  # the JPEG's findings, all at once
            assert await form.locator("option").all_inner_texts() == ["docs/photo.jpg"]
            await form.locator("select").select_option("docs/photo.jpg")
            await form.locator('input[name="reason"]').fill("the photo's metadata: checked")
            await form.locator("button").click()
            await page.wait_for_load_state()
            await expect(page.locator("#findings-accepted")).to_be_visible(timeout=WAIT_MS)
            reasons = await page.locator("#findings q.reason").all_inner_texts()
            assert len(reasons) == len(findings)
            assert "the zip is synthetic test data" in reasons and reason in reasons

            await page.click('form[action$="/publish"] button[type=submit]')
            await page.wait_for_load_state()
            await expect(page.locator("#rev-status")).to_have_text("published",
                                                                   timeout=WAIT_MS)
        finally:
            await browser.close()

    # 6. the audit log holds every acceptance with its reason; a published revision takes none
    rows = query(task_settings, "SELECT actor, object_id, detail FROM audit_log"
                                " WHERE action = 'task.finding.accept' ORDER BY id")
    assert len(rows) == len(findings)
    details = [json.loads(r[2]) for r in rows]
    assert {d["finding"] for d in details} == {f["id"] for f in findings}
    assert {r[1] for r in rows} == {rev_id}
    assert {"reason": reason, "path": notebook_finding["path"]}.items() <= next(
        d for d in details if d["finding"] == notebook_finding["id"]).items()
    late = await call(task_client, f"{api}/acceptances", headers, 409,
                      {"finding": first, "reason": "late"})
    assert late["error"]["message"] == (
        f"{rev_id} is already published: its findings can no longer be accepted")
