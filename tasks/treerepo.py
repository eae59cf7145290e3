"""Turn an anonymised tree into a fresh git repository with exactly one commit.

The commit has a neutral author and a fixed date, and the repository has no tags, remotes,
reflog, notes or hook samples, so the same tree always gives the same commit SHA. The tree is
ours (already validated and anonymised), so GitPython is used here only with fixed arguments.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import git

NEUTRAL_NAME = "pairlab"
NEUTRAL_EMAIL = "tasks@pairlab.invalid"
FIXED_DATE = "2000-01-01T00:00:00+0000"
BRANCH = "main"


def neutral_env(home: Path) -> dict[str, str]:
    return {
        "HOME": str(home),
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_AUTHOR_NAME": NEUTRAL_NAME,
        "GIT_AUTHOR_EMAIL": NEUTRAL_EMAIL,
        "GIT_AUTHOR_DATE": FIXED_DATE,
        "GIT_COMMITTER_NAME": NEUTRAL_NAME,
        "GIT_COMMITTER_EMAIL": NEUTRAL_EMAIL,
        "GIT_COMMITTER_DATE": FIXED_DATE,
    }


def commit_tree(tree: Path, message: str) -> str:
    """Make ``tree`` a git repository with one commit of all its files; returns the SHA."""
    if (tree / ".git").exists():
        raise ValueError(f"{tree} is already a git repository")
    repo = git.Repo.init(tree, initial_branch=BRANCH)
    try:
        env = neutral_env(tree / ".git")
        with repo.config_writer() as cfg:
            cfg.set_value("core", "logAllRefUpdates", "false")
            cfg.set_value("core", "hooksPath", "/dev/null")
            cfg.set_value("core", "symlinks", "false")
            cfg.set_value("core", "fileMode", "true")
            cfg.set_value("user", "name", NEUTRAL_NAME)
            cfg.set_value("user", "email", NEUTRAL_EMAIL)
        repo.git.add("--all", "--force", env=env)
        repo.git.commit("--quiet", "--no-verify", "--allow-empty", "-m", message, env=env)
        sha = repo.head.commit.hexsha
    finally:
        repo.close()
    for leftover in ("logs", "hooks", "description", "COMMIT_EDITMSG", "ORIG_HEAD", "info"):
        path = tree / ".git" / leftover
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    return str(sha)


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
