"""A richer fake workspace for recording tests: the fake of ``tests/fake_workspace.py`` plus the
REST calls the recorder listens to (kernels, sessions, restart, interrupt, terminals) and a
terminal WebSocket that echoes keystrokes and answers ``echo WORDS`` like a shell.

A kernel named ``unrunnable`` and a terminal named ``unrunnable`` are refused the way
jupyter-server refuses them when the environment's Python or the shell cannot be executed by
the workspace's uid: HTTP 500 with the error in ``message``."""

from __future__ import annotations

import gzip
import json
import uuid
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from tests.fake_workspace import FakeProvisioner

PROMPT = "$ "


def error_body(size: int) -> bytes:
    """A JSON error answer of exactly ``size`` bytes (at least 14)."""
    head, tail = b'{"message": "', b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail

UNRUNNABLE = "unrunnable"
KERNEL_REFUSAL = "[Errno 13] Permission denied: '/envs/py311-0123456789abcdef/bin/python'"
TERMINAL_REFUSAL = "[Errno 13] Permission denied: '/bin/bash'"


def add_recording_routes(app: web.Application, workspace_id: str, token: str) -> None:
    base = f"/w/{workspace_id}"
    kernels: dict[str, dict[str, Any]] = {}
    sessions: list[dict[str, Any]] = []

    def check(request: web.Request) -> None:
        if request.headers.get("Authorization") != f"token {token}":
            raise web.HTTPForbidden()

    def new_kernel(name: str) -> dict[str, Any]:
        kernel = {"id": str(uuid.uuid4()), "name": name, "execution_state": "idle"}
        kernels[kernel["id"]] = kernel
        return kernel

    async def list_kernels(request: web.Request) -> web.Response:
        check(request)
        return web.json_response(list(kernels.values()))

    def refuse(message: str) -> web.Response:
        return web.json_response({"message": message, "reason": None}, status=500)

    async def start_kernel(request: web.Request) -> web.Response:
        check(request)
        body = await request.json()
        if body.get("name") == UNRUNNABLE:
            return refuse(KERNEL_REFUSAL)
        return web.json_response(new_kernel(body.get("name", "python3")), status=201)

    async def start_terminal(request: web.Request) -> web.Response:
        check(request)
        body = await request.json() if request.body_exists else {}
        if body.get("name") == UNRUNNABLE:
            return refuse(TERMINAL_REFUSAL)
        return web.json_response({"name": str(body.get("name", "1"))})

    async def kernel_action(request: web.Request) -> web.Response:
        check(request)
        if request.match_info["kid"] not in kernels:
            return web.json_response({"message": "no such kernel"}, status=404)
        if request.match_info["action"] == "interrupt":
            return web.Response(status=204)
        return web.json_response(kernels[request.match_info["kid"]])

    async def delete_kernel(request: web.Request) -> web.Response:
        check(request)
        kernels.pop(request.match_info["kid"], None)
        return web.Response(status=204)

    async def list_sessions(request: web.Request) -> web.Response:
        check(request)
        return web.json_response(sessions)

    async def start_session(request: web.Request) -> web.Response:
        check(request)
        body = await request.json()
        if body.get("kernel", {}).get("name") == UNRUNNABLE:
            return refuse(KERNEL_REFUSAL)
        kernel = new_kernel(body.get("kernel", {}).get("name", "python3"))
        session = {"id": str(uuid.uuid4()), "path": body["path"], "name": body.get("name", ""),
                   "type": body.get("type", "notebook"), "kernel": kernel}
        sessions.append(session)
        return web.json_response(session, status=201)

    async def terminal(request: web.Request) -> web.WebSocketResponse:
        check(request)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_str(json.dumps(["setup", {}]))
        await ws.send_str(json.dumps(["stdout", PROMPT]))
        line = ""
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            kind, *rest = json.loads(msg.data)
            if kind != "stdin":
                continue
            for char in rest[0]:
                if char == "\r":
                    out = line[5:] + "\r\n" if line.startswith("echo ") else ""
                    await ws.send_str(json.dumps(["stdout", "\r\n" + out + PROMPT]))
                    line = ""
                else:
                    line += char
                    await ws.send_str(json.dumps(["stdout", char]))
        return ws

    app.router.add_get(f"{base}/api/kernels", list_kernels)
    app.router.add_post(f"{base}/api/kernels", start_kernel)
    app.router.add_post(f"{base}/api/kernels/{{kid}}/{{action:restart|interrupt}}",
                        kernel_action)
    app.router.add_delete(f"{base}/api/kernels/{{kid}}", delete_kernel)
    app.router.add_get(f"{base}/api/sessions", list_sessions)
    app.router.add_post(f"{base}/api/sessions", start_session)
    app.router.add_get(f"{base}/terminals/websocket/{{name}}", terminal)
    app.router.add_post(f"{base}/api/terminals", start_terminal)

    async def error_answer(request: web.Request) -> web.Response:
        """An error answer of ``size`` bytes (``gzip=1``: compressed, as a server may send)."""
        check(request)
        body = error_body(int(request.query.get("size", "100")))
        headers = {"Content-Type": "application/json"}
        if request.query.get("gzip") == "1":
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        return web.Response(status=500, body=body, headers=headers)

    app.router.add_get(f"{base}/api/pairlab-fake/error", error_answer)


class RecordingFakeProvisioner(FakeProvisioner):
    def _app(self, workspace_id: str, token: str, work: Path) -> web.Application:
        app = super()._app(workspace_id, token, work)
        add_recording_routes(app, workspace_id, token)
        return app
