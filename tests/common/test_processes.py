"""common.processes: deadlines, escalation to SIGKILL, the whole group, output caps."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from common.processes import Bounded, DeadlineExceeded, run_bounded, wait_exited

STUBBORN = """
import os, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = os.fork()
if child == 0:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    open(sys.argv[2], "w").write(str(os.getpid()))
    time.sleep(600)
    os._exit(0)
open(sys.argv[1], "w").write(str(os.getpid()))
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _gone(pid: int) -> bool:
    """Dead (or a zombie) within 2 s: SIGKILL is delivered, the reaper may be slower."""
    for _ in range(100):
        if not _alive(pid):
            return True
        time.sleep(0.02)
    return False


def _pid(path: Path) -> int:
    for _ in range(200):
        if path.exists() and path.read_text():
            return int(path.read_text())
        time.sleep(0.02)
    raise AssertionError(f"{path} was never written")


def test_a_child_that_ignores_sigterm_is_killed_with_its_grandchild(tmp_path: Path) -> None:
    leader, grandchild = tmp_path / "leader", tmp_path / "grandchild"
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded) as caught:
        run_bounded([sys.executable, "-c", STUBBORN, str(leader), str(grandchild)],
                    timeout_s=1.0, grace_s=0.3, env=dict(os.environ))
    took = time.monotonic() - started
    assert 1.0 <= took < 5.0
    assert isinstance(caught.value, subprocess.TimeoutExpired)
    assert "timed out after 1.0 seconds" in str(caught.value)
    assert _gone(_pid(leader))
    assert _gone(_pid(grandchild))


def test_a_grandchild_left_behind_after_a_normal_exit_is_killed(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    script = ("import os, subprocess, sys\n"
              "p = subprocess.Popen(['sleep', '600'], stdout=subprocess.DEVNULL,"
              " stderr=subprocess.DEVNULL)\n"
              f"open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
              "print('bye')\n")
    done = run_bounded([sys.executable, "-c", script], timeout_s=10, env=dict(os.environ))
    assert (done.returncode, done.out) == (0, "bye\n")
    assert _gone(_pid(pidfile))


def test_output_is_capped_and_input_is_fed() -> None:
    script = ("import sys; data = sys.stdin.read(); sys.stdout.write(data * 1000);"
              " sys.stderr.write('e' * 10)")
    done = run_bounded([sys.executable, "-c", script], timeout_s=10, input=b"0123456789",
                       max_output=4096, env=dict(os.environ))
    assert done.returncode == 0
    assert done.stdout == b"0123456789" * 409 + b"012345"
    assert done.truncated
    assert done.stderr == b"e" * 10
    small = run_bounded(["/bin/sh", "-c", "echo out; echo err >&2; exit 3"], timeout_s=10)
    assert (small.returncode, small.out, small.err, small.truncated) == (3, "out\n", "err\n",
                                                                         False)


def test_a_missing_program_is_an_oserror() -> None:
    with pytest.raises(FileNotFoundError):
        run_bounded(["/nonexistent/program"], timeout_s=5)


def test_bounded_stops_a_streaming_child_at_its_deadline(tmp_path: Path) -> None:
    leader, grandchild = tmp_path / "leader", tmp_path / "grandchild"
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded), Bounded(
        [sys.executable, "-c", STUBBORN, str(leader), str(grandchild)],
        deadline=time.monotonic() + 0.5, timeout_s=0.5, grace_s=0.3, env=dict(os.environ),
    ) as proc:
        assert proc.stdout is not None
        assert proc.stdout.read() == b""  # returns once the watchdog has killed the group
    assert time.monotonic() - started < 5.0
    assert _gone(_pid(leader))
    assert _gone(_pid(grandchild))


def test_bounded_raises_what_check_returns_and_reports_exit_codes() -> None:
    with pytest.raises(ValueError, match="too big"), Bounded(
        ["sleep", "600"], deadline=time.monotonic() + 60, timeout_s=60,
        check=lambda: ValueError("too big"), poll_s=0.05,
    ) as proc:
        proc.wait()
    with Bounded(["/bin/sh", "-c", "exit 4"], deadline=time.monotonic() + 60,
                 timeout_s=60) as proc:
        assert wait_exited(proc.pid) == 4
