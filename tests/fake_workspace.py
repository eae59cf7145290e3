"""A small fake Jupyter server on a Unix socket and a provisioner that starts it in-process
(as jupyterhub's ``mocking.py`` does), so most session and proxy tests run in milliseconds.
A few integration tests start the real jupyter-server in the real sandbox instead.

The fake checks the token the proxy must add, echoes what it sees (headers, identity), serves
a ``/lab`` HTML page, and has an echo WebSocket that keeps message types and subprotocols.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import WSMsgType, web

from workspaces.provisioner import Status, WorkspaceInfo, WorkspaceSpec
from workspaces.sandbox.peer import Peer


def fake_jupyter_app(workspace_id: str, token: str, root: Path) -> web.Application:
    base = f"/w/{workspace_id}"

    def authorised(request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"token {token}"

    async def status(request: web.Request) -> web.Response:
        if not authorised(request):
            return web.json_response({"message": "Forbidden"}, status=403)
        return web.json_response({"started": "now", "connections": 0})

    async def echo(request: web.Request) -> web.Response:
        if not authorised(request):
            return web.json_response({"message": "Forbidden"}, status=403)
        body = await request.read()
        return web.json_response({
            "method": request.method,
            "path": request.path,
            "query": request.query_string,
            "headers": dict(request.headers),
            "body_length": len(body),
        }, headers={"Set-Cookie": "_xsrf=fake; Path=/", "Connection": "keep-alive"})

    async def contents(request: web.Request) -> web.Response:
        if not authorised(request):
            return web.json_response({"message": "Forbidden"}, status=403)
        rel = request.match_info["path"]
        target = root / rel
        if request.method == "PUT":
            data = await request.json()
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(data["content"])
            return web.json_response({"path": rel}, status=201)
        if not target.is_file():
            return web.json_response({"message": "No such file"}, status=404)
        return web.json_response({"path": rel, "content": target.read_text()})

    async def lab(request: web.Request) -> web.Response:
        if not authorised(request):
            return web.Response(status=403)
        return web.Response(
            text="<!doctype html><html><head><title>JupyterLab</title></head>"
                 "<body>fake lab</body></html>", content_type="text/html",
        )

    async def big(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(64):
            await response.write(b"x" * 65536)
        await response.write_eof()
        return response

    async def ws_echo(request: web.Request) -> web.WebSocketResponse:
        if not authorised(request):
            raise web.HTTPForbidden()
        ws = web.WebSocketResponse(protocols=("v1.kernel.websocket.jupyter.org",))
        await ws.prepare(request)
        await ws.send_str(f"hello {request.headers.get('X-Pairlab-User', '')}")
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await ws.send_str(msg.data)
            elif msg.type == WSMsgType.BINARY:
                await ws.send_bytes(msg.data)
        return ws

    app = web.Application()
    app.router.add_get(f"{base}/api/status", status)
    app.router.add_route("*", f"{base}/api/contents/{{path:.*}}", contents)
    app.router.add_route("*", f"{base}/echo/{{tail:.*}}", echo)
    app.router.add_get(f"{base}/lab", lab)
    app.router.add_get(f"{base}/big", big)
    app.router.add_get(f"{base}/api/kernels/{{kid}}/channels", ws_echo)
    return app


@dataclass
class _Running:
    runner: web.AppRunner
    info: WorkspaceInfo


@dataclass
class FakeProvisioner:
    """Implements ``workspaces.provisioner.Provisioner`` with in-process fake servers."""

    root: Path
    running: dict[str, _Running] = field(default_factory=dict)
    started: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    fail_next_start: str | None = None
    socket_dirs: set[Path] = field(default_factory=set)
    """The short folders made for the fake servers' sockets (removed with their server, or by
    ``close_all``: a test run used to leave thousands of them in /tmp)."""

    def _app(self, workspace_id: str, token: str, work: Path) -> web.Application:
        return fake_jupyter_app(workspace_id, token, work)

    def _forget_socket(self, info: WorkspaceInfo) -> None:
        folder = info.socket_path.parent
        if folder in self.socket_dirs:
            self.socket_dirs.discard(folder)
            shutil.rmtree(folder, ignore_errors=True)

    async def _serve(self, workspace_id: str, uid: int, env_python: Path) -> WorkspaceInfo:
        folder = self.root / workspace_id
        (folder / "work").mkdir(parents=True, exist_ok=True)
        (folder / "run").mkdir(parents=True, exist_ok=True)
        # AF_UNIX paths are limited to 107 bytes: sockets live in a short folder.
        sockets = Path(tempfile.mkdtemp(prefix="plfake-", dir="/tmp"))
        self.socket_dirs.add(sockets)
        sock = sockets / "j.sock"
        token = secrets.token_hex(16)
        runner = web.AppRunner(self._app(workspace_id, token, folder / "work"))
        await runner.setup()
        await web.UnixSite(runner, str(sock)).start()
        info = WorkspaceInfo(workspace_id, uid, env_python, folder / "work", sock, token, 0,
                             Peer(os.getpid(), os.getuid()))  # listens in this process
        self.running[workspace_id] = _Running(runner, info)
        return info

    async def start(self, spec: WorkspaceSpec) -> WorkspaceInfo:
        if self.fail_next_start:
            reason, self.fail_next_start = self.fail_next_start, None
            from workspaces.session_errors import SessionError

            raise SessionError(reason)
        self.started.append(spec.workspace_id)
        return await self._serve(spec.workspace_id, spec.uid, spec.env_python)

    async def fill(self, info: WorkspaceInfo, tree: Path) -> None:
        shutil.copytree(tree, info.root, dirs_exist_ok=True)

    async def status(self, info: WorkspaceInfo) -> Status:
        return "running" if info.workspace_id in self.running else "crashed"

    async def stop(self, info: WorkspaceInfo) -> None:
        running = self.running.pop(info.workspace_id, None)
        if running is not None:
            await running.runner.cleanup()
            self.stopped.append(info.workspace_id)
        self._forget_socket(info)

    async def close_all(self, _app: web.Application | None = None) -> None:
        """Stop every fake workspace still listening (as an app's ``on_cleanup``) and remove
        every socket folder made, crashed servers' too."""
        while self.running:
            _, running = self.running.popitem()
            await running.runner.cleanup()
        while self.socket_dirs:
            shutil.rmtree(self.socket_dirs.pop(), ignore_errors=True)

    async def crash(self, workspace_id: str) -> None:
        running = self.running.pop(workspace_id)
        await running.runner.cleanup()

    async def restore(self, info: WorkspaceInfo) -> WorkspaceInfo:
        await self.stop(info)
        return await self._serve(info.workspace_id, info.uid, info.env_python)

    async def make_read_only(self, info: WorkspaceInfo) -> None:
        for path in [info.root, *info.root.rglob("*")]:
            path.chmod(path.stat().st_mode & ~0o222)


def closing(app: web.Application, provisioner: object) -> web.Application:
    """``app``, which stops ``provisioner``'s fake workspaces when it is cleaned up. A real
    workspace outlives pairlab on purpose; a fake one left listening would leave its socket to
    the garbage collector, whose ResourceWarning then fails whichever test is running."""
    if isinstance(provisioner, FakeProvisioner):
        app.on_cleanup.append(provisioner.close_all)
    return app
