"""A workspace whose candidate fills its disk image (blocks and inodes) and then makes the
server print a lot must still end cleanly: the server's output keeps being drained, ``stop``
returns, the final state is readable, and a restore on the full image works."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from tests.workspaces.conftest import (
    WorkspaceClient,
    free_uid,
    make_data_dir,
    remove_data_dir,
    require_sandbox,
)
from workspaces.local import LocalProvisioner
from workspaces.provisioner import WorkspaceInfo, WorkspaceSpec
from workspaces.sandbox.limits import Limits
from workspaces.sandbox.mounts import is_mount

MiB = 1024 * 1024
FILL = """
import os
n = 0
try:
    with open('big.bin', 'wb') as f:
        while True:
            f.write(b'x' * 1048576)
            f.flush()
except OSError as exc:
    print('disk', exc.errno)
os.makedirs('many', exist_ok=True)
try:
    while True:
        open(f'many/f{n}', 'w').close()
        n += 1
except OSError as exc:
    print('inodes', exc.errno, n)
"""


async def spam(info: WorkspaceInfo, requests: int = 60) -> None:
    """Make the server log ~4 KiB lines (404s of long paths): far more than a pipe holds."""
    long = "a" * 4000
    timeout = aiohttp.ClientTimeout(total=10)
    async with WorkspaceClient(info) as client:
        for i in range(requests):
            status, _ = await client.request("GET", f"api/contents/{long}{i}", timeout=timeout)
            assert status >= 400  # 404, or 500 for a name too long: logged either way


async def answers(info: WorkspaceInfo) -> bool:
    async with WorkspaceClient(info) as client:
        status, _ = await client.request("GET", "api/status",
                                         timeout=aiohttp.ClientTimeout(total=10))
        return bool(status == 200)


@pytest.mark.integration
@pytest.mark.asyncio
@pytest.mark.timeout(300)
async def test_a_full_disk_image_still_ends_cleanly(env_python: Path) -> None:
    """The attack: fill the image's blocks and inodes, then make the server print a lot.
    Root wrote server.log inside the image with no blocks reserved: the log pump died on
    ENOSPC, the server then blocked on its output, and stop raised (no final state)."""
    require_sandbox()
    data = make_data_dir()
    root = data / "workspaces"
    limits = Limits(disk_bytes=96 * MiB, inodes=3000)
    uid = free_uid()
    provisioner = LocalProvisioner(root, limits=limits)
    try:
        info = await provisioner.start(WorkspaceSpec("wsfull", uid, env_python))
        async with WorkspaceClient(info) as client:
            kernel = await client.start_kernel()
            out = await client.execute(kernel, FILL)
        assert "disk 28" in out and "inodes 28" in out, out
        await spam(info)
        assert await answers(info)  # still drained: the server never blocks on its output

        await provisioner.close()  # pairlab restarts: the full image stays mounted
        again = LocalProvisioner(root, limits=limits)
        info = await again.restore(info)  # root's config and log still fit
        await spam(info)
        assert await answers(info)

        await asyncio.wait_for(again.stop(info), timeout=120)  # a hang fails here
        base = root / "wsfull"
        assert not is_mount(base) and not again.image_path("wsfull").exists()
        assert (info.root / "big.bin").stat().st_size > 32 * MiB
        assert (info.root / "many" / "f0").exists()
        assert await again.status(info) == "stopped"
        assert "api/contents/aaaa" in (base / "server.log").read_text(errors="replace")
    finally:
        await provisioner.close()
        await asyncio.to_thread(remove_data_dir, data)
