"""What the workspace proxy, the session lifecycle and the recorder share, free of the web layer:
where a live workspace's jupyter-server listens (``Upstream``) and the table of them
(``LiveUpstreams``), who calls through the proxy (``Principal``), the recording hooks the proxy
calls (``ConnectionTap``, ``TapFactory``, ``HttpTap``, ``HttpCall``) and the reused client
sessions to each jupyter-server (``UpstreamClients``, over a Unix socket whose listener is checked,
``workspaces/sandbox/peer.py``)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import aiohttp
from aiohttp import WSMsgType

from workspaces.sandbox.peer import Peer, PeerCheckedConnector

UPSTREAM_HOST = "workspace"
"""The Host of requests to a jupyter-server (they go over its Unix socket)."""


@dataclass(frozen=True)
class Upstream:
    """Where a workspace's jupyter-server listens and how to authenticate to it."""

    workspace_id: str
    socket_path: str
    token: str
    server: Peer | None
    """The jupyter-server's host pid and uid: a connection to anyone else is refused before
    anything is sent (``workspaces/sandbox/peer.py``)."""


@dataclass(frozen=True)
class Principal:
    """Who is calling through the proxy: shown in JupyterLab's collaboration panel."""

    username: str
    display_name: str
    kind: str  # candidate | interviewer

    def header(self) -> str:
        initials = "".join(p[0] for p in self.display_name.split()[:2]).upper() or "?"
        color = "var(--jp-collaborator-color1)" if self.kind == "candidate" else (
            "var(--jp-collaborator-color3)"
        )
        return json.dumps({
            "username": self.username, "name": self.display_name,
            "display_name": self.display_name, "initials": initials, "color": color,
        })


LiveUpstreams = dict[str, tuple[Upstream, str]]
"""workspace id -> (its jupyter-server, its session id) for every live workspace: written by the
session lifecycle (``workspaces/lifecycle.py``), read by the proxy and the recorder's taps."""


class ConnectionTap(Protocol):
    """Sees one proxied WebSocket's messages (for recording); made per connection."""

    async def feed(self, direction: str, kind: WSMsgType, data: str | bytes) -> None:
        """``direction`` is 'in' (browser -> workspace) or 'out'; awaiting slows this socket."""

    async def close(self) -> None:
        """The connection ended."""


TapFactory = Callable[[str, str, str, Principal], Awaitable[ConnectionTap | None]]
"""(workspace id, path, chosen subprotocol, who) -> a tap for this connection, or None."""


class HttpCall(Protocol):
    """One proxied HTTP request a recording watches, from before it is forwarded."""

    async def done(self, status: int, error: str) -> None:
        """The workspace answered ``status``; ``error`` is the start of the body of an error
        answer (4xx/5xx), else empty."""

    def abandon(self) -> None:
        """The request got no answer from the workspace (unreachable, or the caller left)."""


HttpTap = Callable[[str, str, str, Principal], HttpCall | None]
"""(workspace id, method, path, who) before each proxied HTTP request is forwarded -> the call
to tell its outcome, or None when nothing about it is recorded. Called on the proxy's hot path,
so it does no I/O: a contents-API write is known to be under way before the workspace writes
the file (``recording/attribution.py``)."""


class UpstreamClients:
    """One ``ClientSession`` (with its Unix-socket connector, which checks the listener of every
    new connection) per workspace, reused."""

    def __init__(self) -> None:
        self._sessions: dict[str, tuple[Upstream, aiohttp.ClientSession]] = {}

    def get(self, upstream: Upstream) -> aiohttp.ClientSession:
        found = self._sessions.get(upstream.workspace_id)
        if found is not None and found[0] == upstream and not found[1].closed:
            return found[1]
        connector = PeerCheckedConnector(upstream.socket_path, upstream.server, limit=64)
        session = aiohttp.ClientSession(
            connector=connector, auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
        )
        self._sessions[upstream.workspace_id] = (upstream, session)
        if found is not None:
            asyncio.get_running_loop().create_task(found[1].close())
        return session

    async def drop(self, workspace_id: str) -> None:
        found = self._sessions.pop(workspace_id, None)
        if found is not None:
            await found[1].close()

    async def close(self) -> None:
        for _, session in self._sessions.values():
            await session.close()
        self._sessions.clear()
