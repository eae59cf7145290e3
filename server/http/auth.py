"""Who is calling: session cookie or bearer token; CSRF (token + Origin) on state changes.

The middleware resolves the caller into ``USER`` and refuses, before any handler runs, a
cookie-authenticated state-changing request without a matching CSRF token or with a
cross-site Origin. Bearer-token calls carry no ambient authority and need no CSRF token.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import quote, urlsplit

from aiohttp import web

from common.errors import Forbidden, Unauthorized
from server.http.client_address import client_address as client_address  # re-exported: one answer
from server.http.errors import wants_json
from server.http.keys import DB, SETTINGS
from server.http.way_forward import UNSAFE
from server.people import credentials
from server.people.accounts import User

SESSION_COOKIE = "pairlab_session"
PRELOGIN_COOKIE = "pairlab_prelogin"
"""Plain names; over https each is sent as ``__Host-`` + name (``cookie_name``)."""
CSRF_HEADER = "X-CSRF-Token"
# Logging in again while logged in is allowed: these check Origin and their own form token.
LOGIN_PATHS = frozenset({"/login", "/api/v1/auth/login"})

USER: web.RequestKey[User | None] = web.RequestKey("user", User | None)  # type: ignore[arg-type]
SESSION_TOKEN: web.RequestKey[str | None] = web.RequestKey("session_token", str | None)  # type: ignore[arg-type]
VIA_TOKEN: web.RequestKey[bool] = web.RequestKey("via_token", bool)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Handler)


def cookie_name(request: web.Request, name: str) -> str:
    """The app's cookie ``name`` as set and read here: ``__Host-`` + name over https, which
    browsers accept only host-only (no Domain), Secure and Path=/, so no sibling host (a
    workspace under the same registrable domain) can plant one; a planted plain ``name`` is
    never read. Plain ``name`` over http (a browser keeps ``__Host-`` cookies only over https)."""
    return host_only(name, request.app[SETTINGS].secure_cookies)


def host_only(name: str, secure: bool) -> str:
    """``__Host-`` + ``name`` when the cookie is Secure (https), else ``name``: the one rule
    for the app's cookies and the workspace hosts' grants."""
    return "__Host-" + name if secure else name


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def check_origin(request: web.Request) -> None:
    """Refuse a request whose Origin (or Referer) names another site."""
    origin = request.headers.get("Origin") or (
        _origin_of(request.headers["Referer"]) if "Referer" in request.headers else None
    )
    if origin is None:
        return
    allowed = {
        _origin_of(request.app[SETTINGS].app_url),
        f"{request.scheme}://{request.host}".lower(),
    }
    if origin.lower() not in allowed:
        raise Forbidden("This request came from another site and was refused (Origin check).")


async def _submitted_csrf(request: web.Request) -> str:
    token = request.headers.get(CSRF_HEADER, "")
    if not token and request.content_type in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        form = await request.post()
        value = form.get("csrf_token", "")
        token = value if isinstance(value, str) else ""
    return token


def csrf_token(request: web.Request) -> str:
    """The token a page embeds in its forms (bound to the login session or the pre-login cookie)."""
    session_token = request.get(SESSION_TOKEN)
    key = request.app[SETTINGS].cookie_secret.reveal()
    if session_token:
        return credentials.csrf_token_for(session_token, key)
    prelogin = request.cookies.get(cookie_name(request, PRELOGIN_COOKIE), "")
    return credentials.csrf_token_for("prelogin:" + prelogin, key) if prelogin else ""


def prelogin(request: web.Request) -> tuple[str, str]:
    """Double-submit value and CSRF token for the login form (no session to bind to yet)."""
    value = request.cookies.get(cookie_name(request, PRELOGIN_COOKIE)) or secrets.token_urlsafe(24)
    key = request.app[SETTINGS].cookie_secret.reveal()
    return value, credentials.csrf_token_for("prelogin:" + value, key)


def set_prelogin_cookie(request: web.Request, response: web.StreamResponse, value: str) -> None:
    response.set_cookie(
        cookie_name(request, PRELOGIN_COOKIE),
        value,
        httponly=True,
        samesite="Lax",
        secure=request.app[SETTINGS].secure_cookies,
        path="/",
    )


async def check_csrf(request: web.Request) -> None:
    check_origin(request)
    expected = csrf_token(request)
    submitted = await _submitted_csrf(request)
    if not submitted:
        raise Forbidden("The CSRF token is missing; reload the page and try again.")
    if not expected or not hmac.compare_digest(submitted, expected):
        raise Forbidden("The CSRF token is wrong or expired; reload the page and try again.")


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    db = request.app[DB]
    request[USER] = None
    request[SESSION_TOKEN] = None
    request[VIA_TOKEN] = False
    authorization = request.headers.get("Authorization", "")
    if authorization:
        scheme, _, bearer = authorization.partition(" ")
        if scheme.lower() != "bearer" or not bearer.strip():
            raise Unauthorized("The Authorization header must be 'Bearer <API token>'.")
        bearer = bearer.strip()
        found = await db.read(lambda d: credentials.user_for_api_token(d, bearer))
        if found is None:
            raise Unauthorized("The API token is unknown, revoked, or its user is disabled.")
        if found[1]:  # last_used_at is due
            await db.write(lambda d: credentials.touch_api_token(d, bearer))
        request[USER] = found[0]
        request[VIA_TOKEN] = True
        return await handler(request)

    session_token = request.cookies.get(cookie_name(request, SESSION_COOKIE))
    if session_token:
        user = await db.read(lambda d: credentials.user_for_session(d, session_token))
        if user is not None:
            request[USER] = user
            request[SESSION_TOKEN] = session_token
    if request.method in UNSAFE:
        if request[USER] is not None and request.path not in LOGIN_PATHS:
            await check_csrf(request)
        else:
            check_origin(request)
    return await handler(request)


def current_user(request: web.Request) -> User:
    """The logged-in user, or a 401 (API) / redirect to the login page (browser)."""
    user: User | None = request[USER]
    if user is None:
        if wants_json(request):
            raise Unauthorized("Log in first (session cookie or 'Authorization: Bearer' token).")
        target = request.rel_url.path_qs if request.method == "GET" else "/"
        raise web.HTTPSeeOther(f"/login?next={quote(target, safe='')}")
    return user


def require_admin(request: web.Request) -> User:
    user = current_user(request)
    if not user.is_admin:
        raise Forbidden("Only admins may do this.")
    return user
