"""common.gitenv: a complete environment (nothing inherited), the hardening every call gets."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from common.gitenv import find_git, git_config_args, git_env


def test_the_environment_is_complete_and_inherits_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_DIR", "/evil")
    monkeypatch.setenv("GIT_SSH_COMMAND", "touch /tmp/pwned")
    env = git_env(tmp_path / "home")
    assert "GIT_DIR" not in env and "GIT_SSH_COMMAND" not in env
    assert env["GIT_CONFIG_NOSYSTEM"] == "1"
    assert env["GIT_CONFIG_GLOBAL"] == os.devnull
    assert env["GIT_TERMINAL_PROMPT"] == "0"
    assert env["GIT_ALLOW_PROTOCOL"] == "none"
    assert env["GIT_CEILING_DIRECTORIES"] == str(tmp_path)
    assert env["HOME"] == str(tmp_path / "home")
    assert git_env(tmp_path, ["https"])["GIT_ALLOW_PROTOCOL"] == "https"


def test_what_differs_is_an_argument(tmp_path: Path) -> None:
    env = git_env(tmp_path, git_dir=tmp_path / "r.git", work_tree=tmp_path / "w",
                  identity=("n", "e@x"), date="2000-01-01T00:00:00+0000")
    assert (env["GIT_DIR"], env["GIT_WORK_TREE"]) == (str(tmp_path / "r.git"),
                                                      str(tmp_path / "w"))
    assert env["GIT_AUTHOR_NAME"] == env["GIT_COMMITTER_NAME"] == "n"
    assert env["GIT_AUTHOR_EMAIL"] == env["GIT_COMMITTER_EMAIL"] == "e@x"
    assert env["GIT_AUTHOR_DATE"] == env["GIT_COMMITTER_DATE"] == "2000-01-01T00:00:00+0000"
    assert "GIT_AUTHOR_NAME" not in git_env(tmp_path)


def test_config_denies_protocols_and_hooks_and_takes_extras() -> None:
    args = git_config_args(["file"], extra=["diff.renames=true"])
    settings = args[1::2]
    assert args[0::2] == ["-c"] * len(settings)
    assert settings[:2] == ["protocol.allow=never", "protocol.file.allow=always"]
    for must in ("core.hooksPath=/dev/null", "core.fsmonitor=false", "credential.helper=",
                 "transfer.fsckObjects=true", "safe.bareRepository=explicit", "gc.auto=0"):
        assert must in settings
    assert settings[-1] == "diff.renames=true"


def test_git_refuses_a_local_clone_when_no_protocol_is_allowed(tmp_path: Path) -> None:
    git = find_git()
    assert git is not None
    source = tmp_path / "source"
    home = tmp_path / "home"
    home.mkdir()
    env = git_env(home)
    subprocess.run([git, *git_config_args(), "init", "-q", str(source)], env=env, check=True)
    done = subprocess.run([git, *git_config_args(), "clone", "-q", f"file://{source}",
                           str(tmp_path / "copy")], env=env, capture_output=True, check=False)
    assert done.returncode != 0
    assert b"not allowed" in done.stderr
