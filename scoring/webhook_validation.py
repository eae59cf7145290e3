"""Validation of webhook subscriptions at the boundary: the URL and the event names.

Every problem is reported at once. Hosts are resolved with the task importer's resolver and
address test (``tasks.source``): loopback, private, link-local and reserved addresses are
refused unless the admin allow-listed the host (``webhook_allowed_hosts``). The sender checks
the addresses again when it connects, so a later DNS answer cannot point a webhook inward.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from scoring.problems import Problems
from tasks.errors import InvalidSource
from tasks.source import Resolver, check_host, default_resolver, is_public_address

__all__ = ["EVENTS", "InvalidWebhook", "Subscription", "validate_subscription"]

EVENTS = ("scorecard.submitted", "session.ended", "debrief.ready")
MAX_URL_LENGTH = 2048


class InvalidWebhook(Problems):
    """A subscription was refused; ``problems`` lists every reason at once."""

    verdict = "The webhook was refused"


@dataclass(frozen=True)
class Subscription:
    """A validated URL and event list (only :func:`validate_subscription` makes one)."""

    url: str
    events: tuple[str, ...]


def _url_problems(url: str, allowed: frozenset[str], resolver: Resolver) -> list[str]:
    if not url:
        return ["the URL is empty"]
    if len(url) > MAX_URL_LENGTH:
        return [f"the URL is longer than {MAX_URL_LENGTH} characters"]
    if any(ord(ch) < 0x21 or ord(ch) == 0x7F or ch == "\\" for ch in url):
        return ["the URL contains whitespace, a control character or a backslash"]
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return ["the URL cannot be parsed (check the host and port)"]
    problems = []
    if parts.scheme not in ("http", "https"):
        problems.append("the URL must start with http:// or https://")
    if "@" in parts.netloc:
        problems.append("the URL contains credentials (user@ or user:password@); remove them")
    if "#" in url:
        problems.append("the URL may not have a #fragment")
    if port == 0:
        problems.append("port 0 is not a valid port")
    host = parts.hostname or ""
    if not host:
        problems.append("the URL has no host")
    else:
        try:
            host = check_host(host)
        except InvalidSource as exc:
            problems.append(exc.message)
    if problems:
        return problems
    try:
        addresses = list(resolver(host, port or (443 if parts.scheme == "https" else 80)))
    except (OSError, UnicodeError):
        return [f"the host {host!r} does not resolve"]
    if not addresses:
        return [f"the host {host!r} does not resolve"]
    if host in allowed:
        return []
    private = [a for a in addresses if not is_public_address(a)]
    if private:
        return [
            f"the host {host!r} resolves to a non-public address ({private[0]}); loopback, "
            "private, link-local and reserved ranges need the host in webhook_allowed_hosts"
        ]
    return []


def _event_problems(events: object) -> tuple[tuple[str, ...], list[str]]:
    known = ", ".join(EVENTS)
    if not isinstance(events, list | tuple):
        return (), [f"events must be a list of event names ({known})"]
    if not events:
        return (), [f"choose at least one event ({known})"]
    if not all(isinstance(e, str) for e in events):
        return (), ["every event must be a string"]
    unknown = [e for e in dict.fromkeys(events) if e not in EVENTS]
    if unknown:
        shown = ", ".join(repr(e[:40]) for e in unknown[:10])
        return (), [f"unknown event(s) {shown}; the events are {known}"]
    return tuple(e for e in EVENTS if e in events), []


def validate_subscription(
    url: object,
    events: object,
    allowed_hosts: Iterable[str],
    *,
    resolver: Resolver = default_resolver,
) -> Subscription:
    """Check a URL and event list at the boundary; raise :class:`InvalidWebhook` listing every
    problem. ``http``/``https`` only, no credentials, a host that resolves only to public
    addresses unless it is in ``allowed_hosts``. Resolution blocks: call from a worker thread."""
    allowed = frozenset(h.strip().strip("[]").lower() for h in allowed_hosts if h.strip())
    text = url if isinstance(url, str) else ""
    problems = _url_problems(text, allowed, resolver) if isinstance(url, str) else [
        "the URL must be a string"
    ]
    checked, event_problems = _event_problems(events)
    problems += event_problems
    if problems:
        raise InvalidWebhook(problems)
    return Subscription(url=text, events=checked)
