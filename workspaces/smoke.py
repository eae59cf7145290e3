"""Use a throwaway workspace as a candidate would: for ``pairlab doctor``.

A real sandboxed jupyter-server is started by the local provisioner on a task environment,
then its control folders are checked (root's, not writable by its uid), then, over its Unix
socket with its token (as the proxy talks to it, the listener checked): a kernel is started and
runs a cell whose output is read back, and a terminal runs ``python`` (the environment's, found
on the terminal's ``PATH``) and its output is read back. Everything is stopped and removed
afterwards. Each step reports what went wrong in one sentence.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from common.clock import now_iso
from workspaces.jupyter_config import refusal_reason
from workspaces.local import LocalProvisioner
from workspaces.provisioner import WorkspaceInfo, WorkspaceSpec
from workspaces.sandbox.bwrap import HostPaths, control_problems
from workspaces.sandbox.peer import PeerCheckedConnector
from workspaces.sandbox.permissions import remove_tree

STEP_TIMEOUT_S = 60.0
CELL = "print('pairlab', 6 * 7)"
CELL_OUTPUT = "pairlab 42"
TERMINAL_COMMAND = "python -c \"print('pair' + 'lab-term', 6 * 7)\"\r"
TERMINAL_OUTPUT = "pairlab-term 42"


@dataclass(frozen=True)
class SmokeResult:
    step: str
    """The last step reached: start, control, kernel, cell, terminal, done."""
    problem: str | None
    seconds: float


class _Client:
    def __init__(self, info: WorkspaceInfo) -> None:
        self.info = info
        self.base = f"http://localhost/w/{info.workspace_id}/"
        self.headers = {"Authorization": f"token {info.token}"}
        self.http = aiohttp.ClientSession(
            connector=PeerCheckedConnector(str(info.socket_path), info.server),
            timeout=aiohttp.ClientTimeout(total=STEP_TIMEOUT_S))

    async def post(self, tail: str, body: dict[str, Any]) -> dict[str, Any]:
        async with self.http.post(self.base + tail, json=body, headers=self.headers) as resp:
            text = await resp.text()
            if resp.status >= 300:
                raise _Failed(f"POST {tail} answered {resp.status}: "
                              f"{refusal_reason(text, resp.status)}")
            data: dict[str, Any] = json.loads(text)
            return data

    async def close(self) -> None:
        await self.http.close()


class _Failed(Exception):
    pass


def _execute_request(code: str) -> dict[str, Any]:
    return {
        "header": {"msg_id": uuid.uuid4().hex, "username": "pairlab-doctor",
                   "session": uuid.uuid4().hex, "msg_type": "execute_request", "version": "5.3",
                   "date": now_iso()},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": False,
                    "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
    }


async def _run_cell(client: _Client, kernel_id: str) -> str:
    """The cell's text output (its stream and result), once the kernel is idle again."""
    url = client.base + f"api/kernels/{kernel_id}/channels"
    async with client.http.ws_connect(url, headers=client.headers) as sock:
        request = _execute_request(CELL)
        await sock.send_str(json.dumps(request))
        text = ""
        async with asyncio.timeout(STEP_TIMEOUT_S):
            async for msg in sock:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                if data.get("parent_header", {}).get("msg_id") != request["header"]["msg_id"]:
                    continue
                kind, content = data["header"]["msg_type"], data.get("content", {})
                if kind == "stream":
                    text += content.get("text", "")
                elif kind == "error":
                    raise _Failed(f"the cell raised {content.get('ename')}: "
                                  f"{content.get('evalue')}")
                elif kind == "status" and content.get("execution_state") == "idle":
                    return text
        raise _Failed("the kernel closed its channels before the cell finished")


async def _run_terminal(client: _Client) -> str:
    term = await client.post("api/terminals", {})
    url = client.base + f"terminals/websocket/{term['name']}"
    output = ""
    async with client.http.ws_connect(url, headers=client.headers) as sock:
        await sock.send_str(json.dumps(["stdin", TERMINAL_COMMAND]))
        deadline = time.monotonic() + STEP_TIMEOUT_S
        while TERMINAL_OUTPUT not in output and time.monotonic() < deadline:
            msg = await sock.receive(timeout=max(0.1, deadline - time.monotonic()))
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            kind, *rest = json.loads(msg.data)
            if kind == "stdout" and rest:
                output += str(rest[0])
    return output


async def smoke_workspace(root: Path, workspace_id: str, uid: int,
                          env_python: Path) -> SmokeResult:
    """Start the workspace ``root/<workspace_id>`` as ``uid``, run a cell and a terminal command
    in it, stop it and remove its folder (nothing else of ``root``)."""
    started = time.monotonic()
    provisioner = LocalProvisioner(root, start_timeout_s=STEP_TIMEOUT_S,
                                   ready_timeout_s=STEP_TIMEOUT_S)
    step = "start"
    info: WorkspaceInfo | None = None
    client: _Client | None = None
    try:
        info = await provisioner.start(WorkspaceSpec(workspace_id, uid, env_python))
        step = "control"
        problems = await asyncio.to_thread(control_problems, HostPaths.of(root, workspace_id))
        if problems:
            raise _Failed("the uid could change its control folders: " + "; ".join(problems[:3]))
        client = _Client(info)
        step = "kernel"
        kernel = await client.post("api/kernels", {"name": "python3"})
        step = "cell"
        got = await _run_cell(client, str(kernel["id"]))
        if CELL_OUTPUT not in got:
            raise _Failed(f"the cell printed {got.strip()[:200]!r}, not {CELL_OUTPUT!r}")
        step = "terminal"
        output = await _run_terminal(client)
        if TERMINAL_OUTPUT not in output:
            tail = " ".join(output.split())[-200:]
            raise _Failed(f"the terminal did not print {TERMINAL_OUTPUT!r}; it showed {tail!r}")
        step = "done"
        return SmokeResult(step, None, time.monotonic() - started)
    except _Failed as exc:
        return SmokeResult(step, str(exc), time.monotonic() - started)
    except TimeoutError:
        return SmokeResult(step, f"no answer within {STEP_TIMEOUT_S:.0f} s",
                           time.monotonic() - started)
    except Exception as exc:
        message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        return SmokeResult(step, str(message)[:500], time.monotonic() - started)
    finally:
        if client is not None:
            await client.close()
        if info is not None:
            await provisioner.stop(info)
        await provisioner.close()
        await asyncio.to_thread(remove_tree, root / workspace_id)
