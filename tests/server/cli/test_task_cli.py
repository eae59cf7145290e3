"""``pairlab task ...`` run for real as a subprocess: import local repositories with
``--allow-local``, list, show, publish, acknowledge and check out what a workspace would get."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.task_repos import (
    COMPANY,
    FAKE_AWS_KEY,
    FAKE_PASSWORD,
    NEUTRAL_AUTHOR,
    TASK_ID,
    Run,
    git,
    make_repo,
    tiny_task,
    tree_files,
)

# The first test to need the shared environments folder builds it (about a minute).
# slow: every test runs the real ``pairlab task`` command over whole imports
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

Pairlab = Callable[..., Run]


def ok(result: Run) -> Run:
    assert result.returncode == 0, result
    assert "Traceback" not in result.stderr
    return result


def one_line_error(result: Run, *words: str) -> str:
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("pairlab: ")
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def store(tmp_path: Path) -> Path:
    return tmp_path / "cli-data" / "tasks"


def test_import_list_show_publish_and_checkout(pairlab: Pairlab, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "src")
    first = ok(pairlab("task", "import", str(repo), "--allow-local", "--json"))
    data = json.loads(first.stdout)
    assert data["revision"]["id"] == f"{TASK_ID}-r1" and data["revision"]["status"] == "review"
    summary = data["summary"]
    assert summary["blockers"] == [] and summary["post_scan_findings"] == 0
    assert summary["visible_tests"] == "passed" and summary["hidden_on_starter"] == "failed"
    assert summary["replacements"] > 0 and summary["dropped"] >= 1
    assert "import: fetching one snapshot" in first.stderr

    second = ok(pairlab("task", "import", f"file://{repo}", "--allow-local"))
    lines = second.stdout.splitlines()
    assert lines[0] == f"revision {TASK_ID}-r2 (review)"
    assert lines[1].strip().startswith(f"files {summary['files']}, replacements ")
    assert "visible tests passed" in second.stdout

    listed = json.loads(ok(pairlab("task", "list", "--json")).stdout)
    assert [(t["id"], t["revisions"], t["current_revision"]) for t in listed["tasks"]] == [
        (TASK_ID, 2, None)
    ]
    assert [r["id"] for r in listed["revisions"]] == [f"{TASK_ID}-r1", f"{TASK_ID}-r2"]

    shown = json.loads(ok(pairlab("task", "show", f"{TASK_ID}-r1", "--json")).stdout)
    assert shown["report"]["tree_commit"] == shown["revision"]["tree_commit"]
    assert shown["report"]["post_scan"]["clean"]
    assert FAKE_AWS_KEY not in json.dumps(shown) and FAKE_PASSWORD not in json.dumps(shown)

    assert ok(pairlab("task", "publish", f"{TASK_ID}-r2")).stdout.strip() == (
        f"{TASK_ID}-r2 is now published"
    )
    text = ok(pairlab("task", "show", TASK_ID)).stdout
    assert f"{TASK_ID}-r1\treview" in text and f"{TASK_ID}-r2\tpublished (current)" in text

    dest = tmp_path / "checkout"
    assert ok(pairlab("task", "checkout", f"{TASK_ID}-r2", str(dest))).stdout.strip() == (
        f"wrote {TASK_ID}-r2 to {dest}"
    )
    assert_one_commit_repo(dest, shown["revision"]["tree_commit"])
    files = tree_files(dest)
    assert files == tree_files(store(tmp_path) / TASK_ID / f"{TASK_ID}-r2" / "tree")
    for never in ("hidden_checks", "solution", "GUIDE.md", "pairlab-task.toml", "deploy"):
        assert not (dest / never).exists(), never
    assert not any(COMPANY.lower().encode() in data.lower() for data in files.values())

    refused = pairlab("task", "checkout", f"{TASK_ID}-r1", str(dest))
    one_line_error(refused, "not an empty folder")


def assert_one_commit_repo(dest: Path, tree_commit: str) -> None:
    """A fresh repository: exactly one commit by the neutral author, no tags/remotes/reflog."""
    assert git(dest, "rev-list", "--all", "--count") == "1"
    assert git(dest, "rev-parse", "HEAD") == tree_commit
    assert git(dest, "log", "-1", "--format=%an <%ae>|%cn <%ce>") == (
        f"{NEUTRAL_AUTHOR}|{NEUTRAL_AUTHOR}"
    )
    assert git(dest, "log", "-1", "--format=%ad|%cd", "--date=iso-strict") == (
        "2000-01-01T00:00:00+00:00|2000-01-01T00:00:00+00:00"
    )
    assert git(dest, "for-each-ref", "--format=%(refname)") == "refs/heads/main"
    assert git(dest, "tag", "--list") == "" and git(dest, "remote") == ""
    assert not (dest / ".git" / "logs").exists()
    assert git(dest, "status", "--porcelain", "--untracked-files=all") == ""


def test_local_paths_need_allow_local(pairlab: Pairlab, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "src")
    for url in (str(repo), f"file://{repo}"):
        result = pairlab("task", "import", url)
        line = one_line_error(result, "--allow-local")
        assert "PAIRLAB_GIT_ALLOW_LOCAL=true (setting git_allow_local)" in line
        assert result.stdout == ""
    assert not (store(tmp_path) / TASK_ID).exists()
    staging = store(tmp_path) / ".staging"
    assert not staging.exists() or list(staging.iterdir()) == []
    assert json.loads(ok(pairlab("task", "list", "--json")).stdout)["tasks"] == []


def test_an_id_with_a_deny_listed_term_is_refused(pairlab: Pairlab, tmp_path: Path) -> None:
    task_id = f"{COMPANY.lower()}-totals"
    repo = make_repo(tmp_path / "src", tiny_task(task_id))
    result = pairlab("task", "import", str(repo), "--allow-local")
    assert result.returncode == 2 and result.stdout == "", result
    *progress, last = result.stderr.strip().splitlines()
    assert "import: reading the manifest" in progress and "Traceback" not in result.stderr
    assert last == (
        f"pairlab: the task manifest is invalid: pairlab-task.toml: task.id: {task_id!r} "
        f"contains the deny-listed term {COMPANY!r}; an id is a stable key and is never "
        "rewritten: choose an id without it")
    assert not (store(tmp_path) / task_id).exists()
    assert json.loads(ok(pairlab("task", "list", "--json")).stdout)["tasks"] == []


def test_a_rules_file_adds_a_deny_term(pairlab: Pairlab, tmp_path: Path) -> None:
    extra = {"notes/halcyon_plan.md": b"Halcyon moves to HALCYON_V2 next quarter.\n"}
    repo = make_repo(tmp_path / "src", tiny_task(extra=extra))
    rules = tmp_path / "rules.toml"
    rules.write_text('[anonymise]\ndrop = ["notes/*.tmp"]\n\n'
                     '[anonymise.replace]\n"Halcyon" = "Contoso"\n')
    data = json.loads(ok(pairlab("task", "import", str(repo), "--allow-local", "--json",
                                 "--rules", str(rules))).stdout)
    rev_id = data["revision"]["id"]
    assert data["summary"]["blockers"] == []
    dest = tmp_path / "checkout"
    ok(pairlab("task", "checkout", rev_id, str(dest)))
    assert (dest / "notes" / "contoso_plan.md").read_text() == (
        "Contoso moves to CONTOSO_V2 next quarter.\n"
    )
    assert not any(b"halcyon" in blob.lower() for blob in tree_files(dest).values())
    report = json.loads(ok(pairlab("task", "show", rev_id, "--json")).stdout)["report"]
    befores = {r["before"] for r in report["anonymisation"]["replacements"]}
    assert {"Halcyon", "HALCYON"} <= befores

    rules.write_text('[anonymise.replace]\n"Halcyon" = 3\n')
    bad = pairlab("task", "import", str(repo), "--allow-local", "--rules", str(rules))
    assert bad.returncode == 2, bad
    assert bad.stderr.splitlines()[-1] == (
        "pairlab: the task manifest is invalid: rules.toml: anonymise.replace.Halcyon: "
        "must be a string, not an integer"
    )
    assert not (store(tmp_path) / TASK_ID / f"{TASK_ID}-r2").exists()


def test_a_flagged_revision_is_published_after_acknowledgement(
    pairlab: Pairlab, tmp_path: Path
) -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 24
    repo = make_repo(tmp_path / "src", tiny_task(extra={"docs/chart.png": png}))
    result = ok(pairlab("task", "import", str(repo), "--allow-local", "--publish"))
    assert result.stdout.splitlines()[0] == f"revision {TASK_ID}-r1 (review)"
    assert "blocks publishing: 1 flagged file(s)" in result.stdout
    one_line_error(pairlab("task", "publish", f"{TASK_ID}-r1"), "cannot be published",
                   "acknowledgement")
    acknowledged = json.loads(ok(pairlab("task", "acknowledge", f"{TASK_ID}-r1",
                                         "--json")).stdout)
    assert acknowledged["revision"]["flags_acknowledged_by"] == "cli"
    assert ok(pairlab("task", "publish", f"{TASK_ID}-r1")).stdout.strip() == (
        f"{TASK_ID}-r1 is now published"
    )


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("task", "publish", "nope-r9"), ["nope-r9"]),
        (("task", "checkout", "nope-r9", "/tmp/never-written"), ["nope-r9"]),
        (("task", "import", "ext::sh", "--allow-local"), ["remote-helper"]),
    ],
    ids=["publish", "checkout", "ext-url"],
)
def test_bad_input_is_one_line(pairlab: Pairlab, args: tuple[str, ...], words: list[str]) -> None:
    one_line_error(pairlab(*args), *words)
    assert not Path("/tmp/never-written").exists()


def test_a_post_scan_finding_inside_a_zip_is_accepted_with_a_reason(
    pairlab: Pairlab, tmp_path: Path
) -> None:
    bundle = io.BytesIO()
    with zipfile.ZipFile(bundle, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("inner/notes.txt", f"{COMPANY} only\n")
    repo = make_repo(tmp_path / "src", tiny_task(extra={"data/bundle.zip": bundle.getvalue()}))
    ok(pairlab("task", "import", str(repo), "--allow-local"))
    rev = f"{TASK_ID}-r1"
    ok(pairlab("task", "acknowledge", rev))
    one_line_error(pairlab("task", "publish", rev), "cannot be published", "not accepted")
    shown = ok(pairlab("task", "show", rev)).stdout
    assert "data/bundle.zip › inner/notes.txt" in shown and "(not accepted)" in shown
    one_line_error(pairlab("task", "accept", rev, "--path", "data/bundle.zip", "--reason", " "),
                   "the reason is empty")
    one_line_error(pairlab("task", "accept", rev, "--finding", "feedfacefeedface",
                           "--reason", "fine"), "no post-scan finding")
    accepted = json.loads(ok(pairlab("task", "accept", rev, "--path", "data/bundle.zip",
                                     "--reason", "a synthetic archive", "--json")).stdout)
    assert accepted["unaccepted"] == 0
    assert {a["path"] for a in accepted["acceptances"]} == {"data/bundle.zip › inner/notes.txt"}
    assert {a["reason"] for a in accepted["acceptances"]} == {"a synthetic archive"}
    assert "accepted by cli: a synthetic archive" in ok(pairlab("task", "show", rev)).stdout
    assert ok(pairlab("task", "publish", rev)).stdout.strip() == f"{rev} is now published"
