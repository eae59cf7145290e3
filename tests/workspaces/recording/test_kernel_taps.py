"""The kernel WebSocket tap reads frames in batches after they passed (``SessionTaps.defer``):
the relay does not parse, events keep the times the frames passed, and whatever ends a
connection or answers from what the frames said reads the queue first."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import WSMsgType

from common.clock import now
from tests.workspaces.recording.test_kernel_messages import conversation, legacy
from workspaces.recording import events as E
from workspaces.recording import taps as T
from workspaces.recording.events import Event
from workspaces.recording.taps import KernelTap, SessionTaps
from workspaces.upstream import Principal

CANDIDATE = Principal("candidate", "Casey Candidate", "candidate")
LEAD = Principal("interviewer-7", "Lee Lead", "interviewer")


class Rig:
    def __init__(self) -> None:
        self.events: list[Event] = []
        # no workspace is read back: the kernel is known and its notebook set below
        self.taps = SessionTaps({}, None, self.record)  # type: ignore[arg-type]
        self.state = self.taps._state("s1")  # noqa: SLF001 - a session without a workspace
        self.state.known.add("k1")
        self.state.kernel("k1").path = "explore.ipynb"

    async def record(self, event: Event) -> None:
        self.events.append(event)

    async def tap(self, who: Principal = CANDIDATE) -> KernelTap:
        tap = KernelTap(self.taps, self.state, who, "k1", "")
        await tap.open()
        return tap

    def kinds(self) -> list[str]:
        return [event.kind for event in self.events]

    def cells(self) -> list[Event]:
        return [event for event in self.events if event.kind == E.CELL_EXECUTED]


def cell(code: str = "1/0") -> list[tuple[str, str | bytes]]:
    """A cell's 8 frames as jupyter-server writes them on a legacy connection."""
    return [(direction, legacy(message, channel))
            for direction, message, channel, _ in conversation(code)]


async def feed(tap: KernelTap, frames: list[tuple[str, str | bytes]]) -> None:
    for direction, data in frames:
        await tap.feed(direction, WSMsgType.TEXT, data)


async def test_a_cell_is_read_after_its_frames_passed_with_the_times_they_passed() -> None:
    rig = Rig()
    tap = await rig.tap()
    frames = cell()
    await feed(tap, frames[:1])  # the request
    await asyncio.sleep(T.DEFER_S * 5)  # the kernel takes its time; the request is read
    await feed(tap, frames[1:])
    passed = now()
    assert rig.cells() == []  # nothing parsed while the frames were relayed
    await asyncio.sleep(T.DEFER_S * 5)
    [ran] = rig.cells()
    assert ran.actor == E.ACTOR_CANDIDATE and ran.path == "explore.ipynb"
    assert ran.payload["code"] == "1/0" and ran.payload["status"] == "error"
    assert ran.payload["output"].startswith("1\n")
    assert ran.at <= passed  # when the reply passed, not when the batch was read
    # request to busy: the wait before the rest passed, though the request was read alone
    assert ran.payload["queued_ms"] >= T.DEFER_S * 5 * 1000 * 0.9


async def test_a_closing_connection_reads_its_queued_frames_first() -> None:
    rig = Rig()
    tap = await rig.tap()
    frames = cell()
    await feed(tap, frames)
    await tap.close()  # at once: the batch's timer has not fired
    assert rig.kinds() == [E.SESSION_JOINED, E.CELL_EXECUTED, E.SESSION_LEFT]
    assert rig.cells()[0].payload["status"] == "error"  # finished by its frames, not the close
    assert "incomplete" not in rig.cells()[0].payload


async def test_a_full_queue_is_read_before_the_relay_goes_on(monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    monkeypatch.setattr(T, "DEFER_FRAMES", 16)
    rig = Rig()
    tap = await rig.tap()
    await feed(tap, cell() + cell())  # 16 frames, no yield to the batch's timer
    assert len(rig.cells()) == 2
    await feed(tap, cell())
    assert len(rig.cells()) == 2  # 8 more wait for their timer
    await asyncio.sleep(T.DEFER_S * 5)
    assert len(rig.cells()) == 3


async def test_attribution_counts_a_cell_whose_frames_are_still_queued() -> None:
    rig = Rig()
    tap = await rig.tap(LEAD)
    await feed(tap, cell()[:1])  # the interviewer's request, not yet read
    actor, why = await rig.taps.attribute("s1", "out.csv")  # the file its cell wrote
    assert actor == E.interviewer_actor(7) and why["inferred"] is True


async def test_session_end_reads_the_queue_before_ending_open_cells() -> None:
    rig = Rig()
    tap = await rig.tap()
    frames = cell()
    await feed(tap, frames[:3])  # request, busy, echo: the cell runs on
    await rig.taps.finish_session("s1")
    [ran] = rig.cells()
    assert ran.payload["code"] == "1/0" and ran.payload["incomplete"] == "session ended"
    assert ran.payload["execution_count"] == 3  # the echo was read
