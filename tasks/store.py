"""The task store on disk: one read-only folder per immutable task revision.

::

    DATA_DIR/tasks/<task id>/<revision id>/
        tree/          what a candidate's workspace gets: a git repo with one anonymised commit
        hidden/        hidden checks (never copied to a workspace)
        solution/      reference solution, if the source has one (never copied to a workspace)
        guide.md       interviewer guide with the hint ladder
        brief.md       the candidate brief
        report.json    the anonymisation report, post-scan and check results
        diff.json      side-by-side review diff, secrets masked
    DATA_DIR/tasks/.staging/   imports in progress (removed on every path)
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from tasks.errors import RevisionNotFound, TaskError
from tasks.treerepo import clone_tree


class TaskStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def staging(self) -> Path:
        return self.root / ".staging"

    def revision_dir(self, task_id: str, rev_id: str) -> Path:
        return self.root / task_id / rev_id

    def _existing(self, task_id: str, rev_id: str) -> Path:
        path = self.revision_dir(task_id, rev_id)
        if not path.is_dir():
            raise RevisionNotFound(f"the files of revision {rev_id} are missing from the store")
        return path

    def install(self, staged: Path, task_id: str, rev_id: str) -> Path:
        """Move a staged revision into place and make it read-only."""
        final = self.revision_dir(task_id, rev_id)
        if final.exists():
            raise TaskError(f"the store already holds {rev_id}; it was not overwritten")
        final.parent.mkdir(parents=True, exist_ok=True)
        os.rename(staged, final)
        for path in [*final.rglob("*"), final]:
            if path.is_symlink():
                continue
            path.chmod(path.stat().st_mode & ~0o222)
        return final

    def report(self, task_id: str, rev_id: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(
            (self._existing(task_id, rev_id) / "report.json").read_text(encoding="utf-8")
        )
        return data

    def diff(self, task_id: str, rev_id: str) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = json.loads(
            (self._existing(task_id, rev_id) / "diff.json").read_text(encoding="utf-8")
        )
        return data

    def text(self, task_id: str, rev_id: str, name: str) -> str:
        if name not in ("guide.md", "brief.md"):
            raise ValueError(name)
        path = self._existing(task_id, rev_id) / name
        return path.read_text(encoding="utf-8") if path.exists() else ""

    def tree(self, task_id: str, rev_id: str) -> Path:
        return self._existing(task_id, rev_id) / "tree"

    def hidden(self, task_id: str, rev_id: str) -> Path:
        return self._existing(task_id, rev_id) / "hidden"

    def checkout(self, task_id: str, rev_id: str, dest: Path) -> Path:
        """Write exactly the tree a candidate's workspace gets (with its one-commit repo)."""
        if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            raise TaskError(f"{dest} exists and is not an empty folder")
        if dest.exists():
            dest.rmdir()
        clone_tree(self.tree(task_id, rev_id), dest)
        return dest

    def clear_staging(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)
