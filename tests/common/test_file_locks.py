"""``common.file_locks.flock``: one holder at a time, across processes; free again when the
holder's descriptor closes or its process dies. ``flock_within`` waits for it a bounded time."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from common.file_locks import flock, flock_within


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


def test_a_bounded_wait_gets_the_lock_once_let_go_and_gives_up_while_it_is_held(
        tmp_path: Path) -> None:
    path = tmp_path / "x.lock"
    held = flock(path)
    assert held is not None
    assert flock_within(path, 0.5) is None  # still held after the wait: given up
    letting_go = threading.Timer(0.5, os.close, (held,))
    letting_go.start()
    try:
        fd = flock_within(path, 60)  # let go during the wait: got it
    finally:
        letting_go.join()
    assert fd is not None
    os.close(fd)
