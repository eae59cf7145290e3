"""Host-wide claims on sandbox uids, so that two pairlabs on one host never share one.

A sandbox uid's processes are killed by uid when its run or workspace ends (``kill_uid``), so a
uid used by two pairlabs at once means one kills the other's work. Two claims, both ``flock``
locks on files in ``LOCK_DIR`` (root's, on the host, not in any data dir: two pairlabs with two
data dirs must see each other's):

- ``uid_block``: a server (``pairlab serve`` / ``demo``) holds its whole block of uids for as
  long as it runs; a second server whose block overlaps is refused, naming the holder.
- ``try_uid``: one check run (of a server or of another ``pairlab`` command) holds its uid.

A lock dies with its process, so nothing is left held by a pairlab that was killed; the files
of blocks no longer held are removed by the next claim. ``flock`` is what every Unix program
uses for this (``flock(1)``, systemd's ``/run/lock``); no library adds to it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from common.file_locks import flock
from workspaces.errors import SandboxUnavailable

LOCK_DIR = Path("/run/pairlab")
BLOCK_FILE = re.compile(r"block-(\d+)-(\d+)\.lock")
BLOCK_STEP = 1000
"""Suggested bases are rounded up to this."""


class UidBlockTaken(SandboxUnavailable):
    """Another pairlab on this host runs with an overlapping block of sandbox uids."""

    def __init__(self, message: str, free_base: int) -> None:
        super().__init__(message)
        self.free_base = free_base


def lock_dir() -> Path:
    """``LOCK_DIR``, made root-only if it is not there; anything else there is refused."""
    try:
        LOCK_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.lstat(LOCK_DIR)
    except OSError as exc:
        raise SandboxUnavailable(f"the lock folder {LOCK_DIR} could not be made: "
                                 f"{exc.strerror or exc}") from None
    if st.st_uid != os.geteuid() or st.st_mode & 0o022 or not os.path.isdir(LOCK_DIR) \
            or os.path.islink(LOCK_DIR):
        raise SandboxUnavailable(f"the lock folder {LOCK_DIR} must be a folder of pairlab's "
                                 "user that no one else can write to")
    return LOCK_DIR


def try_uid(uid: int) -> int | None:
    """The fd holding ``uid`` for one run (close it to let go), or None if another holds it."""
    return flock(lock_dir() / f"uid-{uid}.lock")


@contextmanager
def uid_block(uids: range, holder: str) -> Iterator[None]:
    """Hold ``uids`` for this process while the context lasts; ``UidBlockTaken`` if another
    running pairlab holds any of them. ``holder`` (the data dir) is named to the one refused."""
    folder = lock_dir()
    guard = flock(folder / ".blocks.lock", wait=True)  # one claim at a time on the host
    mine = folder / f"block-{uids.start}-{uids.stop}.lock"
    try:
        for other in folder.iterdir():
            m = BLOCK_FILE.fullmatch(other.name)
            if m is None or other == mine:
                continue
            theirs = range(int(m.group(1)), int(m.group(2)))
            if theirs.start >= uids.stop or uids.start >= theirs.stop:
                continue
            fd = flock(other)
            if fd is not None:  # nobody holds it: left by a pairlab that was killed
                other.unlink(missing_ok=True)
                os.close(fd)
                continue
            raise _taken(uids, theirs, other.read_text(errors="replace").strip())
        fd = flock(mine)
        if fd is None:
            raise _taken(uids, uids, mine.read_text(errors="replace").strip())
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"pid {os.getpid()}, {holder}".encode())
        except OSError:
            mine.unlink(missing_ok=True)
            os.close(fd)
            raise
    finally:
        os.close(guard)
    try:
        yield
    finally:
        # Under the guard: a claim between the unlink and the close would lock a file with
        # no name, and every later claim would see the block free.
        release_guard: int | None
        try:
            release_guard = flock(folder / ".blocks.lock", wait=True)
        except OSError:  # the lock folder was removed: no claim can race this release
            release_guard = None
        try:
            mine.unlink(missing_ok=True)
        finally:
            os.close(fd)
            if release_guard is not None:
                os.close(release_guard)


def _taken(uids: range, theirs: range, who: str) -> UidBlockTaken:
    free = -(-max(uids.stop, theirs.stop) // BLOCK_STEP) * BLOCK_STEP
    return UidBlockTaken(f"sandbox uids {uids.start}-{uids.stop - 1} overlap the uids "
                         f"{theirs.start}-{theirs.stop - 1} of another pairlab running on this "
                         f"host ({who or 'unknown'}); give each its own block, for example "
                         f"sandbox_uid_base = {free} (PAIRLAB_SANDBOX_UID_BASE={free})", free)
