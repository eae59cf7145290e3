"""``common.file_locks.flock``: one holder at a time, across processes; free again when the
holder's descriptor closes or its process dies."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from common.file_locks import flock


def test_a_second_holder_is_refused_until_the_first_lets_go(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    first = flock(path)
    assert first is not None
    assert flock(path) is None  # another open file description: refused, not waited for
    os.close(first)
    again = flock(path, wait=True)
    os.close(again)


def test_a_killed_holder_leaves_nothing_held(tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from common.file_locks import flock; assert flock(Path(sys.argv[1])) is not None; "
         "print('held', flush=True); time.sleep(60)", str(path)],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert flock(path) is None
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    fd = flock(path)
    assert fd is not None
    os.close(fd)
