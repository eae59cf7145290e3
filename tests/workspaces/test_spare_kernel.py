"""The spare kernel: a real sandboxed workspace starts one kernel with its server, hides it from
the kernel list, and hands that very process to the first notebook, moved to the notebook's
folder (with the task's files copied in after it started importable); the next notebook gets a
kernel of its own."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.workspaces.conftest import WorkspaceClient, kernel_pids, started_workspace
from workspaces.local import LocalProvisioner
from workspaces.provisioner import WorkspaceInfo

module_loop = pytest.mark.asyncio(loop_scope="module")


async def wait_for_kernels(uid: int, count: int, limit_s: float = 60.0) -> list[int]:
    async with asyncio.timeout(limit_s):
        while len(pids := await asyncio.to_thread(kernel_pids, uid)) < count:
            await asyncio.sleep(0.05)
    return pids


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def workspace(env_python: Path) -> AsyncIterator[tuple[LocalProvisioner, WorkspaceInfo]]:
    async with started_workspace(env_python, "wsspare") as (provisioner, info):
        # The spare is already starting: the task's files arrive after it (as at a claim).
        tree = Path(tempfile.mkdtemp(prefix="plspare-", dir="/tmp"))
        try:
            (tree / "sub").mkdir()
            (tree / "sub" / "helper.py").write_text(
                "WHERE = 'copied in after the kernel started'\n")
            await provisioner.fill(info, tree)
        finally:
            shutil.rmtree(tree)
        yield provisioner, info


@pytest.mark.integration
@module_loop
@pytest.mark.timeout(600)
async def test_the_first_notebook_gets_the_spare_kernel_moved_to_its_folder(
    workspace: tuple[LocalProvisioner, WorkspaceInfo],
) -> None:
    _, info = workspace
    [spare] = await wait_for_kernels(info.uid, 1)  # before anyone asked for a kernel
    async with WorkspaceClient(info) as client:
        status, listed = await client.request("GET", "api/kernels")
        assert (status, listed) == (200, []), "the spare is not in the kernel list"

        kernel = await client.start_kernel("sub/analysis.ipynb")
        status, listed = await client.request("GET", "api/kernels")
        assert [k["id"] for k in listed] == [kernel]
        out = await client.execute(kernel, (
            "import os, helper\n"
            "print(os.getpid() > 0, os.getcwd(), helper.WHERE, sep='|')\n"
            "print(os.environ.get('JPY_SESSION_NAME', '').endswith('sub/analysis.ipynb'),"
            " '_pairlab_move' in dir(), sep='|')\n"))
        first, second = out.strip().split("\n")
        assert first == "True|/workspace/sub|copied in after the kernel started"
        assert second == "True|False", "the session's name set, nothing left in the namespace"
        # The same process: no kernel was started for this notebook.
        assert await asyncio.to_thread(kernel_pids, info.uid) == [spare]
        # Restarted, it comes back where a kernel started for this notebook would.
        status, _ = await client.request("POST", f"api/kernels/{kernel}/restart")
        assert status == 200
        out = await client.execute(kernel, "import os\n"
                                   "print(os.getcwd(), os.environ.get('JPY_SESSION_NAME'))")
        cwd, name = out.split()
        assert cwd == "/workspace/sub" and name.endswith("sub/analysis.ipynb")
        [spare] = await asyncio.to_thread(kernel_pids, info.uid)  # the restarted process

        other = await client.start_kernel("other.ipynb")
        assert other != kernel
        pids = await wait_for_kernels(info.uid, 2)
        assert spare in pids and len(pids) == 2
        assert (await client.execute(other, "import os; print(os.getcwd())")).strip() == \
            "/workspace"
        for kernel_id in (kernel, other):
            await client.request("DELETE", f"api/kernels/{kernel_id}")


@pytest.mark.integration
@module_loop
@pytest.mark.timeout(600)
async def test_a_spare_that_cannot_be_moved_is_shut_down_not_left_beside_a_new_kernel(
        env_python: Path) -> None:
    """The candidate made the notebook's folder unreadable to themselves: moving the spare there
    fails (as starting a kernel there would). The spare is shut down, not left running hidden
    or listed; the next notebook gets a kernel of its own, the only one."""
    async with started_workspace(env_python, "wsspar2") as (provisioner, info):
        await wait_for_kernels(info.uid, 1)
        async with WorkspaceClient(info) as client:
            status, _ = await client.request("PUT", "api/contents/locked",
                                             json={"type": "directory"})
            assert status == 201
            out = await client.execute(await client.start_kernel("scratch.ipynb"),
                                       "import os; os.chmod('locked', 0); print('ok')")
            assert out.strip() == "ok"
            # That notebook took the spare; a second workspace start gives a fresh one.
        info = await provisioner.restore(info)
        [spare] = await wait_for_kernels(info.uid, 1)
        async with WorkspaceClient(info) as client:
            body = {"path": "locked/nb.ipynb", "name": "nb.ipynb", "type": "notebook",
                    "kernel": {"name": "python3"}}
            status, _ = await client.request("POST", "api/sessions", json=body)
            assert status >= 400  # no kernel can start in a folder it cannot enter
            async with asyncio.timeout(30):
                while spare in await asyncio.to_thread(kernel_pids, info.uid):
                    await asyncio.sleep(0.1)
            status, listed = await client.request("GET", "api/kernels")
            assert (status, listed) == (200, [])
            kernel = await client.start_kernel("fine.ipynb")
            assert (await client.execute(kernel, "print(6*7)")).strip() == "42"
            assert len(await asyncio.to_thread(kernel_pids, info.uid)) == 1


@pytest.mark.integration
@module_loop
@pytest.mark.timeout(600)
async def test_a_spare_for_later_starts_when_jupyterlab_loads(env_python: Path) -> None:
    """Started while others wait (``spare_kernel="lab_load"``): the server runs no kernel
    while only pairlab's probes and the kernel list are asked (not by the status, not by
    listing); when JupyterLab loads (it asks for the kernelspecs) the spare starts, hidden,
    and the first notebook gets that very process."""
    async with started_workspace(env_python, "wsspar3", spare_kernel="lab_load") as (_, info), \
            WorkspaceClient(info) as client:
        for path in ("api/status", "api/kernels", "api/sessions"):
            status, _ = await client.request("GET", path)
            assert status == 200
        await asyncio.sleep(2)  # a spare started with the server would be running by now
        assert await asyncio.to_thread(kernel_pids, info.uid) == []
        status, specs = await client.request("GET", "api/kernelspecs")
        assert status == 200 and "python3" in specs["kernelspecs"]
        [spare] = await wait_for_kernels(info.uid, 1)
        status, listed = await client.request("GET", "api/kernels")
        assert (status, listed) == (200, [])  # hidden, as any spare
        kernel = await client.start_kernel("first.ipynb")
        assert (await client.execute(kernel, "print(6*7)")).strip() == "42"
        assert await asyncio.to_thread(kernel_pids, info.uid) == [spare]


@pytest.mark.integration
@module_loop
@pytest.mark.timeout(600)
async def test_a_spare_asked_for_while_it_starts_is_handed_out_idle(env_python: Path) -> None:
    """A cold start: the first notebook asks for a kernel while the spare is still starting.
    Handed out, it has answered an execute, so the server says it is idle, not "starting" (the
    server's activity watcher can miss a new kernel's first status messages; a kernel still
    "starting" made every WebSocket's nudge wait for its next round, half a second)."""
    async with started_workspace(env_python, "wsspar4") as (_, info), \
            WorkspaceClient(info) as client:
        status, model = await client.request("POST", "api/kernels", json={"name": "python3"})
        assert status == 201, model  # at once, as JupyterLab does: the spare is starting
        kernel = model["id"]
        status, model = await client.request("GET", f"api/kernels/{kernel}")
        assert status == 200 and model["execution_state"] == "idle", model
        [spare] = await asyncio.to_thread(kernel_pids, info.uid)
        assert (await client.execute(kernel, "print(6*7)")).strip() == "42"
        assert await asyncio.to_thread(kernel_pids, info.uid) == [spare]
