"""Contents-API requests under way (``Attribution.begin``), on a fake clock: a request kept open
holds the session's file changes up at most ``REQUEST_WAIT_S`` after it was sent, once, not once
per change (a candidate could otherwise send a body slowly and hold every file event of the
session back); a request sent after a change was seen neither holds it up nor claims it; and a
session follows a bounded number of them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from workspaces.recording import attribution
from workspaces.recording.attribution import Attribution

CANDIDATE = ("candidate", {"via": "process"})


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_a_request_kept_open_holds_changes_up_once_not_per_change(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(attribution, "REQUEST_WAIT_S", 0.3)
    waits: list[float] = []
    real_wait = attribution._wait

    async def counted(events: Any, within_s: float, *, first: bool) -> None:
        waits.append(round(within_s, 3))
        await real_wait(events, within_s, first=first)

    monkeypatch.setattr(attribution, "_wait", counted)
    clock = Clock()
    claims = Attribution(clock=clock)
    stuck = claims.begin("", "interviewer:7", "POST")  # a POST to the top, its body never ends
    assert stuck is not None
    clock.now += 0.1
    first = await claims.attribute("a.py", "ab" * 32)  # waits for the answer that never comes
    clock.now += 0.3  # the request's time is up
    later = [await claims.attribute(f"{name}.py", "cd" * 32) for name in "bcdefg"]
    assert first == CANDIDATE and later == [CANDIDATE] * 6
    # the first change waited what was left of the request's time; the six after it, not at all
    assert waits == [0.2]


async def test_a_request_sent_after_the_change_was_seen_does_not_claim_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(attribution, "SAVE_WAIT_S", 0.2)
    clock = Clock()
    unsaved = asyncio.Event()  # a room of the path has unsaved edits: its save never comes
    claims = Attribution(pending_saves=lambda path: (unsaved,), clock=clock)
    clock.now += 1.0
    seen = asyncio.ensure_future(claims.attribute("main.py", "ab" * 32))
    await asyncio.sleep(0)  # the change is seen, and waits for the room's save...
    clock.now += 0.1
    later = claims.begin("main.py", "interviewer:7", "PUT")  # ...while an interviewer saves
    assert later is not None
    await later.done(200, "")
    assert await seen == CANDIDATE  # their save came after the change: not what made it
    # a change seen after their save is theirs
    assert (await claims.attribute("main.py", "cd" * 32))[0] == "interviewer:7"


async def test_a_session_follows_a_bounded_number_of_requests(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(attribution, "MAX_UNDER_WAY", 3)
    claims = Attribution()
    held = [claims.begin(f"f{i}.py", "interviewer:7", "PUT") for i in range(3)]
    assert all(held) and claims.begin("more.py", "interviewer:7", "PUT") is None
    for request in held:
        assert request is not None
        request.abandon()
    assert claims.begin("more.py", "interviewer:7", "PUT") is not None  # room again
