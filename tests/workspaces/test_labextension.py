"""pairlab's JupyterLab extension (workspaces/labextension, built and installed by
scripts/setup) as a real sandboxed workspace sees it: its uid (not root) lists it with
``jupyter labextension list`` as enabled and OK, the workspace's jupyter-server lists it and
serves its files (every one of them readable by that uid: an unreadable install would leave
the candidate without the panel, silently)."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from tests.workspaces.conftest import (
    WorkspaceClient,
    free_uid,
    make_data_dir,
    remove_data_dir,
    require_sandbox,
)
from workspaces.local import LocalProvisioner
from workspaces.provisioner import WorkspaceInfo, WorkspaceSpec

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module"),
              pytest.mark.timeout(600)]
NAME = "pairlab-panel"
INSTALLED = Path(sys.prefix) / "share" / "jupyter" / "labextensions" / NAME
LIST = f"""
import json, os, subprocess
done = subprocess.run([{str(Path(sys.prefix) / "bin" / "jupyter")!r}, "labextension", "list"],
                      capture_output=True, text=True)
print(json.dumps({{"uid": os.getuid(), "out": done.stdout + done.stderr}}))
"""


@dataclass
class Ws:
    info: WorkspaceInfo
    kernel: str


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def ws(env_python: Path) -> AsyncIterator[Ws]:
    require_sandbox()
    if not (INSTALLED / "package.json").is_file():
        pytest.fail(f"{INSTALLED} is missing: run scripts/setup")
    data = make_data_dir()
    provisioner = LocalProvisioner(data / "workspaces")
    info = await provisioner.start(WorkspaceSpec("wlx", free_uid(), env_python))
    try:
        async with WorkspaceClient(info) as client:
            yield Ws(info, await client.start_kernel())
    finally:
        await provisioner.stop(provisioner.live_info(info.workspace_id) or info)
        await asyncio.to_thread(remove_data_dir, data)


async def test_the_sandbox_uid_lists_the_panel_enabled_and_ok(ws: Ws) -> None:
    async with WorkspaceClient(ws.info) as client:
        out = await client.execute(ws.kernel, LIST)
    found = json.loads(out.strip().splitlines()[-1])
    assert found["uid"] != 0
    text = re.sub(r"\x1b\[[0-9;]*m", "", found["out"])
    line = next((line for line in text.splitlines() if NAME in line), None)
    assert line is not None, text
    assert re.search(rf"{NAME} v\S+ enabled\s+OK", line), line


async def test_the_workspace_server_lists_and_serves_the_panel(ws: Ws) -> None:
    async with WorkspaceClient(ws.info) as client:
        status, found = await client.request("GET", "lab/api/extensions")
        assert status == 200, found
        items = found[0] if found and isinstance(found[0], list) else found
        panel = next((item for item in items if item["name"] == NAME), None)
        assert panel is not None, [item["name"] for item in items]
        assert panel["enabled"] is True and panel["status"] == "ok", panel
        # Every file of the install, fetched through the sandboxed server (as its uid reads it).
        files = [p for p in INSTALLED.rglob("*") if p.is_file()]
        assert any(p.name.startswith("remoteEntry.") for p in files), files
        for path in files:
            rel = path.relative_to(INSTALLED).as_posix()
            status, _ = await client.request("GET", f"lab/extensions/{NAME}/{rel}")
            assert status == 200, (rel, status)
