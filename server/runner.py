"""Run the two listeners (app origin and workspace origin) until SIGTERM/SIGINT, then shut down
gracefully: stop accepting, let requests finish (``shutdown_timeout``), run cleanup contexts."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable

from aiohttp import web

from server.accesslog import ScrubbedAccessLogger
from server.app import create_app, create_workspace_app
from server.settings import Settings

log = logging.getLogger(__name__)


async def serve(settings: Settings, on_ready: Callable[[Settings], None] | None = None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    runners: list[web.AppRunner] = []
    try:
        for app, host, port in (
            (create_app(settings), settings.host, settings.port),
            (create_workspace_app(settings), settings.workspace_host, settings.workspace_port),
        ):
            runner = web.AppRunner(
                app,
                access_log_class=ScrubbedAccessLogger,
                shutdown_timeout=settings.shutdown_timeout,
                handle_signals=False,
            )
            await runner.setup()
            runners.append(runner)
            await web.TCPSite(runner, host, port).start()
        log.info("pairlab listening on %s (workspaces on %s)", settings.app_url,
                 settings.workspace_url)
        if on_ready is not None:
            on_ready(settings)
        await stop.wait()
        log.info("shutting down")
    finally:
        for runner in reversed(runners):
            await runner.cleanup()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
