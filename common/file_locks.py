"""Host-wide exclusive locks on files (``flock``), held by an open file descriptor.

``flock`` is what every Unix program uses for this (``flock(1)``, systemd's ``/run/lock``): the
kernel lets go when the descriptor is closed or its process dies, so a killed holder never
leaves a lock behind. No library adds to it.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from pathlib import Path
from typing import Literal, overload


@overload
def flock(path: Path, *, wait: Literal[True]) -> int: ...
@overload
def flock(path: Path, *, wait: bool = False) -> int | None: ...


def flock(path: Path, *, wait: bool = False) -> int | None:
    """An open fd holding an exclusive lock on ``path`` (made if missing), or None if another
    open file holds it (only without ``wait``)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return None
        raise
    return fd


POLL_S = 0.2


def flock_within(path: Path, seconds: float) -> int | None:
    """``flock(path)``, trying again every ``POLL_S`` for up to ``seconds``; None if another
    open file still holds it then. Polled because ``flock(2)`` has no timeout (an alarm signal
    would interrupt it, but signals reach only the main thread, and this runs in others)."""
    deadline = time.monotonic() + seconds
    while (fd := flock(path)) is None:
        if time.monotonic() >= deadline:
            return None
        time.sleep(POLL_S)
    return fd
