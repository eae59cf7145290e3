"""The load client of ``bench.load``, run in a process of its own so that pairlab's CPU time
(the parent process) and the client's (this one) are measured apart.

    .venv/bin/python -m bench.load_client PLAN.json RESULT.json

``PLAN.json`` (written by ``bench.load``): the app's ports and data folder, the saved cookie
jars of the candidate (every session's workspace cookie) and of the interviewer, the sessions
(session id, workspace id, a kernel for cells, the last event seq already stored) and the
seconds to run. For each session it opens, through pairlab's proxy, a collaboration room on
``main.py``, a terminal and the kernel's channels WebSocket, and, on the app origin, the
interviewer's live feed (``/api/v1/sessions/<id>/events/stream``, the Server-Sent Events the
observe page's ``EventSource`` reads). Once everything is open, a session with a
``hog_kernel`` starts a busy loop there, bounded to the run; the client prints ``ready``; then
every interview types in the room (``bench.record.type_solution``: ~4 chars/s in bursts), runs
a cell every ``CELL_EVERY_S`` and a shell command in the terminal, key by key, every
``COMMAND_EVERY_S``, each from a random point of its period (the interviews are not in step),
until the time is up; it prints ``done``, lets the observers read
``GRACE_S`` more, and writes ``RESULT.json``: per session, the action → observer latency of
every candidate event it saw (from the event's ``at``, the moment pairlab's proxy saw the
action, to this process having read it), the cell round trips and the counts of actions; and
this process's CPU time and event-loop lag.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import Candidate, exchange, execute_request, loop_lag, wait_kernel_ready
from bench.record import Room, Terminal, type_solution
from common.loopback import LoopbackResolver
from server.settings import Settings
from workspaces.recording import events as E

CELL_EVERY_S = 1.0
COMMAND_EVERY_S = 5.0
GRACE_S = 3.0
"""After the interviews stop, the observers read on this long (a terminal command is recorded
once its terminal has been quiet; a file change once it is saved and seen)."""
OPEN_AT_ONCE = 8
CANDIDATE_KINDS = (E.CELL_EXECUTED, E.FILE_CHANGED, E.FILE_CREATED, E.TERMINAL_COMMAND,
                   E.TERMINAL_OUTPUT)
HOG = "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end:\n    pass\n"


@dataclass
class Outcome:
    session_id: str
    latency_ms: dict[str, list[float]] = field(default_factory=dict)
    """Per event kind: candidate events whose ``at`` fell in the run, ``at`` → read here."""
    cell_rt_ms: list[float] = field(default_factory=list)
    """``execute_request`` → ``execute_reply`` and ``idle``, through the proxy."""
    cells: int = 0
    keys: int = 0
    commands: int = 0
    terminal_keys: int = 0
    errors: list[str] = field(default_factory=list)
    hog: str = ""
    """The busy loop's ``execute_reply`` status and how long it ran, when this session had it."""


class Remote(Candidate):
    """The candidate side of the parent's stack, from its settings and saved cookies."""

    def __init__(self, settings: Settings, cand: aiohttp.ClientSession) -> None:
        self.settings, self.cand = settings, cand


def client(jar_path: str, resolver: bool) -> aiohttp.ClientSession:
    jar = aiohttp.CookieJar(unsafe=True)
    jar.load(jar_path)
    # limit=0: every interview holds several WebSockets open at once (aiohttp's default is 100)
    connector = aiohttp.TCPConnector(limit=0, resolver=LoopbackResolver() if resolver else None)
    return aiohttp.ClientSession(cookie_jar=jar, connector=connector,
                                 timeout=aiohttp.ClientTimeout(total=None, sock_connect=60))


class Interview:
    def __init__(self, remote: Remote, api: aiohttp.ClientSession, plan: dict[str, Any],
                 seed: int) -> None:
        self.remote, self.api, self.plan = remote, api, plan
        self.out = Outcome(plan["session_id"])
        self.rng = random.Random(seed)
        self.ws_id: str = plan["workspace_id"]
        self.room = Room(remote, self.ws_id, "main.py", notebook=False)
        self.term = Terminal(remote, self.ws_id)
        self.kernel: aiohttp.ClientWebSocketResponse | None = None
        self.hog: aiohttp.ClientWebSocketResponse | None = None
        self.hog_msg_id = ""
        self.hog_began = 0.0
        self.stream: aiohttp.ClientResponse | None = None
        self.window = (0.0, 0.0)
        self.reader: asyncio.Task[None] | None = None
        self.phase: dict[str, float] = {}

    async def open(self, app_url: str) -> None:
        sid = self.out.session_id
        self.stream = await self.api.get(
            f"{app_url}/api/v1/sessions/{sid}/events/stream?after={self.plan['after_seq']}")
        if self.stream.status != 200:
            raise RuntimeError(f"observer of {sid}: HTTP {self.stream.status}")
        await self.stream.content.readline()  # "retry: ..." — the stream is open
        self.reader = asyncio.create_task(self.observe())
        await self.room.open()
        await self.term.open()
        self.kernel = await self.remote.proxied_channels(self.ws_id, self.plan["kernel_id"])
        await wait_kernel_ready(self.kernel)
        if self.plan.get("hog_kernel"):
            self.hog = await self.remote.proxied_channels(self.ws_id, self.plan["hog_kernel"])
            await wait_kernel_ready(self.hog)

    async def start_hog(self, seconds: float) -> None:
        """The busy loop, bounded to ``seconds``; its reply is read in ``close``."""
        if self.hog is not None:
            request = execute_request(HOG.format(seconds=seconds))
            self.hog_msg_id = request["header"]["msg_id"]
            self.hog_began = time.monotonic()
            await self.hog.send_str(json.dumps(request))

    async def observe(self) -> None:
        assert self.stream is not None
        kind = ""
        async for raw in self.stream.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind in CANDIDATE_KINDS:
                read = time.time()
                event = json.loads(line[6:])
                at = datetime.fromisoformat(event["at"]).timestamp()
                if event["actor"] == E.ACTOR_CANDIDATE and self.window[0] <= at <= self.window[1]:
                    self.out.latency_ms.setdefault(kind, []).append((read - at) * 1000)

    async def run(self, until: float) -> None:
        # each activity starts at a random point of its period (interviews are not in step),
        # in the first half of a run shorter than the period: every interview runs a command
        half = max(0.0, until - time.monotonic()) / 2
        self.phase = {"type": self.rng.uniform(0, 1.0), "cells": self.rng.uniform(0, CELL_EVERY_S),
                      "terminal": self.rng.uniform(0, min(COMMAND_EVERY_S, half))}
        jobs = [self.type(until), self.cells(until), self.terminal(until)]
        for result in await asyncio.gather(*jobs, return_exceptions=True):
            if isinstance(result, BaseException):
                self.out.errors.append(f"{type(result).__name__}: {result}")

    async def type(self, until: float) -> None:
        await asyncio.sleep(self.phase["type"])
        try:
            await type_solution(self.room, until, self.rng)
        finally:
            self.out.keys = self.room.keys

    async def cells(self, until: float) -> None:
        assert self.kernel is not None
        await asyncio.sleep(self.phase["cells"])
        while time.monotonic() < until:
            began = time.monotonic()
            n = self.out.cells
            done = await exchange(self.kernel, execute_request(f"n = {n}\nprint(n * n)"))
            if done.text.strip() != str(n * n):
                raise AssertionError(f"cell {n} printed {done.text!r}")
            self.out.cell_rt_ms.append(done.done_s * 1000)
            self.out.cells += 1
            await asyncio.sleep(max(0.0, began + CELL_EVERY_S - time.monotonic()))

    async def terminal(self, until: float) -> None:
        await asyncio.sleep(self.phase["terminal"])
        while time.monotonic() < until:
            began = time.monotonic()
            n = self.out.commands
            command = f"echo ok-$((6*7))-{n}"  # the output, ok-42-n, is not in the keys' echo
            await self.term.run(command, re.compile(f"ok-42-{n}\\b"), self.rng)
            self.out.commands += 1
            self.out.terminal_keys += len(command) + 1
            await asyncio.sleep(max(0.0, began + COMMAND_EVERY_S - time.monotonic()))

    async def close(self) -> None:
        if self.hog is not None:  # its bounded loop is over by now: read its reply
            with contextlib.suppress(Exception):
                async with asyncio.timeout(30):
                    async for msg in self.hog:
                        data = json.loads(msg.data)
                        if data.get("parent_header", {}).get("msg_id") == self.hog_msg_id \
                                and data["header"]["msg_type"] == "execute_reply":
                            self.out.hog = (f"{data['content']['status']} after "
                                            f"{time.monotonic() - self.hog_began:.1f} s")
                            break
            await self.hog.close()
        for sock in (self.kernel,):
            if sock is not None:
                await sock.close()
        await self.room.close()
        await self.term.close()
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(BaseException):
                await self.reader
        if self.stream is not None:
            self.stream.close()


async def main(plan: dict[str, Any]) -> dict[str, Any]:
    settings = Settings(data_dir=Path(plan["data_dir"]), port=plan["port"],
                        workspace_port=plan["workspace_port"])
    cand = client(plan["candidate_cookies"], resolver=True)
    api = client(plan["interviewer_cookies"], resolver=False)
    remote = Remote(settings, cand)
    seconds = float(plan["seconds"])
    interviews = [Interview(remote, api, p, seed=i) for i, p in enumerate(plan["sessions"])]
    gate = asyncio.Semaphore(OPEN_AT_ONCE)

    async def open_one(interview: Interview) -> None:
        async with gate:
            await interview.open(settings.app_url)

    try:
        await asyncio.gather(*(open_one(i) for i in interviews))
        for interview in interviews:  # the run, and the longest a last line or command takes
            await interview.start_hog(seconds + 6)
        cpu = time.process_time()
        began_wall, began = time.time(), time.monotonic()
        for interview in interviews:
            interview.window = (began_wall, float("inf"))
        lags: list[float] = []
        lagger = asyncio.create_task(loop_lag(lags))
        print("ready", flush=True)
        await asyncio.gather(*(i.run(began + seconds) for i in interviews))
        lagger.cancel()
        window_s = time.monotonic() - began
        cpu_s = time.process_time() - cpu
        for interview in interviews:
            interview.window = (began_wall, began_wall + window_s)
        print("done", flush=True)
        await asyncio.sleep(GRACE_S)
    finally:
        for interview in interviews:
            with contextlib.suppress(Exception):
                await interview.close()
        await cand.close()
        await api.close()
    return {"window_s": window_s, "client_cpu_s": cpu_s,
            "client_lag_ms": [lag * 1000 for lag in lags],
            "sessions": [asdict(i.out) for i in interviews]}


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m bench.load_client PLAN.json RESULT.json")
    result = asyncio.run(main(json.loads(Path(sys.argv[1]).read_text())))
    Path(sys.argv[2]).write_text(json.dumps(result))
