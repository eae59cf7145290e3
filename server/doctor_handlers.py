"""Admin: the deployment report of ``pairlab doctor``, as a page and as JSON (thin handlers
over ``server.doctor``). The full report starts a throwaway workspace: a few seconds."""

from __future__ import annotations

import asyncio

import aiohttp_jinja2
from aiohttp import web

from server.auth import csrf_token, require_admin
from server.doctor import fast_report, full_report
from server.keys import SETTINGS

routes = web.RouteTableDef()


@routes.get("/api/v1/doctor")
async def api_doctor(request: web.Request) -> web.Response:
    require_admin(request)
    settings = request.app[SETTINGS]
    if request.query.get("fast") in ("1", "true"):
        report = await asyncio.to_thread(fast_report, settings)
    else:
        report = await full_report(settings)
    return web.json_response(report.public())


@routes.get("/admin/doctor")
async def doctor_page(request: web.Request) -> web.Response:
    admin = require_admin(request)
    report = await full_report(request.app[SETTINGS])
    context = {"user": admin, "report": report, "csrf_token": csrf_token(request)}
    return aiohttp_jinja2.render_template("doctor.html", request, context)
