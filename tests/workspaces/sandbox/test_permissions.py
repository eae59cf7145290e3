"""File modes: private by default, task environments published to the sandbox uids whatever
the umask they were built under (the defect a fresh deployment met: ``umask 077`` left every
environment ``drwx------ root``, and no candidate could start Python)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from workspaces.sandbox.permissions import (
    PRIVATE_UMASK,
    is_published,
    owner_only,
    publish_read_only,
    remove_tree,
    unreadable,
    writable_by_others,
)


@pytest.fixture
def private_umask() -> Iterator[None]:
    old = os.umask(PRIVATE_UMASK)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_a_tree_written_under_umask_077_is_published_read_only(tmp_path: Path,
                                                               private_umask: None) -> None:
    outside = tmp_path / "secret"
    outside.write_text("not ours")
    env = tmp_path / "env"
    (env / "bin").mkdir(parents=True)
    (env / "lib" / "pkg").mkdir(parents=True)
    (env / "bin" / "tool").write_text("#!/bin/sh\n")
    (env / "bin" / "tool").chmod(0o700)
    (env / "lib" / "pkg" / "mod.py").write_text("x = 1\n")
    (env / "lib" / "link").symlink_to(outside)
    assert mode(env) == 0o700 and mode(env / "lib" / "pkg" / "mod.py") == 0o600
    assert not is_published(env)
    assert unreadable(env) == [env]

    publish_read_only(env)

    assert mode(env) == 0o555
    assert mode(env / "bin") == 0o555 and mode(env / "lib" / "pkg") == 0o555
    assert mode(env / "bin" / "tool") == 0o555
    assert mode(env / "lib" / "pkg" / "mod.py") == 0o444
    assert mode(outside) == 0o600  # a link is never followed
    assert is_published(env)
    assert unreadable(env) == []


def test_unreadable_names_the_first_paths_another_uid_cannot_read(tmp_path: Path) -> None:
    env = tmp_path / "env"
    (env / "lib" / "deep").mkdir(parents=True)
    (env / "lib" / "deep" / "a.py").write_text("")
    (env / "b.py").write_text("")
    publish_read_only(env)
    (env / "lib").chmod(0o700)  # an operator's chmod -R go-rwx on part of it
    (env / "b.py").chmod(0o600)
    assert sorted(unreadable(env)) == [env / "b.py", env / "lib"]


def test_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "db"
    path.write_text("")
    path.chmod(0o600)
    assert owner_only(path)
    path.chmod(0o640)
    assert not owner_only(path)


def test_remove_tree_takes_read_only_trees_and_never_follows_a_link(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    env = tmp_path / "env"
    (env / "lib").mkdir(parents=True)
    (env / "lib" / "mod.py").write_text("")
    (env / "lib" / "out").symlink_to(outside)
    publish_read_only(env)  # 0555 folders: rmtree alone would fail for a non-root owner
    remove_tree(env)
    assert not env.exists()
    assert (outside / "keep.txt").read_text() == "keep"
    link = tmp_path / "link"
    link.symlink_to(outside)
    remove_tree(link)
    assert not link.is_symlink() and (outside / "keep.txt").exists()
    remove_tree(tmp_path / "never-was")  # nothing to do


def test_writable_by_others_finds_the_loose_folder_on_the_way(tmp_path: Path) -> None:
    base = tmp_path / "srv"
    (base / "envs").mkdir(parents=True)
    base.chmod(0o755)
    assert writable_by_others(base / "envs" / "not-yet") is None
    base.chmod(0o777)
    assert writable_by_others(base / "envs" / "not-yet") == base
    base.chmod(0o1777)  # sticky, as /tmp: others cannot swap what is not theirs
    assert writable_by_others(base / "envs") is None
