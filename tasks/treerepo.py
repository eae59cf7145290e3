"""Turn an anonymised tree into a fresh git repository with exactly one commit.

The commit has a neutral author and a fixed date, and the repository has no tags, remotes,
reflog, notes or hook samples, so the same tree always gives the same commit SHA. The tree is
ours (already validated and anonymised); git runs through GitPython with fixed arguments, the
hardened settings of ``common.gitenv`` and a deadline.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import git

from common.gitenv import find_git, git_config_args, git_env

NEUTRAL_NAME = "pairlab"
NEUTRAL_EMAIL = "tasks@pairlab.invalid"
FIXED_DATE = "2000-01-01T00:00:00+0000"
BRANCH = "main"
STARTING_POINT = "Starting point"
"""The task commit's message: fixed, so nothing of the task's id or title reaches a candidate
through ``git log``."""
GIT_TIMEOUT_S = 300.0
"""For one git command on a tree (``add`` of a whole task tree is the long one)."""
_REPO_CONFIG = [("core.logallrefupdates", "false"), ("core.hooksPath", "/dev/null"),
                ("core.symlinks", "false"), ("core.filemode", "true"),
                ("user.name", NEUTRAL_NAME), ("user.email", NEUTRAL_EMAIL)]
"""Written into the repository's own config (it travels with the tree into workspaces)."""


def run_git(tree: Path, *args: str, env: dict[str, str]) -> str:
    """git ``args`` on the repository at ``tree``: stdout, or ``RuntimeError`` with git's message.

    GitPython runs it and lays ``env`` over the server's environment; ``common.gitenv`` sets
    every variable that changes what git reads (config, attributes, replace objects, objects,
    index, templates, repository discovery). Its deadline is GitPython's ``kill_after_timeout``
    (SIGKILL to git and its children): the one git pairlab runs outside ``common.processes``,
    on a tree of its own with fixed arguments.
    """
    binary = find_git()
    if binary is None:
        raise RuntimeError("git is not installed")
    try:
        out = git.Git(str(tree)).execute(
            [binary, *git_config_args(), *args], env=env, kill_after_timeout=GIT_TIMEOUT_S,
            strip_newline_in_stdout=False)
    except git.GitCommandError as exc:
        raise RuntimeError(f"git {args[0]} failed in {tree}: {str(exc.stderr).strip()[-500:]}"
                           ) from None
    return str(out)


def commit_tree(tree: Path, message: str) -> str:
    """Make ``tree`` a git repository with one commit of all its files; returns the SHA."""
    if (tree / ".git").exists():
        raise ValueError(f"{tree} is already a git repository")
    tree = tree.absolute()
    env = git_env(tree / ".git", git_dir=tree / ".git", work_tree=tree,
                  identity=(NEUTRAL_NAME, NEUTRAL_EMAIL), date=FIXED_DATE)
    run_git(tree, "init", "--quiet", f"--initial-branch={BRANCH}", env=env)
    for key, value in _REPO_CONFIG:
        run_git(tree, "config", key, value, env=env)
    run_git(tree, "add", "--all", "--force", env=env)
    run_git(tree, "commit", "--quiet", "--no-verify", "--allow-empty", "-m", message, env=env)
    with git.Repo(tree) as repo:  # reads the ref file
        sha = repo.head.commit.hexsha
    for leftover in ("logs", "hooks", "description", "COMMIT_EDITMSG", "ORIG_HEAD", "info"):
        path = tree / ".git" / leftover
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    return sha


def clone_tree(repo_dir: Path, dest: Path) -> None:
    """Copy a task tree (with its one-commit repository) to a workspace or checkout folder."""
    shutil.copytree(repo_dir, dest, symlinks=False, copy_function=shutil.copy2)
    for path in [dest, *dest.rglob("*")]:
        if path.is_symlink():
            path.unlink()
        elif path.is_dir():
            path.chmod(0o755)
        else:
            path.chmod(0o755 if path.stat().st_mode & 0o100 else 0o644)
