"""Run the two listeners (app origin and workspace origin) until SIGTERM/SIGINT, then shut down
gracefully: stop accepting, let requests finish (``shutdown_timeout``), run cleanup contexts."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable

from aiohttp import web

from server.app import create_app
from server.http.accesslog import ScrubbedAccessLogger
from server.sessions.wiring import WORKSPACE_APP
from server.settings import Settings, SettingsError

log = logging.getLogger(__name__)


async def _listen(runner: web.AppRunner, host: str, port: int, setting: str) -> None:
    """Start listening; a port in use (or an address not available) is a setting to fix."""
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        # asyncio words it "error while attempting to bind on address ...: <reason>"
        reason = (exc.strerror or str(exc)).rsplit(": ", 1)[-1]
        raise SettingsError(f"{setting}: cannot listen on {host}:{port}: {reason}") from None


async def serve(settings: Settings, on_ready: Callable[[Settings], None] | None = None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    runners: list[web.AppRunner] = []
    try:
        main_app = create_app(settings)
        for app, host, port, setting in (
            (main_app, settings.host, settings.port, "port"),
            (
                main_app[WORKSPACE_APP],
                settings.workspace_host,
                settings.workspace_port,
                "workspace_port",
            ),
        ):
            runner = web.AppRunner(
                app,
                access_log_class=ScrubbedAccessLogger,
                shutdown_timeout=settings.shutdown_timeout,
                handle_signals=False,
            )
            await runner.setup()
            runners.append(runner)
            await _listen(runner, host, port, setting)
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
