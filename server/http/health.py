"""Liveness and readiness probes (no auth)."""

from __future__ import annotations

from aiohttp import web

from server.db import pending_migrations
from server.http.keys import DB

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    try:
        pending = await request.app[DB].read(pending_migrations)
    except Exception as exc:  # any database failure means "not ready"
        return web.json_response(
            {"status": "unavailable", "reason": f"database unreachable: {type(exc).__name__}"},
            status=503,
        )
    if pending:
        return web.json_response(
            {"status": "unavailable", "reason": f"{len(pending)} migrations pending"}, status=503
        )
    return web.json_response({"status": "ready"})
