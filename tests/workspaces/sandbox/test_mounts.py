"""workspaces/sandbox/mounts.py on the real kernel: an image and a tmpfs refuse writes and files
past their size and inode count (ENOSPC), mount points are seen, a deleted image is found
orphaned."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from workspaces.sandbox import mounts

MiB = 1024 * 1024
pytestmark = pytest.mark.integration


@pytest.fixture
def folder() -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting needs root")
    path = Path(tempfile.mkdtemp(prefix="plmt-", dir="/tmp"))  # noqa: S108 - private folder
    try:
        yield path
    finally:
        for point in sorted(mounts.mount_points(), key=lambda p: len(p.parts), reverse=True):
            if point.is_relative_to(path):
                mounts.unmount(point)
        if not any(point.is_relative_to(path) for point in mounts.mount_points()):
            shutil.rmtree(path)  # never through a mount still there (the sweep reports it)


def fill(target: Path) -> tuple[int, int]:
    """Errno of writing 1 MiB blocks until refused, and of making files until refused."""
    codes = []
    try:
        with (target / "big").open("wb") as f:
            for _ in range(1000):
                f.write(b"x" * MiB)
    except OSError as exc:
        codes.append(exc.errno or 0)
    (target / "big").unlink()
    try:
        for i in range(100_000):
            (target / f"f{i}").touch()
    except OSError as exc:
        codes.append(exc.errno or 0)
    return codes[0], codes[1]


def test_an_image_refuses_writes_and_files_past_its_limits(folder: Path) -> None:
    image, target = folder / ".images" / "w1.ext4", folder / "w1"
    target.mkdir()
    mounts.make_image(image, 64 * MiB, 1024)
    assert image.stat().st_mode & 0o777 == 0o600
    assert image.stat().st_blocks * 512 < 8 * MiB  # sparse: nothing paid up front
    mounts.mount_image(image, target)
    assert mounts.is_mount(target) and not mounts.is_mount(folder)
    assert fill(target) == (errno.ENOSPC, errno.ENOSPC)
    assert image.stat().st_blocks * 512 <= 64 * MiB
    mounts.unmount(target)
    assert not mounts.is_mount(target)
    with pytest.raises(OSError, match="mkfs.ext4 failed"):
        mounts.make_image(folder / ".images" / "tiny.ext4", 4096, 1024)
    assert not (folder / ".images" / "tiny.ext4").exists()


def test_a_tmpfs_refuses_writes_and_files_past_its_limits(folder: Path) -> None:
    target = folder / "tmp"
    target.mkdir()
    mounts.mount_tmpfs(target, 16 * MiB, 500)
    assert mounts.is_mount(target)
    assert fill(target) == (errno.ENOSPC, errno.ENOSPC)
    mounts.unmount(target)


def test_an_image_deleted_while_mounted_is_orphaned(folder: Path) -> None:
    image, target = folder / "ws" / ".images" / "w2.ext4", folder / "w 2"  # a space: escaped
    target.mkdir()
    mounts.make_image(image, 32 * MiB, 1024)
    mounts.mount_image(image, target)
    assert mounts.is_mount(target) and target not in mounts.orphaned_images()
    image.unlink()
    assert target in mounts.orphaned_images()
    mounts.unmount(target)
    assert target not in mounts.orphaned_images()
