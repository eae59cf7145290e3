"""The recording API: pages of events, the live stream with resume, notes and hints, the
workspace at any moment, export (API and CLI), hidden checks, and who may see what."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import CliResult, assert_no_traceback, login, query
from tests.server.recording.conftest import Rec, RecFactory, assert_gap_free, kinds
from workspaces.recording import events as E


async def sse_events(response: aiohttp.ClientResponse, count: int) -> list[dict[str, Any]]:
    """Read ``count`` events from an SSE response (``id``/``event``/``data`` fields)."""
    found: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    while len(found) < count:
        line = (await asyncio.wait_for(response.content.readline(), 30)).decode()
        assert line, "the stream ended early"
        line = line.rstrip("\n")
        if not line:
            if "data" in current:
                found.append(current)
            current = {}
        elif line.startswith(":") or line.startswith("retry:"):
            continue
        else:
            name, _, value = line.partition(": ")
            current[name] = json.loads(value) if name == "data" else value
    return found


async def note(rec: Rec, session_id: str, text: str, **extra: Any) -> dict[str, Any]:
    body = await rec.api("POST", f"/api/v1/sessions/{session_id}/notes",
                         {"text": text, **extra}, status=201)
    event: dict[str, Any] = body["event"]
    return event


async def test_stream_resumes_without_gap_or_duplicate(make_rec: RecFactory) -> None:
    rec = await make_rec()
    sid = (await rec.schedule())["session_id"]
    for i in range(5):
        await note(rec, sid, f"note {i}")
    url = f"/api/v1/sessions/{sid}/events/stream"
    first = await rec.client.get(url)
    assert first.status == 200
    assert first.headers["Content-Type"].startswith("text/event-stream")
    got = await sse_events(first, 3)
    first.close()  # the observer's connection is cut
    for i in range(5, 9):
        await note(rec, sid, f"note {i}")
    again = await rec.client.get(url, headers={"Last-Event-ID": got[-1]["id"]})
    got += await sse_events(again, 6)
    live = asyncio.ensure_future(sse_events(again, 1))
    await note(rec, sid, "while watching")
    got += await live
    again.close()
    assert [int(e["id"]) for e in got] == list(range(1, 11))
    assert [e["data"]["seq"] for e in got] == list(range(1, 11))
    assert [e["data"]["payload"]["text"] for e in got] == \
        [f"note {i}" for i in range(9)] + ["while watching"]
    assert {e["event"] for e in got} == {"note"}
    stored = query(rec.settings, "SELECT seq FROM events WHERE session_id = ?", (sid,))
    assert sorted(r[0] for r in stored) == list(range(1, 11))  # shown only once stored
    # ?after= works too when there is no Last-Event-ID
    tail = await rec.client.get(url + "?after=8")
    assert [e["data"]["seq"] for e in await sse_events(tail, 2)] == [9, 10]
    tail.close()


async def test_notes_and_hints(make_rec: RecFactory) -> None:
    rec = await make_rec()
    sid = (await rec.schedule())["session_id"]
    lead = (await rec.api("GET", "/api/v1/auth/me"))["user"]["id"]
    first = await note(rec, sid, "  asks about the data early  ")
    hint = await note(rec, sid, "Look at main.py", kind="hint", at_seq=1)
    assert (first["seq"], first["kind"], first["actor"], first["payload"]) == \
        (1, "note", f"interviewer:{lead}", {"text": "asks about the data early"})
    assert (hint["seq"], hint["kind"], hint["payload"]) == \
        (2, "hint", {"text": "Look at main.py", "shown": True, "at_seq": 1})
    path = f"/api/v1/sessions/{sid}/notes"
    for body, status in (({"text": ""}, 422), ({"text": "x", "kind": "shout"}, 422),
                         ({"text": "x", "at_seq": -1}, 422), ({"text": "x", "extra": 1}, 422),
                         ({"text": "x" * 10_001}, 422), ({"kind": "note"}, 422)):
        await rec.api("POST", path, body, status=status)
    no_csrf = await rec.client.post(path, json={"text": "x"})
    assert no_csrf.status == 403
    page = await rec.api("GET", f"/api/v1/sessions/{sid}/events")
    assert [e["seq"] for e in page["events"]] == [1, 2]
    assert (page["last_seq"], page["more"]) == (2, False)


async def test_only_the_sessions_interviewers_see_it(make_rec: RecFactory,
                                                     aiohttp_client: Any) -> None:
    rec = await make_rec()
    sid = (await rec.schedule())["session_id"]
    await note(rec, sid, "private")
    anonymous: TestClient[Any, Any] = await aiohttp_client(rec.client.server)
    other: TestClient[Any, Any] = await aiohttp_client(rec.client.server)
    other_csrf = await login(other, "other@example.com")
    base = f"/api/v1/sessions/{sid}"
    for tail in ("events", "events/stream", "snapshots", "tree", "file?path=main.py", "diff",
                 "export"):
        assert (await anonymous.get(f"{base}/{tail}")).status == 401
        assert (await other.get(f"{base}/{tail}")).status == 403
    denied = await other.post(f"{base}/notes", json={"text": "x"},
                              headers={"X-CSRF-Token": other_csrf})
    assert denied.status == 403
    # the candidate's cookie belongs to the other origin and opens nothing here
    assert (await rec.ws.get(f"{base}/events")).status in (403, 404, 405)


async def test_events_pages(make_rec: RecFactory) -> None:
    rec = await make_rec()
    sid = (await rec.schedule())["session_id"]
    for i in range(7):
        await note(rec, sid, f"n{i}")
    page = await rec.api("GET", f"/api/v1/sessions/{sid}/events?after=2&limit=3")
    assert [e["seq"] for e in page["events"]] == [3, 4, 5]
    assert (page["last_seq"], page["more"]) == (5, True)
    page = await rec.api("GET", f"/api/v1/sessions/{sid}/events?after=5&limit=3")
    assert ([e["seq"] for e in page["events"]], page["more"]) == ([6, 7], False)
    for bad in ("limit=0", "limit=5000", "after=-1", "after=x"):
        await rec.api("GET", f"/api/v1/sessions/{sid}/events?{bad}", status=422)
    await rec.api("GET", f"/api/v1/sessions/{sid}/tree", status=404)  # nothing recorded yet


async def wait_snapshots(rec: Rec, sid: str, count: int) -> list[dict[str, Any]]:
    found = await rec.wait_for(sid, lambda f: len(kinds(f, E.SNAPSHOT)) >= count)
    return kinds(found, E.SNAPSHOT)


@pytest.mark.slow
async def test_the_workspace_at_three_moments(make_rec: RecFactory) -> None:
    rec = await make_rec()
    sid, _ = await rec.start()
    written = ["def score(y):\n    return 0\n", "def score(y):\n    return sum(y) / len(y)\n",
               "def score(y):\n    return sum(y) / max(len(y), 1)\n"]
    moments = []
    for i, text in enumerate(written):
        await rec.call(sid, "PUT", "api/contents/metrics.py", {"content": text})
        if i == 1:
            await rec.call(sid, "PUT", "api/contents/data/README.md", {"content": "cols\n"})
        moments.append((await wait_snapshots(rec, sid, i + 1))[-1]["seq"])
    base = f"/api/v1/sessions/{sid}"
    for seq, text in zip(moments, written, strict=True):
        got = await rec.api("GET", f"{base}/file?at={seq}&path=metrics.py")
        assert (got["kind"], got["text"], got["size"]) == ("text", text, len(text))
        assert got["snapshot"]["seq"] == seq
    found = await rec.events(sid)
    changes = [e["seq"] for e in found if e["path"] == "metrics.py"]
    for seq, text in zip(moments[:-1], written, strict=False):
        # any seq up to the next change shows this version (exact: the events say so)
        upto = min(s for s in changes if s > seq) - 1
        between = await rec.api("GET", f"{base}/file?at={upto}&path=metrics.py")
        assert between["text"] == text
    (created,) = [e for e in found if e["path"] == "metrics.py" and e["kind"] == E.FILE_CREATED]
    before = await rec.api("GET", f"{base}/file?at={created['seq'] - 1}&path=metrics.py")
    assert (before["exists"], before["kind"], before["text"]) == (False, "missing", None)
    start = await rec.api("GET", f"{base}/file?at=0&path=main.py")
    assert start["text"] == "print('hello')\n"

    tree = await rec.api("GET", f"{base}/tree?at={moments[1]}")
    files = {f["path"]: f for f in tree["files"]}
    assert set(files) == {"main.py", "notes.md", "metrics.py", "data/README.md"}
    assert (files["metrics.py"]["status"], files["main.py"]["status"]) == ("added", "unchanged")
    assert files["metrics.py"]["size"] == len(written[1])

    diff = await rec.api("GET", f"{base}/diff?from={moments[0]}&to={moments[2]}")
    assert {(f["status"], f["path"]) for f in diff["files"]} == \
        {("M", "metrics.py"), ("A", "data/README.md")}
    assert "-    return 0" in diff["diff"] and "+    return sum(y) / max(len(y), 1)" in diff["diff"]
    whole = await rec.api("GET", f"{base}/diff")
    assert whole["from"]["seq"] == 0 and whole["to"]["seq"] == moments[-1]

    await rec.call(sid, "PUT", "api/contents/blob.bin", {"content": "a\u0000b"})
    snap = (await wait_snapshots(rec, sid, 4))[-1]["seq"]
    binary = await rec.api("GET", f"{base}/file?at={snap}&path=blob.bin")
    assert (binary["kind"], binary["text"], binary["size"]) == ("binary", None, 3)
    for bad in ("path=../etc/passwd", "path=/etc/passwd", "path=", "at=x&path=main.py"):
        await rec.api("GET", f"{base}/file?{bad}", status=422)
    response = await rec.client.get(f"{base}/file?path=main.py")
    assert response.content_type == "application/json"


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,  # noqa: S607
                          text=True, env={"PATH": "/usr/bin:/bin", "HOME": str(cwd)}).stdout


@pytest.mark.slow
async def test_export_by_api_and_cli(make_rec: RecFactory, run_cli: Any,
                                     tmp_path: Path) -> None:
    rec = await make_rec()
    sid, _ = await rec.start()
    await rec.call(sid, "PUT", "api/contents/answer.py", {"content": "ANSWER = 42\n"})
    await wait_snapshots(rec, sid, 1)
    await note(rec, sid, "clean solution")
    await rec.api("POST", f"/api/v1/sessions/{sid}/end")
    found = await rec.wait_for(sid, lambda f: bool(kinds(f, E.CHECKS_RUN)), within=120)

    response = await rec.client.get(f"/api/v1/sessions/{sid}/export")
    assert response.status == 200
    assert response.content_type == "application/gzip"
    with tarfile.open(fileobj=io.BytesIO(await response.read()), mode="r:gz") as tar:
        tar.extractall(tmp_path / "api", filter="data")
    api_dir = tmp_path / "api" / f"session-{sid}"

    cli: CliResult = run_cli("session", "export", sid, str(tmp_path / "cli"),
                             env={"PAIRLAB_DATA_DIR": str(rec.settings.data_dir)})
    assert cli.returncode == 0, cli.stderr
    for out in (api_dir, tmp_path / "cli"):
        lines = (out / "events.jsonl").read_text().splitlines()
        events = [json.loads(line) for line in lines]
        assert [e["seq"] for e in events] == [e["seq"] for e in found]
        assert_gap_free(events)
        assert (out / "final" / "answer.py").read_text() == "ANSWER = 42\n"
        assert (out / "final" / "main.py").read_text() == "print('hello')\n"
        clone = out.parent / f"{out.name}-clone"
        git("clone", "--quiet", str(out / "history.bundle"), str(clone), cwd=out.parent)
        log = git("log", "--format=%s", cwd=clone).splitlines()
        assert log[-1] == "task start" and len(log) == len(kinds(found, E.SNAPSHOT)) + 1
        assert (clone / "answer.py").read_text() == "ANSWER = 42\n"

    for args in (("session", "export", "s_0000000000000000", str(tmp_path / "x")),
                 ("session", "export", sid, str(tmp_path / "cli"))):
        bad: CliResult = run_cli(*args, env={"PAIRLAB_DATA_DIR": str(rec.settings.data_dir)})
        assert bad.returncode == 2
        assert len(bad.stderr.strip().splitlines()) == 1 and bad.stderr.startswith("pairlab: ")
        assert_no_traceback(bad.stderr)


@pytest.mark.integration
async def test_hidden_checks_run_at_the_end_on_the_final_state(make_rec: RecFactory) -> None:
    rec = await make_rec()
    sid, _ = await rec.start()
    # The candidate cannot pass the hidden checks by planting their own copy of them.
    await rec.call(sid, "PUT", "api/contents/hidden_checks/test_hidden.py",
                   {"content": "def test_main_was_fixed():\n    pass\n"})
    await rec.api("POST", f"/api/v1/sessions/{sid}/end")
    found = await rec.wait_for(sid, lambda f: bool(kinds(f, E.CHECKS_RUN)), within=120)
    assert_gap_free(found)
    (run,) = kinds(found, E.CHECKS_RUN)
    assert run["actor"] == "system"
    result = run["payload"]
    assert (result["status"], result["passed"], result["failed"], result["total"]) == \
        ("failed", 1, 1, 2)
    by_name = {c["name"].rsplit("::", 1)[1]: c for c in result["checks"]}
    assert by_name["test_main_still_prints"]["status"] == "passed"
    failing = by_name["test_main_was_fixed"]
    assert failing["status"] == "failed"
    assert "main.py was not fixed" in failing["message"] + failing.get("output", "")
    assert "1 failed, 1 passed" in result["output"]


async def test_live_streams_end_when_the_server_stops(make_rec: RecFactory) -> None:
    rec = await make_rec()
    sid = (await rec.schedule())["session_id"]
    await note(rec, sid, "before the stop")
    stream = await rec.client.get(f"/api/v1/sessions/{sid}/events/stream")
    assert [e["data"]["seq"] for e in await sse_events(stream, 1)] == [1]
    closing = asyncio.ensure_future(rec.client.server.close())
    rest = await asyncio.wait_for(stream.content.read(), 30)
    assert rest in (b"", b": keep-alive\n\n")  # a clean end of the stream, not a cut
    assert stream.content.at_eof()
    await closing
