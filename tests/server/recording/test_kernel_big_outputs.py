"""Big outputs of a real kernel in the real sandbox, through pairlab's proxy: a cell that prints
1 MB and displays a 1 MB image reaches the browser byte for byte (JupyterLab's v1 framing) and
also a second, legacy-framed connection to the same kernel (an interviewer watching), while the
recorder stores one ``cell.executed`` with the output's size, excerpt and mimetypes: the frames
of the execution the other connection did not ask for are relayed, not recorded twice."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType
from jupyter_server.services.kernels.connection.base import (
    deserialize_msg_from_ws_v1,
    serialize_msg_to_ws_v1,
)

from tests.server.recording.conftest import UID_BASE, Rec, assert_gap_free, kinds
from tests.server.recording.real_app import open_notebook, real_rec, uid_base
from workspaces.recording import events as E
from workspaces.recording.kernel_messages import V1_PROTOCOL

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
BASE = uid_base(800, UID_BASE + 4800)
"""Sandbox uids of this file."""

LINES = 125_000
STREAM = "".join(f"{i:07d}\n" for i in range(LINES))
"""What the cell prints: 1,000,000 characters, every line different."""
IMAGE = base64.b64encode(bytes(range(256)) * 3072).decode()
"""What the cell displays as image/png: 1,048,576 characters."""
LABEL = "<pairlab test image>"
CODE = f'''\
import base64, sys
from IPython.display import display
sys.stdout.write("".join(f"{{i:07d}}\\n" for i in range({LINES})))
sys.stdout.flush()
display({{"image/png": base64.b64encode(bytes(range(256)) * 3072).decode(),
          "text/plain": "{LABEL}"}}, raw=True)
'''


@pytest.fixture
async def real() -> AsyncIterator[Rec]:
    async with real_rec("plbig-", BASE) as rec:
        yield rec


def v1_request(code: str) -> tuple[str, bytes]:
    """An ``execute_request`` as JupyterLab 4 sends it (v1 framing): (its msg_id, the frame)."""
    msg_id = uuid.uuid4().hex
    header = {"msg_id": msg_id, "username": "", "session": uuid.uuid4().hex,
              "msg_type": "execute_request", "version": "5.3",
              "date": datetime.now(UTC).isoformat()}
    content = {"code": code, "silent": False, "store_history": True, "user_expressions": {},
               "allow_stdin": False, "stop_on_error": True}
    parts = [json.dumps(part).encode() for part in (header, {}, {"cellId": "big-1"}, content)]
    return msg_id, serialize_msg_to_ws_v1(parts, "shell")


class Seen:
    """What one connection received for one execution: its outputs, reply status and idle."""

    def __init__(self) -> None:
        self.stream = ""
        self.display: list[dict[str, Any]] = []
        self.status = ""
        self.idle = False

    def take(self, kind: str, content: dict[str, Any]) -> None:
        if kind == "stream":
            self.stream += content["text"]
        elif kind == "display_data":
            self.display.append(content["data"])
        elif kind == "execute_reply":
            self.status = content["status"]
        elif kind == "status" and content["execution_state"] == "idle":
            self.idle = True


async def read_v1(sock: aiohttp.ClientWebSocketResponse, msg_id: str, seen: Seen) -> None:
    """Read the v1 connection (jupyter-server's own deserialiser) until the reply and idle."""
    while not (seen.status and seen.idle):
        frame = await sock.receive(timeout=120)
        assert frame.type == WSMsgType.BINARY, frame
        _, parts = deserialize_msg_from_ws_v1(frame.data)
        header, parent, _, content = (json.loads(part) for part in parts[:4])
        if parent.get("msg_id") == msg_id:
            seen.take(header["msg_type"], content)


async def read_legacy(sock: aiohttp.ClientWebSocketResponse, msg_id: str, seen: Seen) -> None:
    """Read the legacy JSON connection until the execution's reply and idle status."""
    while not seen.idle:  # the reply goes to the requesting connection only
        frame = await sock.receive(timeout=120)
        assert frame.type == WSMsgType.TEXT, frame
        data = json.loads(frame.data)
        if data["parent_header"].get("msg_id") == msg_id:
            seen.take(data["header"]["msg_type"], data["content"])
    seen.status = "(not sent to this connection)"


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


async def test_a_megabyte_of_output_is_relayed_intact_and_recorded_once(real: Rec) -> None:
    rec = real
    sid, _ = await rec.start()
    kernel_id = await open_notebook(rec, sid, "big.ipynb")
    url = rec.url(sid, f"api/kernels/{kernel_id}/channels")
    origin = rec.origin(sid)
    async with rec.ws.ws_connect(url, origin=origin, protocols=(V1_PROTOCOL,),
                                 max_msg_size=0) as lab, \
            rec.ws.ws_connect(url, origin=origin, max_msg_size=0) as watcher:
        assert lab.protocol == V1_PROTOCOL
        assert watcher.protocol is None
        msg_id, request = v1_request(CODE)
        await lab.send_bytes(request)
        mine, theirs = Seen(), Seen()
        await asyncio.gather(read_v1(lab, msg_id, mine), read_legacy(watcher, msg_id, theirs))

    for seen in (mine, theirs):  # byte for byte, on both connections
        assert len(seen.stream) == len(STREAM) == 1_000_000
        assert digest(seen.stream) == digest(STREAM)
        assert seen.display == [{"image/png": IMAGE, "text/plain": LABEL}]
    assert mine.status == "ok"

    found = await rec.wait_for(sid, lambda f: bool(kinds(f, E.CELL_EXECUTED)))
    await asyncio.sleep(0.5)  # a second (duplicate) cell.executed would be stored by now
    found = await rec.events(sid)
    assert_gap_free(found)
    (cell,) = kinds(found, E.CELL_EXECUTED)
    payload = cell["payload"]
    assert (cell["actor"], cell["path"]) == ("candidate", "big.ipynb")
    assert (payload["code"], payload["status"], payload["execution_count"],
            payload["cell_id"]) == (CODE, "ok", 1, "big-1")
    assert payload["mimetypes"] == ["image/png", "text/plain"]
    assert payload["output_chars"] == len(STREAM) + len(LABEL) + 1
    assert payload["outputs"] >= 2  # one display, the stream in one message or more
    excerpt = payload["output"]
    assert excerpt.startswith(STREAM[:1000])
    assert excerpt.endswith(STREAM[-1000:] + LABEL + "\n")
    assert "…[truncated " in excerpt and len(excerpt) < 10_000
    assert IMAGE[:100] not in json.dumps(payload)  # the image itself is never stored
    assert "flags" not in payload
