"""Login and logout: the HTML form and the JSON API (thin: parse -> call -> serialise)."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable

from aiohttp import web

from common import audit
from common.errors import Forbidden, TooManyRequests, Unauthorized
from server.http.auth import (
    SESSION_COOKIE,
    SESSION_TOKEN,
    USER,
    check_origin,
    client_address,
    cookie_name,
    csrf_token,
    current_user,
    prelogin,
    set_prelogin_cookie,
)
from server.http.bodies import json_body
from server.http.client_address import limiter_key
from server.http.keys import DB, LOGIN_LIMITER, SETTINGS
from server.http.pages import render_anonymous
from server.people import accounts as people
from server.people import credentials
from server.people.passwords import verify_password

routes = web.RouteTableDef()
BAD_LOGIN = "The email or password is wrong."
pace_hold: Callable[[float], Awaitable[None]] = asyncio.sleep
"""How a held login waits (``server.http.ratelimit``); tests put their clock's here."""


def safe_next(target: str | None) -> str:
    """Only same-site absolute paths: no open redirect through ?next=."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


async def authenticate(request: web.Request, email: str, password: str) -> people.User:
    """Check a password under the login back-off (``server.http.ratelimit``); audit every
    failure."""
    db = request.app[DB]
    limiter = request.app[LOGIN_LIMITER]
    address = client_address(request)
    account, counted = email.strip().lower()[:254], limiter_key(address)
    wait, hold, busy = limiter.admit(account, counted)
    if wait:
        await db.write(
            lambda d: audit.record(
                d, audit.Actor("anonymous", None, address), "login.rate_limited", "user", account
            )
        )
        why = ("Too many logins are waiting to be checked" if busy else
               "Too many failed logins for this account from your address")
        raise TooManyRequests(
            f"{why}; try again in {wait} seconds.", headers={"Retry-After": str(wait)}
        )
    if hold:
        await pace_hold(hold)  # the account's pace (server.http.ratelimit): a delay, not a no
    found = await db.read(lambda d: people.password_hash_of(d, email))
    stored_hash = found[1] if found else None
    ok = await asyncio.to_thread(verify_password, stored_hash, password)
    if not ok or found is None or found[0].disabled:
        limiter.failed(account, counted, known=found is not None)
        reason = "disabled" if ok and found is not None else "wrong email or password"
        await db.write(
            lambda d: audit.record(
                d, audit.Actor("anonymous", None, address), "login.failed", "user", account,
                reason=reason,
            )
        )
        raise Unauthorized(BAD_LOGIN)
    limiter.succeeded(account, counted)
    return found[0]


def _set_session_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    settings = request.app[SETTINGS]
    response.set_cookie(
        cookie_name(request, SESSION_COOKIE),
        token,
        httponly=True,
        samesite="Lax",
        secure=settings.secure_cookies,
        path="/",
        max_age=settings.session_hours * 3600,
    )


def _delete_session_cookie(request: web.Request, response: web.StreamResponse) -> None:
    # Secure as it was set: a browser ignores a __Host- deletion that is not Secure.
    response.del_cookie(cookie_name(request, SESSION_COOKIE), path="/",
                        secure=request.app[SETTINGS].secure_cookies)


async def _start_session(request: web.Request, user: people.User) -> str:
    hours = request.app[SETTINGS].session_hours
    address = client_address(request)
    return await request.app[DB].write(
        lambda d: credentials.create_login_session(d, user, hours, address)
    )


@routes.post("/api/v1/auth/login")
async def api_login(request: web.Request) -> web.Response:
    body = await json_body(request, {"email": str, "password": str})
    user = await authenticate(request, body["email"], body["password"])
    token = await _start_session(request, user)
    key = request.app[SETTINGS].cookie_secret.reveal()
    response = web.json_response(
        {"user": user.public(), "csrf_token": credentials.csrf_token_for(token, key)}
    )
    _set_session_cookie(request, response, token)
    return response


@routes.post("/api/v1/auth/logout")
async def api_logout(request: web.Request) -> web.Response:
    user = current_user(request)
    await _end_session(request, user)
    response = web.json_response({"ok": True})
    _delete_session_cookie(request, response)
    return response


@routes.get("/api/v1/auth/me")
async def api_me(request: web.Request) -> web.Response:
    user = current_user(request)
    return web.json_response({"user": user.public(), "csrf_token": csrf_token(request)})


async def _end_session(request: web.Request, user: people.User) -> None:
    token = request.get(SESSION_TOKEN)
    if token:
        actor = user.actor(client_address(request))
        await request.app[DB].write(lambda d: credentials.end_login_session(d, token, actor))


@routes.get("/login")
async def login_page(request: web.Request) -> web.StreamResponse:
    if request.get(USER) is not None:
        raise web.HTTPSeeOther(safe_next(request.query.get("next")))
    value, token = prelogin(request)
    response = render_anonymous(request, "login.html",
                                {"next": safe_next(request.query.get("next"))}, csrf=token)
    set_prelogin_cookie(request, response, value)
    return response


@routes.post("/login")
async def login_submit(request: web.Request) -> web.StreamResponse:
    check_origin(request)
    form = await request.post()
    email, password = str(form.get("email", "")), str(form.get("password", ""))
    next_url = safe_next(str(form.get("next", "/")))
    expected = csrf_token(request)
    if not expected or not hmac.compare_digest(str(form.get("csrf_token", "")), expected):
        raise Forbidden("The login form expired; reload the page and try again.")
    try:
        user = await authenticate(request, email, password)
    except (Unauthorized, TooManyRequests) as exc:
        response = render_anonymous(request, "login.html",
                                    {"error": exc.message, "next": next_url, "email": email},
                                    csrf=expected, status=exc.status)
        response.headers.update(exc.headers)
        return response
    token = await _start_session(request, user)
    response = web.HTTPSeeOther(next_url)
    _set_session_cookie(request, response, token)
    raise response


@routes.post("/logout")
async def logout_submit(request: web.Request) -> web.StreamResponse:
    user = current_user(request)
    await _end_session(request, user)
    response = web.HTTPSeeOther("/login")
    _delete_session_cookie(request, response)
    raise response
