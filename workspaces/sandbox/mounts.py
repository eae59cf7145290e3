"""Filesystems the kernel bounds: a loop-mounted ext4 image per workspace (its disk and inode
limit) and tmpfs mounts of a fixed size and inode count.

A workspace's folder ``<root>/<id>`` is the mount point of a sparse ext4 image
``<root>/.images/<id>.ext4`` of exactly the disk limit, made with exactly the inode limit, so
every write of the workspace's uid (``fallocate``, sparse files made dense, one file per inode)
fails with ``ENOSPC`` at the limit, at once, and the host's disk can lose at most the image's
size. ``nosuid,nodev`` (not ``noexec``: candidates run scripts); ``discard``, so what the
workspace deletes is given back to the host (holes punched in the image). Blocks are reserved
for root on top of the limit (``ROOT_RESERVE_BYTES``): root writes the server log and the config
there, and they must fit when the candidate has filled the disk.

The programs are util-linux's ``mount``/``umount`` and e2fsprogs' ``mkfs.ext4``: no Python
library wraps loop-device set-up, and ``mount -o loop`` allocates the loop device and frees it
again at unmount (autoclear), so no device is left behind by a crash between two calls. Each
runs with a deadline (``common.processes.run_bounded``) in its own session, and a failure is an
``OSError`` whose message is the program's own last line.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from common.processes import DeadlineExceeded, run_bounded

SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
IMAGE_MODE = 0o600
TIMEOUT_S = 60.0
ROOT_RESERVE_BYTES = 32 * 1024 * 1024
"""Blocks only root may use, added to the image: two capped server logs and the config."""


def run_tool(argv: list[str], timeout_s: float = TIMEOUT_S) -> None:
    """Run a system tool to completion; ``OSError`` with its last line of output if it fails."""
    try:
        done = run_bounded(argv, timeout_s=timeout_s, env={"PATH": SYSTEM_PATH, "LANG": "C"})
    except DeadlineExceeded:
        raise OSError(f"{argv[0]} did not finish within {timeout_s:.0f} s") from None
    except FileNotFoundError:
        raise OSError(f"{argv[0]} is not installed") from None
    if done.returncode != 0:
        lines = (done.err or done.out).strip().splitlines() or [
            f"exit code {done.returncode}"]
        raise OSError(f"{argv[0]} failed: {lines[-1].strip()[:300]}")


def make_image(image: Path, size_bytes: int, inodes: int,
               root_reserve_bytes: int = 0) -> None:
    """A new sparse file of ``size_bytes + root_reserve_bytes`` (mode 0600) holding an empty
    ext4 filesystem with ``inodes`` inodes, its root folder root's, of which the last
    ``root_reserve_bytes`` only root may fill (ext4's reserved blocks). Nothing is allocated up
    front (lazy inode table and journal initialisation): the host pays only for what is
    written into it."""
    total = size_bytes + root_reserve_bytes
    reserved_percent = f"{100 * root_reserve_bytes / total:.4f}"
    image.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(image, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 IMAGE_MODE)
    try:
        os.ftruncate(fd, total)
    finally:
        os.close(fd)
    try:
        run_tool(["mkfs.ext4", "-q", "-F", "-m", reserved_percent, "-N", str(inodes),
                  "-L", "pairlab-ws",
              "-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard,root_owner=0:0",
              str(image)])
    except OSError:
        image.unlink(missing_ok=True)
        raise


def mount_image(image: Path, target: Path, *, read_only: bool = False) -> None:
    """Loop-mount ``image`` (ext4) on the existing folder ``target``: nosuid, nodev. The inode
    tables of a new image are holes, which read as zeros: the kernel need not write them."""
    options = "loop,nosuid,nodev,noatime,noinit_itable,discard" + (",ro" if read_only else "")
    run_tool(["mount", "-t", "ext4", "-o", options, str(image), str(target)])


def mount_tmpfs(path: Path, size_bytes: int, inodes: int, *, mode: int = 0o700,
                name: str = "tmpfs") -> None:
    """A tmpfs of ``size_bytes`` and ``inodes`` inodes on the existing folder ``path``:
    nosuid, nodev (writes past either fail with ``ENOSPC``); ``name`` is its source in the
    mount table (what a sweep looks for)."""
    run_tool(["mount", "-t", "tmpfs", "-o",
          f"size={size_bytes},nr_inodes={inodes},mode={mode:o},nosuid,nodev",
          name, str(path)])


def unmount(target: Path, timeout_s: float = 10.0) -> None:
    """Unmount ``target``; while it is busy (a reader still has a file open), retry until
    ``timeout_s``, then detach it lazily (the kernel frees it, and its loop device, once the
    last file is closed). ``OSError`` if it cannot be unmounted at all."""
    deadline = time.monotonic() + timeout_s
    delay = 0.05
    while True:
        try:
            run_tool(["umount", str(target)])
            return
        except OSError as exc:
            if not is_mount(target):
                return
            if "busy" not in str(exc):
                raise
            if time.monotonic() > deadline:
                run_tool(["umount", "--lazy", str(target)])
                return
        time.sleep(delay)  # a reader's open file, not a readiness wait: back off
        delay = min(delay * 2, 0.5)


def _unescape(field: str) -> str:
    r"""``/proc/self/mountinfo`` writes space, tab, newline and backslash as ``\ooo``."""
    out = bytearray()
    raw = os.fsencode(field)
    i = 0
    while i < len(raw):
        if raw[i] == 0x5C and len(raw[i + 1:i + 4]) == 3 and raw[i + 1:i + 4].isdigit():
            out.append(int(raw[i + 1:i + 4], 8))
            i += 4
        else:
            out.append(raw[i])
            i += 1
    return os.fsdecode(bytes(out))


def _mounts() -> list[tuple[Path, str]]:
    """``(mount point, source)`` of every mount this process sees."""
    found: list[tuple[Path, str]] = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        fields = line.split(" ")
        if len(fields) > 4 and "-" in fields[5:]:
            rest = fields[fields.index("-", 5) + 1:]
            found.append((Path(_unescape(fields[4])), _unescape(rest[1]) if len(rest) > 1
                          else ""))
    return found


def mount_points() -> set[Path]:
    """Every mount point this process sees."""
    return {point for point, _ in _mounts()}


def orphaned_images() -> list[Path]:
    """Mount points of workspace images (``.../.images/*.ext4``) whose file was deleted while
    mounted (a data folder removed under a pairlab that kept its live workspaces mounted):
    no one can use them again, only unmount them."""
    found = []
    for point, source in _mounts():
        name = Path(source).name
        if not name.startswith("loop"):
            continue
        try:
            backing = Path(f"/sys/block/{name}/loop/backing_file").read_text().strip()
        except OSError:
            continue
        if backing.endswith(" (deleted)") and "/.images/" in backing and \
                backing.removesuffix(" (deleted)").endswith(".ext4"):
            found.append(point)
    return found


def is_mount(path: Path) -> bool:
    """True if ``path`` itself is a mount point (``/proc/self/mountinfo``: unlike
    ``os.path.ismount``, it also sees a bind or loop mount of the same filesystem)."""
    return Path(os.path.abspath(path)) in mount_points()
