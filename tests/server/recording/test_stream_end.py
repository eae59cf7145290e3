"""The live event stream ends when the session is over: after the end-of-session events (the
hidden checks' ``checks.run``, waited for a bounded time) of a session that ends while it is
watched, and right after the backlog of a session already over, with an ``end`` message that
tells the observer not to reconnect."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.server.recording.conftest import Rec, RecFactory, kinds
from workspaces.recording import events as E
from workspaces.recording import stream_end

Message = dict[str, Any]
UID_BASE = 440_000
"""This file's sandbox uids (checks run as UID_BASE + 1000), apart from other suites'."""


async def read_message(response: aiohttp.ClientResponse, within: float = 30.0) -> Message | None:
    """The next SSE message (``event``, ``id``, ``data``), or None at the end of the stream."""
    current: Message = {}
    while True:
        raw = await asyncio.wait_for(response.content.readline(), within)
        if not raw:
            assert not current, f"the stream was cut inside a message: {current}"
            return None
        line = raw.decode().rstrip("\n")
        if not line:
            if "data" in current:
                return current
            current = {}
        elif not line.startswith(":") and not line.startswith("retry:"):
            name, _, value = line.partition(": ")
            current[name] = json.loads(value) if name == "data" else value


async def read_to_the_end(response: aiohttp.ClientResponse, within: float = 30.0
                          ) -> list[Message]:
    """Every message until the server closes the stream (fails if it does not in time)."""
    found: list[Message] = []
    while (message := await read_message(response, within)) is not None:
        found.append(message)
    assert response.content.at_eof()
    return found


class GatedChecks:
    """Stands in for the hidden checks: they finish when the test says so."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started = asyncio.Event()

    async def __call__(self, session_id: str, rev: Any, *, root: Path | None,
                       history: Any) -> dict[str, Any]:
        self.started.set()
        await self.release.wait()
        return {"status": "passed", "passed": 2, "failed": 0, "total": 2, "checks": []}


async def ended_while_watched(rec: Rec) -> tuple[str, GatedChecks, aiohttp.ClientResponse]:
    """A live session whose stream is open, ended by the interviewer; its checks are held."""
    sid, _ = await rec.start()
    checks = GatedChecks()
    rec.service.hidden_checks = checks
    stream = await rec.client.get(f"/api/v1/sessions/{sid}/events/stream")
    assert stream.status == 200
    assert (await read_message(stream) or {}).get("event") == E.SESSION_STARTED
    await rec.api("POST", f"/api/v1/sessions/{sid}/end")
    return sid, checks, stream


async def test_a_watched_session_s_stream_ends_after_its_final_checks(
        make_rec: RecFactory) -> None:
    rec = await make_rec(sandbox_uid_base=UID_BASE)
    sid, checks, stream = await ended_while_watched(rec)
    seen: list[Message] = []
    while not seen or seen[-1]["event"] != E.SESSION_ENDED:
        message = await read_message(stream)
        assert message is not None, "the stream ended before session.ended"
        seen.append(message)
    await asyncio.wait_for(checks.started.wait(), 30)
    # The checks are still running: the stream stays open for them (keep-alives only).
    with pytest.raises(TimeoutError):
        await read_message(stream, within=1.0)
    checks.release.set()
    rest = await read_to_the_end(stream)
    assert [m["event"] for m in rest] == [E.CHECKS_RUN, "end"]
    last = rest[0]["data"]["seq"]
    assert rest[-1]["data"] == {"state": "ended", "last_seq": last}
    assert "id" not in rest[-1]  # a Last-Event-ID stays the last event's seq
    found = await rec.events(sid)
    assert found[-1]["seq"] == last and found[-1]["kind"] == E.CHECKS_RUN

    # Once over, a new stream (or a resume) sends the backlog and ends at once.
    again = await rec.client.get(f"/api/v1/sessions/{sid}/events/stream?after=2")
    replayed = await read_to_the_end(again, within=5)
    assert [m["data"]["seq"] for m in replayed[:-1]] == list(range(3, last + 1))
    assert replayed[-1] == {"event": "end", "data": {"state": "ended", "last_seq": last}}
    resumed = await rec.client.get(f"/api/v1/sessions/{sid}/events/stream",
                                   headers={"Last-Event-ID": str(last)})
    assert await read_to_the_end(resumed, within=5) == \
        [{"event": "end", "data": {"state": "ended", "last_seq": last}}]


async def test_the_wait_for_the_checks_is_bounded(make_rec: RecFactory,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stream_end, "CHECKS_WAIT_S", 1.5)
    rec = await make_rec(sandbox_uid_base=UID_BASE)
    sid, checks, stream = await ended_while_watched(rec)
    started = time.monotonic()
    rest = await read_to_the_end(stream, within=10)
    waited = time.monotonic() - started
    assert rest[-1]["event"] == "end"
    assert E.SESSION_ENDED in [m["event"] for m in rest]
    assert E.CHECKS_RUN not in [m["event"] for m in rest]  # never released
    assert rest[-1]["data"] == {"state": "ended", "last_seq": rest[-2]["data"]["seq"]}
    assert waited < 8, waited
    checks.release.set()
    await rec.wait_for(sid, lambda f: bool(kinds(f, E.CHECKS_RUN)))


async def test_a_live_session_s_stream_does_not_end(make_rec: RecFactory) -> None:
    rec = await make_rec(sandbox_uid_base=UID_BASE)
    sid, _ = await rec.start()
    stream = await rec.client.get(f"/api/v1/sessions/{sid}/events/stream")
    assert (await read_message(stream) or {}).get("event") == E.SESSION_STARTED
    assert (await read_message(stream) or {}).get("event") == E.WORKSPACE_READY
    with pytest.raises(TimeoutError):
        await read_message(stream, within=1.0)
    stream.close()


async def test_a_session_that_failed_to_start_ends_after_its_backlog(
        make_rec: RecFactory, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")  # its environments folder cannot be created
    rec = await make_rec(environments_dir=str(blocker / "envs"), sandbox_uid_base=UID_BASE)
    created = await rec.schedule()
    sid = created["session_id"]
    await rec.open_link(created["candidate_link"])
    response = await rec.press_start(sid)
    assert response.status >= 400
    found = await rec.wait_for(sid, lambda f: bool(kinds(f, E.WORKSPACE_FAILED)))
    stream = await rec.client.get(f"/api/v1/sessions/{sid}/events/stream")
    got = await read_to_the_end(stream, within=5)
    assert [m["data"]["seq"] for m in got[:-1]] == [e["seq"] for e in found]
    assert got[-1] == {"event": "end", "data": {"state": "failed", "last_seq": found[-1]["seq"]}}


@pytest.mark.integration
async def test_the_stream_ends_after_the_real_hidden_checks(make_rec: RecFactory) -> None:
    rec = await make_rec(sandbox_uid_base=UID_BASE)
    sid, _ = await rec.start()
    stream = await rec.client.get(f"/api/v1/sessions/{sid}/events/stream")
    await rec.api("POST", f"/api/v1/sessions/{sid}/end")
    started = time.monotonic()
    got = await read_to_the_end(stream, within=120)
    print(f"\nsession ended → stream end in {time.monotonic() - started:.1f} s "
          "(final snapshot and the hidden checks in the sandbox)")
    kinds_seen = [m["event"] for m in got]
    assert kinds_seen[-3:] == [E.SESSION_ENDED, E.CHECKS_RUN, "end"], kinds_seen
    checks = got[-2]["data"]["payload"]
    assert (checks["total"], checks["passed"], checks["failed"]) == (2, 1, 1)  # they ran
    assert got[-1]["data"] == {"state": "ended", "last_seq": got[-2]["data"]["seq"]}
