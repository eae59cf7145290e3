"""The built-in tasks shipped in ``tasks/catalog/``, turned into git repositories for import.

``pairlab demo`` (and the tests) import them through the same path as any admin's repository:
each folder becomes a temporary git repository with one commit, imported with ``--allow-local``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from common.gitenv import git_env
from tasks.treerepo import run_git

CATALOG = Path(__file__).parent / "catalog"
AUTHOR = ("builtin", "builtin@example.com")


def builtin_task_dirs() -> list[Path]:
    return sorted(p for p in CATALOG.iterdir() if (p / "pairlab-task.toml").is_file())


def as_git_repo(task_dir: Path, dest: Path) -> Path:
    """Copy a catalog folder to ``dest`` and commit it (as the fictional company would have)."""
    shutil.copytree(task_dir, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc",
                                                                  ".pytest_cache"))
    work_tree = dest.absolute()
    env = git_env(work_tree, git_dir=work_tree / ".git", work_tree=work_tree, identity=AUTHOR)
    run_git(work_tree, "init", "--quiet", "--initial-branch=main", env=env)
    run_git(work_tree, "add", "--all", env=env)
    run_git(work_tree, "commit", "--quiet", "--no-verify", "-m", f"{task_dir.name}", env=env)
    return dest
