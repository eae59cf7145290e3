"""The terminal as the screen the candidate saw, in a real sandboxed workspace through the proxy:
``less`` (a full-screen program) and a printed alternate-screen switch followed by commands.
The cast holds every byte of output that went through the proxy; the commands after the trick
are in the timeline, each pointing into the cast; the casts API and the export serve it."""

from __future__ import annotations

import asyncio
import io
import json
import tarfile
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import ClientWebSocketResponse, WSMsgType

from tests.server.recording.conftest import UID_BASE, Rec, kinds
from tests.server.recording.real_app import real_rec, uid_base
from workspaces.excerpt import strip_ansi
from workspaces.recording import events as E

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]
BASE = uid_base(6000, UID_BASE + 6000)
"""Sandbox uids of this file."""


@pytest.fixture
async def real() -> AsyncIterator[Rec]:
    async with real_rec("plcast-", BASE) as rec:
        yield rec


class Screen:
    """A terminal WebSocket through the proxy, keeping every stdout frame it received."""

    def __init__(self, sock: ClientWebSocketResponse) -> None:
        self.sock = sock
        self.stdout: list[str] = []

    async def read_until(self, wanted: str, within: float = 60) -> None:
        start = len(self.stdout)
        deadline = time.monotonic() + within
        while wanted not in strip_ansi("".join(self.stdout[start:])) and \
                wanted not in "".join(self.stdout[start:]):
            try:
                msg = await self.sock.receive(timeout=max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                raise AssertionError(f"never saw {wanted!r}: {self.stdout[start:]!r}") from None
            assert msg.type == WSMsgType.TEXT, msg
            kind, *rest = json.loads(msg.data)
            if kind == "stdout":
                self.stdout.append(rest[0])

    async def type(self, text: str) -> None:
        for key in text:  # as a browser sends it: a keystroke per message
            await self.sock.send_str(json.dumps(["stdin", key]))

    async def run(self, command: str, until: str) -> None:
        await self.type(command)
        await self.sock.send_str(json.dumps(["stdin", "\r"]))
        await self.read_until(until)


async def test_less_and_the_alternate_screen_trick_are_recorded(real: Rec) -> None:
    rec = real
    sid, _ = await rec.start()
    name = (await rec.call(sid, "POST", "api/terminals"))["name"]
    async with rec.ws.ws_connect(rec.url(sid, f"terminals/websocket/{name}"),
                                 origin=rec.origin(sid), max_msg_size=0) as sock:
        screen = Screen(sock)
        await sock.send_str(json.dumps(["set_size", 30, 100, 600, 900]))
        await screen.run("seq -f 'row-%g' 1 300 > rows.txt; echo made-$((1+1))", "made-2")
        await screen.run("less rows.txt", "row-20")
        assert "\x1b[?1049h" in "".join(screen.stdout)
        await screen.type("G")  # to the end, as a reader would
        await screen.read_until("row-300")
        await screen.type("q")
        await screen.read_until("\x1b[?1049l")
        await screen.run("printf '\\e[?1049h'; echo trick-$((2+3))", "trick-5")
        await screen.run("echo sec''ret-$((6*7))", "secret-42")
        await screen.run("cat rows.txt | wc -l", "300")
        await asyncio.sleep(0.5)  # the prompt after the last command
        while True:  # whatever else is in flight
            try:
                msg = await sock.receive(timeout=1)
            except TimeoutError:
                break
            kind, *rest = json.loads(msg.data)
            if kind == "stdout":
                screen.stdout.append(rest[0])
    found = await rec.wait_for(sid, lambda f: E.SESSION_LEFT in [e["kind"] for e in f])
    commands = kinds(found, E.TERMINAL_COMMAND)
    lines = [c["payload"]["line"] for c in commands]
    assert lines == ["seq -f 'row-%g' 1 300 > rows.txt; echo made-$((1+1))", "less rows.txt",
                     "printf '\\e[?1049h'; echo trick-$((2+3))", "echo sec''ret-$((6*7))",
                     "cat rows.txt | wc -l"], lines
    assert commands[1]["payload"]["full_screen"] is True
    # typed ahead while the printed switch made the tracker think a full-screen program ran:
    # the shell's report names it (with its output then in the cast only)
    secret = commands[3]["payload"]
    assert "secret-42" in secret["output"] or secret.get("keys_missing") is True, secret
    # the workspace's shell reported each line it ran: all verified
    assert not [c for c in commands if {"unverified", "keys_differ"} & set(c["payload"])]

    listing = await rec.api("GET", f"/api/v1/sessions/{sid}/casts")
    deadline = time.monotonic() + 30
    while not listing["casts"] or not listing["casts"][0]["ended_at"]:
        assert time.monotonic() < deadline, listing
        await asyncio.sleep(0.2)
        listing = await rec.api("GET", f"/api/v1/sessions/{sid}/casts")
    [cast] = listing["casts"]
    assert (cast["terminal"], cast["actor"], cast["width"], cast["height"]) == \
        (name, "candidate", 100, 30)
    assert {c["payload"]["cast"]["id"] for c in commands} == {cast["id"]}
    response = await rec.client.get(cast["url"])
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    header_line, *rows = (await response.text()).splitlines()
    header = json.loads(header_line)
    assert header["version"] == 2 and (header["width"], header["height"]) == (100, 30)
    records = [json.loads(row) for row in rows]
    output = "".join(r[2] for r in records if r[1] == "o")
    assert output == "".join(screen.stdout)  # every byte the terminal drew
    assert cast["bytes"] == len(output.encode()) and cast["dropped_bytes"] == 0
    keys = "".join(r[2] for r in records if r[1] == "i")
    assert "less rows.txt\rGq" in keys and "echo sec''ret-$((6*7))\r" in keys
    end = records[-1][0]
    times = [c["payload"]["cast"]["t"] for c in commands]
    assert all(0 <= t <= end for t in times) and times[:3] == sorted(times[:3])
    print(f"cast: {len(rows)} records, {cast['size']} bytes on disk, "
          f"{cast['bytes']} output bytes")

    missing = await rec.client.get(f"/api/v1/sessions/{sid}/casts/{name}.99")
    assert missing.status == 404 and "no such terminal cast" in await missing.text()
    export = await rec.client.get(f"/api/v1/sessions/{sid}/export")
    assert export.status == 200
    with tarfile.open(fileobj=io.BytesIO(await export.read()), mode="r:gz") as tar:
        index = json.load(tar.extractfile(f"session-{sid}/casts/index.json"))  # type: ignore[arg-type]
        exported = tar.extractfile(f"session-{sid}/casts/{cast['id']}.cast")
        assert exported is not None
        assert exported.read().decode() == header_line + "\n" + "\n".join(rows) + "\n"
    assert [c["id"] for c in index["casts"]] == [cast["id"]]
