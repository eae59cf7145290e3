"""Hiring outcomes: admin form, JSON API and CSV import."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
