"""The built-in tasks shipped in ``tasks/catalog/``, turned into git repositories for import.

``pairlab demo`` (and the tests) import them through the same path as any admin's repository:
each folder becomes a temporary git repository with one commit, imported with ``--allow-local``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import git

CATALOG = Path(__file__).parent / "catalog"


def builtin_task_dirs() -> list[Path]:
    return sorted(p for p in CATALOG.iterdir() if (p / "pairlab-task.toml").is_file())


def as_git_repo(task_dir: Path, dest: Path) -> Path:
    """Copy a catalog folder to ``dest`` and commit it (as the fictional company would have)."""
    shutil.copytree(task_dir, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc",
                                                                  ".pytest_cache"))
    repo = git.Repo.init(dest, initial_branch="main")
    try:
        env = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null", "HOME": str(dest),
               "GIT_AUTHOR_NAME": "builtin", "GIT_AUTHOR_EMAIL": "builtin@example.com",
               "GIT_COMMITTER_NAME": "builtin", "GIT_COMMITTER_EMAIL": "builtin@example.com"}
        repo.git.add("--all", env=env)
        repo.git.commit("--quiet", "--no-verify", "-m", f"{task_dir.name}", env=env)
    finally:
        repo.close()
    return dest
