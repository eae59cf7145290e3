"""Typed application keys for state shared across the server's handlers."""

from __future__ import annotations

from aiohttp import web

from common.db import Database
from server.http.ratelimit import LoginLimiter
from server.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
DB = web.AppKey("db", Database)
LOGIN_LIMITER = web.AppKey("login_limiter", LoginLimiter)
