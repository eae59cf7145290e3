"""The client's address: the one answer the access log, the login limiter, the audit log and
session grants all use.

The direct peer's address, unless that peer is one of the configured ``trusted_proxies``; only
then is ``X-Forwarded-For`` read, from the right: each trusted proxy appends the address it
saw, so the rightmost hop that is not itself a trusted proxy is the client. Everything left of
it was written by the client and is ignored (a client can put anything there). With no trusted
proxy configured (the default) the header is never read, so forging it changes nothing.

Hand-written rather than aiohttp-remotes: its strict mode wants the exact chain of proxies per
hop and answers 400 otherwise, its relaxed mode trusts a count of hops from anyone, and it
rewrites ``request.remote`` only inside the middleware chain, which the access logger never
sees; this is the rightmost-untrusted rule over networks, usable from any of them.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence

from aiohttp import web

from server.http.keys import SETTINGS
from server.settings import Network

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_PORT = re.compile(r":[0-9]{1,5}")
MAX_HOPS = 32
"""Hops read from X-Forwarded-For at most (from the right): a longer chain is a forgery."""


def parse_address(text: str) -> IPAddress | None:
    """An IP address as a proxy writes it: bare, ``[v6]``, or with a port (``v4:port``,
    ``[v6]:port``, as some proxies write a hop); v4-mapped v6 unmapped."""
    text = text.strip()
    if text.startswith("["):
        text, bracket, port = text[1:].partition("]")
        if not bracket or (port and not _PORT.fullmatch(port)):
            return None
    elif text.count(":") == 1:  # v4:port (a bare v6 address has at least two colons)
        text, _, port = text.partition(":")
        if not _PORT.fullmatch(":" + port):
            return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: IPAddress, networks: Sequence[Network]) -> bool:
    return any(address.version == net.version and address in net for net in networks)


def forwarded_client(peer: str, forwarded_for: Iterable[str], trusted: Sequence[Network]) -> str:
    """The client's address given the direct ``peer``, the X-Forwarded-For header values (in
    order) and the trusted proxy networks."""
    peer_address = parse_address(peer)
    if peer_address is None or not _trusted(peer_address, trusted):
        return peer
    hops = [hop for value in forwarded_for for hop in value.split(",")][-MAX_HOPS:]
    client = peer_address
    for hop in reversed(hops):
        address = parse_address(hop)
        if address is None:  # not an address: stop at the last hop a trusted proxy vouched for
            break
        client = address
        if not _trusted(address, trusted):
            break
    return str(client)


def limiter_key(address: str) -> str:
    """The address the login limiter counts: an IPv6 address by its /64, the block one
    subscriber usually gets whole (counting each /128 would give a guesser 2**64 addresses);
    an IPv4 address, or anything that is not an address, as it is."""
    parsed = parse_address(address)
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return address


def client_address(request: web.BaseRequest) -> str:
    """The address of whoever sent ``request`` (see the module's docstring); "" if unknown."""
    peer = request.remote or ""
    app = request.app if isinstance(request, web.Request) else None
    if app is None or SETTINGS not in app:
        return peer
    trusted = app[SETTINGS].trusted_proxy_networks
    if not trusted:
        return peer
    return forwarded_client(peer, request.headers.getall("X-Forwarded-For", ()), trusted)
