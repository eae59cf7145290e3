"""The admission gate of cold starts (workspaces/admission.py): order, the bound, memory holds
with an injected reader, the wait bound, refills behind sessions, and the estimate."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from workspaces.admission import (
    AdmissionGate,
    MiB,
    Place,
    StartQueueTimeout,
    check_max_parallel,
    host_cores,
)

GiB = 1024 * MiB


class Starts:
    """Starts that enter the gate and then wait until released by the test; records the order
    in which they got in and the most that were in at once."""

    def __init__(self, gate: AdmissionGate) -> None:
        self.gate = gate
        self.entered: list[str] = []
        self.inside = 0
        self.most = 0
        self.release: dict[str, asyncio.Event] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, name: str, refill: bool = False) -> None:
        self.release[name] = asyncio.Event()

        async def run() -> None:
            async with self.gate.slot(None if refill else name, refill=refill):
                self.entered.append(name)
                self.inside += 1
                self.most = max(self.most, self.inside)
                await self.release[name].wait()
                self.inside -= 1

        self.tasks[name] = asyncio.create_task(run())

    async def settle(self) -> None:
        for _ in range(5):
            await asyncio.sleep(0)

    async def finish(self, name: str) -> None:
        self.release[name].set()
        await self.tasks[name]
        await self.settle()


async def test_starts_run_at_most_k_at_once_first_come_first_served() -> None:
    gate = AdmissionGate(2, memory=lambda: 64 * GiB)
    starts = Starts(gate)
    for name in "abcde":
        starts.start(name)
    await starts.settle()
    assert starts.entered == ["a", "b"]
    assert gate.waiting == 3
    await starts.finish("b")
    assert starts.entered == ["a", "b", "c"]
    await starts.finish("a")
    await starts.finish("c")
    await starts.finish("d")
    await starts.finish("e")
    assert starts.entered == list("abcde")
    assert starts.most == 2
    assert (gate.running, gate.waiting) == (0, 0)


async def test_a_start_is_held_while_memory_would_be_overcommitted_then_goes() -> None:
    available = [3 * GiB]
    gate = AdmissionGate(4, memory_per_start=1 * GiB, reserve_bytes=512 * MiB,
                         start_bytes=1 * GiB, memory=lambda: available[0], recheck_s=0.02)
    starts = Starts(gate)
    starts.start("a")  # 3 GiB >= 1 + 0.5: in
    starts.start("b")  # 3 - 1 (a under way) = 2 >= 1.5: in
    starts.start("c")  # 3 - 2 = 1 < 1.5: held, though the bound (4) would let it in
    await starts.settle()
    assert starts.entered == ["a", "b"]
    assert gate.held_for_memory
    assert gate.place("c") == Place(position=1, ahead=2, starts_in_s=1)
    available[0] = 8 * GiB  # memory freed elsewhere, without an event: the recheck sees it
    await asyncio.wait_for(_until(lambda: starts.entered == ["a", "b", "c"]), 2)
    assert not gate.held_for_memory
    for name in "abc":
        await starts.finish(name)


async def test_starts_under_way_count_at_their_start_footprint_not_their_limit() -> None:
    gate = AdmissionGate(8, memory_per_start=2 * GiB, reserve_bytes=512 * MiB,
                         start_bytes=256 * MiB, memory=lambda: 4 * GiB)
    starts = Starts(gate)
    for name in "abcdefgh":
        starts.start(name)
    await starts.settle()
    # 4 GiB - n x 256 MiB >= 2.5 GiB for n = 0..6: seven in, the eighth held.
    assert starts.entered == list("abcdefg") and gate.held_for_memory
    for name in "abcdefgh":
        await starts.finish(name)


async def test_nobody_passes_a_start_held_for_memory() -> None:
    available = [1 * GiB]
    gate = AdmissionGate(4, memory_per_start=1 * GiB, reserve_bytes=0, start_bytes=1 * GiB,
                         memory=lambda: available[0], recheck_s=0.02)
    starts = Starts(gate)
    starts.start("a")
    starts.start("b")
    await starts.settle()
    assert starts.entered == ["a"]  # b is held: 1 GiB - 1 GiB under way < 1 GiB
    await starts.finish("a")
    assert starts.entered == ["a", "b"]
    await starts.finish("b")


async def test_a_host_short_of_memory_starts_one_at_a_time_instead_of_never() -> None:
    """Too little memory for even one workspace at its limit: with nothing under way, waiting
    frees nothing, so the first start goes (one at a time), and none waits out the bound."""
    gate = AdmissionGate(4, memory_per_start=2 * GiB, reserve_bytes=512 * MiB,
                         start_bytes=256 * MiB, memory=lambda: 1 * GiB, recheck_s=0.02,
                         max_wait_s=5)
    starts = Starts(gate)
    for name in "abc":
        starts.start(name)
    await starts.settle()
    assert starts.entered == ["a"] and gate.held_for_memory
    await starts.finish("a")
    assert starts.entered == ["a", "b"]
    await starts.finish("b")
    assert starts.entered == ["a", "b", "c"]
    await starts.finish("c")
    assert (gate.running, gate.waiting) == (0, 0)


async def test_a_start_that_waits_past_the_bound_fails_with_a_sentence_and_leaves() -> None:
    gate = AdmissionGate(1, memory=lambda: 64 * GiB, max_wait_s=0.1)
    starts = Starts(gate)
    starts.start("a")
    await starts.settle()
    with pytest.raises(StartQueueTimeout) as failed:
        async with gate.slot("late"):
            raise AssertionError("admitted while the only slot is taken")
    assert failed.value.status == 503
    assert "waited 0 s in the start queue" in failed.value.message
    assert "try again" in failed.value.message
    assert gate.place("late") is None and gate.waiting == 0
    await starts.finish("a")
    async with gate.slot("next"):  # the slot the late one never got is free
        assert gate.running == 1


async def test_a_cancelled_waiter_leaves_the_queue_and_frees_its_place() -> None:
    gate = AdmissionGate(1, memory=lambda: 64 * GiB)
    starts = Starts(gate)
    starts.start("a")
    starts.start("b")
    starts.start("c")
    await starts.settle()
    assert gate.place("c") == Place(position=2, ahead=2, starts_in_s=8)
    starts.tasks["b"].cancel()
    await starts.settle()
    assert gate.place("c") == Place(position=1, ahead=1, starts_in_s=4)
    await starts.finish("a")
    assert starts.entered == ["a", "c"]
    await starts.finish("c")
    assert gate.running == 0


async def test_refills_wait_behind_sessions_and_never_hold_a_session_back() -> None:
    gate = AdmissionGate(1, memory=lambda: 64 * GiB)
    starts = Starts(gate)
    starts.start("s1")
    starts.start("refill", refill=True)
    starts.start("s2")
    await starts.settle()
    assert starts.entered == ["s1"]  # the refill came before s2 but waits behind it
    await starts.finish("s1")
    assert starts.entered == ["s1", "s2"]
    await starts.finish("s2")
    assert starts.entered == ["s1", "s2", "refill"]
    starts.start("s3")  # a session arriving while the refill runs is not held by it
    await starts.settle()
    assert starts.entered == ["s1", "s2", "refill", "s3"]
    await starts.finish("refill")
    await starts.finish("s3")


async def test_the_estimate_is_position_over_k_times_the_median_of_recent_starts() -> None:
    gate = AdmissionGate(2, memory=lambda: 64 * GiB, default_start_s=4.0)
    assert gate.median_start_s() == 4.0  # the seed until a start is measured
    assert [gate.estimate_s(p) for p in (1, 2, 3, 5)] == [2, 4, 6, 10]
    for seconds in (0.05, 0.15, 0.10):
        async with gate.slot("s"):
            await asyncio.sleep(seconds)
    assert 0.09 <= gate.median_start_s() <= 0.2  # the seed gave way; the middle of three
    assert gate.estimate_s(10) == 1  # 10 / 2 x ~0.1 s, rounded up to a whole second


async def test_a_failed_start_frees_its_slot_and_is_not_measured() -> None:
    gate = AdmissionGate(1, memory=lambda: 64 * GiB, default_start_s=4.0)
    with pytest.raises(RuntimeError):
        async with gate.slot("s"):
            raise RuntimeError("boom")
    assert gate.running == 0 and gate.median_start_s() == 4.0


@pytest.mark.parametrize("bad", [-1, 65, True, 2.5, "2"])
def test_a_bad_bound_is_refused_with_a_sentence(bad: object) -> None:
    with pytest.raises(ValueError, match=r"max_parallel_starts: .* must be 0 \(one per CPU"):
        check_max_parallel(bad)  # type: ignore[arg-type]


def test_zero_means_one_start_per_core() -> None:
    assert check_max_parallel(0) == host_cores() >= 1
    assert AdmissionGate(0, memory=lambda: 0).max_parallel == host_cores()


async def _until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.01)  # the gate's recheck timer runs meanwhile
