"""Recording a real, sandboxed jupyter-server (JupyterLab + RTC) through pairlab's proxy:
a cell execution, a contents-API edit, an RTC edit and a terminal command each become the right
events with the right actor, in order and gap-free; a flood in one session leaves the server
responsive for another, stays gap-free, and its excerpts carry the truncation marker."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import WSMsgType
from pycrdt import (
    Doc,
    Text,
    YMessageType,
    YSyncMessageType,
    create_sync_message,
    create_update_message,
    handle_sync_message,
)

from tests.server.recording.conftest import UID_BASE, Rec, assert_gap_free, kinds
from tests.server.recording.real_app import open_notebook, real_rec, run_cell, uid_base
from workspaces.recording import events as E

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
MARKER = "…[truncated "
BASE = uid_base(2000, UID_BASE + 2000)
"""Sandbox uids of this file."""


@pytest.fixture
async def real() -> AsyncIterator[Rec]:
    async with real_rec("plrec-", BASE) as rec:
        yield rec


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

    kernel_id = await open_notebook(rec, sid, "analysis.ipynb")
    assert await run_cell(rec, sid, kernel_id, "print(6 * 7)") == ("ok", "42\n")
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
    kernel_id = await open_notebook(rec, sid, "flood.ipynb")
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
    (_, cell_output), terminal_chars = await flooding
    cell_chars = len(cell_output)
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
