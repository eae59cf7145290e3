"""Host-wide claims on sandbox uids: what one pairlab holds, another (another process, another
data dir) cannot take; what a killed pairlab held is free again."""

from __future__ import annotations

import fcntl
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

from workspaces.sandbox.run import CHECK_UID_OFFSET, CheckSandbox
from workspaces.sandbox.uid_locks import LOCK_DIR, UidBlockTaken, try_uid, uid_block

HOLD = """
import sys, time
from workspaces.sandbox.uid_locks import uid_block, try_uid
start, stop, check = map(int, sys.argv[1:4])
fd = try_uid(check)
assert fd is not None
with uid_block(range(start, stop), "data dir /elsewhere/var"):
    print("held", flush=True)
    time.sleep(600)
"""


def a_block() -> int:
    """A base no other test uses at the same time (tests of the same run go one by one)."""
    return random.randrange(1_000_000, 3_000_000, 5000)


def holder(base: int) -> subprocess.Popen[str]:
    """Another process holding ``base``'s block of 1064 uids and its first check uid."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(base), str(base + 1064),
                             str(base + CHECK_UID_OFFSET)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "held\n"
    return proc


def kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.stdout is not None
    proc.stdout.close()


def test_a_block_another_process_holds_is_refused_and_free_once_it_is_killed() -> None:
    base = a_block()
    proc = holder(base)
    try:
        with pytest.raises(UidBlockTaken) as refused:
            with uid_block(range(base + 500, base + 1564), "data dir /here/var"):
                pytest.fail("an overlapping block was given")
        assert f"of another pairlab running on this host (pid {proc.pid}, data dir " \
               "/elsewhere/var)" in refused.value.message
        assert refused.value.free_base >= base + 1564
        with uid_block(range(base + 1064, base + 2128), "data dir /here/var"):
            pass  # right after it: nothing shared
        assert try_uid(base + CHECK_UID_OFFSET) is None
    finally:
        kill(proc)  # as a crashed pairlab: nothing released by it
    with uid_block(range(base, base + 1064), "data dir /here/var"):
        pass
    assert not (LOCK_DIR / f"block-{base}-{base + 1064}.lock").exists()
    fd = try_uid(base + CHECK_UID_OFFSET)
    assert fd is not None
    os.close(fd)


def test_check_runs_of_two_data_dirs_never_lease_the_same_uid() -> None:
    """Two pairlabs (two data dirs) on one base: a check uid one leases, the other skips, and
    a uid another process holds is skipped by both."""
    base = a_block()
    with tempfile.TemporaryDirectory(dir="/tmp") as one, \
            tempfile.TemporaryDirectory(dir="/tmp") as two:
        first = CheckSandbox(base, Path(one), Path(one) / "checks")
        second = CheckSandbox(base, Path(two), Path(two) / "checks")
        proc = holder(base)  # holds base + 1000
        try:
            with first.lease() as a, second.lease() as b:
                assert a == base + CHECK_UID_OFFSET + 1
                assert b == base + CHECK_UID_OFFSET + 2
            with second.lease() as again:
                assert again == base + CHECK_UID_OFFSET + 1  # free once the first let go
        finally:
            kill(proc)


def test_a_release_waits_for_a_claim_under_way() -> None:
    """Letting go of a block takes the claims' guard: while another pairlab's claim is under way
    (it holds the guard), the block stays held; it is let go once that claim is done. (A claim
    between the unlink and the close would lock a file with no name, and every later claim
    would see the block free.)"""
    base = a_block()
    block = LOCK_DIR / f"block-{base}-{base + 1064}.lock"
    held, go, released = threading.Event(), threading.Event(), threading.Event()

    def hold_then_let_go() -> None:
        with uid_block(range(base, base + 1064), "data dir /here/var"):
            held.set()
            go.wait()
        released.set()

    thread = threading.Thread(target=hold_then_let_go)
    thread.start()
    try:
        assert held.wait(10)
        claim = os.open(LOCK_DIR / ".blocks.lock", os.O_RDWR)  # another pairlab claiming
        try:
            fcntl.flock(claim, fcntl.LOCK_EX)
            go.set()
            assert not released.wait(0.5), "the block was let go during another's claim"
            assert block.exists()
        finally:
            os.close(claim)  # the claim is done
        assert released.wait(10)
        assert not block.exists()
    finally:
        go.set()
        thread.join(10)
