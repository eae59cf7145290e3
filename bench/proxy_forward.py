"""What recording would cost the proxy if its WebSocket taps only handed the frames to a
recorder process (a design not built yet; issue 15's proxy CPU per recorded cell).

    .venv/bin/python -m bench.proxy_forward [--exec 300] [--block 25]

``bench.proxy``'s cell execute phase (c), legacy framing, with a fourth arm, "forwarded": the
recorder's ``ws_tap`` answers a tap that appends each frame (a small header and its bytes) to
a buffer written once per event-loop turn to a socket, where a child process feeds the frames
to a ``KernelTracker``. The other arms, alternating in blocks over fresh WebSockets as in
``bench.proxy``: proxied (today's recording in the proxy's process), unrecorded (no tap) and
direct (the workspace's socket). Prints this process's CPU per ``1+1`` against direct for each,
and the recorder child's CPU per forwarded cell. Nothing here is used by pairlab itself.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import struct
import subprocess
import sys
from collections.abc import Awaitable
from typing import Any

import aiohttp
import psutil
from aiohttp import WSMsgType

from bench.common import Stack, execute_request, median
from bench.proxy import Connect, mean, unrecorded, ws_phase
from server.recording.keys import RECORDING

HEADER = struct.Struct("<IBBI")
"""tap id, direction (0 in, 1 out), kind (1 text, 2 binary), length."""
CHILD = r'''
import socket, struct, sys
from workspaces.recording.kernel_messages import KernelTracker
HEADER = struct.Struct("<IBBI")
sock = socket.socket(fileno=int(sys.argv[1]))
trackers, buf = {}, b""
while chunk := sock.recv(1 << 20):
    buf += chunk
    at = 0
    while len(buf) - at >= HEADER.size:
        tap, direction, kind, size = HEADER.unpack_from(buf, at)
        if len(buf) - at - HEADER.size < size:
            break
        data = buf[at + HEADER.size:at + HEADER.size + size]
        at += HEADER.size + size
        tracker = trackers.setdefault(tap, KernelTracker(""))
        tracker.feed("in" if direction == 0 else "out", data.decode() if kind == 1 else data)
    buf = buf[at:]
'''


class Forwarder:
    """The proxy's end: one socket to the recorder child, written once per loop turn."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        self.child = subprocess.Popen([sys.executable, "-c", CHILD, str(theirs.fileno())],
                                      pass_fds=[theirs.fileno()])
        theirs.close()
        self.sock = ours
        self.parts: list[bytes] = []
        self.due = False
        self.taps = 0
        self.transport: asyncio.Transport | None = None

    async def start(self) -> None:
        transport, _ = await asyncio.get_running_loop().create_connection(
            asyncio.Protocol, sock=self.sock)
        self.transport = transport

    def add(self, tap: int, direction: str, kind: WSMsgType, data: str | bytes) -> None:
        raw = data.encode() if isinstance(data, str) else data
        self.parts.append(HEADER.pack(tap, 0 if direction == "in" else 1,
                                      1 if kind is WSMsgType.TEXT else 2, len(raw)))
        self.parts.append(raw)
        if not self.due:
            self.due = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self.due = False
        assert self.transport is not None
        self.transport.write(b"".join(self.parts))
        self.parts.clear()

    async def close(self) -> None:
        if self.transport is not None:
            self.transport.close()  # the socket closes on the loop's next turn: EOF to the child
        await asyncio.to_thread(self.child.wait, 30)


class ForwardTap:
    """A ``Tap`` as the proxy calls it (``feed``, ``close``) that only forwards."""

    def __init__(self, forwarder: Forwarder) -> None:
        forwarder.taps += 1
        self.id = forwarder.taps
        self.forwarder = forwarder

    async def feed(self, direction: str, kind: WSMsgType, data: str | bytes) -> None:
        if kind in (WSMsgType.TEXT, WSMsgType.BINARY):
            self.forwarder.add(self.id, direction, kind, data)

    async def close(self) -> None:
        pass


def forwarded(stack: Stack, connect: Connect, forwarder: Forwarder) -> Connect:
    """``connect``, with the recorder's WebSocket tap replaced by a ``ForwardTap``."""
    recording = stack.app[RECORDING]

    async def tap(*args: Any) -> ForwardTap:
        return ForwardTap(forwarder)

    async def opened() -> aiohttp.ClientWebSocketResponse:
        recording.ws_tap = tap  # type: ignore[method-assign,assignment]
        try:
            return await connect()
        finally:
            del recording.ws_tap
    return opened


async def main(args: argparse.Namespace) -> None:
    async with Stack("plbf-", warm_pool_size=0) as stack:
        _, workspace_id = await stack.new_session()
        kernel_id = await stack.new_kernel(workspace_id)
        forwarder = Forwarder()
        await forwarder.start()

        def proxied() -> Awaitable[aiohttp.ClientWebSocketResponse]:
            return stack.proxied_channels(workspace_id, kernel_id, False)

        def direct() -> Awaitable[aiohttp.ClientWebSocketResponse]:
            return stack.direct_channels(workspace_id, kernel_id, False)

        arms = {"proxied": proxied, "direct": direct, "unrecorded": unrecorded(stack, proxied),
                "forwarded": forwarded(stack, proxied, forwarder)}
        child = psutil.Process(forwarder.child.pid)
        await asyncio.sleep(1.0)  # the child's own imports, not counted
        before = child.cpu_times()
        done, cpu = await ws_phase(args.exec, args.block, args.warmup, arms,
                                   lambda: execute_request("1+1"))
        after = child.cpu_times()
        await forwarder.close()
        base = mean(cpu["direct"].cpu)
        print(f"\n`1+1` round trips, legacy framing, {args.exec} each, blocks of {args.block}; "
              "this process's CPU per round trip (mean) and against direct:")
        for name in arms:
            own = mean(cpu[name].cpu)
            print(f"  {name:11s} {own * 1000:.3f} ms  {(own - base) * 1000:+.3f} ms  "
                  f"(wall p50 {median([e.done_s for e in done[name]]) * 1000:.2f} ms)")
        child_s = after.user + after.system - before.user - before.system
        print(f"  recorder child: {child_s * 1000 / (args.exec + args.warmup):.3f} ms CPU per "
              "forwarded cell (its socket reads and the KernelTracker)")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.proxy_forward", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exec", type=int, default=300, help="1+1 round trips per arm")
    parser.add_argument("--block", type=int, default=25,
                        help="round trips per connection before switching arm")
    parser.add_argument("--warmup", type=int, default=20, help="uncounted round trips per arm")
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse(sys.argv[1:])))
