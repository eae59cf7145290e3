"""The one middleware that renders every error, and how it renders one.

JSON ``{"error": {"code": ..., "message": ...}}`` for ``/api/``, an HTML page for browsers,
never a traceback to a client. Every error a layer raises is a ``common.errors.DomainError``
(the generic kinds ``BadRequest`` ... ``TooManyRequests`` live there too) and carries its own
status, code, message, headers and extra JSON fields; aiohttp's own HTTP errors (404, 405, 413)
are answered in the same shape.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from common.errors import DomainError
from server.http.accesslog import scrub_path
from server.http.way_forward import way_forward

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ERROR_TEMPLATE = web.AppKey("error_template", str)
"""The template an app's error pages use (``error.html`` unless set): the workspace origin
has its own, for candidates, with its own stylesheet and no link into the staff's app."""


_HTTP_MESSAGES = {
    404: ("not_found", "There is nothing at this address."),
    405: ("method_not_allowed", "This address does not accept that method."),
    413: ("payload_too_large", "The request body is larger than this server accepts."),
}


_TITLES = {
    400: "That request could not be used",
    401: "You need to log in",
    403: "You may not do this",
    404: "Page not found",
    405: "Not allowed here",
    409: "That clashes with what is there",
    413: "That is too large",
    422: "That could not be used",
    429: "Too many tries",
    500: "Something went wrong",
    503: "Not available right now",
}


def wants_json(request: web.Request) -> bool:
    if request.path.startswith("/api/"):
        return True
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


def render_error(
    request: web.Request,
    status: int,
    code: str,
    message: str,
    headers: dict[str, str],
    extra: dict[str, Any] | None = None,
) -> web.Response:
    if wants_json(request):
        return web.json_response(
            {**(extra or {}), "error": {"code": code, "message": message}},
            status=status,
            headers=headers,
        )
    from server.http.auth import USER  # here: auth imports this module (wants_json)

    forward = way_forward(request.method, request.path, request.get(USER) is not None,
                          request.headers.get("Referer", ""), request.host)
    response = aiohttp_jinja2.render_template(
        request.app.get(ERROR_TEMPLATE, "error.html"), request,
        {"status": status, "code": code, "message": message,
         "title": _TITLES.get(status, "Something went wrong"), "forward": forward},
        status=status,
    )
    response.headers.update(headers)
    return response


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except DomainError as exc:
        return render_error(request, exc.status, exc.code, exc.message, exc.headers, exc.extra)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code, message = _HTTP_MESSAGES.get(
            exc.status, (exc.reason.lower().replace(" ", "_"), exc.reason)
        )
        headers = {k: v for k, v in exc.headers.items() if k in ("Allow", "Retry-After")}
        return render_error(request, exc.status, code, message, headers)
    except Exception:
        # the path of a capability link or handoff carries its token: never logged
        log.exception("unhandled error on %s %s", request.method, scrub_path(request.path))
        return render_error(
            request, 500, "internal_error", "Something went wrong on the server; it was logged.", {}
        )
