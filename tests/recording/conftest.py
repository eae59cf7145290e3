"""What the recording tests share: the candidate's workspace, a copy of each test's ``base``
tree (the task's starting state, which each test module defines for itself)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest


@pytest.fixture
def workspace(tmp_path: Path, base: Path) -> Path:
    work = tmp_path / "work"
    subprocess.run(["cp", "-a", str(base), str(work)], check=True)
    return work
