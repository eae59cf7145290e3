"""The server's error vocabulary and the one middleware that renders every error.

JSON ``{"error": {"code": ..., "message": ...}}`` for ``/api/``, an HTML page for browsers,
never a traceback to a client. Domain errors (``tasks.errors.TaskError`` ...) carry their own
status and code and are rendered the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from common.errors import DomainError
from scoring.outcomes import OutcomeError
from scoring.problems import Problems
from server.http.accesslog import scrub_path
from tasks.errors import TaskError
from workspaces.errors import WorkspaceError
from workspaces.session_errors import SessionError

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ServerError(Exception):
    status: int = 400
    code: str = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}
        self.extra = extra or {}  # more top-level fields of the JSON body, e.g. "rows"


class BadRequest(ServerError):
    pass


class Unauthorized(ServerError):
    status = 401
    code = "unauthorized"


class Forbidden(ServerError):
    status = 403
    code = "forbidden"


class NotFound(ServerError):
    status = 404
    code = "not_found"


class Conflict(ServerError):
    status = 409
    code = "conflict"


class Unprocessable(ServerError):
    status = 422
    code = "invalid"


class TooManyRequests(ServerError):
    status = 429
    code = "too_many_requests"


DOMAIN_ERRORS: tuple[type[Exception], ...] = (TaskError, SessionError, WorkspaceError,
                                               OutcomeError, Problems, DomainError)

_HTTP_MESSAGES = {
    404: ("not_found", "There is nothing at this address."),
    405: ("method_not_allowed", "This address does not accept that method."),
    413: ("payload_too_large", "The request body is larger than this server accepts."),
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
    response = aiohttp_jinja2.render_template(
        "error.html", request, {"status": status, "code": code, "message": message}, status=status
    )
    response.headers.update(headers)
    return response


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ServerError as exc:
        return render_error(request, exc.status, exc.code, exc.message, exc.headers, exc.extra)
    except DOMAIN_ERRORS as exc:
        status = int(getattr(exc, "status", 400))
        code = str(getattr(exc, "code", "error"))
        return render_error(request, status, code, str(getattr(exc, "message", exc)), {},
                            getattr(exc, "extra", None))
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
