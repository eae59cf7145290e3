"""The one error base every layer raises: a status, a stable code, a human sentence, extra fields.

Domain packages (``tasks``, ``workspaces``, ``scoring``, the accounts domain) subclass
:class:`DomainError` and never import aiohttp; the server's one error middleware
(``server.http.errors``) answers any ``DomainError`` the same way (HTTP status, JSON
``{"error": {"code", "message"}, **extra}`` or an HTML page), and the CLI prints its message as
one line on stderr. ``headers`` is for the few that carry one (``Retry-After``).
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status: int = 400
    code: str = "bad_request"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None,
                 extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})  # more top-level fields of the JSON body, e.g. "rows"


# The generic kinds: any layer may raise them (the accounts domain, the web layer, a domain
# package whose refusal has no name of its own).


class BadRequest(DomainError):
    pass


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class Unprocessable(DomainError):
    status = 422
    code = "invalid"


class TooManyRequests(DomainError):
    status = 429
    code = "too_many_requests"
