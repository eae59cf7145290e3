"""The application factory: reading this shows the architecture in one screen.

Two origins: the app (interviewers, admins, API) and the workspace origin (candidate content,
added by the workspaces area). Long-lived resources are ``cleanup_ctx`` generators.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from server import admin_handlers, health, login_handlers, pages, task_handlers
from server.auth import auth_middleware
from server.db import Database
from server.errors import error_middleware
from server.keys import DB, LOGIN_LIMITER, SETTINGS
from server.ratelimit import LoginLimiter
from server.security_headers import security_headers
from server.settings import Settings
from server.task_service import tasks_ctx

log = logging.getLogger(__name__)
HERE = Path(__file__).parent


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    db = Database(app[SETTINGS].db_path)
    applied = await db.migrate()
    if applied:
        log.info("applied %d migrations", len(applied))
    app[DB] = db
    yield
    await db.close()


def create_app(settings: Settings) -> web.Application:
    """The interviewer/admin app: pages, JSON API, health probes."""
    app = web.Application(
        middlewares=[security_headers, error_middleware, auth_middleware],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[LOGIN_LIMITER] = LoginLimiter(settings.login_max_failures, settings.login_window_seconds)
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(default=True),
    )
    app.cleanup_ctx.append(database_ctx)
    app.cleanup_ctx.append(tasks_ctx)
    app.add_routes(health.routes)
    app.add_routes(login_handlers.routes)
    app.add_routes(admin_handlers.routes)
    app.add_routes(task_handlers.routes)
    app.add_routes(pages.routes)
    app.router.add_static("/static", HERE / "static", append_version=False)
    return app


def create_workspace_app(settings: Settings) -> web.Application:
    """The candidate-content origin. The workspace proxy mounts here (sessions issue)."""
    app = web.Application(middlewares=[security_headers], client_max_size=settings.max_body_bytes)
    app[SETTINGS] = settings
    app.add_routes([web.get("/healthz", health.healthz)])
    return app
