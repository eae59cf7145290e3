"""Calibration and validity reports: admin pages and JSON (thin handlers over scoring.analytics).

The figures are computed on a reader thread; the pages inline SVG charts built by
``scoring.charts`` from our own strings (every text escaped there), never from request input.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from aiohttp import web
from markupsafe import Markup

from scoring import analytics, charts, rubrics
from scoring.scorecards import sealed_sessions
from server.http.auth import require_admin
from server.http.keys import DB, SETTINGS
from server.http.pages import render

routes = web.RouteTableDef()

OUTCOME_RANGES = {"performance": (1.0, 5.0), "hired": (0.0, 1.0), "employed_6m": (0.0, 1.0)}
RELIABLE_ALPHA = 0.8


async def _calibration(request: web.Request) -> analytics.Calibration:
    user = require_admin(request)
    minimum = request.app[SETTINGS].min_agreement_sessions
    # sessions whose scorecards are still sealed for this admin (on the panel, not submitted)
    return await request.app[DB].read(lambda d: analytics.calibration(
        d, min_sessions=minimum, hide=sealed_sessions(d, user.id)))


async def _validity(request: web.Request) -> analytics.Validity:
    user = require_admin(request)
    minimum = request.app[SETTINGS].min_validity_sample
    return await request.app[DB].read(lambda d: analytics.validity(
        d, min_n=minimum, hide=sealed_sessions(d, user.id)))


@routes.get("/api/v1/reports/calibration")
async def api_calibration(request: web.Request) -> web.Response:
    require_admin(request)
    return web.json_response(dataclasses.asdict(await _calibration(request)))


@routes.get("/api/v1/reports/validity")
async def api_validity(request: web.Request) -> web.Response:
    require_admin(request)
    return web.json_response(dataclasses.asdict(await _validity(request)))


def _alpha_chart(report: analytics.Calibration) -> Markup:
    items = [
        charts.Bar(d.dimension, d.agreement.alpha, d.agreement.ci_low, d.agreement.ci_high,
                   note=f"n = {d.agreement.sessions}")
        for d in report.by_dimension
    ]
    lows = [v for i in items for v in (i.value, i.low) if v is not None]
    y_range = (-1.0, 1.0) if lows and min(lows) < 0 else (0.0, 1.0)
    return Markup(charts.bars(  # noqa: S704 - our own SVG, every text escaped by charts
        items, title="Agreement per dimension (Krippendorff's ordinal alpha, 95% CI)",
        y_label="alpha", y_range=y_range, reference=RELIABLE_ALPHA,
        reference_label=f"{RELIABLE_ALPHA}: reliable",
    ))


async def _titles(request: web.Request) -> dict[str, str]:
    """Dimension titles by id, from the latest version of every rubric (tables show titles;
    the charts keep the short ids)."""
    found = await request.app[DB].read(rubrics.list_rubrics)
    return {d.id: d.title for r in found for d in r.dimensions}


@routes.get("/calibration")
async def calibration_page(request: web.Request) -> web.Response:
    require_admin(request)
    report = await _calibration(request)
    return render(request, "calibration.html", {
        "report": report,
        "chart": _alpha_chart(report) if report.by_dimension else None,
        "titles": await _titles(request),
    })


def _scatter(item: analytics.ScoreOutcome) -> Markup:
    what = "overall weighted score" if item.score == analytics.OVERALL else item.score
    return Markup(charts.scatter(  # noqa: S704 - our own SVG, every text escaped by charts
        item.points, title=f"{item.outcome} vs {what}", x_label=f"panel mean {what}",
        y_label=item.outcome, x_range=(1.0, 4.0), y_range=OUTCOME_RANGES[item.outcome],
    ))


def _retention_chart(report: analytics.Validity) -> Markup:
    r = report.retention
    baseline = "" if r.baseline is None else f"baseline {r.baseline:.0%}"
    return Markup(charts.bars(  # noqa: S704 - our own SVG, every text escaped by charts
        [charts.Bar("hired", r.rate, r.ci_low, r.ci_high, note=f"n = {r.n}")],
        title="Still employed at 6 months (Wilson 95% CI)", y_label="share",
        reference=r.baseline, reference_label=baseline,
    ))


@routes.get("/reports/validity")
async def validity_page(request: web.Request) -> web.Response:
    require_admin(request)
    report = await _validity(request)
    rows: list[dict[str, Any]] = [
        {"item": item, "chart": _scatter(item) if item.correlation.enough else None}
        for item in report.correlations
    ]
    return render(request, "validity.html", {
        "report": report, "rows": rows,
        "retention_chart": _retention_chart(report), "titles": await _titles(request),
    })
