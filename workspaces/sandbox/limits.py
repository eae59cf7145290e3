"""Resource limits of one workspace, and how each is enforced.

- processes: ``RLIMIT_NPROC`` for the workspace's own uid (threads count too; one uid per
  workspace makes the per-uid limit a per-workspace one) and the cgroup v1 ``pids`` controller;
- memory: the cgroup v1 ``memory`` controller (``memory.limit_in_bytes`` and, with swap accounting,
  ``memory.memsw.limit_in_bytes``) over the server, kernels, terminals and their tmpfs pages; if
  no memory cgroup can be made, ``RLIMIT_AS`` per process instead (weaker, logged);
- CPU: the cgroup v1 ``cpu`` controller: a hard cap of ``cpus`` CPUs (``cpu.cfs_quota_us`` over
  ``cpu.cfs_period_us``; a busy loop on every core gets ``cpus`` of them, no more) and a
  ``cpu.shares`` weight of ``cpu_shares`` (below a nice-0 process's 1024, so under contention
  pairlab's own proxy and recorder run first). Without a ``cpu`` cgroup only the scheduler's
  ordinary fairness applies (logged; see ``cgroups.py``);
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
CPU_PERIOD_US = 100_000
"""The CFS period the quota is counted over (the kernel's default, 100 ms)."""
MIN_CPUS = 0.01
"""1 ms of CPU per 100-ms period: the smallest quota the kernel accepts."""
CPU_SHARES = 512
"""Half the weight of one nice-0 process (1024): the default of ``Limits.cpu_shares``."""


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
    cpus: float | None = 1.0
    """CPUs the workspace's processes may use together (cgroup ``cpu.cfs_quota_us``); None: no
    cap (the bench's baseline)."""
    cpu_shares: int = CPU_SHARES
    """The workspace's weight against its siblings under contention (cgroup ``cpu.shares``)."""

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
        if self.cpus is not None and not MIN_CPUS <= self.cpus <= 4096:
            raise ValueError(f"cpus: must be at least {MIN_CPUS} (the kernel's smallest quota, "
                             "1 ms per 100 ms) or None")
        if not 2 <= self.cpu_shares <= 262_144:
            raise ValueError("cpu_shares: must be 2 to 262144 (the kernel's range)")

    @property
    def cpu_quota_us(self) -> int:
        """``cpu.cfs_quota_us`` for ``cpus`` over ``CPU_PERIOD_US`` (-1: no cap)."""
        return -1 if self.cpus is None else round(self.cpus * CPU_PERIOD_US)


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
