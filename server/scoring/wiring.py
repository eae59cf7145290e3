"""The scoring area's long-lived resources: the built-in rubrics, installed at start, and the
webhook sender (``scoring.webhook_sender``), built from the settings and run as a background
task for the app's lifetime."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from scoring import rubrics as R
from scoring.webhook_sender import (
    MIN_POLL_SECONDS,
    POLL_SECONDS,
    GuardedResolver,
    WebhookSender,
    make_client_session,
)
from server.http.keys import DB, SETTINGS

WEBHOOK_SENDER = web.AppKey("webhook_sender", WebhookSender)


async def rubrics_ctx(app: web.Application) -> AsyncIterator[None]:
    """Install the built-in rubrics at start (idempotent)."""
    await app[DB].write(R.install_builtins)
    yield


async def webhooks_ctx(app: web.Application) -> AsyncIterator[None]:
    """The sender and its client session; a delivery cut off at shutdown is sent again later."""
    settings = app[SETTINGS]
    allowed = settings.allowed_webhook_hosts
    resolver = GuardedResolver(allowed)
    client = make_client_session(resolver)
    base = settings.webhook_retry_base_seconds
    sender = WebhookSender(
        app[DB], client, allowed_hosts=allowed, base_seconds=base,
        poll_seconds=max(MIN_POLL_SECONDS, min(POLL_SECONDS, base)),
    )
    app[WEBHOOK_SENDER] = sender
    task = asyncio.create_task(sender.run(), name="webhook-sender")
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await client.close()
    await resolver.close()
