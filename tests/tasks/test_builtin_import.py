"""The three built-in tasks go through the same import path as an admin's repository (as
``pairlab demo`` does): each imports clean, passes its visible tests, and its hidden checks pass
on the reference solution and fail on the untouched starter. Then it can be published."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from server.settings import Settings
from server.tasks.service import import_config, task_store
from tasks import revisions
from tasks.builtin import as_git_repo, builtin_task_dirs
from tasks.importer import ImportRequest, install_revision, prepare_import
from tasks.manifest import load_manifest
from tests.conftest import open_db

# slow: each built-in task goes through the whole import (checks in the sandbox)
pytestmark = pytest.mark.slow

# The fake credentials the catalogue plants (see test_catalog_content.py), and e-mail addresses.
CREDENTIAL = re.compile(
    rb"AKIA[0-9A-Z]{16}|postgresql://[^:\s]+:[^@\s]+@|glpat-[0-9A-Za-z_-]{20}"
)
EMAIL = re.compile(rb"[A-Za-z0-9._%+-]+@([A-Za-z0-9-]+\.)+[A-Za-z]{2,}")
NEVER_IN_TREE = ("hidden_checks", "solution", "GUIDE.md", "pairlab-task.toml")


def test_there_are_three_builtin_tasks() -> None:
    assert [d.name for d in builtin_task_dirs()] == [
        "churn-eval-extend", "daily-features-bug", "scoring-service-validation",
    ]


@pytest.mark.timeout(900)  # the first pandas task builds its environment (once per session)
@pytest.mark.parametrize("task_dir", builtin_task_dirs(), ids=lambda d: d.name)
def test_builtin_task_imports_clean_and_its_checks_prove_the_fix(
    task_dir: Path, task_settings: Settings, tmp_path: Path
) -> None:
    manifest = load_manifest(task_dir)
    repo = as_git_repo(task_dir, tmp_path / "repo" / task_dir.name)
    config = import_config(task_settings, allow_local=True)
    prepared = prepare_import(ImportRequest(str(repo), created_by="test"), config, lambda s: None)
    db = open_db(task_settings)
    try:
        with db.atomic():
            rev = install_revision(db, config.store, prepared)
        report = task_store(task_settings).report(rev.task_id, rev.id)

        assert report["post_scan"] == {"clean": True, "findings": []}
        assert report["blockers"] == [] and rev.blockers == ()
        assert report["anonymisation"]["flags"] == []
        checks = report["checks"]
        assert checks["visible"]["passed"], checks["visible"]["output"]
        assert checks["hidden_on_solution"]["passed"], checks["hidden_on_solution"]["output"]
        starter = checks["hidden_on_starter"]
        assert not starter["passed"] and not starter["timed_out"], starter["output"]
        assert starter["exit_code"] == 1, starter["output"]  # tests ran and failed
        assert report["hints"], "the guide has a hint ladder"
        assert report["role_warnings"] == []
        rules = {r["rule"] for r in report["anonymisation"]["replacements"]}
        assert "term" in rules and "email" in rules
        assert rules & {"url-credentials"} or any(r.startswith("secret:") for r in rules), rules

        root = task_settings.data_dir / "tasks" / rev.task_id / rev.id
        tree = root / "tree"
        for never in NEVER_IN_TREE:
            assert not (tree / never).exists(), never
        assert (root / "hidden").is_dir() and (root / "solution").is_dir()
        assert (root / "guide.md").read_text().strip() and (root / "brief.md").read_text().strip()
        terms = [t.lower().encode() for t in manifest.anonymise.deny_terms]
        for path in sorted(p for p in root.rglob("*") if p.is_file() and ".git" not in p.parts):
            data = path.read_bytes()
            rel = path.relative_to(root).as_posix()
            assert not CREDENTIAL.search(data), rel
            if rel in ("report.json", "diff.json"):  # the admin's review: originals, masked
                continue
            for term in terms:
                assert term not in data.lower() and term not in rel.lower().encode(), (rel, term)
            for match in EMAIL.finditer(data):
                assert match.group(0).lower().endswith(b"@example.com"), (rel, match.group(0))

        with db.atomic():
            assert revisions.publish(db, rev.id).is_current
    finally:
        db.conn.close()
