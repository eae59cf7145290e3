"""Reach ``localhost`` and every ``*.localhost`` name on 127.0.0.1, as Chromium does (the C
library here knows only ``localhost`` itself): the client side of the workspace hosts
(``w-<id>.localhost``) for code that talks to a running pairlab as a browser would (the tests,
the benchmarks). Loopback only: any other name is refused."""

from __future__ import annotations

import socket

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult


class LoopbackResolver(AbstractResolver):
    """``localhost`` and every ``*.localhost`` name to 127.0.0.1, as Chromium resolves them
    (the C library here knows only ``localhost`` itself)."""

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        if host != "localhost" and not host.endswith(".localhost"):
            raise OSError(f"{host} is not a loopback name (loopback only)")
        return [ResolveResult(hostname=host, host="127.0.0.1", port=port,
                              family=socket.AF_INET, proto=0, flags=socket.AI_NUMERICHOST)]

    async def close(self) -> None:
        pass


def loopback_session() -> aiohttp.ClientSession:
    """A client that reaches ``*.localhost`` hosts and keeps cookies per host, as a browser."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=LoopbackResolver()),
                                 cookie_jar=aiohttp.CookieJar(unsafe=True))
