"""Recording a real, sandboxed jupyter-server (JupyterLab + RTC) through pairlab's proxy:
a cell execution, a contents-API edit, an RTC edit and a terminal command each become the right
events with the right actor, in order and gap-free; a flood in one session leaves the server
responsive for another, stays gap-free, and its excerpts carry the truncation marker."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient, TestServer
from pycrdt import (
    Doc,
    Text,
    YMessageType,
    YSyncMessageType,
    create_sync_message,
    create_update_message,
    handle_sync_message,
)

from common.audit import SYSTEM
from server.app import create_app
from server.sessions.keys import SESSIONS
from server.sessions.wiring import WORKSPACE_APP
from server.settings import Settings, prepare_data_dir
from tests.conftest import create_user, login
from tests.fixture_tasks import SHARED_ENVS
from tests.host_routing import HostRoutingClient
from tests.server.recording.conftest import (
    UID_BASE,
    Rec,
    assert_gap_free,
    kinds,
    publish_task,
)
from workspaces.recording import events as E

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
MARKER = "…[truncated "


@pytest.fixture
async def real() -> AsyncIterator[Rec]:
    # A short data folder: AF_UNIX socket paths must stay under 108 bytes.
    data = Path(tempfile.mkdtemp(prefix="plrec-", dir="/tmp"))
    settings = prepare_data_dir(Settings(data_dir=data, warm_pool_size=0,
                                         environments_dir=str(SHARED_ENVS),
                                         sandbox_uid_base=UID_BASE + 2000))
    publish_task(settings)
    create_user(settings, "lead@example.com", "interviewer")
    app = create_app(settings)
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    ws: TestClient[Any, Any] = HostRoutingClient(TestServer(app[WORKSPACE_APP]))
    await client.start_server()
    await ws.start_server()
    rec = Rec(settings, app, client, ws, await login(client, "lead@example.com"))
    try:
        yield rec
    finally:
        for session_id in rec.sessions:  # nothing of a test's sandboxes outlives it
            with contextlib.suppress(Exception):
                await app[SESSIONS].end_session(session_id, SYSTEM, "the test is over")
        await ws.close()
        await client.close()
        shutil.rmtree(data, ignore_errors=True)


def execute_request(code: str) -> dict[str, Any]:
    return {"header": {"msg_id": uuid.uuid4().hex, "username": "", "session": uuid.uuid4().hex,
                       "msg_type": "execute_request", "version": "5.3",
                       "date": datetime.now(UTC).isoformat()},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": True,
                        "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}}


async def run_cell(rec: Rec, sid: str, kernel_id: str, code: str) -> int:
    """Execute ``code`` over the kernel WebSocket through the proxy (legacy JSON framing);
    returns how many characters of output came back."""
    async with rec.ws.ws_connect(rec.url(sid, f"api/kernels/{kernel_id}/channels"),
                                 origin=rec.origin(sid), max_msg_size=0) as sock:
        request = execute_request(code)
        await sock.send_str(json.dumps(request))
        chars, replied, idle = 0, False, False
        # The shell reply and the iopub idle status arrive in either order: wait for both, or
        # the socket closes before the proxy saw the reply (the cell would be "unknown").
        while not (replied and idle):
            msg = await sock.receive(timeout=120)
            assert msg.type == WSMsgType.TEXT, msg
            data = json.loads(msg.data)
            if data["parent_header"].get("msg_id") != request["header"]["msg_id"]:
                continue
            if data["header"]["msg_type"] == "stream":
                chars += len(data["content"]["text"])
            replied = replied or data["header"]["msg_type"] == "execute_reply"
            idle = idle or (data["header"]["msg_type"] == "status"
                            and data["content"]["execution_state"] == "idle")
        return chars


async def terminal(rec: Rec, sid: str, command: str, until: str) -> int:
    """Type ``command`` in a new terminal, read its output until ``until`` shows, then close
    the terminal's socket; returns the characters of output read."""
    name = (await rec.call(sid, "POST", "api/terminals"))["name"]
    async with rec.ws.ws_connect(rec.url(sid, f"terminals/websocket/{name}"),
                                 origin=rec.origin(sid), max_msg_size=0) as sock:
        for key in command:  # as a browser sends it: a keystroke per message
            await sock.send_str(json.dumps(["stdin", key]))
        await sock.send_str(json.dumps(["stdin", "\r"]))
        seen, chars = "", 0
        while until not in seen:
            msg = await sock.receive(timeout=120)
            assert msg.type == WSMsgType.TEXT, msg
            kind, *rest = json.loads(msg.data)
            if kind == "stdout":
                chars += len(rest[0])
                seen = (seen + rest[0])[-4000:]
        return chars


async def rtc_append(rec: Rec, sid: str, path: str, text: str) -> None:
    """Join the document's collaboration room and append ``text`` as a Yjs update."""
    session = await rec.call(sid, "PUT", f"api/collaboration/session/{path}",
                             {"format": "text", "type": "file"})
    room = rec.url(sid, f"api/collaboration/room/text:file:{session['fileId']}")
    doc: Doc[Any] = Doc()
    source = doc.get("source", type=Text)
    async with rec.ws.ws_connect(f"{room}?sessionId={session['sessionId']}",
                                 origin=rec.origin(sid)) as sock:
        await sock.send_bytes(create_sync_message(doc))
        deadline = time.monotonic() + 60
        while not str(source) and time.monotonic() < deadline:  # until the file is loaded
            msg = await sock.receive(timeout=60)
            if msg.type == WSMsgType.BINARY and msg.data[0] == YMessageType.SYNC:
                reply = handle_sync_message(msg.data[1:], doc)
                if reply is not None:
                    await sock.send_bytes(reply)
        assert str(source), "the room never sent the document"
        before = doc.get_state()
        source += text
        await sock.send_bytes(create_update_message(doc.get_update(before)))
        # stay until the server has taken the update (its own echo of the room state)
        await sock.send_bytes(create_sync_message(doc))
        while True:
            msg = await sock.receive(timeout=60)
            if msg.type == WSMsgType.BINARY and msg.data[:2] == bytes(
                    [YMessageType.SYNC, YSyncMessageType.SYNC_STEP2]):
                break


async def test_actions_in_a_real_workspace_become_events(real: Rec) -> None:
    rec = real
    sid, _ = await rec.start()

    await rec.call(sid, "PUT", "api/contents/hello.py",
                   {"type": "file", "format": "text", "content": "print('hi')\n"})
    await rec.wait_for(sid, lambda f: bool(kinds(f, E.FILE_CREATED)))

    session = await rec.call(sid, "POST", "api/sessions", {
        "path": "analysis.ipynb", "type": "notebook", "name": "analysis.ipynb",
        "kernel": {"name": "python3"}})
    kernel_id = session["kernel"]["id"]
    assert await run_cell(rec, sid, kernel_id, "print(6 * 7)") == 3
    await rec.wait_for(sid, lambda f: bool(kinds(f, E.CELL_EXECUTED)))

    await rtc_append(rec, sid, "notes.md", "edited through RTC\n")  # a file of the task
    await rec.wait_for(sid, lambda f: any(e["path"] == "notes.md"
                                          for e in kinds(f, E.FILE_CHANGED)), within=60)
    on_disk = await rec.call(sid, "GET", "api/contents/notes.md")
    assert on_disk["content"] == "# Notes\nedited through RTC\n"

    await terminal(rec, sid, "echo pl$((40+2))", "pl42")
    found = await rec.wait_for(sid, lambda f: bool(kinds(f, E.TERMINAL_COMMAND)))

    assert_gap_free(found)
    hello = [e for e in found if e["path"] == "hello.py"]
    created = hello[0]
    assert (created["kind"], created["actor"]) == (E.FILE_CREATED, "candidate"), hello
    # (a busy machine may show the new file before its content: then a change follows)
    assert [e["payload"].get("size") for e in hello][-1] == 12, hello
    (started,) = kinds(found, E.KERNEL_STARTED)
    assert (started["actor"], started["path"], started["payload"]["kernel_id"]) == \
        ("candidate", "analysis.ipynb", kernel_id)
    (cell,) = kinds(found, E.CELL_EXECUTED)
    assert (cell["actor"], cell["path"]) == ("candidate", "analysis.ipynb")
    assert (cell["payload"]["code"], cell["payload"]["status"], cell["payload"]["output"],
            cell["payload"]["execution_count"]) == ("print(6 * 7)", "ok", "42\n", 1)
    rtc = [e for e in kinds(found, E.FILE_CHANGED) if e["path"] == "notes.md"]
    assert rtc and all(e["actor"] == "candidate" for e in rtc)
    (command,) = kinds(found, E.TERMINAL_COMMAND)
    assert (command["actor"], command["payload"]["line"]) == ("candidate", "echo pl$((40+2))")
    assert "pl42" in command["payload"]["output"]
    assert created["seq"] < started["seq"] < cell["seq"] < rtc[0]["seq"] < command["seq"]


async def test_a_flood_keeps_the_server_responsive(real: Rec) -> None:
    rec = real
    sid, _ = await rec.start()
    other = (await rec.schedule())["session_id"]  # another interview on the same server
    session = await rec.call(sid, "POST", "api/sessions", {
        "path": "flood.ipynb", "type": "notebook", "name": "flood.ipynb",
        "kernel": {"name": "python3"}})
    kernel_id = session["kernel"]["id"]
    flooding = asyncio.ensure_future(asyncio.gather(
        run_cell(rec, sid, kernel_id,
                 "import sys\nfor i in range(60):\n    print('x' * 100_000, flush=True)"),
        terminal(rec, sid, "yes | head -c 5000000; echo FLOOD-$((1+1))", "FLOOD-2")))
    timings: list[float] = []
    notes = 0
    while not flooding.done() or notes < 3:
        started = time.monotonic()
        response = await rec.client.post(f"/api/v1/sessions/{other}/notes",
                                         json={"text": f"during the flood {notes}"},
                                         headers={"X-CSRF-Token": rec.csrf})
        assert response.status == 201
        page = await rec.api("GET", f"/api/v1/sessions/{other}/events")
        timings.append(time.monotonic() - started)
        notes += 1
        assert [e["seq"] for e in page["events"]] == list(range(1, notes + 1))
    cell_chars, terminal_chars = await flooding
    print(f"flood: {cell_chars} + {terminal_chars} chars; other session's note + read took "
          f"median {sorted(timings)[len(timings) // 2] * 1000:.1f} ms, max "
          f"{max(timings) * 1000:.1f} ms over {len(timings)} rounds")
    assert cell_chars > 1_000_000 and terminal_chars >= 5_000_000

    found = await rec.wait_for(sid, lambda f: bool(kinds(f, E.CELL_EXECUTED))
                               and bool(kinds(f, E.TERMINAL_COMMAND)))
    assert_gap_free(found)
    (cell,) = kinds(found, E.CELL_EXECUTED)
    assert cell["payload"]["output_chars"] > 1_000_000
    assert MARKER in cell["payload"]["output"]
    assert len(cell["payload"]["output"]) < 10_000
    (command,) = kinds(found, E.TERMINAL_COMMAND)
    assert MARKER in command["payload"]["output"]
    assert command["payload"]["output_chars"] >= 5_000_000
    assert "FLOOD-2" in command["payload"]["output"]
    assert_gap_free(await rec.events(other))
