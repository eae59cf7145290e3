"""Webhook subscriptions and their delivery log: admin JSON API and page."""

from __future__ import annotations

from aiohttp import web

routes = web.RouteTableDef()
