"""The admin's ways out of a review, on the demo README command 1 starts, in Chromium.

A small task from a loopback git server holds what an admin of a real company meets:

- a gzip log naming the company: the anonymiser cannot rewrite inside it and the post-scan finds
  the name inside it; acknowledging the flagged binary files does not clear that, and the admin
  accepts the file's findings with a reason on the revision page: the page says who accepted it
  and why, the audit log records it, and the revision can then be published;
- a ``/home/<user>/`` path nobody declared: listed under "Possible identifiers"; "Add to rules"
  opens the import form with the source and rules of that revision and the suggested rule added;
  one submit imports it again, and the new revision holds neither the path nor the hint;
- "the Delta method" in the docs while "Delta" is a declared company: the rules pasted with the
  import keep ``"Delta method"``; the revision page lists the exception (and that it stops a
  rewrite), the audit log records it, the post-scan does not report it, and "Delta" elsewhere
  is still rewritten.
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from tests.journeys.conftest import WAIT_MS, Product, browsing, db_rows
from tests.journeys.test_admin import (
    ADMIN,
    blockers,
    click_publish,
    import_with_rules,
    open_revision_of_import,
    publish_refusal,
    served,
    task_files,
    unique_id,
)
from tests.task_repos import COMPANY

pytestmark = [pytest.mark.journey, pytest.mark.integration, pytest.mark.browser,
              pytest.mark.timeout(1500)]

HOME_USER = "mkowalski"
LOG = "data/nightly.log.gz"
RULES = """[anonymise]
keep = ["Delta method"]

[anonymise.replace]
"Delta" = "Northwind"
"""
METHOD = ("# Method\n\nThe interval comes from the Delta method.\n"
          "Delta's own order numbers are never used.\n")
REASON = "sample log from the public demo feed; the company agreed to show it"


def review_files(task_id: str) -> dict[str, bytes]:
    return task_files(task_id, extra={
        LOG: gzip.compress(f"2021-06-01 nightly run of the {COMPANY} feed\n".encode()),
        "scripts/fetch.sh": f"#!/bin/sh\ncp /home/{HOME_USER}/feeds/orders.csv data/\n".encode(),
        "docs/method.md": METHOD.encode(),
    })


def audit_rows(product: Product, action: str, rev_id: str) -> list[tuple[str, dict[str, object]]]:
    """``(actor, detail)`` of the product's audit rows for ``action`` on ``rev_id``."""
    return [(row["actor"], json.loads(row["detail"])) for row in db_rows(
        product, "SELECT actor, detail FROM audit_log WHERE action = ? AND object_id = ? "
        "ORDER BY id", action, rev_id)]


async def test_an_admin_accepts_a_finding_adds_a_hint_and_keeps_an_exception(
        product: Product, browser: Browser, tmp_path: Path) -> None:
    task_id = unique_id("review-ways-out")
    async with browsing(browser, product, "admin-ways-out") as people:
        admin = await people.as_user(ADMIN, "admin")
        with served(tmp_path, {task_id: review_files(task_id)}) as urls:
            first = await import_with_rules(admin, product, urls[task_id], RULES)

            # The exception: listed, audited, and the post-scan does not report the kept text.
            kept = admin.locator("#kept tr", has_text="Delta method")
            await expect(kept).to_contain_text("declared exception (keep)")
            await expect(kept).to_contain_text("1")
            # Without it the rewriter would have changed those words: the page says so.
            await expect(kept).to_contain_text("stops a rewrite")
            assert audit_rows(product, "task.anonymise.keep", first) == [
                (ADMIN, {"keep": [{"entry": "Delta method", "count": 1,
                                   "stops_rewrite": True}]})]
            await expect(admin.locator("#findings")).not_to_contain_text("Delta")
            method = admin.locator('.difffile[data-path="docs/method.md"]')
            await expect(method).to_contain_text("the Delta method")
            await expect(method).to_contain_text("Northwind's own order numbers")

            # The company inside the gzip log blocks, and the flags' acknowledgement does not
            # clear it.
            finding = admin.locator("#findings tr.finding", has_text=LOG)
            await expect(finding.first).to_be_visible()
            assert any("post-scan" in b for b in await blockers(admin)), await blockers(admin)
            await admin.click('form[action$="/acknowledge"] button[type=submit]')
            await expect(admin.locator("#flags-acknowledged")).to_be_visible()
            assert [b for b in await blockers(admin) if "post-scan" in b], await blockers(admin)
            assert "post-scan" in await publish_refusal(admin)
            await admin.goto(f"{product.app_url}/admin/tasks/revisions/{first}")

            # The home path is a possible identifier; "Add to rules" re-imports without it.
            hint = admin.locator("#identifiers tr[data-kind=home-path]", has_text=HOME_USER)
            await expect(hint).to_contain_text("scripts/fetch.sh")
            await hint.locator("a.add-hint").click()
            await admin.wait_for_url(re.compile(rf"/admin/tasks/revisions/{first}/reimport\?"),
                                     timeout=WAIT_MS)
            await expect(admin.locator("#added-rules")).to_contain_text(f'"{HOME_USER}"')
            assert await admin.input_value("#url") == urls[task_id]
            rules = await admin.input_value("#rules")
            assert 'keep = ["Delta method"]' in rules, rules
            assert re.search(rf'^"?{HOME_USER}"? = "\w+"$', rules, re.MULTILINE), rules
            await admin.click('form[action="/admin/tasks/imports"] button[type=submit]')
            second = await open_revision_of_import(admin)
        assert second != first
        await expect(admin.locator("#identifiers")).not_to_contain_text(HOME_USER)
        fetch = admin.locator('.difffile[data-path="scripts/fetch.sh"]')
        await expect(fetch).to_contain_text("/home/")
        await expect(admin.locator("#kept tr", has_text="Delta method")).to_have_count(1)

        # The log's findings accepted with a reason: shown, audited, and publishing is allowed.
        await admin.click('form[action$="/acknowledge"] button[type=submit]')
        await expect(admin.locator("#flags-acknowledged")).to_be_visible()
        accept = admin.locator("#accept-file")
        await accept.locator("select[name=path]").select_option(LOG)
        await accept.locator("input[name=reason]").fill(REASON)
        await accept.locator("button[type=submit]").click()
        await expect(admin.locator("#findings-accepted")).to_be_visible(timeout=WAIT_MS)
        for row in await admin.locator("#findings tr.finding").all():
            await expect(row.locator(".accepted")).to_contain_text(f"Accepted by {ADMIN}")
            await expect(row.locator(".reason")).to_have_text(REASON)
        await expect(admin.locator("#no-blockers")).to_be_visible()
        accepted = audit_rows(product, "task.finding.accept", second)
        assert accepted and {(actor, str(d["path"]).split(" › ")[0], d["reason"])
                             for actor, d in accepted} == {(ADMIN, LOG, REASON)}, accepted
        await click_publish(admin)
        await expect(admin.locator("#rev-status")).to_have_text("published", timeout=WAIT_MS)

    # The tree a candidate gets: the path rewritten, the exception kept, the log as accepted.
    dest = tmp_path / "checkout"
    done = product.cli("task", "checkout", second, str(dest))
    assert done.returncode == 0, done.stderr
    assert HOME_USER not in (dest / "scripts" / "fetch.sh").read_text()
    assert (dest / "docs" / "method.md").read_text() == METHOD.replace("Delta's", "Northwind's")
    assert COMPANY in gzip.decompress((dest / LOG).read_bytes()).decode()
