"""Kill ``pairlab serve`` with SIGKILL during a live session, start it again: the session is
still live, the candidate's files are intact, and the (restarted) workspace answers again."""

from __future__ import annotations

import asyncio
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import pytest

from common.loopback import loopback_session
from server.settings import Settings, prepare_data_dir
from tests.conftest import PASSWORD, REPO, create_user
from tests.fixture_tasks import SHARED_ENVS, publish_fake_task
from tests.server.cli.test_serve import free_port
from workspaces.sandbox.cgroups import pids_of_uid

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def start_server(data: Path, port: int, ws_port: int, uid_base: int) -> subprocess.Popen[bytes]:
    """``pairlab serve`` in its own process group; its stderr goes to DATA/serve.log."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(data),
           "LANG": "C.UTF-8"}
    with open(data / "serve.log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "server.cli.main", "serve", "--data-dir", str(data),
             "--port", str(port), "--workspace-port", str(ws_port), "--warm-pool-size", "0",
             "--environments-dir", str(SHARED_ENVS), "--sandbox-uid-base", str(uid_base),
             "--log-level", "WARNING"],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=log,
            start_new_session=True,
        )


async def wait_ready(http: aiohttp.ClientSession, url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90
    delay = 0.05
    while time.monotonic() < deadline:
        assert proc.poll() is None, "pairlab serve exited early; see serve.log"
        try:
            async with http.get(url) as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(delay)
        delay = min(delay * 2, 1.0)
    raise AssertionError(f"{url} did not become ready")


async def test_sigkill_then_restart_keeps_the_session(tmp_path: Path) -> None:
    data = Path(tempfile.mkdtemp(prefix="plrs-", dir="/tmp"))
    port, ws_port = free_port(), free_port()
    uid_base = random.randrange(100_000, 4_000_000, 1000)
    settings = prepare_data_dir(Settings(data_dir=data, port=port, workspace_port=ws_port))
    publish_fake_task(settings)
    create_user(settings, "lead@example.com", "interviewer")
    app_url, shared = f"http://127.0.0.1:{port}", settings.workspace_url
    proc = start_server(data, port, ws_port, uid_base)
    try:
        async with loopback_session() as http:
            await wait_ready(http, f"{app_url}/readyz", proc)
            login = await http.post(f"{app_url}/api/v1/auth/login",
                                    json={"email": "lead@example.com", "password": PASSWORD})
            csrf = (await login.json())["csrf_token"]
            created = await (await http.post(
                f"{app_url}/api/v1/sessions",
                json={"task": "demo-task", "candidate_name": "Ada"},
                headers={"X-CSRF-Token": csrf, "Origin": app_url})).json()
            landing = await http.get(created["candidate_link"])
            html = await landing.text()
            token = re.search(r'name="csrf_token" value="([^"]+)"', html)
            assert token is not None
            start = await http.post(f"{shared}/s/{created['session_id']}/start",
                                    data={"csrf_token": token.group(1)},
                                    headers={"Origin": shared}, allow_redirects=False)
            assert start.status == 303, await start.text()
            entered = await http.get(start.headers["Location"], allow_redirects=False)
            assert entered.status == 303, await entered.text()
            workspace = entered.headers["Location"].split("/")[2]
            ws_url = settings.workspace_origin(workspace)  # the workspace's own host
            put = await http.put(f"{ws_url}/w/{workspace}/api/contents/kept.py",
                                 json={"type": "file", "format": "text",
                                       "content": "answer = 42\n"},
                                 headers={"Origin": ws_url})
            assert put.status == 201, await put.text()
            uid = uid_base  # the first uid of the range serves the first session
            assert pids_of_uid(uid)

            os.killpg(proc.pid, signal.SIGKILL)  # pairlab dies without any cleanup
            proc.wait(timeout=30)
            deadline = time.monotonic() + 30
            while pids_of_uid(uid) and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            assert pids_of_uid(uid) == []  # --die-with-parent took the sandbox down too

            proc = start_server(data, port, ws_port, uid_base)
            await wait_ready(http, f"{app_url}/readyz", proc)
            deadline = time.monotonic() + 60
            got = None
            while time.monotonic() < deadline:
                got = await http.get(f"{ws_url}/w/{workspace}/api/contents/kept.py")
                if got.status == 200:
                    break
                await asyncio.sleep(0.5)
            assert got is not None and got.status == 200, await got.text() if got else ""
            assert (await got.json())["content"] == "answer = 42\n"
            state = await (await http.get(
                f"{app_url}/api/v1/sessions/{created['session_id']}")).json()
            assert state["session"]["state"] == "live"
            assert state["session"]["workspace_url"].endswith(f"/w/{workspace}/lab")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                assert proc.wait(timeout=60) == 0
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(data, ignore_errors=True)
