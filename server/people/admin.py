"""Admin: people and API tokens, as pages and JSON API (thin handlers over
server.people.accounts)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from common import audit
from server.http.auth import client_address, require_admin
from server.http.bodies import json_body, path_number
from server.http.keys import DB
from server.http.pages import render
from server.people import accounts as people
from server.people import credentials
from server.people.passwords import generate_password, hash_password

routes = web.RouteTableDef()


async def _add_user(
    request: web.Request, email: str, role: str, password: str | None, display_name: str
) -> tuple[people.User, str | None]:
    admin = require_admin(request)
    generated = password is None
    password = password or generate_password()
    email = people.validate_new_user(email, role, password, display_name)
    password_hash = await asyncio.to_thread(hash_password, password)
    actor = admin.actor(client_address(request))
    user = await request.app[DB].write(
        lambda d: people.add_user(d, actor, email, role, password_hash, display_name)
    )
    return user, (password if generated else None)


async def _set_disabled(request: web.Request, email: str, disabled: bool) -> people.User:
    admin = require_admin(request)
    actor = admin.actor(client_address(request))
    return await request.app[DB].write(lambda d: people.set_disabled(d, actor, email, disabled))


@routes.get("/api/v1/users")
async def api_list_users(request: web.Request) -> web.Response:
    require_admin(request)
    users = await request.app[DB].read(people.list_users)
    return web.json_response({"users": [u.public() for u in users]})


@routes.post("/api/v1/users")
async def api_add_user(request: web.Request) -> web.Response:
    require_admin(request)
    body = await json_body(
        request, {"email": str, "role": str}, {"password": str, "display_name": str}
    )
    user, generated = await _add_user(
        request, body["email"], body["role"], body.get("password"), body.get("display_name", "")
    )
    result: dict[str, Any] = {"user": user.public()}
    if generated:
        result["password"] = generated
    return web.json_response(result, status=201)


@routes.post("/api/v1/users/{email}/disable")
async def api_disable_user(request: web.Request) -> web.Response:
    user = await _set_disabled(request, request.match_info["email"], True)
    return web.json_response({"user": user.public()})


@routes.post("/api/v1/users/{email}/enable")
async def api_enable_user(request: web.Request) -> web.Response:
    user = await _set_disabled(request, request.match_info["email"], False)
    return web.json_response({"user": user.public()})


@routes.get("/api/v1/tokens")
async def api_list_tokens(request: web.Request) -> web.Response:
    require_admin(request)
    tokens = await request.app[DB].read(credentials.list_api_tokens)
    return web.json_response({"tokens": tokens})


@routes.post("/api/v1/tokens")
async def api_create_token(request: web.Request) -> web.Response:
    admin = require_admin(request)
    body = await json_body(request, {"name": str}, {"user": str})
    actor = admin.actor(client_address(request))
    owner = body.get("user", admin.email)
    token_id, token = await request.app[DB].write(
        lambda d: credentials.create_api_token(d, actor, body["name"], owner)
    )
    return web.json_response({"id": token_id, "token": token, "name": body["name"]}, status=201)


@routes.delete("/api/v1/tokens/{token_id}")
async def api_revoke_token(request: web.Request) -> web.Response:
    admin = require_admin(request)
    actor = admin.actor(client_address(request))
    token_id = path_number(request, "token_id", "API token")
    await request.app[DB].write(lambda d: credentials.revoke_api_token(d, actor, token_id))
    return web.json_response({"revoked": token_id})


@routes.get("/api/v1/audit")
async def api_audit(request: web.Request) -> web.Response:
    require_admin(request)
    rows = await request.app[DB].read(audit.recent)
    return web.json_response({"entries": rows})


# ---- pages -------------------------------------------------------------------------------


async def _users_page(request: web.Request, **extra: Any) -> web.Response:
    require_admin(request)
    users = await request.app[DB].read(people.list_users)
    context = {"users": users, **extra}
    return render(request, "users.html", context)


@routes.get("/admin/users")
async def users_page(request: web.Request) -> web.Response:
    return await _users_page(request)


@routes.post("/admin/users")
async def users_add_submit(request: web.Request) -> web.Response:
    require_admin(request)
    form = await request.post()
    user, generated = await _add_user(
        request,
        str(form.get("email", "")),
        str(form.get("role", "")),
        str(form.get("password", "")) or None,
        str(form.get("display_name", "")),
    )
    return await _users_page(request, added=user, generated=generated)


@routes.post("/admin/users/{email}/disable")
async def users_disable_submit(request: web.Request) -> web.Response:
    await _set_disabled(request, request.match_info["email"], True)
    raise web.HTTPSeeOther("/admin/users")


@routes.post("/admin/users/{email}/enable")
async def users_enable_submit(request: web.Request) -> web.Response:
    await _set_disabled(request, request.match_info["email"], False)
    raise web.HTTPSeeOther("/admin/users")


async def _tokens_page(request: web.Request, **extra: Any) -> web.Response:
    require_admin(request)
    tokens = await request.app[DB].read(credentials.list_api_tokens)
    context = {"tokens": tokens, **extra}
    return render(request, "tokens.html", context)


@routes.get("/admin/tokens")
async def tokens_page(request: web.Request) -> web.Response:
    return await _tokens_page(request)


@routes.post("/admin/tokens")
async def tokens_create_submit(request: web.Request) -> web.Response:
    admin = require_admin(request)
    form = await request.post()
    actor = admin.actor(client_address(request))
    name = str(form.get("name", ""))
    owner = str(form.get("user", "")) or admin.email
    _, token = await request.app[DB].write(
        lambda d: credentials.create_api_token(d, actor, name, owner)
    )
    return await _tokens_page(request, new_token=token)


@routes.post("/admin/tokens/{token_id}/revoke")
async def tokens_revoke_submit(request: web.Request) -> web.Response:
    admin = require_admin(request)
    actor = admin.actor(client_address(request))
    token_id = path_number(request, "token_id", "API token")
    await request.app[DB].write(lambda d: credentials.revoke_api_token(d, actor, token_id))
    raise web.HTTPSeeOther("/admin/tokens")
