"""``bench.load`` does not rot: a real run at N=2 for a few seconds (real sandboxed workspaces,
the real proxy, the load client in its own process) measures every kind of candidate event on
the observers' feeds, starves no session, runs the hog, and leaves no process behind."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def bench(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    base = os.environ.get("PAIRLAB_SANDBOX_UID_BASE")
    # past every block the suite takes from the base: the journeys' demo (the base itself) runs
    # for the whole session, and may have started before this test (tests/conftest.py: workers)
    first = int(base) + 40_000 if base else 3_900_000
    env = {**os.environ, "PAIRLAB_SANDBOX_UID_BASE": str(first)}
    return subprocess.run([sys.executable, "-m", "bench.load", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def test_a_bad_size_is_refused_in_words() -> None:
    done = bench("--sizes", "2,zero", timeout=60)
    assert done.returncode == 2
    assert "--sizes must be numbers separated by commas, not '2,zero'" in done.stderr
    done = bench("--sizes", "2", "--seconds", "9999", timeout=60)
    assert done.returncode == 2
    assert "--seconds 5..600, --baseline 0..60, --idle 1..120" in done.stderr


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(400)
def test_two_interviews_are_measured_end_to_end() -> None:
    done = bench("--sizes", "2", "--seconds", "5", "--baseline", "0", "--idle", "1", timeout=380)
    out = done.stdout
    assert done.returncode == 0, out[-3000:] + done.stderr[-3000:]
    sized = out[out.index("-- N=2: 2 interview(s) (session 1 also runs the CPU hog)"):]
    for kind in ("cell.executed", "file.changed", "terminal.command"):
        counted = re.search(rf"^    {re.escape(kind)} +n=(\d+) ", sized, re.M)
        assert counted and int(counted.group(1)) >= 2, f"no {kind} seen by the observers"
    latency = re.search(r"action -> observer, all candidate events: n=(\d+) p50 ([\d.]+) ms "
                        r"p99 ([\d.]+) ms", sized)
    assert latency and int(latency.group(1)) > 0
    assert 0 < float(latency.group(2)) <= float(latency.group(3)) < 10_000
    assert "starved (no event seen, or under half the most cells): none" in sized
    assert re.search(r"the hog's busy loop \(session 1, second kernel\): ok after [\d.]+ s",
                     sized)
    cpu = re.search(r"pairlab CPU: ([\d.]+) s = ([\d.]+) s/s, ([\d.]+) ms per action", sized)
    assert cpu and float(cpu.group(1)) > 0
    workspaces = re.search(r"the run's workspaces \(servers, kernels, shells\): ([\d.]+) s/s",
                           sized)
    # the hog's busy loop alone takes a whole CPU when it can get one; well above 0 however loaded
    assert workspaces and float(workspaces.group(1)) > 0.05, "the workspaces' CPU is not read"
    lag = re.search(r"event-loop lag \(a 50 ms sleep woken late by\): pairlab p50 ([\d.]+) ms "
                    r"p99 ([\d.]+) ms; the load client p50 ([\d.]+) ms", sized)
    assert lag, "no event-loop lag read"
    assert re.search(r"waiting for a CPU \(run-queue wait .*\): pairlab [\d.]+ s/s, the load "
                     r"client [\d.]+ s/s", sized)
    assert "ERROR" not in out
    assert re.search(r"cleanup: 2 workspaces stopped, leftover processes: 0, removed ", out)
