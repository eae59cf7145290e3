"""Who is listening on a workspace's Unix socket: checked before pairlab sends it anything.

pairlab sends the jupyter token (and the ``X-Pairlab-User`` header) on every connection to a
workspace's socket. The socket's folder is locked (root-owned) once the server has bound, but the
proxy does not rely on that alone: every new connection's ``SO_PEERCRED`` (the pid and uid of the
process that listened, as the kernel recorded them at ``listen()``) must be the jupyter-server the
provisioner started (``WorkspaceInfo.server``). A mismatch closes the connection before a byte is
written. ``PeerCheckedConnector`` is the one place this happens: the proxy (HTTP and WebSocket),
the readiness probe and the doctor's smoke test all connect through it.
"""

from __future__ import annotations

import logging
import socket
import struct
from asyncio.trsock import TransportSocket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp

if TYPE_CHECKING:
    from aiohttp.client_proto import ResponseHandler
    from aiohttp.client_reqrep import ClientRequest
    from aiohttp.tracing import Trace

log = logging.getLogger(__name__)
_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


@dataclass(frozen=True)
class Peer:
    """The host pid and uid of the process expected to listen on a workspace's socket."""

    pid: int
    uid: int


class PeerRefused(aiohttp.ClientConnectionError):
    """The process listening on the socket is not the workspace's jupyter-server."""


def peer_of(sock: socket.socket | TransportSocket) -> Peer:
    """The pid and uid the kernel recorded for the other end of a connected Unix socket."""
    pid, uid, _gid = _UCRED.unpack(sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                   _UCRED.size))
    return Peer(pid, uid)


def check_peer(sock: socket.socket | TransportSocket, expected: Peer | None, where: str) -> None:
    """Raise ``PeerRefused`` (and log why) unless the peer is ``expected``."""
    found = peer_of(sock)
    if expected is None or found != expected:
        log.error("refused the listener on %s: pid %d uid %d, expected %s; sent nothing",
                  where, found.pid, found.uid,
                  "an unknown server" if expected is None
                  else f"pid {expected.pid} uid {expected.uid}")
        raise PeerRefused(f"the process listening on {where} is not the workspace's server")


class PeerCheckedConnector(aiohttp.UnixConnector):
    """A ``UnixConnector`` that checks ``SO_PEERCRED`` on every new connection before use."""

    def __init__(self, path: str, expected: Peer | None, **kwargs: Any) -> None:
        super().__init__(path=path, **kwargs)
        self.expected = expected

    async def _create_connection(self, req: ClientRequest, traces: list[Trace],
                                 timeout: aiohttp.ClientTimeout  # noqa: ASYNC109 - aiohttp's
                                 ) -> ResponseHandler:
        proto = await super()._create_connection(req, traces, timeout)
        transport = proto.transport
        sock = transport.get_extra_info("socket") if transport is not None else None
        try:
            if not isinstance(sock, socket.socket | TransportSocket):
                raise PeerRefused(f"no socket to check on {self.path}")
            check_peer(sock, self.expected, self.path)
        except BaseException:
            proto.close()
            raise
        return proto
