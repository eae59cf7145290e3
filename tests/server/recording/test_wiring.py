"""The recorder wired into the server, on the fake workspace: what passes the proxy becomes
events with the right actor, in order, gap-free; snapshots follow file changes."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import WSMsgType

from server.app import create_app
from server.sessions.keys import SESSIONS
from server.sessions.wiring import WORKSPACE_APP
from tests.conftest import login, open_db
from tests.fake_workspace import closing
from tests.host_routing import enter
from tests.server.recording.conftest import Rec, RecFactory, assert_gap_free, kinds
from tests.server.recording.fake_jupyter import RecordingFakeProvisioner
from workspaces import sessions as S
from workspaces.recording import events as E


def message(msg_type: str, content: dict[str, Any], parent: dict[str, Any] | None = None,
            channel: str = "iopub") -> dict[str, Any]:
    return {"header": {"msg_id": uuid.uuid4().hex, "msg_type": msg_type, "session": "s",
                       "username": "", "version": "5.3", "date": datetime.now(UTC).isoformat()},
            "parent_header": parent or {},
            # pairlab's IPython profile reports on every reply (kernel_messages)
            "metadata": {"pairlab": {"transformed": False}} if msg_type == "execute_reply" else {},
            "content": content,
            "channel": channel, "buffers": []}


def execution(code: str, count: int, output: str) -> list[dict[str, Any]]:
    """An execute_request and the kernel's replies (the fake echoes each one back, so they
    pass the proxy in both directions, as the kernel's own messages would)."""
    request = message("execute_request", {"code": code, "silent": False}, channel="shell")
    parent = request["header"]
    return [
        request,
        message("status", {"execution_state": "busy"}, parent),
        message("execute_input", {"code": code, "execution_count": count}, parent),
        message("stream", {"name": "stdout", "text": output}, parent),
        message("execute_reply", {"status": "ok", "execution_count": count}, parent, "shell"),
        message("status", {"execution_state": "idle"}, parent),
    ]


async def run_cell(rec: Any, session_id: str, kernel_id: str, code: str, count: int,
                   output: str) -> None:
    async with rec.ws.ws_connect(rec.url(session_id, f"api/kernels/{kernel_id}/channels"),
                                 origin=rec.origin(session_id)) as sock:
        hello = await sock.receive(timeout=10)
        assert hello.type == WSMsgType.TEXT
        for msg in execution(code, count, output):
            await sock.send_str(json.dumps(msg))
            echoed = await sock.receive(timeout=10)
            assert json.loads(echoed.data)["header"]["msg_id"] == msg["header"]["msg_id"]


async def test_actions_through_the_proxy_become_events(make_rec: RecFactory) -> None:
    rec = await make_rec()
    sid, _ = await rec.start()

    session = await rec.call(sid, "POST", "api/sessions",
                             {"path": "analysis.ipynb", "type": "notebook",
                              "kernel": {"name": "python3"}})
    kernel_id = session["kernel"]["id"]
    await run_cell(rec, sid, kernel_id, "print('hi')", 1, "hi\n")

    async with rec.ws.ws_connect(rec.url(sid, "terminals/websocket/1"),
                                 origin=rec.origin(sid)) as term:
        await term.send_str(json.dumps(["stdin", "echo pl42\r"]))
        seen = ""
        while "pl42\r\n$ " not in seen:
            kind, text = json.loads((await term.receive(timeout=10)).data)
            seen += text if kind == "stdout" else ""

    await rec.call(sid, "PUT", "api/contents/solution.py", {"content": "x = 1\n"})
    await rec.call(sid, "POST", f"api/kernels/{kernel_id}/interrupt")
    await rec.call(sid, "POST", f"api/kernels/{kernel_id}/restart")

    # The interviewer pairs in the same workspace (a one-time handoff, their own cookie).
    url = (await rec.api("POST", f"/api/v1/sessions/{sid}/handoff"))["url"]
    rec.ws.session.cookie_jar.clear()
    joined = await rec.ws.get("/" + url.split("/", 3)[3], allow_redirects=False)
    assert joined.status == 303
    await enter(rec.ws, joined.headers["Location"])
    await run_cell(rec, sid, kernel_id, "1 + 1", 2, "2\n")

    found = await rec.wait_for(sid, lambda f: len(kinds(f, E.SNAPSHOT)) >= 1
                               and len(kinds(f, E.CELL_EXECUTED)) == 2
                               and bool(kinds(f, E.TERMINAL_COMMAND)))
    assert_gap_free(found)
    order = [e["kind"] for e in found]
    assert order[:2] == [E.SESSION_STARTED, E.WORKSPACE_READY]
    assert found[0]["actor"] == "candidate"

    started = kinds(found, E.KERNEL_STARTED)
    assert [(e["path"], e["payload"]["kernel_id"], e["actor"]) for e in started] == [
        ("analysis.ipynb", kernel_id, "candidate")]
    cells = kinds(found, E.CELL_EXECUTED)
    lead = (await rec.api("GET", "/api/v1/auth/me"))["user"]["id"]
    assert [(c["actor"], c["path"], c["payload"]["code"], c["payload"]["output"],
             c["payload"]["execution_count"], c["payload"]["status"]) for c in cells] == [
        ("candidate", "analysis.ipynb", "print('hi')", "hi\n", 1, "ok"),
        (f"interviewer:{lead}", "analysis.ipynb", "1 + 1", "2\n", 2, "ok")]
    (command,) = kinds(found, E.TERMINAL_COMMAND)
    assert command["actor"] == "candidate"
    assert command["payload"]["line"] == "echo pl42"
    assert "pl42" in command["payload"]["output"]
    (created,) = kinds(found, E.FILE_CREATED)
    assert (created["path"], created["actor"], created["payload"]["size"]) == \
        ("solution.py", "candidate", 6)
    assert [(e["kind"], e["actor"]) for e in kinds(
        found, E.KERNEL_INTERRUPTED, E.KERNEL_RESTARTED)] == [
        (E.KERNEL_INTERRUPTED, "candidate"), (E.KERNEL_RESTARTED, "candidate")]
    joined = [(e["actor"], e["payload"]["name"]) for e in kinds(found, E.SESSION_JOINED)]
    assert joined[0] == ("candidate", "Ada Lovelace")
    assert (f"interviewer:{lead}", "lead") in joined
    # in order: what happened first has the lower seq
    positions = {e["kind"]: e["seq"] for e in reversed(found)}
    assert positions[E.KERNEL_STARTED] < positions[E.CELL_EXECUTED] < \
        positions[E.TERMINAL_COMMAND] < positions[E.FILE_CREATED] < positions[E.SNAPSHOT]
    snapshot = kinds(found, E.SNAPSHOT)[0]
    rows = (await rec.api("GET", f"/api/v1/sessions/{sid}/snapshots"))["snapshots"]
    assert [r["seq"] for r in rows][:2] == [0, snapshot["seq"]]
    assert rows[1]["commit"] == snapshot["payload"]["commit"]


async def test_lifecycle_events_and_session_end(make_rec: RecFactory) -> None:
    rec = await make_rec()
    sid, _ = await rec.start()
    await rec.api("POST", f"/api/v1/sessions/{sid}/extend", {"minutes": 10})
    await rec.call(sid, "PUT", "api/contents/main.py", {"content": "print('fixed')\n"})
    await rec.api("POST", f"/api/v1/sessions/{sid}/end")
    found = await rec.wait_for(sid, lambda f: bool(kinds(f, E.CHECKS_RUN)), within=120)
    assert_gap_free(found)
    lead = (await rec.api("GET", "/api/v1/auth/me"))["user"]["id"]
    (extended,) = kinds(found, E.TIME_EXTENDED)
    assert extended["actor"] == f"interviewer:{lead}"
    assert extended["payload"]["minutes"] == 10
    (ended,) = kinds(found, E.SESSION_ENDED)
    assert ended["actor"] == f"interviewer:{lead}"
    (changed,) = kinds(found, E.FILE_CHANGED)
    assert (changed["path"], changed["actor"]) == ("main.py", "candidate")
    # the final state is in a snapshot taken before the end was recorded
    last_snapshot = kinds(found, E.SNAPSHOT)[-1]
    assert changed["seq"] < last_snapshot["seq"] < ended["seq"]
    final = await rec.api("GET", f"/api/v1/sessions/{sid}/file?path=main.py")
    assert final["text"] == "print('fixed')\n"
    assert [e["kind"] for e in found][-1] == E.CHECKS_RUN
    checks = found[-1]["payload"]
    assert (checks["status"], checks["passed"], checks["failed"]) == ("passed", 2, 0)


@pytest.mark.slow
async def test_recording_resumes_after_a_restart_and_an_end_elsewhere(
        make_rec: RecFactory, aiohttp_client: Any, tmp_path: Path) -> None:
    rec = await make_rec()
    sid, workspace = await rec.start()
    await rec.call(sid, "PUT", "api/contents/before.py", {"content": "A = 1\n"})
    await rec.wait_for(sid, lambda f: bool(kinds(f, E.SNAPSHOT)))
    first = rec.app[SESSIONS].provisioner
    assert isinstance(first, RecordingFakeProvisioner)
    await rec.ws.close()
    await rec.client.close()  # pairlab stops; the session stays live
    for running in list(first.running.values()):
        await running.runner.cleanup()

    provisioner = RecordingFakeProvisioner(tmp_path / "fake-ws")
    app = closing(create_app(rec.settings, provisioner=provisioner), provisioner)
    client = await aiohttp_client(app)
    await aiohttp_client(app[WORKSPACE_APP])
    again = Rec(rec.settings, app, client, rec.ws, await login(client, "lead@example.com"))
    folder = provisioner.running[workspace].info.root
    (folder / "after.py").write_text("B = 2\n")  # whatever makes a change is seen
    found = await again.wait_for(sid, lambda f: any(e["path"] == "after.py" for e in f))
    assert_gap_free(found)
    restarted = kinds(found, E.WORKSPACE_RESTARTED)
    assert [e["payload"]["after"] for e in restarted] == ["server restart"]
    assert restarted[0]["seq"] < kinds(found, E.FILE_CREATED)[-1]["seq"]

    # ended outside this process (as `pairlab session end` does): recorded, checked
    db = open_db(rec.settings)
    try:
        with db.atomic():
            S.set_state(db, sid, "ended", expect=("live",))
    finally:
        db.conn.close()
    found = await again.wait_for(sid, lambda f: bool(kinds(f, E.CHECKS_RUN)), within=120)
    assert_gap_free(found)
    (ended,) = kinds(found, E.SESSION_ENDED)
    assert (ended["actor"], ended["payload"]["why"]) == ("system", "ended elsewhere")
    after = await again.api("GET", f"/api/v1/sessions/{sid}/file?path=after.py")
    assert after["text"] == "B = 2\n"


async def test_the_engines_are_built_with_each_other_s_parts(make_rec: RecFactory) -> None:
    """No wiring after construction: the manager holds the recorder's hook from the start, and
    both read one table of live upstreams (the recorder's taps find the manager's workspaces)."""
    rec = await make_rec()
    manager, recorder = rec.app[SESSIONS], rec.service
    assert manager.hooks == (recorder.on_lifecycle,)
    assert recorder.upstreams is manager.upstreams
    assert recorder.taps.upstreams is manager.upstreams
    assert recorder.taps.clients is manager.clients
    session_id, workspace = await rec.start()
    assert manager.upstreams[workspace][1] == session_id
