"""Proxy overhead: one live session, the same jupyter-server reached through pairlab's proxy
(TCP loopback to the workspace origin, candidate cookie) and directly (its Unix socket, token).

    .venv/bin/python -m bench.proxy [--http 500] [--ws 300] [--exec 200] [--block 25]
                                    [--framing legacy|v1]

(a) HTTP: ``GET /w/<id>/api/status``, proxied and direct interleaved request by request (the
    order alternates), keep-alive connections on both sides.
(b) WebSocket round trip: ``kernel_info_request`` → ``kernel_info_reply`` on the kernel's
    channels WebSocket: legacy JSON framing (no subprotocol), or with ``--framing v1`` the
    binary framing JupyterLab 4 asks for; both arms offer permessage-deflate, as Chromium does.
(c) Cell execute round trip: ``execute_request`` of ``1+1`` → ``execute_reply`` and the
    kernel's ``idle`` status (when a frontend considers the cell finished).
    (b) and (c) alternate blocks of ``--block`` round trips over a fresh proxied or direct
    WebSocket, one open at a time (the kernel broadcasts iopub to every connection, so two open
    sockets would make each arm relay the other's traffic). A third arm, "unrecorded", is
    proxied with the recorder's WebSocket tap turned off for its connections (the proxy's
    ``ws_tap`` answers None, as outside a recording): proxied minus unrecorded is what
    recording costs on the proxy's hot path, measured in the same run.
Then TCP_NODELAY is read with getsockopt on both ends of a proxied WebSocket connection
opened here: the client's socket and the proxy's accepted socket (found by its address pair).

The client runs in the same process and event loop as pairlab (one request in flight at a
time), so "proxied" includes the proxy's whole CPU cost and "direct" the same client work
without it. Prints p50 / p95 / p99 of each and the p50 overhead against the DESIGN targets.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import psutil

from bench.common import (
    Exchange,
    Stack,
    exchange,
    execute_request,
    fmt,
    kernel_message,
    median,
    now,
    row,
    run_bench,
    verdict,
    wait_kernel_ready,
)
from server.recording.keys import RECORDING

Connect = Callable[[], Awaitable[aiohttp.ClientWebSocketResponse]]


@dataclass
class Arm:
    """Wall-clock round trips, and this process's CPU time (all threads) spent per round trip:
    pairlab's proxy and the client share the process, so proxied minus direct CPU is the
    proxy's own CPU cost, which other load on the machine barely changes."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    loop_cpu: list[float] = field(default_factory=list)
    """The event loop's thread only (``time.thread_time``): the relay's hot path, without the
    database writer's thread (the recorder's batched event writes)."""


def mean(values: list[float]) -> float:
    return sum(values) / len(values)


async def timed(arm: Arm, call: Callable[[], Awaitable[float]]) -> None:
    cpu = time.process_time()
    arm.wall.append(await call())
    arm.cpu.append(time.process_time() - cpu)


async def http_phase(stack: Stack, workspace_id: str, n: int, warmup: int) -> tuple[Arm, Arm]:
    proxied_url = stack.proxied(workspace_id, "api/status")
    direct, direct_url = stack.direct_client(workspace_id), stack.direct_url(workspace_id,
                                                                             "api/status")
    direct_headers = stack.direct_headers(workspace_id)

    async def via_proxy() -> float:
        began = now()
        async with stack.cand.get(proxied_url) as resp:
            await resp.read()
        took = now() - began
        assert resp.status == 200, resp.status
        return took

    async def via_socket() -> float:
        began = now()
        async with direct.get(direct_url, headers=direct_headers) as resp:
            await resp.read()
        took = now() - began
        assert resp.status == 200, resp.status
        return took

    for _ in range(warmup):
        await via_proxy()
        await via_socket()
    proxied, straight = Arm(), Arm()
    for i in range(n):
        if i % 2 == 0:
            await timed(proxied, via_proxy)
            await timed(straight, via_socket)
        else:
            await timed(straight, via_socket)
            await timed(proxied, via_proxy)
    return proxied, straight


async def ws_phase(n: int, block: int, warmup: int, arms: dict[str, Connect],
                   message: Callable[[], dict[str, Any]]
                   ) -> tuple[dict[str, list[Exchange]], dict[str, Arm]]:
    """Alternate blocks over a fresh WebSocket of each arm in turn; ``n`` counted each."""
    results: dict[str, list[Exchange]] = {name: [] for name in arms}
    cpu: dict[str, Arm] = {name: Arm() for name in arms}
    first = True
    while any(len(r) < n for r in results.values()):
        for name, connect in arms.items():
            wanted = min(block, n - len(results[name]))
            if wanted <= 0:
                continue
            ws = await connect()
            try:
                await wait_kernel_ready(ws)
                for _ in range(warmup if first else 0):
                    await exchange(ws, message())
                for _ in range(wanted):
                    began, began_loop = time.process_time(), time.thread_time()
                    results[name].append(await exchange(ws, message()))
                    cpu[name].cpu.append(time.process_time() - began)
                    cpu[name].loop_cpu.append(time.thread_time() - began_loop)
            finally:
                await ws.close()
        first = False
    return results, cpu


def nodelay(sock: socket.socket) -> int:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


async def nodelay_check(stack: Stack, workspace_id: str, kernel_id: str) -> None:
    ws = await stack.proxied_channels(workspace_id, kernel_id)
    try:
        client = ws.get_extra_info("socket")
        assert client is not None, "no socket on the client connection"
        mine = client.getsockname()
        client_side = nodelay(client)
        server_side: int | str = "not found"
        for conn in psutil.Process().net_connections(kind="tcp"):
            if conn.laddr and conn.raddr and tuple(conn.raddr) == tuple(mine[:2]) \
                    and conn.laddr.port == stack.settings.workspace_port and conn.fd >= 0:
                dup = socket.socket(fileno=os.dup(conn.fd))
                try:
                    server_side = nodelay(dup)
                finally:
                    dup.close()
    finally:
        await ws.close()
    print(f"\nTCP_NODELAY on a proxied kernel WebSocket opened here: client side = {client_side}"
          f", proxy's accepted socket (server side, same connection) = {server_side}"
          "  (1 = set: no Nagle delay on the browser-facing hop)")
    print("  the proxy -> jupyter-server hop is an AF_UNIX socket (no Nagle); the workspace's "
          "server config also calls set_nodelay(True) on its WebSocket streams")


def unrecorded(stack: Stack, connect: Connect) -> Connect:
    """``connect``, with the recorder's WebSocket tap off for the connection it opens (the
    proxy looks ``ws_tap`` up on every request; nothing else is recorded meanwhile)."""
    recording = stack.app[RECORDING]

    async def no_tap(*args: Any) -> None:
        return None

    async def opened() -> aiohttp.ClientWebSocketResponse:
        recording.ws_tap = no_tap  # type: ignore[method-assign]
        try:
            return await connect()
        finally:
            del recording.ws_tap  # the class's method again
    return opened


def recording_cost(label: str, recorded: Arm, unrecorded_arm: Arm) -> None:
    cpu_r, cpu_u = (mean(arm.cpu) for arm in (recorded, unrecorded_arm))
    loop_r, loop_u = (mean(arm.loop_cpu) for arm in (recorded, unrecorded_arm))
    print(row(f"{label}: proxied, unrecorded", unrecorded_arm.wall, "ms", p99=True))
    print(f"    recording's share (proxied - unrecorded): p50 "
          f"{(median(recorded.wall) - median(unrecorded_arm.wall)) * 1000:+.3f} ms, CPU "
          f"{(cpu_r - cpu_u) * 1000:+.3f} ms per round trip (event loop thread "
          f"{(loop_r - loop_u) * 1000:+.3f} ms)")


def overhead(label: str, proxied: list[float], direct: list[float], target_ms: float | None,
             cpu: tuple[Arm, Arm], paired: bool = False) -> None:
    print(row(f"{label}: proxied", proxied, "ms", p99=True))
    print(row(f"{label}: direct", direct, "ms", p99=True))
    extra = median(proxied) - median(direct)
    line = f"    overhead p50 {extra * 1000:+.3f} ms"
    if paired:  # request i of each arm ran back to back
        diffs = [p - d for p, d in zip(proxied, direct, strict=True)]
        line += f" (median of the pairwise differences {median(diffs) * 1000:+.3f} ms)"
    line += f", proxied/direct p50 = {median(proxied) / median(direct):.2f}"
    if target_ms is not None:
        line += f"; target <= +{target_ms} ms: {verdict(extra, target_ms / 1000)}"
    print(line)
    cpu_p, cpu_d = (mean(arm.cpu) for arm in cpu)
    print(f"    CPU of this process per round trip (mean): proxied {cpu_p * 1000:.3f} ms, direct "
          f"{cpu_d * 1000:.3f} ms -> the proxy's CPU cost ~ {(cpu_p - cpu_d) * 1000:+.3f} ms")
    if all(arm.loop_cpu for arm in cpu):
        loop_p, loop_d = (mean(arm.loop_cpu) for arm in cpu)
        print(f"    of which on the event loop's thread: proxied {loop_p * 1000:.3f} ms, direct "
              f"{loop_d * 1000:.3f} ms -> {(loop_p - loop_d) * 1000:+.3f} ms (the rest: the "
              "database writer's thread)")


async def main(args: argparse.Namespace) -> None:
    async with Stack("plbx-", warm_pool_size=0) as stack:
        session_id, workspace_id = await stack.new_session()
        kernel_id = await stack.new_kernel(workspace_id)
        print(f"session {session_id}, workspace {workspace_id}, kernel {kernel_id} "
              f"(upstream socket {stack.upstream(workspace_id).socket_path})")

        v1 = args.framing == "v1"

        def proxied() -> Awaitable[aiohttp.ClientWebSocketResponse]:
            return stack.proxied_channels(workspace_id, kernel_id, v1)

        def direct() -> Awaitable[aiohttp.ClientWebSocketResponse]:
            return stack.direct_channels(workspace_id, kernel_id, v1)

        began = now()
        http_p, http_d = await http_phase(stack, workspace_id, args.http, args.warmup)
        print(f"\n(a) HTTP GET /w/<id>/api/status, {args.http} each, interleaved "
              f"({fmt(now() - began, 's')})")
        overhead("GET api/status", http_p.wall, http_d.wall, 0.5, (http_p, http_d),
                 paired=True)

        arms = {"proxied": proxied, "direct": direct,
                "unrecorded": unrecorded(stack, proxied)}

        began = now()
        info, info_cpu = await ws_phase(args.ws, args.block, args.warmup, arms,
                                        lambda: kernel_message("kernel_info_request", {}))
        print(f"\n(b) WebSocket kernel_info_request -> reply, {args.framing} framing, {args.ws} "
              f"each, blocks of {args.block} ({fmt(now() - began, 's')})")
        overhead("kernel_info round trip", [e.reply_s for e in info["proxied"]],
                 [e.reply_s for e in info["direct"]], None,
                 (info_cpu["proxied"], info_cpu["direct"]))
        info_cpu["unrecorded"].wall = [e.reply_s for e in info["unrecorded"]]
        info_cpu["proxied"].wall = [e.reply_s for e in info["proxied"]]
        recording_cost("kernel_info round trip", info_cpu["proxied"], info_cpu["unrecorded"])

        began = now()
        done, exec_cpu = await ws_phase(args.exec, args.block, args.warmup, arms,
                                        lambda: execute_request("1+1"))
        # IPython warns on stderr each time its output cache (1000 results) is flushed
        wrong = [e.text for arm in done.values() for e in arm if e.text != "2" and not (
            e.text.endswith("\n2") and "Output cache limit" in e.text)]
        assert not wrong, wrong[:3]
        print(f"\n(c) execute `1+1` -> execute_reply + idle, {args.framing} framing, "
              f"{args.exec} each, blocks of {args.block} ({fmt(now() - began, 's')})")
        for name in arms:
            exec_cpu[name].wall = [e.done_s for e in done[name]]
        done_p = exec_cpu["proxied"].wall
        overhead("execute 1+1 round trip", done_p, exec_cpu["direct"].wall, None,
                 (exec_cpu["proxied"], exec_cpu["direct"]))
        recording_cost("execute 1+1 round trip", exec_cpu["proxied"], exec_cpu["unrecorded"])
        print(row("execute 1+1: proxied, until execute_reply only",
                  [e.reply_s for e in done["proxied"]], "ms", p99=True))
        print(f"    target cell execute round trip through the proxy <= 6 ms p50: "
              f"{verdict(median(done_p), 0.006)} ({fmt(median(done_p))})")

        await nodelay_check(stack, workspace_id, kernel_id)
        print()


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.proxy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--http", type=int, default=500, help="GET requests per arm in (a)")
    parser.add_argument("--ws", type=int, default=300, help="kernel_info round trips per arm")
    parser.add_argument("--exec", type=int, default=200, help="1+1 round trips per arm")
    parser.add_argument("--block", type=int, default=25,
                        help="WebSocket round trips per connection before switching arm")
    parser.add_argument("--warmup", type=int, default=20, help="uncounted requests per arm")
    parser.add_argument("--framing", choices=("legacy", "v1"), default="legacy",
                        help="kernel WebSocket framing of (b) and (c): legacy JSON text, or "
                             "JupyterLab 4's binary v1.kernel.websocket.jupyter.org")
    args = parser.parse_args(argv)
    if not (1 <= args.http <= 100_000 and 1 <= args.ws <= 100_000 and 1 <= args.exec <= 100_000
            and 1 <= args.block <= 10_000 and 0 <= args.warmup <= 1000):
        parser.error("counts must be positive and at most 100000")
    return args


if __name__ == "__main__":
    options = parse(sys.argv[1:])
    run_bench("pairlab proxy benchmark", "bench.proxy", lambda: main(options))
