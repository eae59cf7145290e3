"""Resource limits of one workspace, and how each is enforced.

- processes: ``RLIMIT_NPROC`` for the workspace's own uid (threads count too; one uid per
  workspace makes the per-uid limit a per-workspace one) and the cgroup v1 ``pids`` controller;
- memory: the cgroup v1 ``memory`` controller (``memory.limit_in_bytes`` and, with swap accounting,
  ``memory.memsw.limit_in_bytes``) over the server, kernels, terminals and their tmpfs pages; if
  no memory cgroup can be made, ``RLIMIT_AS`` per process instead (weaker, logged);
- file size: ``RLIMIT_FSIZE`` (a write past it fails with ``EFBIG``/``SIGXFSZ``);
- open files: ``RLIMIT_NOFILE``; core dumps: ``RLIMIT_CORE`` = 0;
- disk use and files: the whole workspace folder (``work``, ``run``, everything its uid can
  write) is a loop-mounted ext4 image of ``disk_bytes`` with ``inodes`` inodes
  (``workspaces/sandbox/mounts.py``), so the kernel refuses a write past either at once
  (``ENOSPC``).
  Only with the image explicitly switched off (a loud development mode) is disk use measured
  every ``disk_check_interval_s`` instead, killing the workspace's processes but the server
  above ``disk_bytes``. ``RLIMIT_FSIZE`` caps every single file. ``/tmp`` and ``/dev/shm`` are
  tmpfs with a fixed size, charged to the memory cgroup.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

MiB = 1024 * 1024
GiB = 1024 * MiB


@dataclass(frozen=True)
class Limits:
    processes: int = 512
    """Processes and threads of the workspace's uid (RLIMIT_NPROC, cgroup ``pids.max``)."""
    memory_bytes: int = 2 * GiB
    """Memory of everything in the workspace together (cgroup), swap included."""
    file_size_bytes: int = 1 * GiB
    """Largest single file (RLIMIT_FSIZE)."""
    open_files: int = 4096
    """Open file descriptors per process (RLIMIT_NOFILE)."""
    disk_bytes: int = 4 * GiB
    """Size of the workspace's disk image (everything it writes outside its tmpfs)."""
    inodes: int = 200_000
    """Files, folders and links the workspace may have (inodes of its disk image)."""
    tmp_bytes: int = 512 * MiB
    """Size of the private ``/tmp`` tmpfs."""
    disk_check_interval_s: float = 10.0

    def __post_init__(self) -> None:
        if self.processes < 64:
            raise ValueError("processes: a jupyter-server with one kernel needs at least 64")
        if self.memory_bytes < 128 * MiB:
            raise ValueError("memory_bytes: a jupyter-server needs at least 128 MiB")
        for name in ("file_size_bytes", "open_files", "disk_bytes", "tmp_bytes", "inodes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be positive")
        if self.disk_check_interval_s <= 0:
            raise ValueError("disk_check_interval_s: must be positive")


def disk_usage(folders: Iterable[Path], max_entries: int = 1_000_000) -> int:
    """Bytes allocated on disk under ``folders`` (each inode counted once, symlinks not followed).

    Stops counting after ``max_entries`` entries and returns what it has (an over-estimate is not
    needed: a huge file count is itself reported by the caller's size check soon enough).
    """
    seen: set[tuple[int, int]] = set()
    total = 0
    entries = 0
    stack = [str(folder) for folder in folders]
    while stack and entries < max_entries:
        current = stack.pop()
        try:
            with os.scandir(current) as scan:
                for entry in scan:
                    entries += 1
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    key = (info.st_dev, info.st_ino)
                    if key in seen:
                        continue
                    seen.add(key)
                    total += info.st_blocks * 512
                    if stat.S_ISDIR(info.st_mode):
                        stack.append(entry.path)
        except OSError:
            continue
    return total


async def watch_disk(folders: list[Path], limits: Limits, over: Callable[[int], None]) -> None:
    """Every ``disk_check_interval_s``, measure ``folders``; above ``disk_bytes`` call
    ``over(used)`` in a worker thread (it kills the workspace's writers). Runs until cancelled."""
    while True:
        await asyncio.sleep(limits.disk_check_interval_s)  # periodic, not a readiness wait
        used = await asyncio.to_thread(disk_usage, folders)
        if used > limits.disk_bytes:
            await asyncio.to_thread(over, used)
