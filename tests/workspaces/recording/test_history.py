"""The snapshot history with real git: exact reconstruction at chosen moments, diffs, limits,
large files, links never followed, restart, and the bundle."""

from __future__ import annotations

import hashlib
import os
import resource
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from workspaces.recording.history import MANIFEST, History, HistoryError, HistoryLimits
from workspaces.recording.watcher import _Tree, is_ignored

T0 = datetime(2025, 6, 1, 9, 0, 0, tzinfo=UTC)
KiB = 1024


def moment(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


@pytest.fixture
def base(tmp_path: Path) -> Path:
    """The task's starting tree (a git checkout, as a workspace is)."""
    tree = tmp_path / "base"
    (tree / "src").mkdir(parents=True)
    (tree / "src" / "pipeline.py").write_text("def load():\n    return []\n")
    (tree / "README.md").write_text("# Task\n")
    (tree / "run.sh").write_text("#!/bin/sh\necho run\n")
    (tree / "run.sh").chmod(0o755)
    subprocess.run(["git", "init", "-q", str(tree)], check=True)
    return tree


def git(repo: Path, *args: str) -> str:
    env = {"PATH": "/usr/bin:/bin", "GIT_DIR": str(repo), "HOME": str(repo),
           "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}
    return subprocess.run(["git", *args], env=env, check=True, capture_output=True,
                          text=True).stdout


def test_three_moments_are_reconstructed_exactly(tmp_path: Path, base: Path,
                                                 workspace: Path) -> None:
    history = History(tmp_path / "history" / "s1.git")
    start = history.init(base, moment(0))
    written: dict[str, dict[str, bytes]] = {}
    shas = []
    contents = [
        {"src/pipeline.py": b"def load():\n    return [1]\n", "notes.txt": b"first\n"},
        {"src/pipeline.py": b"def load():\n    return [1, 2]\n", "data/été.csv": b"a,b\n1,2\n",
         "we\"ird\nname\\.txt": b"odd\n"},
        {"src/pipeline.py": b"def load():\n    return sorted([2, 1])\n", "empty.txt": b""},
    ]
    for step, files in enumerate(contents, start=1):
        for name, data in files.items():
            target = workspace / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        if step == 3:
            (workspace / "notes.txt").unlink()
        sha = history.snapshot(workspace, moment(step * 10), f"step {step}")
        assert sha is not None
        shas.append(sha)
        written[sha] = {p.relative_to(workspace).as_posix(): p.read_bytes()
                        for p in workspace.rglob("*") if p.is_file() and ".git" not in p.parts}
    assert history.snapshot(workspace, moment(40), "no change") is None
    for sha in shas:
        expected = written[sha]
        assert {p for p, _ in history.tree_at(sha)} == set(expected)
        for path, data in expected.items():
            assert history.file_at(sha, path) == data
        assert dict(history.tree_at(sha)) == {p: len(d) for p, d in expected.items()}
    assert history.file_at(shas[2], "notes.txt") is None
    assert history.file_at(start, "src/pipeline.py") == b"def load():\n    return []\n"
    assert history.file_at(start, "../../etc/passwd") is None
    assert [(when, label) for _, when, label in history.commits()] == [
        (moment(0), "task start"), (moment(10), "step 1"), (moment(20), "step 2"),
        (moment(30), "step 3")]
    log = git(history.path, "log", "--reverse", "--format=%an <%ae> %at %ct", "main")
    assert log.splitlines() == [
        f"pairlab <recorder@pairlab.invalid> {int(moment(m).timestamp())} "
        f"{int(moment(m).timestamp())}" for m in (0, 10, 20, 30)]
    assert "100755" in git(history.path, "ls-tree", shas[0], "run.sh")


def test_diff_between_moments(tmp_path: Path, base: Path, workspace: Path) -> None:
    history = History(tmp_path / "s.git")
    start = history.init(base, moment(0))
    (workspace / "src" / "pipeline.py").write_text("def load():\n    return ['fixed']\n")
    (workspace / "new.py").write_text("print('new')\n")
    one = history.snapshot(workspace, moment(1))
    os.rename(workspace / "new.py", workspace / "moved.py")
    two = history.snapshot(workspace, moment(2))
    assert one and two
    diff = history.diff(start, one)
    assert "-    return []\n+    return ['fixed']\n" in diff
    assert "+print('new')" in diff
    assert "rename from new.py\nrename to moved.py" in history.diff(one, two)
    assert history.changed_paths(start, two) == [("A", "moved.py"), ("M", "src/pipeline.py")]
    assert history.diff(start, one, paths=["new.py"]).count("diff --git") == 1
    small = History(history.path, limits=HistoryLimits(max_diff_chars=50))
    assert small.diff(start, one).endswith(" chars]\n") and "…[truncated" in small.diff(start, one)
    with pytest.raises(HistoryError):
        history.diff("--output=/tmp/x", one)


def test_large_and_binary_files_are_recorded_by_size(tmp_path: Path, base: Path,
                                                     workspace: Path) -> None:
    limits = HistoryLimits(max_file_bytes=64 * KiB, max_binary_bytes=8 * KiB)
    history = History(tmp_path / "s.git", limits=limits)
    history.init(base, moment(0))
    big_text = b"row\n" * (32 * KiB)
    blob = bytes(range(256)) * 64  # 16 KiB with NUL bytes
    small_bin = b"\0\1\2" * 100
    (workspace / "data.csv").write_bytes(big_text)
    (workspace / "model.bin").write_bytes(blob)
    (workspace / "tiny.bin").write_bytes(small_bin)
    (workspace / MANIFEST).write_text("mine")  # a candidate's file with the reserved name
    sha = history.snapshot(workspace, moment(1))
    assert sha is not None
    large = {f.path: f for f in history.large_files(sha)}
    assert set(large) == {"data.csv", "model.bin", MANIFEST}
    assert large["data.csv"].sha256 == ""  # over the limit: never read, so never hashed
    assert large["data.csv"].size == len(big_text) and "larger than" in large["data.csv"].reason
    assert large["model.bin"].reason.startswith("binary")
    assert large["model.bin"].sha256 == hashlib.sha256(blob).hexdigest()
    assert large[MANIFEST].reason == "reserved name"
    assert history.file_at(sha, "data.csv") is None
    assert history.file_at(sha, "tiny.bin") == small_bin
    assert dict(history.tree_at(sha))["data.csv"] == len(big_text)
    # an unchanged large file is not a change; a changed one is
    assert history.snapshot(workspace, moment(2)) is None
    (workspace / "data.csv").write_bytes(big_text + b"more\n")
    sha2 = history.snapshot(workspace, moment(3))
    assert sha2 is not None
    assert '"size": 131077' in history.diff(sha, sha2)


def test_sparse_files_cost_the_server_no_cpu_per_snapshot(tmp_path: Path, base: Path,
                                                          workspace: Path) -> None:
    """The attack: 10 GiB of holes (free for the candidate) made every snapshot read and hash
    10 GiB (28 s of server CPU), and ``touch`` made the next one do it again."""
    history = History(tmp_path / "s.git")
    history.init(base, moment(0))
    sparse = [workspace / "holes" / f"{i}.bin" for i in range(20)]
    sparse[0].parent.mkdir()
    for path in sparse[:10]:
        with path.open("wb") as f:
            f.truncate(1024**3)  # 1 GiB each, nothing allocated
    for path in sparse[10:]:
        with path.open("wb") as f:
            f.truncate(1024**2 + 4096)  # under max_file_bytes: only the blocks tell
            f.write(b"x")
    (workspace / "notes.txt").write_text("kept\n")
    tree = watcher_tree(workspace)
    for step in range(1, 4):
        started = cpu_seconds()
        sha = history.snapshot(workspace, moment(step))
        changes = tree.scan() if step == 1 else tree.update([str(workspace / "holes")])[0]
        spent = cpu_seconds() - started
        assert spent < 1.0, f"snapshot {step} took {spent:.1f} s of CPU"
        assert (sha is not None) == (step == 1)  # touched, not changed: no new commit
        if step == 1:
            assert {c.path for c in changes} >= {f"holes/{i}.bin" for i in range(20)}
            assert all(not c.sha256 for c in changes if c.path.startswith("holes/"))
        for path in sparse:  # `touch`: new times, so the next snapshot looks at them again
            os.utime(path, ns=(step * 10**9, step * 10**9))
    large = {f.path: f for f in history.large_files(history.commits()[-1][0])}
    assert {p for p in large if p.startswith("holes/")} == {f"holes/{i}.bin" for i in range(20)}
    assert all(f.sha256 == "" and "not read" in f.reason for f in large.values()
               if f.path.startswith("holes/"))
    assert "sparse" in large["holes/10.bin"].reason  # small enough to read, but holes
    assert history.file_at(history.commits()[-1][0], "notes.txt") == b"kept\n"


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (git)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def watcher_tree(root: Path) -> _Tree:
    return _Tree(root, is_ignored, 2 * 1024**2, 50_000)


def test_the_session_size_limit_lists_files_then_stops_snapshots(
        tmp_path: Path, base: Path, workspace: Path) -> None:
    """Past the session's budget files are listed by size, not stored; snapshots stop for good
    only when even that listing does not fit."""
    limits = HistoryLimits(max_total_bytes=20 * KiB)
    history = History(tmp_path / "s.git", limits=limits)
    history.init(base, moment(0))
    (workspace / "a.txt").write_bytes(b"a" * 8 * KiB)
    assert history.snapshot(workspace, moment(1)) is not None
    (workspace / "b.txt").write_bytes(b"b" * 16 * KiB)
    two = history.snapshot(workspace, moment(2))
    assert two is not None and not history.limit_reached
    [b] = history.large_files(two)
    assert (b.path, b.size) == ("b.txt", 16 * KiB) and "history is full" in b.reason
    assert b.sha256 == "" and "not read" in b.reason  # tried again at every snapshot: not read
    assert history.file_at(two, "b.txt") is None
    (workspace / "b.txt").unlink()
    (workspace / "c.txt").write_text("small")
    three = history.snapshot(workspace, moment(3))
    assert three is not None and history.large_files(three) == []
    assert history.file_at(three, "c.txt") == b"small"
    names = [f"{'long-name-' * 10}{i:03d}.txt" for i in range(200)]
    for name in names:  # the first fits, the rest are listed: 200 long lines are too many
        (workspace / name).write_bytes((name.encode() * 40)[:4 * KiB])
    assert history.snapshot(workspace, moment(4)) is None
    assert history.limit_reached
    reopened = History(history.path, limits=limits)
    assert reopened.snapshot(workspace, moment(5)) is None  # still stopped after a restart
    assert reopened.limit_reached
    assert len(reopened.commits()) == 4
    assert reopened.file_at(reopened.commits()[-1][0], "a.txt") == b"a" * 8 * KiB


def test_links_are_recorded_never_followed_and_fifos_skipped(tmp_path: Path, base: Path,
                                                             workspace: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    os.symlink(secret, workspace / "innocent.txt")
    os.symlink(tmp_path, workspace / "escape")
    os.mkfifo(workspace / "pipe")
    (workspace / ".git" / "objects" / "junk").write_text("never recorded")
    (workspace / "__pycache__").mkdir()
    (workspace / "__pycache__" / "m.pyc").write_bytes(b"\0")
    history = History(tmp_path / "s.git")
    history.init(base, moment(0))
    sha = history.snapshot(workspace, moment(1))
    assert sha is not None
    paths = dict(history.tree_at(sha))
    assert "innocent.txt" in paths and "escape" in paths
    assert not any(p.startswith(("escape/", ".git/", "__pycache__")) or p == "pipe"
                   for p in paths)
    assert history.file_at(sha, "innocent.txt") == str(secret).encode()
    assert "120000" in git(history.path, "ls-tree", sha, "innocent.txt")
    objects = git(history.path, "cat-file", "--batch-all-objects", "--batch-check")
    blobs = [line.split()[0] for line in objects.splitlines() if " blob " in line]
    assert all(b"TOP SECRET" not in git(history.path, "cat-file", "-p", b).encode()
               for b in blobs)


def test_restart_and_bundle(tmp_path: Path, base: Path, workspace: Path) -> None:
    history = History(tmp_path / "s.git")
    first = history.init(base, moment(0))
    assert history.init(base, moment(5)) == first  # idempotent
    (workspace / "x.py").write_text("x = 2\n")
    one = history.snapshot(workspace, moment(1))
    again = History(tmp_path / "s.git")  # pairlab restarted
    assert again.snapshot(workspace, moment(2)) is None
    (workspace / "x.py").write_text("x = 3\n")
    two = again.snapshot(workspace, moment(3))
    assert two is not None and git(again.path, "rev-parse", f"{two}~1").strip() == one
    again.bundle(tmp_path / "history.bundle")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(tmp_path / "history.bundle"), str(clone)],
                   check=True, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                                    "GIT_CONFIG_NOSYSTEM": "1"})
    assert (clone / "x.py").read_text() == "x = 3\n"
    assert (clone / "src" / "pipeline.py").read_bytes() == \
        (workspace / "src" / "pipeline.py").read_bytes()
    assert os.access(clone / "run.sh", os.X_OK)


def test_snapshot_needs_init_and_revisions_are_checked(tmp_path: Path, workspace: Path) -> None:
    history = History(tmp_path / "s.git")
    with pytest.raises(HistoryError, match="init"):
        history.snapshot(workspace, moment(0))
    assert history.commits() == []
    for bad in ("-p", "HEAD@{1}", "main:secret", "a" * 65, ""):
        with pytest.raises(HistoryError):
            history.file_at(bad, "x")


async def test_async_wrappers(tmp_path: Path, base: Path, workspace: Path) -> None:
    history = History(tmp_path / "s.git")
    start = await history.ainit(base, moment(0))
    (workspace / "a.txt").write_text("a")
    sha = await history.asnapshot(workspace, moment(1), "async")
    assert sha is not None
    assert await history.afile_at(sha, "a.txt") == b"a"
    assert ("a.txt", 1) in await history.atree_at(sha)
    assert "+a" in await history.adiff(start, sha)
    assert [label for *_, label in await history.acommits()] == ["task start", "async"]
    await history.abundle(tmp_path / "b.bundle")
    assert (tmp_path / "b.bundle").stat().st_size > 0
