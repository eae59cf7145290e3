"""Moving files into and out of a workspace's disk image, under attack and after a crash:
no copy-out as root while a process of the workspace's uid still runs (it could swap a folder
for a symlink under root's ``cp``), and a move into a new image that was killed half-way is
rolled back from the whole copy, by the next start and by the sweep."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

from tests.workspaces.conftest import free_uid, make_data_dir, remove_data_dir, require_sandbox
from workspaces.local import LocalProvisioner
from workspaces.provisioner import WorkspaceSpec
from workspaces.sandbox import mounts
from workspaces.sandbox.cgroups import pids_of_uid

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@pytest.mark.asyncio
async def test_no_copy_out_as_root_while_a_process_of_the_uid_runs(env_python: Path) -> None:
    """The attack: a process of the workspace's uid that outlived stop swaps folders for
    symlinks while root copies the image out. Now the image stays mounted (its files readable
    where they are) until nothing of the uid runs; the sweep then copies it out."""
    require_sandbox()
    data = make_data_dir()
    root = data / "workspaces"
    uid = free_uid()
    provisioner = LocalProvisioner(root)
    survivor: subprocess.Popen[bytes] | None = None
    try:
        info = await provisioner.start(WorkspaceSpec("wsettle", uid, env_python))
        (info.root / "kept.txt").write_text("kept\n")
        survivor = subprocess.Popen(["setpriv", f"--reuid={uid}", f"--regid={uid}",
                                     "--clear-groups", "--", "sleep", "600"])
        await asyncio.sleep(0.2)
        assert survivor.pid in pids_of_uid(uid)
        await provisioner.stop(info)
        assert mounts.is_mount(root / "wsettle") and provisioner.image_path("wsettle").exists()
        assert (info.root / "kept.txt").read_text() == "kept\n"
        assert not (root / ".settling-wsettle").exists()
        survivor.kill()
        survivor.wait()
        survivor = None
        assert await LocalProvisioner(root).sweep() == ["wsettle"]
        assert not mounts.is_mount(root / "wsettle")
        assert not provisioner.image_path("wsettle").exists()
        assert (info.root / "kept.txt").read_text() == "kept\n"
    finally:
        if survivor is not None:
            survivor.kill()
            survivor.wait()
        await provisioner.close()
        await asyncio.to_thread(remove_data_dir, data)


def killed_while_moving_in(provisioner: LocalProvisioner, workspace_id: str, uid: int) -> None:
    """The state a pairlab killed in the middle of ``_mount``'s copy-in leaves: the earlier
    plain folder (the only whole copy) renamed to ``.settling-<id>-in``, a new image mounted
    at ``<id>`` holding part of it."""
    root = provisioner.root
    base = root / workspace_id
    (base / "work" / "sub").mkdir(parents=True)
    for name in ("a.txt", "sub/b.txt"):
        (base / "work" / name).write_text(f"{name}\n")
    for path in (base / "work", base / "work" / "sub", base / "work" / "a.txt",
                 base / "work" / "sub" / "b.txt"):
        os.chown(path, uid, uid)
    old = root / f".settling-{workspace_id}-in"
    base.rename(old)
    image = provisioner.image_path(workspace_id)
    mounts.make_image(image, provisioner.limits.disk_bytes, provisioner.limits.inodes)
    base.mkdir()
    mounts.mount_image(image, base)
    (base / "work").mkdir()
    (base / "work" / "a.txt").write_text("a.txt\n")  # sub/b.txt was not copied yet


@pytest.mark.asyncio
async def test_a_start_after_a_crash_while_moving_in_has_every_file(env_python: Path) -> None:
    require_sandbox()
    data = make_data_dir()
    root = data / "workspaces"
    uid = free_uid()
    provisioner = LocalProvisioner(root)
    try:
        killed_while_moving_in(provisioner, "wsin", uid)
        info = await provisioner.start(WorkspaceSpec("wsin", uid, env_python))
        assert (info.root / "sub" / "b.txt").read_text() == "sub/b.txt\n"
        assert (info.root / "a.txt").read_text() == "a.txt\n"
        assert mounts.is_mount(root / "wsin") and not (root / ".settling-wsin-in").exists()
        await provisioner.stop(info)
        assert (info.root / "sub" / "b.txt").read_text() == "sub/b.txt\n"
    finally:
        await provisioner.close()
        await asyncio.to_thread(remove_data_dir, data)


@pytest.mark.asyncio
async def test_the_sweep_rolls_back_a_crash_while_moving_in() -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting needs root")
    data = make_data_dir()
    root = data / "workspaces"
    root.mkdir(mode=0o711)
    provisioner = LocalProvisioner(root)
    try:
        killed_while_moving_in(provisioner, "wsin2", free_uid())
        await provisioner.sweep()
        base = root / "wsin2"
        assert not mounts.is_mount(base) and not provisioner.image_path("wsin2").exists()
        assert (base / "work" / "sub" / "b.txt").read_text() == "sub/b.txt\n"
        assert not (root / ".settling-wsin2-in").exists()
    finally:
        await asyncio.to_thread(remove_data_dir, data)
