"""CSV download of submitted scores across sessions (a thin handler over
``scoring.score_export``)."""

from __future__ import annotations

from aiohttp import web

from scoring import score_export
from scoring.scorecards import sealed_sessions
from server.http.auth import require_admin
from server.http.keys import DB

routes = web.RouteTableDef()


@routes.get("/api/v1/scores.csv")
async def api_scores_csv(request: web.Request) -> web.Response:
    user = require_admin(request)
    filters = score_export.parse_filters(request.query)  # FilterInvalid: the middleware's 422
    # An admin on a panel who has not submitted does not see that panel's scores here either.
    text = await request.app[DB].read(lambda d: score_export.export_csv(
        d, filters, sealed_sessions(d, user.id)))
    return web.Response(
        text=text,
        content_type="text/csv",
        charset="utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="pairlab-scores.csv"',
            "Cache-Control": "no-store",
        },
    )
