"""The home page."""

from __future__ import annotations

import aiohttp_jinja2
from aiohttp import web

from server.http.auth import csrf_token, current_user

routes = web.RouteTableDef()


@routes.get("/")
async def home(request: web.Request) -> web.Response:
    user = current_user(request)
    return aiohttp_jinja2.render_template(
        "home.html", request, {"user": user, "csrf_token": csrf_token(request)}
    )
