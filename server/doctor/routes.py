"""Admin: the deployment report of ``pairlab doctor``, as a page and as JSON (thin handlers
over ``server.doctor.checks``; one full run at a time: ``server.doctor.full_runs``).

Reading is cheap and safe: ``GET`` gives the fast report (no workspace is started). The full
report starts a throwaway workspace (a few seconds, maybe an environment build), so it is a
``POST`` (CSRF-checked, so a link on another site cannot set one off), and one runs at a time:
a second request waits for the running one and gets its report.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from server.doctor.checks import Report, fast_report
from server.doctor.full_runs import FULL_RUNS
from server.http.auth import require_admin
from server.http.keys import SETTINGS
from server.http.pages import render

routes = web.RouteTableDef()


@routes.get("/api/v1/doctor")
async def api_doctor(request: web.Request) -> web.Response:
    require_admin(request)
    report = await asyncio.to_thread(fast_report, request.app[SETTINGS])
    return web.json_response(report.public())


@routes.post("/api/v1/doctor")
async def api_doctor_full(request: web.Request) -> web.Response:
    require_admin(request)
    return web.json_response((await request.app[FULL_RUNS].report(request.app[SETTINGS])).public())


async def _page(request: web.Request, report: Report, full: bool) -> web.Response:
    require_admin(request)
    context = {"report": report, "full": full}
    return render(request, "doctor.html", context)


@routes.get("/admin/doctor")
async def doctor_page(request: web.Request) -> web.Response:
    require_admin(request)
    report = await asyncio.to_thread(fast_report, request.app[SETTINGS])
    return await _page(request, report, full=False)


@routes.post("/admin/doctor")
async def doctor_run(request: web.Request) -> web.Response:
    require_admin(request)
    return await _page(request, await request.app[FULL_RUNS].report(request.app[SETTINGS]),
                       full=True)
