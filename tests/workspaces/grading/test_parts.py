"""The parts under the recording service: copying a candidate's tree, reading pytest's
verdicts, and where the hidden checks go."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from workspaces.grading import pytest_runner as grading_pytest
from workspaces.grading.harness import INI_TEXT, parse_report
from workspaces.grading.hidden import (
    CheckPlan,
    checks_path_from_report,
    prepare_copy,
    summarise,
)
from workspaces.recording.tree_copy import copy_tree
from workspaces.sandbox.run import TIME_LIMIT


def test_copy_tree_never_follows_a_link_or_blocks(tmp_path: Path) -> None:
    src = tmp_path / "work"
    (src / "pkg").mkdir(parents=True)
    (src / "pkg" / "a.py").write_text("A = 1\n")
    (src / "run.sh").write_text("#!/bin/sh\n")
    (src / "run.sh").chmod(0o755)
    (src / "big.bin").write_bytes(b"x" * 5000)
    (src / "secret-link").symlink_to("/etc/passwd")
    (src / "dir-link").symlink_to(tmp_path)
    os.mkfifo(src / "pipe")
    (src / "__pycache__").mkdir()
    (src / "__pycache__" / "a.pyc").write_bytes(b"\0")

    plain = copy_tree(src, tmp_path / "plain", links=False, max_file_bytes=4096)
    assert sorted(str(p.relative_to(tmp_path / "plain"))
                  for p in (tmp_path / "plain").rglob("*")) == ["pkg", "pkg/a.py", "run.sh"]
    assert (tmp_path / "plain" / "run.sh").stat().st_mode & 0o111
    assert {s["path"]: s["reason"] for s in plain.skipped} == {
        "big.bin": "larger than 4096 bytes", "secret-link": "symbolic link",
        "dir-link": "symbolic link"}
    assert (plain.files, plain.bytes) == (2, 16)

    linked = copy_tree(src, tmp_path / "linked", links=True)
    assert os.readlink(tmp_path / "linked" / "secret-link") == "/etc/passwd"
    assert (linked.files, linked.links) == (3, 2)
    assert not (tmp_path / "linked" / "pipe").exists()


def test_the_runners_verdicts(tmp_path: Path) -> None:
    """pairlab's runner (here on the host, on a test file of our own) streams each test's
    outcome over the pipe it is given, and an ``end`` line; without that line, no verdict."""
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "test_x.py").write_text(
        "import pytest\n"
        "@pytest.fixture\ndef broken():\n    raise RuntimeError('no fixture')\n"
        "def test_ok():\n    pass\n"
        "def test_bad():\n    print('noise')\n    assert 1 == 2, 'one is not two'\n"
        "@pytest.mark.skip(reason='later')\ndef test_later():\n    pass\n"
        "def test_setup(broken):\n    pass\n")
    (tmp_path / "pytest.ini").write_text(INI_TEXT)
    runner = Path(grading_pytest.__file__)
    read_fd, write_fd = os.pipe()
    try:
        run = subprocess.run(  # our own runner and our own test file
            [sys.executable, "-I", "-B", str(runner), "-c", str(tmp_path / "pytest.ini"),
             f"--rootdir={tree}", f"--confcutdir={tree}", "-p", "no:cacheprovider",
             "--import-mode=append", "-q", "test_x.py"],
            cwd=tree, capture_output=True, text=True, check=False, pass_fds=(write_fd,),
            env={"PATH": "/usr/bin:/bin", "PAIRLAB_REPORT_FD": str(write_fd),
                 "PAIRLAB_TREE": str(tree), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
    finally:
        os.close(write_fd)
    with os.fdopen(read_fd, "rb") as stream:
        data = stream.read()
    cases, code = parse_report(data)
    assert cases is not None and code == run.returncode == 1, (run.stdout, run.stderr, data)
    by_name = {c["name"]: c for c in cases}
    assert {n: c["status"] for n, c in by_name.items()} == {
        "test_x.py::test_ok": "passed", "test_x.py::test_bad": "failed",
        "test_x.py::test_later": "skipped", "test_x.py::test_setup": "error"}
    assert "one is not two" in by_name["test_x.py::test_bad"]["message"]
    assert "noise" in by_name["test_x.py::test_bad"]["output"]
    assert "no fixture" in by_name["test_x.py::test_setup"]["message"]
    assert by_name["test_x.py::test_later"]["message"] == "Skipped: later"
    result = summarise(cases, run.returncode, None, run.stdout, 10, "python -m pytest -q x")
    assert (result["status"], result["passed"], result["failed"], result["errors"],
            result["skipped"]) == ("failed", 1, 1, 1, 1)
    assert result["checks"][0]["status"] != "passed"  # failures first
    cut_short = data[:data.rindex(b'{"kind": "end"')]
    assert parse_report(cut_short) == (None, None)
    assert parse_report(b"not json\n[1]\n" + data) == (cases, 1)
    assert summarise(None, 4, None, "", 1, "c")["status"] == "error"
    assert summarise(None, None, TIME_LIMIT, "", 1, "c")["status"] == "error"
    assert summarise([], 0, None, "", 1, "c")["status"] == "passed"


def test_where_the_hidden_checks_go() -> None:
    report = {"checks": {"hidden_on_starter": {"command": "python -m pytest -q checks/hidden/"}}}
    assert checks_path_from_report(report) == "checks/hidden"
    assert checks_path_from_report({}) == "hidden_checks"
    for hostile in ("../../etc", "/abs", "a;b", "x/../../y"):
        bad = {"checks": {"hidden_on_solution": {"command": f"python -m pytest -q {hostile}"}}}
        assert checks_path_from_report(bad) == "hidden_checks"


def test_a_link_the_candidate_planted_on_the_checks_path_takes_no_write_out(
        tmp_path: Path) -> None:
    victim = tmp_path / "victim"  # a host folder the candidate's link points at
    victim.mkdir()
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    (hidden / "test_h.py").write_text("def test_h():\n    pass\n")
    work = tmp_path / "work"
    work.mkdir()

    def fill(dest: Path) -> None:
        dest.mkdir()
        (dest / "checks").symlink_to(victim)  # checks/hidden would land in the victim

    plan = CheckPlan(hidden, "checks/hidden", tmp_path / "python")
    tree, _ = prepare_copy(work, fill, plan)
    assert list(victim.iterdir()) == []
    assert not (tree / "checks").is_symlink()
    assert (tree / "checks" / "hidden" / "test_h.py").read_text().startswith("def test_h")


def test_the_checks_replace_whatever_the_candidate_left_at_their_path(tmp_path: Path) -> None:
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    (hidden / "test_h.py").write_text("def test_h():\n    pass\n")
    for name, left in (("nothing", None), ("folder", "dir"), ("file", "file")):
        work = tmp_path / name
        work.mkdir()

        def fill(dest: Path, left: str | None = left) -> None:
            dest.mkdir()
            if left == "dir":
                (dest / "hidden_checks").mkdir()
                (dest / "hidden_checks" / "test_forged.py").write_text("")
            elif left == "file":
                (dest / "hidden_checks").write_text("")

        tree, _ = prepare_copy(work, fill, CheckPlan(hidden, "hidden_checks", tmp_path / "py"))
        assert sorted(p.name for p in (tree / "hidden_checks").iterdir()) == ["test_h.py"]


def test_the_revisions_visible_tests_go_back_over_whatever_the_candidate_made_of_them(
        tmp_path: Path) -> None:
    """A visible test the candidate edited, or replaced by a fifo, a folder or a link out of the
    copy, is put back from the revision and named; an unchanged one is not named; a test the
    candidate added stays; nothing is written through the link."""
    revision = tmp_path / "revision"
    (revision / "tests").mkdir(parents=True)
    for name in ("test_same.py", "test_edited.py", "test_fifo.py", "test_dir.py",
                 "test_link.py", "helpers.py"):
        (revision / "tests" / name).write_text(f"# {name}\n")
    victim = tmp_path / "victim.py"
    victim.write_text("host file\n")
    work = tmp_path / "work"
    work.mkdir()

    def fill(dest: Path) -> None:
        (dest / "tests").mkdir(parents=True)
        (dest / "tests" / "test_same.py").write_text("# test_same.py\n")
        (dest / "tests" / "test_edited.py").write_text("def test_x():\n    pass\n")
        os.mkfifo(dest / "tests" / "test_fifo.py")
        (dest / "tests" / "test_dir.py").mkdir()
        (dest / "tests" / "test_link.py").symlink_to(victim)
        (dest / "tests" / "test_mine.py").write_text("# mine\n")

    plan = CheckPlan(None, "tests", tmp_path / "py", revision_tree=revision)
    tree, edited = prepare_copy(work, fill, plan)
    assert edited == ["tests/helpers.py", "tests/test_dir.py", "tests/test_edited.py",
                      "tests/test_fifo.py", "tests/test_link.py"]
    for name in ("test_same.py", "test_edited.py", "test_fifo.py", "test_dir.py",
                 "test_link.py", "helpers.py"):
        path = tree / "tests" / name
        assert not path.is_symlink() and path.read_text() == f"# {name}\n", name
    assert (tree / "tests" / "test_mine.py").read_text() == "# mine\n"
    assert victim.read_text() == "host file\n"


def test_a_single_visible_test_file_goes_back_too(tmp_path: Path) -> None:
    """A visible command on one file (``python -m pytest -q tests/test_api.py``): the
    candidate's edit of that file does not run; the revision's does, and it is named."""
    revision = tmp_path / "revision"
    (revision / "tests").mkdir(parents=True)
    (revision / "tests" / "test_api.py").write_text("def test_api():\n    assert False\n")
    work = tmp_path / "work"
    work.mkdir()

    def fill(dest: Path) -> None:
        (dest / "tests").mkdir(parents=True)
        (dest / "tests" / "test_api.py").write_text("def test_api():\n    pass\n")

    plan = CheckPlan(None, "tests/test_api.py", tmp_path / "py", revision_tree=revision)
    tree, edited = prepare_copy(work, fill, plan)
    assert edited == ["tests/test_api.py"]
    assert (tree / "tests" / "test_api.py").read_text() == "def test_api():\n    assert False\n"
