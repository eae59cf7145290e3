"""Fixtures for the workspace backend: the real task environment, short data folders (a Unix
socket path must fit in 107 bytes), uids of our own, and a small client that talks to a
workspace's real jupyter-server over its Unix socket (HTTP, kernel, terminal and RTC WebSockets);
for the recorder's tests (events, watcher, history), the candidate's workspace as a copy of each
test module's ``base`` tree (the task's starting state, which each module defines for itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pwd
import shutil
import sqlite3
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from workspaces.environments import ensure_environment
from workspaces.local import LocalProvisioner
from workspaces.provisioner import WorkspaceInfo, WorkspaceSpec
from workspaces.sandbox.bwrap import check_sandbox
from workspaces.sandbox.cgroups import pids_of_uid
from workspaces.sandbox.mounts import mount_points, unmount

# uids >= 30000, a block of 100 per pytest process so parallel runs do not collide (the
# workspace tests of one run take more than 25); the workers of scripts/check (pytest-xdist)
# each have a share of the range, so no two of them can draw the same block
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
_WORKERS = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
_BLOCKS = 100 // _WORKERS
UID_BASE = 30000 + ((int(_WORKER) if _WORKER.isdigit() else 0) % _WORKERS * _BLOCKS
                    + os.getpid() % _BLOCKS) * 100  # below 40000, the demo's default base
_next_uid = iter(range(UID_BASE, UID_BASE + 100))


def free_uid() -> int:
    """An unused uid: no passwd entry and no process running as it."""
    for uid in _next_uid:
        try:
            pwd.getpwuid(uid)
        except KeyError:
            if not pids_of_uid(uid):
                return uid
    raise RuntimeError("no free test uid left")


def require_sandbox() -> None:
    """Skip where the sandbox cannot be built, except in CI (``CI`` set, as ``.ci/run`` does),
    where that is a failure: a green run must never hide a sandbox that does not work."""
    reason = check_sandbox()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"the sandbox cannot be built on this CI machine: {reason}")
        pytest.skip(f"the sandbox cannot be built here: {reason}")


@pytest.fixture(scope="session")
def env_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real task environment (ipykernel + pytest, no task requirements) per test run."""
    return ensure_environment(tmp_path_factory.mktemp("envs"), [])


def make_data_dir() -> Path:
    """A fake pairlab data dir: a SQLite DB and hidden checks beside ``workspaces/``."""
    data = Path(tempfile.mkdtemp(prefix="plw", dir="/tmp"))  # noqa: S108 - short socket paths
    db = sqlite3.connect(data / "pairlab.db")
    db.execute("CREATE TABLE secrets (value TEXT)")
    db.execute("INSERT INTO secrets VALUES ('db-secret-value')")
    db.commit()
    db.close()
    checks = data / "tasks" / "t1" / "checks"
    checks.mkdir(parents=True)
    (checks / "hidden_check.py").write_text("ANSWER = 'hidden-check-secret'\n")
    return data


def remove_data_dir(path: Path) -> None:
    """Unmount what is still mounted below ``path`` (the disk images of workspaces left
    running by ``close``), then remove it."""
    for point in sorted(mount_points(), key=lambda p: len(p.parts), reverse=True):
        if point.is_relative_to(path):
            unmount(point)
    shutil.rmtree(path, ignore_errors=True)


@contextlib.asynccontextmanager
async def started_workspace(env_python: Path, workspace_id: str, **spec: Any,
                            ) -> AsyncIterator[tuple[LocalProvisioner, WorkspaceInfo]]:
    """A real sandboxed workspace (``WorkspaceSpec(workspace_id, free_uid(), env_python,
    **spec)``) on a data dir of its own; stopped (as it is then, after a ``restore`` too) and
    removed afterwards."""
    require_sandbox()
    data = make_data_dir()
    provisioner = LocalProvisioner(data / "workspaces")
    info = await provisioner.start(WorkspaceSpec(workspace_id, free_uid(), env_python, **spec))
    try:
        yield provisioner, info
    finally:
        await provisioner.stop(provisioner.live_info(info.workspace_id) or info)
        await asyncio.to_thread(remove_data_dir, data)


def cmdline(pid: int) -> str:
    return " ".join(Path(f"/proc/{pid}/cmdline").read_text().split("\0"))


def kernel_pids(uid: int) -> list[int]:
    """A workspace's kernel processes (of its uid, running ``ipykernel_launcher``), as the host
    sees them."""
    found = []
    for pid in pids_of_uid(uid):
        try:
            if "ipykernel_launcher" in cmdline(pid):
                found.append(pid)
        except OSError:
            continue
    return sorted(found)


def cgroup_dirs(workspace_id: str) -> list[Path]:
    """Cgroup folders of a workspace, in any controller. Other runs create and remove cgroups
    while this walks, so vanished folders are skipped rather than raised."""
    found = []
    for top, dirs, _ in os.walk("/sys/fs/cgroup", onerror=lambda _: None):
        if Path(top).name == "pairlab" and workspace_id in dirs:
            found.append(Path(top) / workspace_id)
    return found


class KernelError(AssertionError):
    pass


class WorkspaceClient:
    """Talks to one workspace's jupyter-server over its Unix socket, with its token."""

    def __init__(self, info: WorkspaceInfo, user: dict[str, str] | None = None) -> None:
        self.info = info
        self.session = aiohttp.ClientSession(
            connector=aiohttp.UnixConnector(path=str(info.socket_path))
        )
        self.headers = {"Authorization": f"token {info.token}"}
        if user is not None:
            self.headers["X-Pairlab-User"] = json.dumps(user)

    async def close(self) -> None:
        await self.session.close()

    async def __aenter__(self) -> WorkspaceClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def url(self, path: str) -> str:
        return f"http://localhost/w/{self.info.workspace_id}/{path.lstrip('/')}"

    async def request(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        async with self.session.request(method, self.url(path), headers=headers,
                                        **kwargs) as resp:
            text = await resp.text()
            try:
                return resp.status, json.loads(text)
            except ValueError:
                return resp.status, text

    def ws(self, path: str, **kwargs: Any) -> Any:
        return self.session.ws_connect(self.url(path), headers=self.headers, **kwargs)

    async def start_kernel(self, path: str = "scratch.ipynb") -> str:
        """A kernel for a notebook at ``path``, as JupyterLab starts one (its cwd is the
        notebook's folder)."""
        body = {"path": path, "name": path, "type": "notebook", "kernel": {"name": "python3"}}
        status, session = await self.request("POST", "api/sessions", json=body)
        assert status == 201, session
        kernel_id: str = session["kernel"]["id"]
        return kernel_id

    async def execute(self, kernel_id: str, code: str, limit_s: float = 120.0) -> str:
        """Run ``code`` over the kernel WebSocket (legacy JSON protocol); return its output."""
        msg_id = uuid.uuid4().hex
        request = {
            "header": {"msg_id": msg_id, "username": "test", "session": uuid.uuid4().hex,
                       "msg_type": "execute_request", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": False,
                        "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
        }
        out: list[str] = []
        error: str | None = None
        replied = idle = False
        path = f"api/kernels/{kernel_id}/channels?session_id={uuid.uuid4().hex}"
        async with self.ws(path) as ws:
            await ws.send_str(json.dumps(request))
            async with asyncio.timeout(limit_s):
                async for msg in ws:
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        continue
                    data = json.loads(msg.data)
                    if data.get("parent_header", {}).get("msg_id") != msg_id:
                        continue
                    kind, content = data["msg_type"], data["content"]
                    if kind == "stream":
                        out.append(content["text"])
                    elif kind in ("execute_result", "display_data"):
                        out.append(content["data"].get("text/plain", ""))
                    elif kind == "error":
                        error = "\n".join(content["traceback"])
                    elif kind == "execute_reply":
                        replied = True
                    elif kind == "status" and content["execution_state"] == "idle":
                        idle = True
                    if replied and idle:
                        break
        if error is not None:
            raise KernelError(error)
        return "".join(out)


@pytest.fixture
def workspace(tmp_path: Path, base: Path) -> Path:
    work = tmp_path / "work"
    subprocess.run(["cp", "-a", str(base), str(work)], check=True)
    return work
