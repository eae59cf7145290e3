"""A real jupyter-server and a real ipykernel: the frames that really cross the kernel WebSocket,
in both framings, fed through the tracker."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiohttp
import pytest
import pytest_asyncio
from jupyter_client.jsonutil import json_default
from jupyter_client.session import Session
from jupyter_server.services.kernels.connection.base import serialize_msg_to_ws_v1

from workspaces.recording import events
from workspaces.recording.events import Observation
from workspaces.recording.kernel_messages import V1_PROTOCOL, KernelTracker

ws_v1: Callable[..., bytes] = serialize_msg_to_ws_v1
pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]
SESSION = Session(key=b"", username="candidate")


@dataclass
class Server:
    url: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    """One jupyter-server for the module (it takes seconds to start)."""
    tmp_path = tmp_path_factory.mktemp("jupyter")
    token = secrets.token_hex(16)
    port = free_port()
    home = tmp_path / "home"
    (home / "work").mkdir(parents=True)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
           "JUPYTER_PLATFORM_DIRS": "1", "JUPYTER_CONFIG_DIR": str(home / "config"),
           "JUPYTER_DATA_DIR": str(home / "data"), "JUPYTER_RUNTIME_DIR": str(home / "run"),
           "IPYTHONDIR": str(home / "ipython"), "JUPYTER_TOKEN": token}
    log = (tmp_path / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-I", "-m", "jupyter_server", "--no-browser", f"--port={port}",
         "--ServerApp.ip=127.0.0.1", "--ServerApp.port_retries=0", "--allow-root",
         f"--ServerApp.root_dir={home / 'work'}"],
        cwd=home, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    srv = Server(f"http://127.0.0.1:{port}", token)
    try:
        async with aiohttp.ClientSession(headers=srv.headers) as http:
            delay = 0.05
            for _ in range(200):
                if proc.poll() is not None:
                    pytest.fail((tmp_path / "server.log").read_text()[-2000:])
                try:
                    async with http.get(f"{srv.url}/api/status") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(delay)
                delay = min(delay * 1.5, 0.5)
            else:
                pytest.fail("jupyter-server did not become ready")
        yield srv
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


async def run_cell(srv: Server, protocol: str, code: str) -> tuple[list[Observation], str]:
    """Start a kernel, run ``code`` over a WebSocket in the given framing, feed every frame."""
    tracker = KernelTracker(protocol, kernel_id="live")
    async with aiohttp.ClientSession(headers=srv.headers) as http:
        async with http.post(f"{srv.url}/api/kernels", json={"name": "python3"}) as resp:
            assert resp.status == 201
            kernel_id = (await resp.json())["id"]
        url = f"{srv.url}/api/kernels/{kernel_id}/channels?session_id={uuid.uuid4().hex}"
        protocols = (protocol,) if protocol else ()
        async with http.ws_connect(url, protocols=protocols) as ws:
            assert (ws.protocol or "") == protocol
            request = SESSION.msg("execute_request", {
                "code": code, "silent": False, "store_history": True, "user_expressions": {},
                "allow_stdin": False, "stop_on_error": True}, metadata={"cellId": "live-cell"})
            if protocol == V1_PROTOCOL:
                frame: str | bytes = ws_v1(request, "shell", SESSION.pack)
                await ws.send_bytes(frame)  # type: ignore[arg-type]
            else:
                frame = json.dumps(dict(request, channel="shell"), default=json_default)
                await ws.send_str(frame)
            found = tracker.feed("in", frame)
            kinds: set[str] = set()
            async with asyncio.timeout(60):
                while not found:
                    message = await ws.receive()
                    assert message.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY)
                    kinds.add("binary" if message.type == aiohttp.WSMsgType.BINARY else "text")
                    found = tracker.feed("out", message.data)
        async with http.delete(f"{srv.url}/api/kernels/{kernel_id}") as resp:
            assert resp.status == 204
    return found, "+".join(sorted(kinds))


@pytest.mark.parametrize("protocol", [V1_PROTOCOL, ""])
async def test_a_real_kernel_run_is_recorded(server: Server, protocol: str) -> None:
    found, kinds = await run_cell(server, protocol, "print(1); 1/0")
    assert kinds == ("binary" if protocol else "text")
    [cell] = found
    assert cell.kind == events.CELL_EXECUTED
    p = cell.payload
    assert p["code"] == "print(1); 1/0"
    assert p["status"] == "error"
    assert isinstance(p["execution_count"], int) and p["execution_count"] >= 1
    assert p["error"]["ename"] == "ZeroDivisionError"
    assert p["error"]["evalue"] == "division by zero"
    assert "\x1b" not in p["error"]["traceback"] and "1/0" in p["error"]["traceback"]
    assert p["output"] == "1\nZeroDivisionError: division by zero\n"
    assert p["cell_id"] == "live-cell"
    assert p["duration_ms"] >= 0 and "incomplete" not in p


async def test_a_real_rich_output_keeps_text_only(server: Server) -> None:
    code = ("from IPython.display import HTML, display\n"
            "display(HTML('<b onmouseover=alert(1)>hi</b>'))\n"
            "{'answer': 42}")
    [cell], _ = await run_cell(server, V1_PROTOCOL, code)
    p = cell.payload
    assert p["status"] == "ok"
    assert p["mimetypes"] == ["text/html", "text/plain"]
    assert "<b" not in p["output"]
    assert "{'answer': 42}" in p["output"]
    assert "<IPython.core.display.HTML object>" in p["output"]
