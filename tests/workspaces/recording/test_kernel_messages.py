"""Kernel WebSocket traffic → cell executions: frames built with jupyter-server's and
jupyter_client's own serialisers (both framings), and the real messages of a real kernel."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from jupyter_client.jsonutil import json_default
from jupyter_client.session import Session
from jupyter_server.services.kernels.connection import base as connection

from workspaces.recording import events
from workspaces.recording.kernel_messages import (
    V1_PROTOCOL,
    KernelLifecycle,
    KernelTracker,
    parse_frame,
)

T0 = datetime(2025, 5, 1, 12, 0, 0, tzinfo=UTC)
SESSION = Session(key=b"", username="candidate")
serialize_msg_to_ws_v1: Callable[..., bytes] = connection.serialize_msg_to_ws_v1
serialize_binary_message: Callable[..., bytes] = connection.serialize_binary_message


def at(ms: int) -> datetime:
    return T0 + timedelta(milliseconds=ms)


REPORTED = {"pairlab": {"transformed": False}}
"""What pairlab's IPython profile adds to every ``execute_reply`` of a cell it ran as sent."""


def msg(msg_type: str, content: dict[str, Any], parent: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    if msg_type == "execute_reply" and metadata is None:
        metadata = REPORTED
    return SESSION.msg(msg_type, content, parent=parent, metadata=metadata)


def v1(message: dict[str, Any], channel: str) -> bytes:
    """Exactly what jupyter-server writes on a v1 connection."""
    return serialize_msg_to_ws_v1(message, channel, SESSION.pack)


def legacy(message: dict[str, Any], channel: str) -> str | bytes:
    """Exactly what jupyter-server writes on a legacy connection (binary when buffers exist)."""
    message = dict(message, channel=channel)
    if message.get("buffers"):
        return serialize_binary_message(message)
    return json.dumps(message, default=json_default)


def conversation(code: str) -> list[tuple[str, dict[str, Any], str, int]]:
    """A cell run as JupyterLab and ipykernel exchange it: (direction, message, channel, ms)."""
    request = msg("execute_request", {"code": code, "silent": False, "store_history": True,
                                      "user_expressions": {}, "allow_stdin": True,
                                      "stop_on_error": True},
                  metadata={"cellId": "cell-42", "deletedCells": [], "recordTiming": False})
    header = request["header"]
    tb = ["\x1b[0;31m---------------------------------------------------------\x1b[0m",
          "\x1b[0;31mZeroDivisionError\x1b[0m  Traceback (most recent call last)",
          "Cell \x1b[0;32mIn[3], line 1\x1b[0m\n----> 1 1/0",
          "\x1b[0;31mZeroDivisionError\x1b[0m: division by zero"]
    return [
        ("in", request, "shell", 0),
        ("out", msg("status", {"execution_state": "busy"}, header), "iopub", 5),
        ("out", msg("execute_input", {"code": code, "execution_count": 3}, header), "iopub", 6),
        ("out", msg("stream", {"name": "stdout", "text": "1\n"}, header), "iopub", 10),
        ("out", msg("display_data", {"data": {"text/plain": "<Figure size 640x480>",
                                              "text/html": "<script>alert(1)</script>",
                                              "image/png": "iVBORw0KGgo="},
                                     "metadata": {}, "transient": {}}, header), "iopub", 20),
        ("out", msg("error", {"ename": "ZeroDivisionError", "evalue": "division by zero",
                              "traceback": tb}, header), "iopub", 30),
        ("out", msg("execute_reply", {"status": "error", "execution_count": 3,
                                      "ename": "ZeroDivisionError",
                                      "evalue": "division by zero", "traceback": tb},
                    header), "shell", 31),
        ("out", msg("status", {"execution_state": "idle"}, header), "iopub", 32),
    ]


@pytest.mark.parametrize("framing", ["v1", "legacy", "guess-v1", "guess-legacy"])
def test_a_cell_run_in_either_framing(framing: str) -> None:
    protocol = {"v1": V1_PROTOCOL, "legacy": "", "guess-v1": None, "guess-legacy": None}[framing]
    encode = v1 if framing.endswith("v1") else legacy
    tracker = KernelTracker(protocol, kernel_id="k-1")
    found = []
    for direction, message, channel, ms in conversation("print(1); plt.plot(); 1/0"):
        found += tracker.feed(direction, encode(message, channel), at(ms))  # type: ignore[arg-type]
    [cell] = found
    assert cell.kind == events.CELL_EXECUTED
    assert cell.at == at(32)
    p = cell.payload
    assert p["code"] == "print(1); plt.plot(); 1/0"
    assert p["execution_count"] == 3
    assert p["status"] == "error"
    assert p["error"]["ename"] == "ZeroDivisionError"
    assert p["error"]["evalue"] == "division by zero"
    assert "\x1b" not in p["error"]["traceback"]
    assert "----> 1 1/0" in p["error"]["traceback"]
    assert p["duration_ms"] == 26 and p["queued_ms"] == 5  # busy → reply, as the proxy saw it
    assert p["output"] == "1\n<Figure size 640x480>\nZeroDivisionError: division by zero\n"
    assert p["mimetypes"] == ["image/png", "text/html", "text/plain"]
    assert "<script>" not in json.dumps(p)
    assert p["cell_id"] == "cell-42" and p["kernel_id"] == "k-1"
    assert tracker.pending == 0


def test_v1_frames_parse_exactly() -> None:
    request = msg("execute_request", {"code": "x = 1"}, metadata={"cellId": "c"})
    parsed = parse_frame(v1(request, "shell"), V1_PROTOCOL)
    assert parsed is not None
    assert (parsed.channel, parsed.msg_type, parsed.msg_id) == ("shell", "execute_request",
                                                                request["header"]["msg_id"])
    assert parsed.content == {"code": "x = 1"} and parsed.metadata == {"cellId": "c"}
    with_buffers = msg("comm_msg", {"data": {}}, request["header"])
    frame = serialize_msg_to_ws_v1([SESSION.pack(with_buffers["header"]),
                                    SESSION.pack(with_buffers["parent_header"]),
                                    SESSION.pack({}), SESSION.pack(with_buffers["content"]),
                                    b"\x00\x01binary", b"more"], "iopub")
    parsed = parse_frame(frame, None)
    assert parsed is not None and parsed.parent_id == request["header"]["msg_id"]
    legacy_binary = legacy(dict(with_buffers, buffers=[b"\x00\x01"]), "iopub")
    assert isinstance(legacy_binary, bytes)
    parsed = parse_frame(legacy_binary, None)
    assert parsed is not None and parsed.msg_type == "comm_msg" and parsed.channel == "iopub"
    for junk in (b"", b"\x00" * 7, b"\xff" * 64, "not json", "[1, 2]", v1(request, "shell")[:-3]):
        assert parse_frame(junk, None) is None


def test_outputs_of_other_connections_and_silent_runs() -> None:
    tracker = KernelTracker(V1_PROTOCOL)
    stranger = msg("execute_request", {"code": "secret()"})
    out = tracker.feed("out", v1(msg("stream", {"name": "stdout", "text": "x"},
                                     stranger["header"]), "iopub"), at(0))
    assert out == [] and tracker.pending == 0
    silent = msg("execute_request", {"code": "%config", "silent": True})
    tracker.feed("in", v1(silent, "shell"), at(0))
    tracker.feed("out", v1(msg("execute_reply", {"status": "ok", "execution_count": 0},
                               silent["header"]), "shell"), at(1))
    [cell] = tracker.feed("out", v1(msg("status", {"execution_state": "idle"},
                                        silent["header"]), "iopub"), at(2))
    assert cell.payload["silent"] is True and cell.payload["status"] == "ok"


def test_a_silent_cell_whose_type_is_spelt_with_escapes_is_still_recorded() -> None:
    """The attack: a hand-made legacy frame from the candidate's browser spells
    ``execute_request`` with a JSON escape (jupyter-server decodes it as the real thing) and asks
    for a silent run (no ``execute_input`` on iopub). The cell must still be recorded."""
    tracker = KernelTracker("", kernel_id="k-1")
    request = msg("execute_request", {"code": "steal()", "silent": True,
                                      "store_history": False, "user_expressions": {},
                                      "allow_stdin": False, "stop_on_error": True})
    frame = str(legacy(request, "shell")).replace('"execute_request"', '"execute\\u005frequest"')
    assert "execute_request" not in frame and json.loads(frame)["msg_type"] == "execute_request"
    tracker.feed("in", frame, at(0))
    tracker.feed("out", legacy(msg("execute_reply", {"status": "ok", "execution_count": 0},
                                   request["header"]), "shell"), at(1))
    [cell] = tracker.feed("out", legacy(msg("status", {"execution_state": "idle"},
                                            request["header"]), "iopub"), at(2))
    assert cell.payload["code"] == "steal()" and cell.payload["silent"] is True


def test_output_excerpt_is_bounded_with_a_marker() -> None:
    tracker = KernelTracker(V1_PROTOCOL, output_chars=400)
    request = msg("execute_request", {"code": "for i in range(10**6): print(i)"})
    tracker.feed("in", v1(request, "shell"), at(0))
    for chunk in range(200):
        text = "".join(f"{i}\n" for i in range(chunk * 500, chunk * 500 + 500))
        tracker.feed("out", v1(msg("stream", {"name": "stdout", "text": text},
                                   request["header"]), "iopub"), at(chunk))
    tracker.feed("out", v1(msg("status", {"execution_state": "idle"}, request["header"]),
                           "iopub"), at(300))
    [cell] = tracker.feed("out", v1(msg("execute_reply", {"status": "ok", "execution_count": 1},
                                        request["header"]), "shell"), at(301))
    output = cell.payload["output"]
    assert output.startswith("0\n1\n2\n") and output.endswith("99999\n")
    assert "…[truncated" in output and len(output) < 500
    assert cell.payload["output_chars"] > 500_000
    assert cell.payload["duration_ms"] == 300  # reply and idle in either order


def test_lifecycle_restart_death_interrupt_and_dedup() -> None:
    shared = KernelLifecycle()
    first = KernelTracker(V1_PROTOCOL, kernel_id="k", lifecycle=shared)
    second = KernelTracker("", kernel_id="k", lifecycle=shared)
    request = msg("execute_request", {"code": "import os; os._exit(1)"})
    first.feed("in", v1(request, "shell"), at(0))
    restarting = msg("status", {"execution_state": "restarting"})
    found = first.feed("out", v1(restarting, "iopub"), at(100))
    assert [o.kind for o in found] == [events.CELL_EXECUTED, events.KERNEL_RESTARTED]
    assert found[0].payload["status"] == "unknown"
    assert found[0].payload["incomplete"] == "kernel restarted"
    assert second.feed("out", legacy(restarting, "iopub"), at(101)) == []  # same occurrence
    [died] = second.feed("out", legacy(msg("status", {"execution_state": "dead"}), "iopub"),
                         at(200))
    assert died.kind == events.KERNEL_DIED and died.payload["kernel_id"] == "k"
    [interrupt] = first.feed("in", v1(msg("interrupt_request", {}), "control"), at(300))
    assert interrupt.kind == events.KERNEL_INTERRUPTED
    assert first.feed("out", v1(restarting, "iopub"), at(10_000))[0].kind == \
        events.KERNEL_RESTARTED  # a later restart is a new one


def test_pending_requests_are_capped_and_flushed_on_close() -> None:
    tracker = KernelTracker(V1_PROTOCOL, max_pending=3)
    evicted = []
    for i in range(5):
        evicted += tracker.feed("in", v1(msg("execute_request", {"code": f"cell{i}"}), "shell"),
                                at(i))
    assert tracker.pending == 3
    assert [o.payload["code"] for o in evicted] == ["cell0", "cell1"]
    assert {o.payload["incomplete"] for o in evicted} == {"too many open"}
    restarted = tracker.finish_pending("kernel restarted", at(9))
    assert [o.payload["code"] for o in restarted] == ["cell2", "cell3", "cell4"]
    assert {o.payload["incomplete"] for o in restarted} == {"kernel restarted"}
    tracker.feed("in", v1(msg("execute_request", {"code": "cell5"}), "shell"), at(10))
    [closed] = tracker.close(at(11))
    assert closed.payload["code"] == "cell5" and closed.payload["status"] == "unknown"
    assert closed.payload["incomplete"] == "connection closed"
    assert tracker.pending == 0


def test_input_requests_appear_in_the_excerpt() -> None:
    tracker = KernelTracker(V1_PROTOCOL)
    request = msg("execute_request", {"code": "name = input('Name? ')"})
    tracker.feed("in", v1(request, "shell"), at(0))
    ask = msg("input_request", {"prompt": "Name? ", "password": False}, request["header"])
    tracker.feed("out", v1(ask, "stdin"), at(1))
    tracker.feed("in", v1(msg("input_reply", {"value": "Ada"}, ask["header"]), "stdin"), at(2))
    tracker.feed("out", v1(msg("execute_reply", {"status": "ok", "execution_count": 1},
                               request["header"]), "shell"), at(3))
    [cell] = tracker.feed("out", v1(msg("status", {"execution_state": "idle"},
                                        request["header"]), "iopub"), at(4))
    assert cell.payload["output"] == "Name? Ada\n"


def run_through(tracker: KernelTracker, request: dict[str, Any], echoed: str,
                reply_metadata: dict[str, Any] | None = None) -> list[Any]:
    """A request, the kernel's echo of ``echoed``, a reply (with ``reply_metadata``), idle."""
    header = request["header"]
    found = tracker.feed("in", v1(request, "shell"), at(0))
    for ms, frame in enumerate([
            v1(msg("status", {"execution_state": "busy"}, header), "iopub"),
            v1(msg("execute_input", {"code": echoed, "execution_count": 7}, header), "iopub"),
            v1(msg("stream", {"name": "stdout", "text": "2\n"}, header), "iopub"),
            v1(msg("execute_reply", {"status": "ok", "execution_count": 7}, header,
                   metadata=reply_metadata), "shell"),
            v1(msg("status", {"execution_state": "idle"}, header), "iopub")], start=1):
        found += tracker.feed("out", frame, at(ms))
    return found


def test_an_echo_that_differs_from_the_request_is_flagged_and_kept() -> None:
    tracker = KernelTracker(V1_PROTOCOL, kernel_id="k")
    [cell] = run_through(tracker, msg("execute_request", {"code": "print(1)"}), "print(2)")
    p = cell.payload
    assert (p["code"], p["code_echoed"], p["flags"]) == ("print(1)", "print(2)",
                                                         ["echo_differs"])
    [same] = run_through(tracker, msg("execute_request", {"code": "print(1)"}), "print(1)")
    assert "flags" not in same.payload and "code_echoed" not in same.payload
    # a request too large to read is never called different (nothing to compare with)
    small = KernelTracker(V1_PROTOCOL)
    big = "x = '" + "a" * 5_000_000 + "'"
    [unread] = run_through(small, msg("execute_request", {"code": big}), "x = 1")
    assert "flags" not in unread.payload and unread.payload["code"].startswith("…[code of")


def test_a_transformed_cell_reported_by_the_profile_is_flagged_with_the_code_that_ran() -> None:
    tracker = KernelTracker(V1_PROTOCOL)
    report = {"pairlab": {"transformed": True, "by": ["input"], "code_ran": "print(2)\n"}}
    [cell] = run_through(tracker, msg("execute_request", {"code": "print(1)"}), "print(1)",
                         report)
    p = cell.payload
    assert (p["code"], p["code_ran"], p["flags"]) == ("print(1)", "print(2)\n", ["transformed"])
    assert p["output"] == "2\n" and p["status"] == "ok"
    [plain] = run_through(tracker, msg("execute_request", {"code": "1"}), "1", REPORTED)
    assert "flags" not in plain.payload and "code_ran" not in plain.payload


@pytest.mark.parametrize("metadata", [{}, {"pairlab": "yes"}, {"pairlab": {"by": ["input"]}},
                                      {"other": {"transformed": False}}])
def test_a_reply_without_the_profiles_report_is_flagged_unreported(
        metadata: dict[str, Any]) -> None:
    """Code in an earlier cell can undo pairlab's hook (or run another kernel): then nothing
    says that what ran is what was recorded, and the cell says so."""
    tracker = KernelTracker(V1_PROTOCOL)
    [cell] = run_through(tracker, msg("execute_request", {"code": "print(1)"}), "print(1)",
                         metadata)
    assert cell.payload["flags"] == ["unreported"] and "code_ran" not in cell.payload
    # a request the kernel aborted (an earlier cell failed) never ran: nothing to report
    request = msg("execute_request", {"code": "print(3)"})
    header = request["header"]
    tracker.feed("in", v1(request, "shell"), at(10))
    tracker.feed("out", v1(msg("execute_reply", {"status": "aborted"}, header, metadata=metadata),
                           "shell"), at(11))
    [aborted] = tracker.feed("out", v1(msg("status", {"execution_state": "idle"}, header),
                                       "iopub"), at(12))
    assert aborted.payload["status"] == "aborted" and "flags" not in aborted.payload


def outside_run(header: dict[str, Any], code: str) -> list[bytes]:
    """What every connection sees of an execution sent around pairlab (iopub only)."""
    return [v1(msg("status", {"execution_state": "busy"}, header), "iopub"),
            v1(msg("execute_input", {"code": code, "execution_count": 4}, header), "iopub"),
            v1(msg("error", {"ename": "NameError", "evalue": "name 'y' is not defined",
                             "traceback": []}, header), "iopub"),
            v1(msg("status", {"execution_state": "idle"}, header), "iopub")]


def test_an_execution_no_connection_asked_for_is_recorded_once_as_outside() -> None:
    shared = KernelLifecycle()
    first = KernelTracker(V1_PROTOCOL, kernel_id="k", lifecycle=shared)
    second = KernelTracker(V1_PROTOCOL, kernel_id="k", lifecycle=shared)
    outsider = msg("execute_request", {"code": "y"})["header"]
    found: list[Any] = []
    for ms, frame in enumerate(outside_run(outsider, "x = 1; y")):
        found += first.feed("out", frame, at(ms)) + second.feed("out", frame, at(ms))
    [cell] = found
    p = cell.payload
    assert (p["origin"], p["code"], p["execution_count"], p["status"]) == (
        "outside pairlab", "x = 1; y", 4, "error")
    assert p["error"]["ename"] == "NameError" and cell.at == at(3)
    assert first.pending == second.pending == 0
    # a request sent through one connection is never "outside" for the others
    request = msg("execute_request", {"code": "print(1)"})
    seen = first.feed("in", v1(request, "shell"), at(10))
    for ms, frame in enumerate(outside_run(request["header"], "print(1)"), start=11):
        seen += second.feed("out", frame, at(ms))
        seen += first.feed("out", frame, at(ms))
    assert seen == [] and first.pending == 1  # its reply is still to come, to `first` only
    [mine] = first.feed("out", v1(msg("execute_reply", {"status": "ok"}, request["header"]),
                                  "shell"), at(20))
    assert "origin" not in mine.payload
    # the same outside execution seen again (a late echo) is not recorded twice
    again: list[Any] = []
    for ms, frame in enumerate(outside_run(outsider, "x = 1; y"), start=30):
        again += first.feed("out", frame, at(ms))
    assert again == []


def test_an_outside_execution_cut_short_is_still_reported() -> None:
    tracker = KernelTracker(V1_PROTOCOL, kernel_id="k")
    outsider = msg("execute_request", {"code": "while True: pass"})["header"]
    for frame in outside_run(outsider, "while True: pass")[:2]:
        assert tracker.feed("out", frame, at(0)) == []
    [cell] = tracker.close(at(5))
    assert cell.payload["origin"] == "outside pairlab"
    assert cell.payload["code"] == "while True: pass"
    assert cell.payload["incomplete"] == "connection closed"
    assert cell.payload["status"] == "unknown"


def busy_kernel(big: int) -> list[tuple[str, dict[str, Any], str]]:
    """Two viewers' traffic on one kernel, as one connection sees it: its own cell (with a
    widget's comm messages and a big display), another connection's cell (its request never
    seen here, its ``big``-character output), one run from outside pairlab, and the kernel
    restarting on its own. (direction, message, channel)"""
    mine = msg("execute_request", {"code": "show()", "silent": False},
               metadata={"cellId": "c-1"})
    theirs = msg("execute_request", {"code": "print('x' * n)"})["header"]
    outsider = msg("execute_request", {"code": "z = 3"})["header"]
    own = mine["header"]
    return [
        ("in", mine, "shell"),
        ("in", msg("comm_msg", {"comm_id": "w", "data": {"state": {"v": "s" * big}}}), "shell"),
        ("out", msg("status", {"execution_state": "busy"}, own), "iopub"),
        ("out", msg("status", {"execution_state": "busy"}, theirs), "iopub"),
        ("out", msg("execute_input", {"code": "show()", "execution_count": 7}, own), "iopub"),
        ("out", msg("stream", {"name": "stdout", "text": "y" * big}, theirs), "iopub"),
        ("out", msg("comm_open", {"comm_id": "w", "data": {"state": {}}}, own), "iopub"),
        ("out", msg("display_data", {"data": {"text/plain": "<Figure>",
                                              "image/png": "A" * big}, "metadata": {}}, own),
         "iopub"),
        ("out", msg("clear_output", {"wait": True}, own), "iopub"),
        ("out", msg("stream", {"name": "stdout", "text": "done\n"}, own), "iopub"),
        ("out", msg("status", {"execution_state": "idle"}, theirs), "iopub"),
        ("out", msg("execute_input", {"code": "z = 3", "execution_count": 8}, outsider),
         "iopub"),
        ("out", msg("status", {"execution_state": "idle"}, outsider), "iopub"),
        ("out", msg("execute_reply", {"status": "ok", "execution_count": 7}, own), "shell"),
        ("out", msg("status", {"execution_state": "idle"}, own), "iopub"),
        ("out", msg("status", {"execution_state": "restarting"}), "iopub"),
    ]


@pytest.mark.parametrize("framing", ["v1", "legacy"])
def test_frames_read_lazily_give_the_events_of_frames_read_whole(framing: str) -> None:
    """Each frame fed as it crosses the proxy (a legacy frame that names nothing the tracker
    follows is not decoded; a v1 frame's parts are decoded on first use) makes exactly the
    observations of the same messages decoded whole beforehand."""
    traffic = busy_kernel(1_000_000)
    protocol, encode = (V1_PROTOCOL, v1) if framing == "v1" else ("", legacy)
    lazy = KernelTracker(protocol, kernel_id="k", lifecycle=KernelLifecycle())
    whole = KernelTracker(protocol, kernel_id="k", lifecycle=KernelLifecycle())
    seen, expected = [], []
    for ms, (direction, message, channel) in enumerate(traffic):
        seen += lazy.feed(direction, encode(message, channel), at(ms))  # type: ignore[arg-type]
        decoded = parse_frame(json.dumps(dict(message, channel=channel), default=json_default))
        assert decoded is not None
        expected += whole.feed_message(direction, decoded, at(ms))  # type: ignore[arg-type]
    assert seen == expected
    assert [o.kind for o in seen] == [events.CELL_EXECUTED, events.CELL_EXECUTED,
                                      events.KERNEL_RESTARTED]
    outside, cell = seen[0].payload, seen[1].payload
    assert (outside["origin"], outside["code"]) == ("outside pairlab", "z = 3")
    assert (cell["code"], cell["execution_count"], cell["outputs"], cell["status"]) == (
        "show()", 7, 2, "ok")
    assert cell["output"] == "<Figure>\ndone\n"
    assert cell["mimetypes"] == ["image/png", "text/plain"]
    assert lazy.unreadable_frames == 0
    if framing == "legacy":  # the other viewer's megabyte (the browser's frames are all read)
        assert lazy.passed_frames == 1


def test_odd_message_ids_are_still_followed() -> None:
    """Ids a JSON encoder may escape (quotes, backslashes, non-ASCII) are never searched for in
    a frame: frames are decoded and the cell is recorded."""
    for odd in ('a"b', "a\\b", "é-1", "x" * 300):
        tracker = KernelTracker("", kernel_id="k")
        request = msg("execute_request", {"code": "1"})
        request["header"]["msg_id"] = odd
        found = tracker.feed("in", legacy(request, "shell"), at(0))
        for ms, (kind, content) in enumerate([
                ("execute_reply", {"status": "ok", "execution_count": 1}),
                ("status", {"execution_state": "idle"})], start=1):
            found += tracker.feed("out", legacy(msg(kind, content, request["header"]),
                                                "iopub"), at(ms))
        [cell] = found
        assert cell.payload["status"] == "ok" and tracker.passed_frames == 0


def test_a_reply_overtaking_the_error_on_iopub_does_not_repeat_it() -> None:
    """The shell reply and iopub are separate streams: a reply with the error may arrive before
    the iopub ``error``; the cell's excerpt still says the error once, after the output before
    it (as when iopub comes first); a reply whose error never shows on iopub still says it."""
    expected = None
    for order in ("iopub first", "reply first", "no iopub error"):
        tracker = KernelTracker(V1_PROTOCOL, kernel_id="k")
        request = msg("execute_request", {"code": "print(1); 1/0"})
        head = request["header"]
        tb = ["ZeroDivisionError  Traceback", "----> 1 1/0"]
        failed = {"status": "error", "execution_count": 1, "ename": "ZeroDivisionError",
                  "evalue": "division by zero", "traceback": tb}
        error = msg("error", {k: failed[k] for k in ("ename", "evalue", "traceback")}, head)
        reply = msg("execute_reply", failed, head)
        frames = [("in", v1(request, "shell")),
                  ("out", v1(msg("stream", {"name": "stdout", "text": "1\n"}, head), "iopub"))]
        if order == "iopub first":
            frames += [("out", v1(error, "iopub")), ("out", v1(reply, "shell"))]
        elif order == "reply first":
            frames += [("out", v1(reply, "shell")), ("out", v1(error, "iopub"))]
        else:
            frames += [("out", v1(reply, "shell"))]
        frames += [("out", v1(msg("status", {"execution_state": "idle"}, head), "iopub"))]
        found = []
        for ms, (direction, frame) in enumerate(frames):
            found += tracker.feed(direction, frame, at(ms))  # type: ignore[arg-type]
        [cell] = found
        p = cell.payload
        assert p["output"] == "1\nZeroDivisionError: division by zero\n", order
        assert p["error"]["ename"] == "ZeroDivisionError" and p["status"] == "error"
        timed = {k: v for k, v in p.items() if k != "duration_ms"}  # the reply's time moved
        if order == "iopub first":
            expected = timed
        elif order == "reply first":
            assert timed == expected
