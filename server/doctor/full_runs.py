"""The full doctor report, one run at a time: a request that arrives while one runs waits for
it and gets its report (the full report starts a throwaway workspace, so runs never pile up)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from server.doctor.checks import Report, full_report
from server.settings import Settings


class FullRuns:
    """One full check at a time; a request that arrives while one runs gets its report."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.last: Report | None = None

    async def report(self, settings: Settings) -> Report:
        if self.lock.locked():
            async with self.lock:
                if self.last is not None:
                    return self.last
        async with self.lock:
            self.last = await full_report(settings)
            return self.last


FULL_RUNS = web.AppKey("doctor_full_runs", FullRuns)


async def full_runs_ctx(app: web.Application) -> AsyncIterator[None]:
    """The app's one ``FullRuns`` for its lifetime."""
    app[FULL_RUNS] = FullRuns()
    yield
