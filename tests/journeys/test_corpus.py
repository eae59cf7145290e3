"""A real codebase imported the way its company's admin would, on the demo README command 1 starts.

``tests/fixtures/corpus/pylift-57c6b9e.tar.gz`` is the last commit of a public uplift-modelling
library (BSD 2-clause, its ``LICENSE`` inside) written by people who never saw pairlab. The admin
adds a manifest, a brief and a guide in a commit on top, serves it from a loopback git server,
and imports it through the Tasks page with the deny-list its company would declare (the
company, its domains, seven people, their handles and emails) pasted as rules.

- First without dropping the Sphinx build output: the pickle under ``docs/doctrees/`` holds a
  maintainer's name and his ``/home/<handle>/`` paths as raw bytes; the post-scan finds them inside
  that file, and acknowledging the flagged binary files does not make the revision publishable.
- Then with ``docs/doctrees/`` dropped: nothing blocks but the images to acknowledge; the
  3-letter handle does not match inside "trying" or ``for yi,``; the library's own tests pass in
  the sandbox; the admin publishes; the tree a candidate gets (``pairlab task checkout``) holds
  none of the declared identifiers in any form the test can think of, and the candidate's landing
  page shows the task.
"""

from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from tests.journeys.conftest import WAIT_MS, Product, browsing
from tests.journeys.test_admin import (
    ADMIN,
    blockers,
    check_result,
    click_publish,
    import_with_rules,
    publish_refusal,
    served,
    unique_id,
)

pytestmark = [pytest.mark.journey, pytest.mark.integration, pytest.mark.browser,
              pytest.mark.slow, pytest.mark.timeout(1500)]

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "corpus" / "pylift-57c6b9e.tar.gz"

# The deny-list from the corpus README, in the rules format an admin pastes on the Tasks page.
RULES = """
[anonymise]
{drop}

[anonymise.replace]
"Wayfair" = "Acme"
"wayfair.com" = "example.com"
"wayfair.io" = "example.io"
"rsyi" = "jdoe"
"ryi" = "jdoe"
"WTFrost" = "sroe"
"Minyus" = "klee"
"rosiny@gmail.com" = "jane.doe@example.com"
"robert@ryi.me" = "jane.doe@example.com"
"robert.yi@airbnb.com" = "jane.doe@example.com"
"ryi@wayfair.com" = "jane.doe@example.com"
"ryi@localhost.localdomain" = "jane.doe@example.com"
"cantonellis@wayfair.com" = "chris@example.com"
"lwinslow@wayfair.com" = "luke@example.com"
"draco2003@gmail.com" = "dan@example.com"
"frost.williamfrost@gmail.com" = "sam.roe@example.com"
"33908456+Minyus@users.noreply.github.com" = "kim@example.com"

[anonymise.people]
"Robert Yi" = "Jane Doe"
"Will Frost" = "Sam Roe"
"William Frost" = "Sam Roe"
"Chris Antonellis" = "Chris Example"
"Luke Winslow" = "Luke Example"
"Dan Rowe" = "Dan Example"
"Yusuke Minami" = "Kim Lee"
"Leo Guelman" = "Leo Example"
"""
DROP_DOCTREES = 'drop = ["docs/doctrees/"]'

MANIFEST = """[task]
id = "{task_id}"
title = "Review the uplift evaluation"
kind = "eval-script"
roles = ["data-scientist", "ml-engineer"]
duration_minutes = 60
brief = "BRIEF.md"
guide = "GUIDE.md"

[environment]
requirements = ["numpy", "scipy", "pandas", "scikit-learn", "matplotlib", "seaborn",
                "xgboost-cpu"]

[checks]
visible = "python -m pytest -q tests"
"""
BRIEF = """# Review the uplift evaluation

`pylift/eval.py` computes Qini and cumulative-gain curves for uplift models. Read
`get_scores` and its tests, then add a test for a case the tests do not cover yet.
"""
GUIDE = """# Interviewer guide

Look for: reading `_get_counts` before writing code; a hand-computed expected value.
"""

# Every form of a declared identifier the published tree must not hold, matched on its bytes
# (case-insensitive). Handles only as whole words: "ryi" is inside "trying" and "directory is".
LEAKS = [
    r"wayfair", r"\brsyi\b", r"\bryi\b", r"wtfrost", r"minyus", r"rosiny", r"airbnb",
    r"cantonellis", r"lwinslow", r"draco2003", r"williamfrost", r"33908456",
    r"robert\W{1,4}yi\b", r"\byi,\W{0,3}r(obert)?\b", r"\br\.\s?yi\b",
    r"will(iam)?\W{1,4}frost", r"frost,\W{0,3}w(ill|illiam)?\b", r"antonellis", r"winslow",
    r"dan\W{1,4}rowe", r"rowe,\W{0,3}d", r"yusuke", r"minami", r"guelman", r"/home/",
]


def corpus_files(task_id: str) -> dict[str, bytes]:
    """The library's last commit as files, with the admin's manifest, brief and guide on top."""
    files: dict[str, bytes] = {}
    with tarfile.open(CORPUS) as tar:
        for member in tar.getmembers():
            if member.isfile():
                data = tar.extractfile(member)
                assert data is not None
                files[member.name.removeprefix("pylift/")] = data.read()
    assert "docs/doctrees/environment.pickle" in files and "LICENSE" in files
    files["pairlab-task.toml"] = MANIFEST.format(task_id=task_id).encode()
    files["BRIEF.md"] = BRIEF.encode()
    files["GUIDE.md"] = GUIDE.encode()
    return files


def leaks_in(tree: Path) -> list[str]:
    """``path: form`` for every declared identifier left in the bytes of ``tree`` (gzip and
    zip members opened too)."""
    found: list[str] = []
    for path in sorted(p for p in tree.rglob("*") if p.is_file() and ".git" not in p.parts):
        rel = path.relative_to(tree).as_posix()
        texts = [path.read_bytes()]
        if texts[0][:2] == b"\x1f\x8b":
            import gzip
            texts.append(gzip.decompress(texts[0]))
        if texts[0][:4] == b"PK\x03\x04":
            import zipfile
            with zipfile.ZipFile(io.BytesIO(texts[0])) as zf:
                texts += [zf.read(n) for n in zf.namelist()]
        for data in texts:
            text = data.decode("latin-1")
            found += [f"{rel}: {m.group(0)!r}" for leak in LEAKS
                      for m in re.finditer(leak, text, re.IGNORECASE)]
    return found


async def acknowledge_flags(page: Page) -> None:
    await page.click('form[action$="/acknowledge"] button[type=submit]')
    await page.wait_for_load_state()


async def test_a_real_library_is_imported_with_its_company_s_deny_list(
        product: Product, browser: Browser, tmp_path: Path) -> None:
    task_id = unique_id("uplift-eval")
    async with browsing(browser, product, "admin-corpus") as people:
        admin = await people.as_user(ADMIN, "admin")
        with served(tmp_path, {task_id: corpus_files(task_id)}) as urls:
            # 1. The Sphinx pickle is kept: the maintainer inside it blocks, flags acknowledged.
            await import_with_rules(admin, product, urls[task_id], RULES.format(drop=""))
            found = await blockers(admin)
            assert any("post-scan" in b for b in found), found
            findings = admin.locator("#findings")
            await expect(findings).to_contain_text("docs/doctrees/environment.pickle")
            await acknowledge_flags(admin)
            await expect(admin.locator("#flags-acknowledged")).to_be_visible()
            assert [b for b in await blockers(admin) if "post-scan" in b], await blockers(admin)
            revision_url = admin.url
            reason = await publish_refusal(admin)
            assert "post-scan" in reason, reason
            await admin.goto(revision_url)
            await expect(admin.locator("#rev-status")).to_have_text("review")

            # 2. The build output dropped, as the admin would: publishable once flags are seen.
            await import_with_rules(admin, product, urls[task_id],
                                    RULES.format(drop=DROP_DOCTREES))
        revision = admin.url.rsplit("/", 1)[1]
        found = await blockers(admin)
        assert all("flagged" in b for b in found), found
        assert await check_result(admin, "visible") == "passed"
        await acknowledge_flags(admin)
        await expect(admin.locator("#no-blockers")).to_be_visible()
        await click_publish(admin)
        await expect(admin.locator("#rev-status")).to_have_text("published", timeout=WAIT_MS)

    # The tree a candidate's workspace gets, written by the operator's own command.
    dest = tmp_path / "checkout"
    done = product.cli("task", "checkout", revision, str(dest))
    assert done.returncode == 0, done.stderr
    assert (dest / "pylift" / "eval.py").is_file()
    assert not (dest / "docs" / "doctrees").exists()
    assert leaks_in(dest) == []
    # Ordinary words that hold a handle are left alone, and the library's own code runs.
    assert "trying to predict" in (dest / "docs" / "introduction.md").read_text()
    assert "frost score" in (dest / "pylift" / "eval.py").read_text()
    setup = (dest / "setup.py").read_text()
    assert "author='Jane Doe, Sam Roe'" in setup, setup
