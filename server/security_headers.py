"""Security headers on every response of the app origin."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; "
    "object-src 'none'"
)


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith("/w/"):
        # A workspace's own pages (JupyterLab) carry jupyter-server's headers; ours would break
        # its caching and framing. The proxy still strips hop-by-hop headers.
        response = await handler(request)
        if not response.prepared:
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        _apply(exc)
        raise
    _apply(response)
    return response


def _apply(response: web.StreamResponse) -> None:
    if response.prepared:
        return
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    # same-origin, not no-referrer: with no-referrer browsers send "Origin: null" on form
    # posts, which the Origin check must refuse. Token-bearing URLs (capability links) set
    # no-referrer on their own responses.
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Cache-Control", "no-store")
