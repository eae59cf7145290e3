"""The reverse proxy from the workspace origin to each workspace's jupyter-server.

HTTP and WebSocket traffic under ``/w/<workspace id>/`` is forwarded over the workspace's Unix
socket. The upstream is looked up from the workspace record (never built from the URL), every
new connection's listener is checked to be the workspace's jupyter-server (``SO_PEERCRED``,
``workspaces/sandbox/peer.py``; else 502 and nothing sent), the jupyter token is added here and
never reaches a browser, hop-by-hop headers and pairlab's own
cookies are stripped, bodies are streamed both ways, and WebSocket messages are relayed with
their type and subprotocol, each at most ``WS_MAX_IN`` bytes from a browser and
``WS_MAX_OUT`` from the workspace (a bigger one closes the connection with 1009: the whole
message would be held in pairlab's memory, shared by every interview, and fed to the recording
taps). Written by hand because jupyter-server-proxy runs *inside* a Jupyter server and cannot
put authentication in front of one; the shape follows its ``handlers.py``.
The web-free parts (upstreams, principals, the recording taps' types, the client sessions) are
in ``workspaces/upstream.py``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import aiohttp
from aiohttp import WSMsgType, web
from multidict import CIMultiDict

from workspaces.sandbox.peer import PeerRefused
from workspaces.upstream import (
    UPSTREAM_HOST,
    HttpTap,
    Principal,
    TapFactory,
    Upstream,
    UpstreamClients,
)

log = logging.getLogger(__name__)

HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "trailers", "transfer-encoding", "upgrade", "host", "content-length",
})
DROP_FROM_CLIENT = HOP_BY_HOP | {"authorization", "x-pairlab-user", "cookie", "x-forwarded-for"}
DROP_FROM_UPSTREAM = HOP_BY_HOP - {"content-length"}
PAIRLAB_COOKIE_PREFIXES = ("pairlab_", "__Host-pairlab_")
UNVERIFIED = ("The workspace's server could not be verified (another process is listening on its "
              "socket); nothing was sent to it.")


WS_MAX_IN = 64 * 1024 * 1024
"""The largest WebSocket message a browser may send (a paste, a notebook's outputs in a
collaboration update; jupyter-server itself takes up to 1 GiB)."""
WS_MAX_OUT = 256 * 1024 * 1024
"""The largest WebSocket message the workspace may send (a big notebook's first sync)."""
ERROR_BODY_BYTES = 64 * 1024
"""An error answer (small JSON from jupyter-server) is read whole, up to this, for the tap."""


def _forward_headers(request: web.Request, upstream: Upstream, who: Principal) -> CIMultiDict[str]:
    headers: CIMultiDict[str] = CIMultiDict()
    for name, value in request.headers.items():
        if name.lower() not in DROP_FROM_CLIENT:
            headers.add(name, value)
    raw = request.headers.get("Cookie", "")
    kept = [
        part.strip() for part in raw.split(";")
        if part.strip() and not part.strip().startswith(PAIRLAB_COOKIE_PREFIXES)
    ]
    if kept:
        headers["Cookie"] = "; ".join(kept)
    headers["Host"] = request.host
    headers["Authorization"] = f"token {upstream.token}"
    headers["X-Pairlab-User"] = who.header()
    return headers


def _upstream_url(request: web.Request) -> str:
    return f"http://{UPSTREAM_HOST}{request.rel_url.raw_path_qs}"


async def proxy_http(
    request: web.Request, upstream: Upstream, who: Principal, clients: UpstreamClients,
    rewrite_html: Callable[[bytes], bytes] | None = None, tap: HttpTap | None = None,
) -> web.StreamResponse:
    call = None
    if tap is not None:
        try:
            call = tap(upstream.workspace_id, request.method, request.path, who)
        except Exception:  # recording never stands in the way of the request it watches
            log.exception("the recording could not follow %s %s", request.method, request.path)
    try:
        response, error = await _proxy_http(request, upstream, who, clients, rewrite_html)
    except BaseException:
        if call is not None:
            call.abandon()
        raise
    if call is not None:
        await call.done(response.status, error)
    return response


async def _proxy_http(
    request: web.Request, upstream: Upstream, who: Principal, clients: UpstreamClients,
    rewrite_html: Callable[[bytes], bytes] | None,
) -> tuple[web.StreamResponse, str]:
    client = clients.get(upstream)
    headers = _forward_headers(request, upstream, who)
    if rewrite_html is not None:  # pages must arrive uncompressed to be rewritten
        headers.pop("Accept-Encoding", None)
    data = request.content if request.body_exists else None
    try:
        async with client.request(
            request.method, _upstream_url(request), headers=headers, data=data,
            allow_redirects=False,
        ) as up:
            out_headers: CIMultiDict[str] = CIMultiDict(
                (k, v) for k, v in up.headers.items() if k.lower() not in DROP_FROM_UPSTREAM
            )
            if rewrite_html is not None and up.content_type == "text/html":
                body = rewrite_html(await up.read())
                out_headers.pop("Content-Length", None)
                return web.Response(status=up.status, headers=out_headers, body=body), ""
            if up.status >= 400 and request.method != "HEAD" and \
                    "Content-Encoding" not in up.headers:
                body = await _read_up_to(up, ERROR_BODY_BYTES)
                if up.content.at_eof():
                    out_headers.pop("Content-Length", None)
                    error = body.decode("utf-8", "replace")
                    return web.Response(status=up.status, reason=up.reason, headers=out_headers,
                                        body=body), error
                return await _stream(request, up, out_headers, body), ""
            return await _stream(request, up, out_headers, b""), ""
    except PeerRefused:
        raise web.HTTPBadGateway(text=UNVERIFIED) from None
    except (aiohttp.ClientConnectionError, FileNotFoundError, ConnectionRefusedError):
        raise web.HTTPBadGateway(text="The workspace is not answering; it may be restarting.") \
            from None


async def _read_up_to(up: aiohttp.ClientResponse, limit: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    while size < limit and (chunk := await up.content.read(limit - size)):
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts)


async def _stream(request: web.Request, up: aiohttp.ClientResponse,
                  headers: CIMultiDict[str], first: bytes) -> web.StreamResponse:
    response = web.StreamResponse(status=up.status, reason=up.reason, headers=headers)
    await response.prepare(request)
    if first:
        await response.write(first)
    async for chunk in up.content.iter_any():
        await response.write(chunk)
    await response.write_eof()
    return response


async def proxy_websocket(
    request: web.Request, upstream: Upstream, who: Principal, clients: UpstreamClients,
    taps: TapFactory | None = None,
) -> web.StreamResponse:
    client = clients.get(upstream)
    headers = _forward_headers(request, upstream, who)
    for name in ("Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Extensions",
                 "Sec-WebSocket-Protocol"):
        headers.pop(name, None)
    protocols = [
        p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")
        if p.strip()
    ]
    try:
        up = await client.ws_connect(
            _upstream_url(request), headers=headers, protocols=protocols,
            max_msg_size=WS_MAX_OUT, autoping=True, decode_text=True,
        )
    except PeerRefused:
        raise web.HTTPBadGateway(text=UNVERIFIED) from None
    except (aiohttp.ClientError, OSError) as exc:
        log.info("websocket upstream refused for %s: %s", upstream.workspace_id, type(exc).__name__)
        raise web.HTTPBadGateway(text="The workspace refused the WebSocket.") from None
    # No permessage-deflate towards the browser (aiohttp would accept Chromium's offer): like
    # jupyter-server, whose WebSockets are uncompressed by default, so deflating every frame of
    # a kernel's traffic on the proxy's one event loop buys nothing on a local network.
    down = web.WebSocketResponse(
        protocols=[up.protocol] if up.protocol else (), max_msg_size=WS_MAX_IN, autoping=True,
        compress=False,
    )
    await down.prepare(request)
    tap = await taps(upstream.workspace_id, request.path, up.protocol or "", who) if taps else None

    async def pump_up() -> None:  # browser -> workspace
        async for msg in down:
            # The tap sees a frame before the workspace does: the workspace's echo of an edit
            # (on every connection) must not reach the recorder first.
            if tap is not None and msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                await tap.feed("in", msg.type, msg.data)
            if msg.type == WSMsgType.TEXT:
                await up.send_str(msg.data)
            elif msg.type == WSMsgType.BINARY:
                await up.send_bytes(msg.data)
            else:
                break
        await up.close()

    async def pump_down() -> None:  # workspace -> browser
        async for msg in up:
            if msg.type == WSMsgType.TEXT:
                await down.send_str(msg.data)
            elif msg.type == WSMsgType.BINARY:
                await down.send_bytes(msg.data)
            else:
                break
            if tap is not None:
                await tap.feed("out", msg.type, msg.data)
        await down.close()

    tasks = [asyncio.ensure_future(pump_up()), asyncio.ensure_future(pump_down())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await up.close()
        await down.close()
        if tap is not None:
            await tap.close()
    return down
