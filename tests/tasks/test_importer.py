"""The import pipeline end to end as a library: prepare_import + install_revision over real git
repositories, the real anonymiser, post-scan and check subprocesses, the real SQLite schema."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from server.settings import Settings
from server.tasks.service import import_config, task_store
from tasks import revisions
from tasks.errors import InvalidSource, ManifestInvalid, NotPublishable, TreeRefused
from tasks.importer import ImportRequest, Prepared, install_revision, prepare_import
from tests.conftest import open_db
from tests.task_repos import (
    COMPANY,
    FAKE_AWS_KEY,
    FAKE_EMAIL,
    FAKE_PASSWORD,
    TASK_ID,
    make_repo,
    staging_leftovers,
    tiny_task,
    tree_files,
)

# The first test to need the shared environments folder builds it (about a minute).
# slow: whole imports over real git, checks in the sandbox
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

WORKSPACE_NEVER = ("hidden_checks", "solution", "GUIDE.md", "pairlab-task.toml", "deploy")


@pytest.fixture
def db(task_settings: Settings) -> Iterator[sqlite_utils.Database]:
    database = open_db(task_settings)
    yield database
    database.conn.close()


def prepare(
    settings: Settings, repo: Path | str, steps: list[str] | None = None, **config: Any
) -> Prepared:
    cfg = dataclasses.replace(import_config(settings, allow_local=True), **config)
    return prepare_import(
        ImportRequest(str(repo)), cfg, steps.append if steps is not None else lambda s: None
    )


def install(db: sqlite_utils.Database, settings: Settings, prepared: Prepared) -> Any:
    with db.atomic():
        return install_revision(db, task_store(settings), prepared)


def revision_dir(settings: Settings, rev_id: str) -> Path:
    return settings.data_dir / "tasks" / TASK_ID / rev_id


def test_a_local_import_is_anonymised_checked_and_stored_read_only(
    task_settings: Settings, db: sqlite_utils.Database, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "src")
    steps: list[str] = []
    prepared = prepare(task_settings, repo, steps)
    assert steps[:3] == ["validating the source", "fetching one snapshot", "reading the manifest"]
    assert "running the hidden checks on the starter" in steps
    summary = prepared.summary
    assert summary["blockers"] == [], summary
    assert (summary["visible_tests"], summary["hidden_on_solution"],
            summary["hidden_on_starter"]) == ("passed", "passed", "failed")
    assert summary["post_scan_findings"] == 0 and summary["flags"] == 0

    rev = install(db, task_settings, prepared)
    assert (rev.id, rev.number, rev.status) == (f"{TASK_ID}-r1", 1, "review")
    assert staging_leftovers(task_settings) == []
    root = revision_dir(task_settings, rev.id)
    assert sorted(p.name for p in root.iterdir()) == [
        "brief.md", "diff.json", "guide.md", "hidden", "report.json", "solution", "tree",
    ]
    for path in [root, *root.rglob("*")]:
        assert stat.S_IMODE(path.lstat().st_mode) & 0o222 == 0, path

    tree = tree_files(root / "tree")
    assert not [p for p in tree if p.split("/")[0] in WORKSPACE_NEVER]
    assert "acme_totals/totals.py" in tree and "zephyrine_totals/totals.py" not in tree
    everything = b"".join([*tree.values(), *map(str.encode, tree)])
    for leaked in (COMPANY, FAKE_AWS_KEY, FAKE_PASSWORD, FAKE_EMAIL, "zephyrine.internal"):
        assert leaked.lower().encode() not in everything.lower(), leaked
    assert (root / "hidden" / "test_hidden.py").read_text().startswith("from acme_totals")
    assert (root / "solution" / "acme_totals" / "totals.py").is_file()
    assert "Acme" in (root / "brief.md").read_text()

    report = json.loads((root / "report.json").read_text())
    assert report["tree_commit"] == rev.tree_commit
    assert report["hints"] == ["Look at the loop bounds.", "Count a three-row example by hand."]
    assert report["post_scan"] == {"clean": True, "findings": []}
    dropped = {d["path"] for d in report["anonymisation"]["dropped"]}
    assert dropped == {"deploy/", "pairlab-task.toml"}
    rules = {r["rule"] for r in report["anonymisation"]["replacements"]}
    assert {"term", "email", "host", "secret:aws-access-key"} <= rules, rules
    text = json.dumps(report) + (root / "diff.json").read_text()
    assert FAKE_AWS_KEY not in text and FAKE_PASSWORD not in text


def test_two_imports_are_identical_immutable_revisions(
    task_settings: Settings, db: sqlite_utils.Database, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "src")
    r1 = install(db, task_settings, prepare(task_settings, repo))
    r2 = install(db, task_settings, prepare(task_settings, f"file://{repo}"))
    assert (r1.id, r2.id) == (f"{TASK_ID}-r1", f"{TASK_ID}-r2")

    # Determinism: the same source and rules give the same commit and the same anonymisation.
    assert r1.tree_commit == r2.tree_commit and r1.source_commit == r2.source_commit
    one, two = revision_dir(task_settings, r1.id), revision_dir(task_settings, r2.id)
    reports = [json.loads((d / "report.json").read_text()) for d in (one, two)]
    sections = [json.dumps(r["anonymisation"], sort_keys=True).encode() for r in reports]
    assert sections[0] == sections[1]
    assert reports[0]["anonymisation"]["replacements"], "the anonymiser had work to do"
    assert (one / "diff.json").read_bytes() == (two / "diff.json").read_bytes()
    assert tree_files(one / "tree") == tree_files(two / "tree")

    # Publishing r2 makes it current; r1 stays as it was and readable.
    with db.atomic():
        published = revisions.publish(db, r2.id)
    assert published.status == "published" and published.is_current
    old = revisions.get_revision(db, r1.id)
    assert old.status == "review" and not old.is_current
    assert task_store(task_settings).report(TASK_ID, r1.id)["tree_commit"] == r1.tree_commit
    assert revisions.get_task(db, TASK_ID)["current_revision"] == r2.id
    assert revisions.published_revision(db, TASK_ID).id == r2.id

    conn = sqlite3.connect(task_settings.db_path)
    try:
        for sql in ("UPDATE task_revisions SET tree_commit = 'f00' WHERE id = ?",
                    "UPDATE task_revisions SET source_commit = 'f00' WHERE id = ?",
                    "UPDATE task_revisions SET requirements = '[\"evil\"]' WHERE id = ?",
                    "DELETE FROM task_revisions WHERE id = ?"):
            with pytest.raises(sqlite3.DatabaseError, match="immutable"):
                conn.execute(sql, [r1.id])
    finally:
        conn.close()
    assert revisions.get_revision(db, r1.id).tree_commit == r1.tree_commit
    with db.atomic():
        assert revisions.reject(db, r1.id).status == "rejected"
    with pytest.raises(NotPublishable, match="rejected") as refused:
        revisions.publish(db, r1.id)
    assert refused.value.status == 409
    assert revisions.published_revision(db, TASK_ID).id == r2.id


def test_a_binary_holding_a_secret_blocks_publishing_even_when_acknowledged(
    task_settings: Settings, db: sqlite_utils.Database, tmp_path: Path
) -> None:
    blob = b"\x00\x01\x02key=" + FAKE_AWS_KEY.encode() + b"\x00\xff\xfe"
    repo = make_repo(tmp_path / "src", tiny_task(extra={"data/blob.bin": blob}))
    prepared = prepare(task_settings, repo)
    assert prepared.summary["post_scan_findings"] >= 1
    rev = install(db, task_settings, prepared)
    report = task_store(task_settings).report(TASK_ID, rev.id)
    assert not report["post_scan"]["clean"]
    assert {f["path"] for f in report["post_scan"]["findings"]} == {"data/blob.bin"}
    assert FAKE_AWS_KEY not in json.dumps(report), "findings must mask the secret"
    assert [f["path"] for f in report["anonymisation"]["flags"]] == ["data/blob.bin"]
    with pytest.raises(NotPublishable, match="post-scan") as refused:
        revisions.publish(db, rev.id)
    assert refused.value.status == 409
    with db.atomic():
        revisions.acknowledge_flags(db, rev.id, "admin@example.com")
    with pytest.raises(NotPublishable, match="post-scan"):
        revisions.publish(db, rev.id)
    assert revisions.get_revision(db, rev.id).status == "review"


def test_a_flagged_binary_blocks_publishing_until_acknowledged(
    task_settings: Settings, db: sqlite_utils.Database, tmp_path: Path
) -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 24
    repo = make_repo(tmp_path / "src", tiny_task(extra={"docs/chart.png": png}))
    rev = install(db, task_settings, prepare(task_settings, repo))
    report = task_store(task_settings).report(TASK_ID, rev.id)
    assert report["post_scan"]["clean"]
    assert [f["path"] for f in report["anonymisation"]["flags"]] == ["docs/chart.png"]
    with pytest.raises(NotPublishable, match="acknowledgement"):
        revisions.publish(db, rev.id)
    with db.atomic():
        acknowledged = revisions.acknowledge_flags(db, rev.id, "admin@example.com")
    assert acknowledged.flags_acknowledged_by == "admin@example.com"
    with db.atomic():
        assert revisions.publish(db, rev.id).status == "published"


def test_failing_visible_tests_block_publishing(
    task_settings: Settings, db: sqlite_utils.Database, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path / "src", tiny_task(visible_passes=False))
    prepared = prepare(task_settings, repo)
    assert prepared.summary["visible_tests"] == "failed"
    rev = install(db, task_settings, prepared)
    report = task_store(task_settings).report(TASK_ID, rev.id)
    assert report["blockers"] == ["the visible tests fail on the anonymised tree"]
    assert "assert 0 == 1" in report["checks"]["visible"]["output"]
    with pytest.raises(NotPublishable, match="visible tests fail"):
        revisions.publish(db, rev.id)


def test_a_check_that_hangs_is_cut_off_and_reported(
    task_settings: Settings, db: sqlite_utils.Database, tmp_path: Path
) -> None:
    files = tiny_task()
    files["tests/test_totals.py"] = b"import time\n\n\ndef test_slow():\n    time.sleep(600)\n"
    repo = make_repo(tmp_path / "src", files)
    # the same limit cuts off the hanging check and must let the solution's hidden tests pass
    # on a loaded host (2 s did not, beside a second test worker)
    prepared = prepare(task_settings, repo, check_timeout_s=10.0)
    assert prepared.summary["visible_tests"] == "timed out"
    assert prepared.summary["hidden_on_solution"] == "passed"
    rev = install(db, task_settings, prepared)
    assert any(b.startswith("visible:") for b in rev.blockers)


@pytest.mark.parametrize(
    ("files", "error", "words"),
    [
        ({"README.md": b"no manifest here\n"}, ManifestInvalid, ["pairlab-task.toml", "missing"]),
        ({"pairlab-task.toml": b'[task]\nid = "Bad Id"\n'}, ManifestInvalid,
         ["task.id", "checks"]),
    ],
    ids=["no-manifest", "bad-manifest"],
)
def test_a_refused_import_leaves_nothing_behind(
    task_settings: Settings, tmp_path: Path, files: dict[str, bytes],
    error: type[Exception], words: list[str],
) -> None:
    repo = make_repo(tmp_path / "src", files)
    with pytest.raises(error) as info:
        prepare(task_settings, repo)
    for word in words:
        assert word in str(info.value)
    assert staging_leftovers(task_settings) == []
    assert not (task_settings.data_dir / "tasks" / TASK_ID).exists()


def test_entry_cap_and_local_policy_are_enforced(task_settings: Settings, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "src")
    small = dataclasses.replace(task_settings, import_max_entries=4)
    with pytest.raises(TreeRefused, match="max_entries=4"):
        prepare(small, repo)
    web_config = import_config(task_settings)  # what the server uses: no allow_local
    with pytest.raises(InvalidSource, match=r"set PAIRLAB_GIT_ALLOW_LOCAL=true \(setting git_"):
        prepare_import(ImportRequest(str(repo)), web_config, lambda s: None)
    assert staging_leftovers(task_settings) == []
