"""What the workspace server no longer does at start (see ``LAUNCHER`` and the server config in
``workspaces/jupyter_config.py``), checked on a real sandboxed server: it never runs ``node``
(JupyterLab's yarn registry lookup), lists kernelspecs only from the workspace's own folder, and
still runs a kernel."""

from __future__ import annotations

import asyncio
import re
import sysconfig
from pathlib import Path

import pytest

from tests.workspaces.conftest import (
    WorkspaceClient,
    free_uid,
    make_data_dir,
    remove_data_dir,
    require_sandbox,
)
from workspaces import jupyter_config
from workspaces.environments import ensure_environment
from workspaces.local import LocalProvisioner
from workspaces.provisioner import WorkspaceSpec
from workspaces.sandbox.bwrap import HostPaths

MARKER = "node-was-run"
# First on the server's PATH (the task environment's bin folder): what JupyterLab would run.
FAKE_NODE = f'#!/bin/sh\ntouch "$HOME/{MARKER}"\n'


@pytest.mark.integration
@pytest.mark.asyncio
@pytest.mark.timeout(600)
async def test_the_server_never_runs_node_and_still_runs_a_kernel(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_sandbox()
    # An environment of this test's own: the fake node must not reach other tests' terminals.
    env_python = await asyncio.to_thread(
        ensure_environment, tmp_path_factory.mktemp("envs-node"), [])
    node = env_python.parent / "node"
    node.write_text(FAKE_NODE)
    node.chmod(0o755)
    data = make_data_dir()
    try:
        provisioner = LocalProvisioner(data / "workspaces")
        info = await provisioner.start(WorkspaceSpec("nonode", free_uid(), env_python))
        try:
            assert not (info.root / MARKER).exists(), "the workspace server ran node"
            # the launcher's collector, off for the imports, is on again before any request
            # (else every cycle the server makes would be kept for as long as it runs)
            log = HostPaths.of(data / "workspaces", "nonode").log.read_text()
            collecting = re.search(r"pairlab: garbage collection on, (\d+) start-up objects "
                                   r"frozen", log)
            assert collecting is not None, log[-2000:]
            assert int(collecting.group(1)) > 10_000
            async with WorkspaceClient(info) as client:
                status, specs = await client.request("GET", "api/kernelspecs")
                assert status == 200
                assert list(specs["kernelspecs"]) == [jupyter_config.KERNEL_NAME]
                kernel_id = await client.start_kernel()
                assert (await client.execute(kernel_id, "print(1 + 1)")).strip() == "2"
        finally:
            await provisioner.stop(info)

        # The control: without the launcher's override, JupyterLab does run this node.
        plain = "".join(line for line in jupyter_config.LAUNCHER.splitlines(keepends=True)
                        if "_yarn_config" not in line)
        assert plain != jupyter_config.LAUNCHER
        monkeypatch.setattr(jupyter_config, "LAUNCHER", plain)
        info = await provisioner.start(WorkspaceSpec("withnode", free_uid(), env_python))
        try:
            assert (info.root / MARKER).exists()
        finally:
            await provisioner.stop(info)
        await provisioner.close()
    finally:
        await asyncio.to_thread(remove_data_dir, data)


def test_the_launcher_hides_only_modules_no_server_code_imports() -> None:
    """The stubbed modules are jsonschema's optional format checkers: nothing the server
    imports names them except jsonschema's ``_format`` (which tolerates their absence)."""
    packages = Path(sysconfig.get_paths()["purelib"])  # where the server's packages are
    users: dict[str, set[str]] = {name: set() for name in jupyter_config.UNUSED_MODULES}
    for top in ("jupyter_server", "jupyterlab", "jupyterlab_server", "jupyter_events",
                "jupyter_client", "jupyter_server_ydoc", "jupyter_server_fileid",
                "jupyter_server_terminals", "jsonschema", "tornado", "nbformat"):
        for path in (packages / top).rglob("*.py"):
            text = path.read_text(errors="replace")
            for name in users:
                if f"import {name}" in text or f"from {name}" in text or f'"{name}"' in text:
                    users[name].add(str(path.relative_to(packages)))
    for name, found in users.items():
        assert found <= {"jsonschema/_format.py"}, (name, found)
