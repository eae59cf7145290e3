"""A fair queue for check runs: a bounded number at once, round-robin between sessions.

Every hidden-check and continuous-test run of the server takes a slot first. At most ``slots``
run at once, and at most ``per_session`` of them for any one session, so one session's slow
runs (a sleeper, a test suite at its time limit) hold no more than their own share: another
session's run takes the next free slot. When a slot frees up, the sessions with runs waiting
are served in turn, first come first served within a session. Hand-written because it is a
few lines over asyncio futures and no well-kept library does per-key round-robin admission.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class FairQueue:
    def __init__(self, slots: int = 2, per_session: int = 1) -> None:
        if slots < 1 or per_session < 1:
            raise ValueError("slots and per_session must be at least 1")
        self.slots = slots
        self.per_session = per_session
        self._waiting: dict[str, deque[asyncio.Future[None]]] = {}
        self._turns: deque[str] = deque()
        """Sessions with runs waiting, in the order they are served next."""
        self._running: dict[str, int] = {}

    def state(self) -> dict[str, dict[str, int]]:
        """Runs running and waiting, per session (for tests and the logs)."""
        return {"running": {k: v for k, v in self._running.items() if v},
                "waiting": {k: len(q) for k, q in self._waiting.items() if q}}

    @asynccontextmanager
    async def slot(self, session: str) -> AsyncIterator[None]:
        """Wait for this session's turn and a free slot; hold it inside the block."""
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(session, deque()).append(ready)
        if session not in self._turns:
            self._turns.append(session)
        self._dispatch()
        try:
            await ready
        except asyncio.CancelledError:
            if ready.done() and not ready.cancelled():  # granted as it was cancelled
                self._release(session)
            else:
                self._forget(session, ready)
            raise
        try:
            yield
        finally:
            self._release(session)

    def _busy(self) -> int:
        return sum(self._running.values())

    def _dispatch(self) -> None:
        """Grant free slots to the waiting sessions in turn."""
        while self._busy() < self.slots:
            for _ in range(len(self._turns)):
                session = self._turns[0]
                self._turns.rotate(-1)  # served or not, it goes to the back
                if self._running.get(session, 0) < self.per_session:
                    break
            else:
                return  # every waiting session is at its share
            queue = self._waiting[session]
            ready = queue.popleft()
            if not queue:
                del self._waiting[session]
                self._turns.remove(session)
            if ready.cancelled():  # its task was cancelled while waiting
                continue
            self._running[session] = self._running.get(session, 0) + 1
            ready.set_result(None)

    def _release(self, session: str) -> None:
        self._running[session] -= 1
        if not self._running[session]:
            del self._running[session]
        self._dispatch()

    def _forget(self, session: str, ready: asyncio.Future[None]) -> None:
        queue = self._waiting.get(session)
        if queue is not None and ready in queue:
            queue.remove(ready)
            if not queue:
                del self._waiting[session]
                self._turns.remove(session)
