"""The webhook sender: a background task that POSTs due deliveries from the SQLite outbox.

Deliveries are rows (``scoring.webhooks``), queued in the same transaction as the change that
caused them, so they survive a restart and one lost in flight is sent again (receivers dedupe on
``X-Pairlab-Delivery``). Every short poll the sender reads what is due, POSTs each body signed
with the subscription's secret through one shared ``ClientSession`` (no redirects followed, no
cookies kept, no proxy from the environment), and records the attempt on the writer thread:
2xx delivers, anything else schedules the next try with backoff until the attempts run out.

Web-free (aiohttp's client only): the server's ``server.scoring.wiring`` builds it with the
settings and runs it for the app's lifetime.

Addresses are checked again when connecting: a host that now resolves to a loopback, private,
link-local or reserved address is refused unless it is in ``webhook_allowed_hosts``. Logs name
the delivery, the webhook id and the host only: never a path, a query, a body or a secret.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from functools import partial
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from common import clock
from common.db import Database
from scoring import webhooks
from tasks.source import is_public_address

log = logging.getLogger(__name__)

POLL_SECONDS = 0.5
MIN_POLL_SECONDS = 0.05
TIMEOUT_SECONDS = 10.0
BATCH = 20
USER_AGENT = "pairlab-webhooks"


class NonPublicAddress(OSError):
    """The host resolved to an address webhooks may not reach."""


class GuardedResolver(AbstractResolver):
    """aiohttp's threaded resolver, refusing a host with any non-public address unless the
    admin allow-listed it: checked at connect time, so a DNS answer that changed since the
    webhook was registered cannot point it inward."""

    def __init__(self, allowed_hosts: frozenset[str]) -> None:
        self._inner = ThreadedResolver()
        self._allowed = allowed_hosts

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if host.strip("[]").lower() not in self._allowed:
            for result in results:
                if not is_public_address(result["host"]):
                    raise NonPublicAddress(
                        f"the host resolves to a non-public address ({result['host']})"
                    )
        return results

    async def close(self) -> None:
        await self._inner.close()


def refused_literal(url: str, allowed_hosts: frozenset[str]) -> str | None:
    """Why an IP-literal URL host may not be reached (aiohttp skips the resolver for those)."""
    host = (urlsplit(url).hostname or "").lower()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if host in allowed_hosts or is_public_address(str(address)):
        return None
    return f"the address {address} is not public and not in webhook_allowed_hosts"


def describe(exc: BaseException) -> str:
    """A short error for the delivery log, built from the failure's kind (never its URL)."""
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        if isinstance(exc.os_error, NonPublicAddress):
            return str(exc.os_error) + "; the host is not in webhook_allowed_hosts"
        return "the host does not resolve"
    if isinstance(exc, aiohttp.ClientSSLError):
        return "the TLS handshake or certificate check failed"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect ({exc.os_error.strerror or type(exc.os_error).__name__})"
    if isinstance(exc, TimeoutError):
        return f"no response within {TIMEOUT_SECONDS:g} s"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection without a response"
    return f"request failed ({type(exc).__name__})"


def make_client_session(resolver: AbstractResolver) -> aiohttp.ClientSession:
    """One session for every delivery: bounded time, no cookies, no proxy from the environment
    (the caller closes ``resolver`` after the session: the connector does not own it)."""
    connector = aiohttp.TCPConnector(resolver=resolver, limit=BATCH)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS),
        cookie_jar=aiohttp.DummyCookieJar(),
        headers={"User-Agent": USER_AGENT},
        trust_env=False,
    )


class WebhookSender:
    def __init__(
        self,
        db: Database,
        client: aiohttp.ClientSession,
        *,
        allowed_hosts: frozenset[str],
        base_seconds: float,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.db = db
        self.client = client
        self.allowed_hosts = allowed_hosts
        self.base_seconds = base_seconds
        self.poll_seconds = poll_seconds

    async def run(self) -> None:
        """Forever: send what is due; sleep a poll interval unless a full batch was sent."""
        while True:
            try:
                sent = await self.send_due()
            except Exception:
                log.exception("webhook sender pass failed")
                sent = 0
            if sent < BATCH:
                await asyncio.sleep(self.poll_seconds)

    async def send_due(self) -> int:
        now = clock.now()
        batch = await self.db.read(lambda d: webhooks.due(d, now, BATCH))
        if batch:
            await asyncio.gather(*(self.deliver(item) for item in batch))
        return len(batch)

    async def deliver(self, item: webhooks.Due) -> str:
        status, error = await self.post(item)
        state = await self.db.write(partial(
            webhooks.record_attempt, delivery_id=item.id, status=status, error=error,
            base_seconds=self.base_seconds,
        ))
        host = urlsplit(item.url).hostname
        if state == "delivered":
            log.info("webhook delivery %d (%s) to webhook %d at %s delivered",
                     item.id, item.event, item.webhook_id, host)
        else:
            log.warning("webhook delivery %d (%s) to webhook %d at %s: attempt %d %s; %s",
                        item.id, item.event, item.webhook_id, host, item.attempts + 1,
                        error or f"HTTP {status}", "retrying" if state == "pending" else "gave up")
        return state

    async def post(self, item: webhooks.Due) -> tuple[int | None, str]:
        """One attempt: ``(status or None, short error or "")``."""
        refused = refused_literal(item.url, self.allowed_hosts)
        if refused:
            return None, refused
        body = item.body.encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            "X-Pairlab-Event": item.event,
            "X-Pairlab-Delivery": str(item.id),
            "X-Pairlab-Signature": webhooks.sign(item.secret, body),
        }
        try:
            async with self.client.post(
                item.url, data=body, headers=headers, allow_redirects=False
            ) as response:
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            return None, describe(exc)
        if 200 <= status < 300:
            return status, ""
        if 300 <= status < 400:
            return status, f"HTTP {status}: redirects are not followed"
        return status, f"HTTP {status}"
