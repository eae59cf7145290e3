"""fetch_snapshot against real repositories, a real loopback smart-HTTP server and real git.

Every test that calls fetch_snapshot checks afterwards that its temp root is empty and that no
git process it started is still alive (the HTTP server's own children are excluded).
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from common.gitenv import git_config_args, git_env
from tasks.errors import FetchFailed, InvalidSource, TreeRefused
from tasks.gitfetch import (
    FetchLimits,
    FetchResult,
    check_tree,
    fetch_snapshot,
    parse_ls_tree,
)
from tasks.source import Source, SourcePolicy, validate_source
from tests.task_repos import commit_files, git
from tests.task_repos import publish_bare as publish
from tests.tasks.githttp import serve_git

HTTP_POLICY = SourcePolicy(allow_http=True, allowed_hosts=frozenset({"127.0.0.1", "localhost"}))
LOCAL_POLICY = SourcePolicy(allow_local=True)


def hostile_repo(bare: Path, parts: list[bytes]) -> None:
    """A bare repo whose tree holds ``ok.txt`` and the path ``parts`` (built with mktree)."""
    git(bare.parent, "init", "-q", "--bare", "-b", "main", str(bare))
    blob = git(bare, "hash-object", "-w", "--stdin", data=b"pwned\n")
    entry = b"100644 blob " + blob.encode() + b"\t" + parts[-1] + b"\0"
    tree = git(bare, "mktree", "-z", data=entry)
    for name in reversed(parts[1:-1]):
        wrapped = b"040000 tree " + tree.encode() + b"\t" + name + b"\0"
        tree = git(bare, "mktree", "-z", data=wrapped)
    kind = "tree" if len(parts) > 1 else "blob"
    oid = tree if len(parts) > 1 else blob
    mode = "040000" if len(parts) > 1 else "100644"
    root = f"100644 blob {blob}\tok.txt\0".encode() + f"{mode} {kind} {oid}\t".encode()
    root += parts[0] + b"\0"
    root_tree = git(bare, "mktree", "-z", data=root)
    commit = git(bare, "commit-tree", "-m", "hostile", root_tree)
    git(bare, "update-ref", "refs/heads/main", commit)


def tree_of(dest: Path) -> dict[str, bytes]:
    found = {}
    for path in sorted(dest.rglob("*")):
        assert not path.is_symlink(), path
        if path.is_file():
            found[path.relative_to(dest).as_posix()] = path.read_bytes()
    return found


def stray_git_processes(
    exclude_tree_of: int | None = None, tmp_root: Path | None = None
) -> list[str]:
    """Git processes still alive: our children named git*, and any git* process (orphans too)
    whose working directory is under ``tmp_root`` (fetch_snapshot runs git there)."""
    skip: set[int] = set()
    if exclude_tree_of is not None and psutil.pid_exists(exclude_tree_of):
        server = psutil.Process(exclude_tree_of)
        skip = {server.pid} | {p.pid for p in server.children(recursive=True)}
    stray = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.pid not in skip and proc.name().startswith("git"):
                stray.append(f"{proc.pid} {proc.name()} {proc.status()}")
        except psutil.NoSuchProcess:
            continue
    if tmp_root is not None:
        for proc in psutil.process_iter(["name"]):
            try:
                if proc.info["name"].startswith("git") and proc.cwd().startswith(str(tmp_root)):
                    stray.append(f"{proc.pid} {proc.name()} in {proc.cwd()}")
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
    return stray


class Fetcher:
    """Calls fetch_snapshot with a dedicated temp root and checks nothing is left behind."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_root = tmp_path / "fetch-tmp"
        self.tmp_root.mkdir()
        self.dest = tmp_path / "dest"
        self.server_pid: int | None = None

    def __call__(
        self, source: Source, limits: FetchLimits | None = None, timeout_s: float = 60.0
    ) -> FetchResult:
        try:
            return fetch_snapshot(source, self.dest, limits, timeout_s, tmp_root=self.tmp_root)
        finally:
            assert list(self.tmp_root.iterdir()) == []
            assert stray_git_processes(self.server_pid, self.tmp_root) == []

    def refused(self, source: Source, error: type[Exception], **kwargs: object) -> str:
        with pytest.raises(error) as info:
            self(source, **kwargs)  # type: ignore[arg-type]
        assert not self.dest.exists(), "a refused fetch must not leave files in dest"
        return str(info.value)


@pytest.fixture
def fetcher(tmp_path: Path) -> Fetcher:
    return Fetcher(tmp_path)


@pytest.fixture
def http_base(served: Path, fetcher: Fetcher) -> Iterator[str]:
    with serve_git(served) as (base, pid):
        fetcher.server_pid = pid
        yield base


FILES = {
    "README.md": b"# task\n",
    "src/model.py": b"def fit(x):\n    return x\n",
    "data/train.csv": b"a,b\n1,2\n",
    "run.sh": b"#!/bin/sh\necho hi\n",
}


@pytest.fixture
def history(tmp_path: Path) -> dict[str, str]:
    """A work repo with two commits, a branch, a light tag and an annotated tag on the first."""
    repo = tmp_path / "work"
    first = commit_files(repo, {"README.md": b"v1\n"}, message="first")
    git(repo, "tag", "light-v1")
    git(repo, "tag", "-a", "-m", "annotated", "v1.0")
    git(repo, "branch", "old")
    head = commit_files(repo, FILES, executable=("run.sh",), message="second")
    return {"repo": str(repo), "first": first, "head": head}


def test_http_fetch_of_the_default_branch_writes_exactly_the_files(
    history: dict[str, str], served: Path, http_base: str, fetcher: Fetcher
) -> None:
    publish(Path(history["repo"]), served, "task")
    source = validate_source(f"{http_base}/task.git", None, None, HTTP_POLICY)
    result = fetcher(source)
    assert result.commit_sha == history["head"]
    assert sorted(result.files) == sorted(FILES)
    assert result.skipped == []
    assert result.total_bytes == sum(len(v) for v in FILES.values())
    assert tree_of(fetcher.dest) == FILES
    assert stat.S_IMODE((fetcher.dest / "run.sh").stat().st_mode) == 0o755
    assert stat.S_IMODE((fetcher.dest / "README.md").stat().st_mode) == 0o644
    assert not (fetcher.dest / ".git").exists()


@pytest.mark.parametrize("ref", ["old", "light-v1", "v1.0", "refs/heads/old", "refs/tags/v1.0",
                                 "FIRST_SHA"])
def test_http_fetch_of_a_branch_tag_or_commit(
    ref: str, history: dict[str, str], served: Path, http_base: str, fetcher: Fetcher
) -> None:
    publish(Path(history["repo"]), served, "task")
    ref = history["first"] if ref == "FIRST_SHA" else ref
    result = fetcher(validate_source(f"{http_base}/task.git", ref, None, HTTP_POLICY))
    assert result.commit_sha == history["first"]
    assert tree_of(fetcher.dest) == {"README.md": b"v1\n"}


def test_http_fetch_by_localhost_name_uses_the_pinned_addresses(
    history: dict[str, str], served: Path, http_base: str, fetcher: Fetcher
) -> None:
    publish(Path(history["repo"]), served, "task")
    port = http_base.rsplit(":", 1)[1]
    source = validate_source(f"http://localhost:{port}/task.git", None, None, HTTP_POLICY)
    assert "127.0.0.1" in source.addresses
    # A name that never resolves works only because git connects to the pinned address.
    pinned = Source(f"http://pairlab-pin.invalid:{port}/task.git", None, None, False,
                    ("127.0.0.1",))
    assert fetcher(pinned).commit_sha == history["head"]


def test_http_redirects_are_not_followed(
    history: dict[str, str], served: Path, http_base: str, fetcher: Fetcher
) -> None:
    publish(Path(history["repo"]), served, "task")
    source = validate_source(f"{http_base}/moved/task.git", None, None, HTTP_POLICY)
    fetcher.refused(source, FetchFailed)


def test_http_fetch_with_a_subdir(
    history: dict[str, str], served: Path, http_base: str, fetcher: Fetcher
) -> None:
    publish(Path(history["repo"]), served, "task")
    result = fetcher(validate_source(f"{http_base}/task.git", "main", "src", HTTP_POLICY))
    assert result.files == ["model.py"]
    assert tree_of(fetcher.dest) == {"model.py": FILES["src/model.py"]}


@pytest.mark.parametrize("form", ["path", "file-url"])
def test_local_fetch_writes_the_same_files(
    form: str, history: dict[str, str], fetcher: Fetcher
) -> None:
    url = history["repo"] if form == "path" else f"file://{history['repo']}"
    result = fetcher(validate_source(url, None, None, LOCAL_POLICY))
    assert result.commit_sha == history["head"]
    assert tree_of(fetcher.dest) == FILES


@pytest.mark.parametrize("ref", ["old", "v1.0", "light-v1", "FIRST_SHA"])
def test_local_fetch_of_a_branch_tag_or_commit(
    ref: str, history: dict[str, str], fetcher: Fetcher
) -> None:
    ref = history["first"] if ref == "FIRST_SHA" else ref
    result = fetcher(validate_source(history["repo"], ref, None, LOCAL_POLICY))
    assert result.commit_sha == history["first"]
    assert tree_of(fetcher.dest) == {"README.md": b"v1\n"}


def test_unknown_and_abbreviated_refs_fail_clearly(
    history: dict[str, str], fetcher: Fetcher
) -> None:
    source = validate_source(history["repo"], "no-such-branch", None, LOCAL_POLICY)
    assert "no-such-branch" in fetcher.refused(source, FetchFailed)
    short = validate_source(history["repo"], history["first"][:10], None, LOCAL_POLICY)
    assert "40 hex" in fetcher.refused(short, FetchFailed)
    unknown = validate_source(history["repo"], "0" * 40, None, LOCAL_POLICY)
    fetcher.refused(unknown, FetchFailed)


def test_missing_or_symlinked_subdir_is_refused(tmp_path: Path, fetcher: Fetcher) -> None:
    repo = tmp_path / "repo"
    commit_files(repo, {"real/a.txt": b"a"}, symlinks={"alias": "real"})
    for subdir in ("nope", "alias", "real/a.txt"):
        source = validate_source(str(repo), None, subdir, LOCAL_POLICY)
        assert "not a directory" in fetcher.refused(source, InvalidSource)


def test_parent_environment_and_global_config_are_not_used(
    history: dict[str, str], tmp_path: Path, fetcher: Fetcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    evil = tmp_path / "evil"
    commit_files(evil, {"EVIL": b"x"})
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text(
        f'[url "file://{evil}"]\n\tinsteadOf = file://{history["repo"]}\n'
    )
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", f"'url.file://{evil}.insteadof'='file://'")
    monkeypatch.setenv("GIT_DIR", str(evil / ".git"))
    result = fetcher(validate_source(history["repo"], None, None, LOCAL_POLICY))
    assert result.commit_sha == history["head"]
    assert tree_of(fetcher.dest) == FILES


def test_dest_must_be_absent_or_empty_and_is_left_empty_on_failure(
    history: dict[str, str], fetcher: Fetcher
) -> None:
    fetcher.dest.mkdir()
    (fetcher.dest / "keep.txt").write_text("x")
    with pytest.raises(ValueError, match="empty directory"):
        fetcher(validate_source(history["repo"], None, None, LOCAL_POLICY))
    (fetcher.dest / "keep.txt").unlink()
    link = fetcher.dest.parent / "link"
    link.symlink_to(fetcher.dest)
    with pytest.raises(ValueError, match="empty directory"):
        fetch_snapshot(validate_source(history["repo"], None, None, LOCAL_POLICY), link)
    with pytest.raises(FetchFailed):
        fetcher(validate_source(history["repo"], "nope", None, LOCAL_POLICY))
    assert fetcher.dest.is_dir() and list(fetcher.dest.iterdir()) == []


# --- hostile sources -----------------------------------------------------------------------


def test_remote_helper_urls_are_refused_and_run_nothing(tmp_path: Path, fetcher: Fetcher) -> None:
    sentinel = tmp_path / "SENTINEL"
    for url in (f"ext::sh -c touch% {sentinel}", f"ext::sh%20-c%20touch%20{sentinel}",
                "fd::0", "fd::3,4"):
        with pytest.raises(InvalidSource):
            validate_source(url, None, None, SourcePolicy(True, frozenset({"x"}), True))
        # fetch_snapshot re-checks the Source it is handed, even one built by hand.
        fetcher.refused(Source(url, None, None, False), InvalidSource)
    assert not sentinel.exists()


def test_git_itself_refuses_ext_and_fd_under_our_config(tmp_path: Path) -> None:
    """Defence in depth: the hardened env/config alone stop ext:: even if it reached git."""
    sentinel = tmp_path / "SENTINEL"
    home = tmp_path / "home"
    home.mkdir()
    attack = f"ext::sh -c touch% {sentinel}"
    for url in (attack, "fd::0"):
        done = subprocess.run(
            ["git", *git_config_args(["https"]), "ls-remote", "--", url],
            env=git_env(home, ["https"]), cwd=home, capture_output=True, check=False,
        )
        assert done.returncode != 0
        assert b"not allowed" in done.stderr
    assert not sentinel.exists()
    # Control: without our hardening the same URL really runs the command.
    subprocess.run(
        ["git", "-c", "protocol.ext.allow=always", "ls-remote", "--", attack],
        env={"PATH": "/usr/bin:/bin", "HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1"},
        cwd=home, capture_output=True, check=False,
    )
    assert sentinel.exists()


def test_option_looking_refs_are_refused_and_run_nothing(
    history: dict[str, str], tmp_path: Path, fetcher: Fetcher
) -> None:
    sentinel = tmp_path / "SENTINEL"
    for ref in (f"--upload-pack=touch {sentinel}", f"--upload-pack=touch%20{sentinel}",
                "--upload-pack=touch", "-oProxyCommand=touch"):
        with pytest.raises(InvalidSource):
            validate_source(history["repo"], ref, None, LOCAL_POLICY)
        source = Source(f"file://{history['repo']}", ref, None, True)
        fetcher.refused(source, InvalidSource)
    with pytest.raises(InvalidSource):
        validate_source(f"--upload-pack=touch {sentinel}", None, None, LOCAL_POLICY)
    fetcher.refused(Source(f"--upload-pack=touch{sentinel}", None, None, True), InvalidSource)
    assert not sentinel.exists()


def test_hand_built_sources_are_rechecked(history: dict[str, str], fetcher: Fetcher) -> None:
    url = f"file://{history['repo']}"
    fetcher.refused(Source(url, None, None, False), InvalidSource)
    for subdir in ("../..", "a/../../b", ".git", "/etc"):
        fetcher.refused(Source(url, None, subdir, True), InvalidSource)


def test_loopback_without_allow_list_and_local_without_flag_are_refused(
    history: dict[str, str], served: Path, http_base: str
) -> None:
    publish(Path(history["repo"]), served, "task")
    port = http_base.rsplit(":", 1)[1]
    with pytest.raises(InvalidSource, match="http://"):
        validate_source(f"{http_base}/task.git", None, None, SourcePolicy())
    no_hosts = SourcePolicy(allow_http=True)
    with pytest.raises(InvalidSource):
        validate_source(f"{http_base}/task.git", None, None, no_hosts)
    with pytest.raises(InvalidSource, match="non-public"):
        validate_source(f"https://localhost:{port}/task.git", None, None, SourcePolicy())
    with pytest.raises(InvalidSource, match="local paths and file:// URLs are refused"):
        validate_source(history["repo"], None, None, SourcePolicy())


def test_symlinks_are_reported_and_never_written(tmp_path: Path, fetcher: Fetcher) -> None:
    repo = tmp_path / "repo"
    head = commit_files(
        repo,
        {"ok.txt": b"ok\n", "dir/real.txt": b"real\n"},
        symlinks={"passwd": "/etc/passwd", "up": "../../..", "dir/escape": "../../../../etc"},
    )
    result = fetcher(validate_source(str(repo), None, None, LOCAL_POLICY))
    assert result.commit_sha == head
    assert sorted(result.files) == ["dir/real.txt", "ok.txt"]
    assert sorted(p for p, _ in result.skipped) == ["dir/escape", "passwd", "up"]
    assert all("symlink" in reason for _, reason in result.skipped)
    assert tree_of(fetcher.dest) == {"dir/real.txt": b"real\n", "ok.txt": b"ok\n"}
    for name in ("passwd", "up", "dir/escape"):
        assert not os.path.lexists(fetcher.dest / name)


def test_submodules_are_reported_and_not_followed(
    tmp_path: Path, served: Path, http_base: str, fetcher: Fetcher
) -> None:
    sub = tmp_path / "sub"
    sub_head = commit_files(sub, {"SUBMODULE_ONLY.txt": b"inside the submodule\n"})
    publish(sub, served, "sub")
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / ".gitmodules").write_text(
        f'[submodule "lib"]\n\tpath = lib\n\turl = {http_base}/sub.git\n'
    )
    (repo / "main.py").write_bytes(b"import lib\n")
    git(repo, "add", ".gitmodules", "main.py")
    git(repo, "update-index", "--add", "--cacheinfo", f"160000,{sub_head},lib")
    git(repo, "commit", "-q", "-m", "with a submodule")
    assert "160000 commit" in git(repo, "ls-tree", "HEAD", "lib")
    publish(repo, served, "task")
    result = fetcher(validate_source(f"{http_base}/task.git", None, None, HTTP_POLICY))
    assert result.files == ["main.py"]
    assert dict(result.skipped).keys() == {".gitmodules", "lib"}
    assert "submodule" in dict(result.skipped)["lib"]
    assert tree_of(fetcher.dest) == {"main.py": b"import lib\n"}


@pytest.mark.parametrize(
    ("limits", "files", "words"),
    [
        (FetchLimits(max_entries=5), {f"f{i}.txt": b"x" for i in range(6)},
         ["6 entries", "max_entries=5"]),
        (FetchLimits(max_total_bytes=250), {f"f{i}.txt": b"x" * 100 for i in range(3)},
         ["300 bytes", "max_total_bytes=250"]),
        (FetchLimits(max_blob_bytes=999), {"big.bin": b"x" * 1000, "small.txt": b"y"},
         ["'big.bin' is 1000 bytes", "max_blob_bytes=999"]),
        (FetchLimits(max_fetch_bytes=100_000), {"random.bin": os.urandom(400_000)},
         ["max_fetch_bytes=100000"]),
    ],
)
def test_size_and_count_caps_refuse_before_writing(
    limits: FetchLimits, files: dict[str, bytes], words: list[str], tmp_path: Path,
    fetcher: Fetcher,
) -> None:
    repo = tmp_path / "repo"
    commit_files(repo, files)
    source = validate_source(str(repo), None, None, LOCAL_POLICY)
    message = fetcher.refused(source, TreeRefused, limits=limits)
    for word in words:
        assert word in message


def test_caps_also_apply_over_http(
    tmp_path: Path, served: Path, http_base: str, fetcher: Fetcher
) -> None:
    repo = tmp_path / "repo"
    commit_files(repo, {f"f{i}.txt": b"x" for i in range(6)})
    publish(repo, served, "many")
    source = validate_source(f"{http_base}/many.git", None, None, HTTP_POLICY)
    assert "max_entries=5" in fetcher.refused(source, TreeRefused, limits=FetchLimits(5))


def test_limits_are_inclusive(tmp_path: Path, fetcher: Fetcher) -> None:
    repo = tmp_path / "repo"
    commit_files(repo, {"a.txt": b"x" * 10, "b.txt": b"y" * 10})
    limits = FetchLimits(max_entries=2, max_total_bytes=20, max_blob_bytes=10)
    result = fetcher(validate_source(str(repo), None, None, LOCAL_POLICY), limits)
    assert result.total_bytes == 20


HOSTILE_PATHS = [
    [b"..", b"x"],
    [b".GIT", b"config"],
    [b"a", b".git", b"hooks", b"x"],
    [b"git~1", b"config"],
    [b".git.", b"config"],
    [b".git ", b"config"],
    [b"new\nline.py"],
    [b"back\\slash.py"],
    [b"esc\x1b[31m.py"],
    [b"dir", b"tab\there"],
    [b"\xff\xfe.py"],
]


@pytest.mark.parametrize("parts", HOSTILE_PATHS, ids=repr)
def test_hostile_path_names_are_refused(
    parts: list[bytes], tmp_path: Path, fetcher: Fetcher
) -> None:
    bare = tmp_path / "hostile.git"
    hostile_repo(bare, parts)
    source = validate_source(str(bare), None, None, LOCAL_POLICY)
    message = fetcher.refused(source, TreeRefused)
    assert "refused" in message or "hostile" in message


@pytest.mark.parametrize("parts", [HOSTILE_PATHS[0], HOSTILE_PATHS[6]], ids=repr)
def test_hostile_path_names_are_refused_over_http(
    parts: list[bytes], served: Path, http_base: str, fetcher: Fetcher
) -> None:
    hostile_repo(served / "hostile.git", parts)
    source = validate_source(f"{http_base}/hostile.git", None, None, HTTP_POLICY)
    fetcher.refused(source, TreeRefused)


@pytest.mark.parametrize("parts", HOSTILE_PATHS, ids=repr)
def test_our_tree_check_refuses_hostile_names_without_relying_on_git_fsck(
    parts: list[bytes], tmp_path: Path
) -> None:
    bare = tmp_path / "hostile.git"
    hostile_repo(bare, parts)
    raw = subprocess.run(
        ["git", "--git-dir", str(bare), "ls-tree", "-r", "-l", "-z", "--full-tree", "main"],
        capture_output=True, check=True, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    ).stdout
    with pytest.raises(TreeRefused):
        check_tree(parse_ls_tree(raw), FetchLimits())


def test_a_server_that_hangs_is_cut_off_and_git_is_killed(
    tmp_path: Path, served: Path, fetcher: Fetcher
) -> None:
    with serve_git(served, mode="hang") as (base, pid):
        fetcher.server_pid = pid
        source = validate_source(f"{base}/task.git", None, None, HTTP_POLICY)
        message = fetcher.refused(source, FetchFailed, timeout_s=1.0)
    assert "did not finish in time (1 s)" in message
