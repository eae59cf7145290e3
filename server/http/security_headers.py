"""Security headers on pairlab's own responses (pages, JSON, errors)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; "
    "object-src 'none'"
)


def csp_with_form_targets(targets: list[str]) -> str:
    """``CSP`` whose ``form-action`` also allows ``targets``: a form whose answer redirects
    elsewhere (the interviewer's Join hands over to the workspace origins) is checked against
    ``form-action`` at every hop of the redirect."""
    return CSP.replace("form-action 'self'", " ".join(["form-action 'self'", *targets]))


def security_headers_for(form_targets: list[str]) -> Middleware:
    """The app's headers, its forms allowed to redirect to ``form_targets`` too."""
    policy = csp_with_form_targets(form_targets)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            _apply(exc, policy)
            raise
        _apply(response, policy)
        return response

    return middleware


security_headers = security_headers_for([])


def _apply(response: web.StreamResponse, policy: str = CSP) -> None:
    if response.prepared:
        return
    headers = response.headers
    headers.setdefault("Content-Security-Policy", policy)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    # same-origin, not no-referrer: with no-referrer browsers send "Origin: null" on form
    # posts, which the Origin check must refuse. Token-bearing URLs (capability links) set
    # no-referrer on their own responses.
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Cache-Control", "no-store")


def security_headers_except(proxied_prefix: str) -> Middleware:
    """For an origin that also forwards another server's responses under ``proxied_prefix``
    (the workspace origin and its JupyterLab): those keep their own headers, since ours would
    break their caching and framing; they only get ``nosniff``."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(proxied_prefix):
            return await security_headers(request, handler)
        response = await handler(request)
        if not response.prepared:
            response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response

    return middleware
