"""Rubrics and scorecards: JSON API and interviewer pages (thin handlers)."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
