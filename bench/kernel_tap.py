"""The recorder's kernel tap alone: CPU per cell execute as the proxy feeds it, no network.

    .venv/bin/python -m bench.kernel_tap [--executes 3000] [--big-mb 1] [--rounds 5]

A ``KernelTap`` (``workspaces.recording.taps``: the tracker, attribution and the events it emits,
recorded into a list: no database) is fed the frames of ``1+1`` run on a kernel (the request, then
busy, execute_input, execute_result, idle, execute_reply) as jupyter-server writes them, in the
legacy JSON framing and in JupyterLab 4's v1 framing (``serialize_msg_to_ws_v1``):

- "own": the connection sent the request (every frame belongs to a cell it records);
- "watcher": another connection's cell with a ``--big-mb`` result (what an interviewer's
  connection to the same kernel receives: jupyter-server copies iopub to every connection).

Prints the best of ``--rounds`` of this process's CPU time per execute. The proxy's relay (and
the event store) are not in it: ``bench.proxy`` measures those.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from aiohttp import WSMsgType

from bench.common import kernel_message, run_bench, ws_v1
from workspaces.recording.events import Event
from workspaces.recording.kernel_messages import V1_PROTOCOL
from workspaces.recording.taps import KernelTap, SessionTaps
from workspaces.upstream import Principal

Frames = list[tuple[str, str | bytes]]


def _header(msg_type: str) -> dict[str, Any]:
    header: dict[str, Any] = kernel_message(msg_type, {})["header"]
    return header


def execute(v1: bool, result: str = "2") -> tuple[str, Frames]:
    """The frames of one ``1+1`` (its result text ``result``): (the request's id, frames)."""
    request = _header("execute_request")
    messages = [("in", "shell", request, {}, {}, {
        "code": "1+1", "silent": False, "store_history": True, "user_expressions": {},
        "allow_stdin": False, "stop_on_error": True})]
    for kind, channel, content, metadata in (
            ("status", "iopub", {"execution_state": "busy"}, {}),
            ("execute_input", "iopub", {"code": "1+1", "execution_count": 1}, {}),
            ("execute_result", "iopub", {"data": {"text/plain": result}, "metadata": {},
                                         "execution_count": 1}, {}),
            ("status", "iopub", {"execution_state": "idle"}, {}),
            ("execute_reply", "shell", {"status": "ok", "execution_count": 1,
                                        "user_expressions": {}, "payload": []},
             {"dependencies_met": True, "status": "ok", "pairlab": {"transformed": False}})):
        messages.append(("out", channel, _header(kind), request, metadata, content))
    frames: Frames = []
    for direction, channel, head, parent, metadata, content in messages:
        if v1:
            frames.append((direction, ws_v1([json.dumps(part).encode() for part in (
                head, parent, metadata, content)], channel)))
        else:  # as jupyter-server's legacy JSON: the message dict with its channel
            frames.append((direction, json.dumps({
                "header": head, "msg_id": head["msg_id"], "msg_type": head["msg_type"],
                "parent_header": parent, "metadata": metadata, "content": content,
                "buffers": [], "channel": channel})))
    return str(request["msg_id"]), frames


async def cpu_per_execute(v1: bool, runs: list[Frames], requested: list[str]) -> float:
    """Feed every run through one new tap; this process's CPU time per run."""
    recorded: list[Event] = []

    async def record(event: Event) -> None:
        recorded.append(event)

    taps = SessionTaps({}, None, record)  # type: ignore[arg-type]  # no upstream is read
    state = taps._state("s1")  # noqa: SLF001 - a session without a workspace
    kernel = state.kernel("k1")
    kernel.path = "bench.ipynb"
    state.known.add("k1")
    for msg_id in requested:  # sent by another connection of the kernel
        kernel.lifecycle.requested(msg_id)
    tap = KernelTap(taps, state, Principal("bench", "Bench", "candidate"), "k1",
                    V1_PROTOCOL if v1 else "")
    kind = WSMsgType.BINARY if v1 else WSMsgType.TEXT
    began = time.process_time()
    for frames in runs:
        for direction, data in frames:
            await tap.feed(direction, kind, data)
    took = (time.process_time() - began) / len(runs)
    cells = sum(1 for event in recorded if event.kind == "cell.executed")
    assert cells == (0 if requested else len(runs)), cells
    return took


async def main(args: argparse.Namespace) -> None:
    big = "x" * (args.big_mb * 1_000_000 - 1) + "\n"
    for v1 in (False, True):
        framing = "v1" if v1 else "legacy"
        own = [execute(v1)[1] for _ in range(args.executes)]
        best = min([await cpu_per_execute(v1, own, []) for _ in range(args.rounds)])
        print(f"{framing:6}  own 1+1 execute: {best * 1000:.4f} ms CPU per execute")
        watched = [execute(v1, big) for _ in range(20)]
        ids = [msg_id for msg_id, _ in watched]
        runs = [[f for f in frames if f[0] == "out"] for _, frames in watched]
        best = min([await cpu_per_execute(v1, runs, ids) for _ in range(args.rounds)])
        print(f"{framing:6}  watcher of another's {args.big_mb} MB result: {best * 1000:.3f} ms "
              "CPU per execute")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.kernel_tap", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--executes", type=int, default=3000, help="1+1 executes per round")
    parser.add_argument("--big-mb", type=int, default=1, help="the watched result's size")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (the best is printed)")
    args = parser.parse_args(argv)
    if not (1 <= args.executes <= 1_000_000 and 1 <= args.big_mb <= 64
            and 1 <= args.rounds <= 100):
        parser.error("--executes 1..1000000, --big-mb 1..64, --rounds 1..100")
    return args


if __name__ == "__main__":
    options = parse(sys.argv[1:])
    run_bench("pairlab kernel tap benchmark", "bench.kernel_tap", lambda: main(options),
              quiet=False)
