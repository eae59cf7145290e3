"""Admission control for cold workspace starts: at most ``max_parallel`` at once, first come
first served, and none while the host's memory would be overcommitted. A start that cannot run
now waits in a queue (it is not refused) and can say where it stands and about how long it
waits; only one that waited longer than ``max_wait_s`` fails, with a sentence saying why.

- Sessions before refills: a warm-pool refill takes a free slot only when no session waits,
  and its slot is not counted against the sessions' bound, so a session never waits for a
  refill (at most one refill per environment runs beside them: ``WarmPool._fill`` is serial).
- Memory: a start is admitted while ``MemAvailable`` (``psutil.virtual_memory().available``,
  read by an injected function), less ``start_bytes`` for each start under way (what a fresh
  jupyter-server and its sandbox take before ``MemAvailable`` shows it), still leaves room for
  one more workspace at its memory limit (``memory_per_start``) plus ``reserve_bytes``. Memory
  frees without an event, so a start held for memory looks again every ``recheck_s``. The queue
  stays first come first served: nobody passes a start held for memory (the next one would need
  as much). With no start under way, waiting would free nothing (live workspaces keep their
  memory until their sessions end), so the first in the queue then goes anyway (logged once):
  a small host starts one at a time instead of refusing every start.
- Estimates: the ``position``-th start in the queue starts in about ``position / max_parallel``
  times the median of the last ``SAMPLES`` cold starts (``DEFAULT_START_S`` until one is seen).

Written by hand: ``asyncio.Semaphore`` is neither ordered by kind, nor memory-aware, nor able
to say a waiter's place; no well-kept library does this.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import statistics
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

import psutil

from workspaces.session_errors import WorkspaceUnavailable

MiB = 1024 * 1024
log = logging.getLogger(__name__)
DEFAULT_START_S = 4.0
"""Assumed length of a cold start until one is measured (issue 15: 10 at once took 5.6-7.5 s
on two cores, one alone about 1-3 s)."""
SAMPLES = 20
RESERVE_BYTES = 512 * MiB
"""Memory left to the host (pairlab itself, the page cache it needs) beyond a workspace."""
START_BYTES = 256 * MiB
"""What a start under way is counted at: an idle jupyter-server in its sandbox is ~100 MiB."""
RECHECK_S = 1.0
MAX_PARALLEL_LIMIT = 64

MemoryReader = Callable[[], int]
"""Bytes of memory available now (``MemAvailable``)."""


class Starting(Protocol):
    """A session as the gate reads it (``workspaces.sessions.Session``)."""

    @property
    def id(self) -> str: ...

    @property
    def state(self) -> str: ...


class StartQueueTimeout(WorkspaceUnavailable):
    """A start waited in the queue longer than the bound (503, a sentence)."""


def host_cores() -> int:
    """The cores this process may run on (its CPU affinity), at least one."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def mem_available() -> int:
    """``MemAvailable`` of ``/proc/meminfo`` (psutil reads it, with a fallback on old kernels)."""
    return int(psutil.virtual_memory().available)


def check_max_parallel(value: int) -> int:
    """The bound of parallel starts; 0 means one per core. Raises ValueError with a sentence."""
    if isinstance(value, bool) or not isinstance(value, int) \
            or not 0 <= value <= MAX_PARALLEL_LIMIT:
        raise ValueError(f"max_parallel_starts: {value!r} must be 0 (one per CPU core) to"
                         f" {MAX_PARALLEL_LIMIT}")
    return value or host_cores()


@dataclass(frozen=True)
class Place:
    """Where a waiting start stands."""

    position: int
    """1 for the next start to run."""
    ahead: int
    """Starts before this one: those running and those queued before it."""
    starts_in_s: int
    """About how many seconds until it starts (whole, at least 1)."""

    def to_dict(self) -> dict[str, int]:
        return {"position": self.position, "ahead": self.ahead, "starts_in_s": self.starts_in_s}



@dataclass(eq=False)
class _Waiter:
    key: str | None
    refill: bool
    ready: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop()
                                        .create_future())


class AdmissionGate:
    """Cold starts through one queue (see the module's docstring). ``slot`` is the way in."""

    def __init__(self, max_parallel: int = 0, *, memory_per_start: int = 2 * 1024 * MiB,
                 reserve_bytes: int = RESERVE_BYTES, start_bytes: int = START_BYTES,
                 memory: MemoryReader = mem_available,
                 max_wait_s: float = 300.0, recheck_s: float = RECHECK_S,
                 default_start_s: float = DEFAULT_START_S) -> None:
        self.max_parallel = check_max_parallel(max_parallel)
        if min(memory_per_start, reserve_bytes, start_bytes) < 0:
            raise ValueError("memory_per_start, reserve_bytes and start_bytes must not be"
                             " negative")
        if not max_wait_s > 0 or not recheck_s > 0 or not default_start_s > 0:
            raise ValueError("max_wait_s, recheck_s and default_start_s must be positive")
        self.memory_per_start = memory_per_start
        self.reserve_bytes = reserve_bytes
        self.start_bytes = start_bytes
        self._memory = memory
        self.max_wait_s = max_wait_s
        self.recheck_s = recheck_s
        self._recent: deque[float] = deque([default_start_s], maxlen=SAMPLES)
        self._seeded = True
        self._sessions: deque[_Waiter] = deque()
        self._refills: deque[_Waiter] = deque()
        self.running_sessions = 0
        self.running_refills = 0
        self.held_for_memory = False
        self._warned_memory = False
        """Is the head of the queue held back by memory (not by the bound)?"""
        self._recheck: asyncio.TimerHandle | None = None

    # ---- what it tells ------------------------------------------------------------------

    @property
    def running(self) -> int:
        return self.running_sessions + self.running_refills

    @property
    def waiting(self) -> int:
        return len(self._sessions) + len(self._refills)

    @property
    def waiting_sessions(self) -> int:
        return len(self._sessions)

    def median_start_s(self) -> float:
        """The median of the recent cold starts (the seed until the first is measured)."""
        return statistics.median(self._recent)

    def estimate_s(self, position: int) -> int:
        """About how many seconds the ``position``-th start in the queue waits."""
        return max(1, math.ceil(position / self.max_parallel * self.median_start_s()))

    def place_of(self, session: Starting) -> Place | None:
        """``place`` of a session, if it is starting (``provisioning``)."""
        return self.place(session.id) if session.state == "provisioning" else None

    def place(self, key: str) -> Place | None:
        """Where the session ``key``'s start waits; None if it is not waiting (running, done or
        never queued)."""
        for index, waiter in enumerate(self._sessions):
            if waiter.key == key:
                position = index + 1
                return Place(position, self.running_sessions + index,
                             self.estimate_s(position))
        return None

    # ---- the way in ---------------------------------------------------------------------

    @asynccontextmanager
    async def slot(self, key: str | None = None, *, refill: bool = False) -> AsyncIterator[None]:
        """Hold a start slot for the body: a session's start (``key``: its id) or a pool
        refill. Waits its turn; raises ``StartQueueTimeout`` after ``max_wait_s``."""
        await self._enter(_Waiter(key, refill))
        began = time.monotonic()
        ok = False
        try:
            yield
            ok = True
        finally:
            self._leave(refill, time.monotonic() - began if ok else None)

    async def _enter(self, waiter: _Waiter) -> None:
        (self._refills if waiter.refill else self._sessions).append(waiter)
        self._admit()
        try:
            async with asyncio.timeout(self.max_wait_s):  # (3.11's wait_for can swallow a
                await asyncio.shield(waiter.ready)       # cancellation that meets the result)
        except BaseException as exc:
            if waiter.ready.done() and not waiter.ready.cancelled():
                # Admitted at the same moment: give the slot back before leaving.
                self._leave(waiter.refill, None)
            else:
                waiter.ready.cancel()
                self._remove(waiter)
            if isinstance(exc, TimeoutError):
                raise StartQueueTimeout(
                    f"the workspace could not start: it waited {self.max_wait_s:.0f} s in the"
                    f" start queue ({self.waiting} starts waiting, {self.running} running);"
                    " the server is busy, try again in a few minutes") from None
            raise

    def _remove(self, waiter: _Waiter) -> None:
        queue = self._refills if waiter.refill else self._sessions
        if waiter in queue:
            queue.remove(waiter)
        self._admit()  # a start behind it may now go

    def _leave(self, refill: bool, duration_s: float | None) -> None:
        if refill:
            self.running_refills -= 1
        else:
            self.running_sessions -= 1
        if duration_s is not None:
            self._recent.append(duration_s)
            if self._seeded:  # the seed gives way to the first measured start
                self._recent.popleft()
                self._seeded = False
        self._admit()

    # ---- admitting ----------------------------------------------------------------------

    def _memory_allows(self) -> bool:
        if self.memory_per_start == 0 and self.reserve_bytes == 0:
            return True
        under_way = self.running * self.start_bytes
        return self._memory() - under_way >= self.memory_per_start + self.reserve_bytes

    def _admit(self) -> None:
        """Let in every start that may run now, in order: sessions, then refills."""
        self.held_for_memory = False
        while True:
            if self._sessions and self.running_sessions < self.max_parallel:
                queue, refill = self._sessions, False
            elif not self._sessions and self._refills and self.running < self.max_parallel:
                queue, refill = self._refills, True
            else:
                break
            if not self._memory_allows():
                if self.running > 0:  # a start under way may leave room when it is done
                    self.held_for_memory = True
                    self._schedule_recheck()
                    break
                # Nothing under way: waiting frees nothing (live workspaces hold the memory
                # until their sessions end), so a host this small starts one at a time.
                if not self._warned_memory:
                    self._warned_memory = True
                    log.warning("starting a workspace with %d MiB available, less than one "
                                "workspace's limit and the reserve: starts go one at a time",
                                self._memory() // MiB)
            waiter = queue.popleft()
            if waiter.ready.done():  # gave up meanwhile
                continue
            waiter.ready.set_result(None)
            if refill:
                self.running_refills += 1
            else:
                self.running_sessions += 1

    def _schedule_recheck(self) -> None:
        if self._recheck is not None and not self._recheck.cancelled():
            self._recheck.cancel()
        self._recheck = asyncio.get_running_loop().call_later(self.recheck_s, self._admit)
