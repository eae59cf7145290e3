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

from common.db import Database
from server.db import migrate_database
from server.doctor import routes as doctor_handlers
from server.http import health, pages
from server.http.auth import auth_middleware
from server.http.errors import error_middleware
from server.http.keys import DB, LOGIN_LIMITER, SETTINGS
from server.http.ratelimit import LoginLimiter
from server.http.security_headers import security_headers_for
from server.people import admin as admin_handlers
from server.people import login as login_handlers
from server.recording import routes as recording_handlers
from server.recording.service import recording_ctx
from server.scoring import analytics as analytics_handlers
from server.scoring import export as export_handlers
from server.scoring import outcomes as outcome_handlers
from server.scoring import pages as scoring_pages
from server.scoring import routes as scoring_handlers
from server.scoring import rubrics as rubric_handlers
from server.scoring import webhooks as webhook_handlers
from server.scoring.wiring import webhooks_ctx
from server.sessions import observe as observe_handlers
from server.sessions import routes as session_handlers
from server.sessions.wiring import PROVISIONER, WORKSPACE_APP, sessions_ctx
from server.settings import Settings
from server.tasks import routes as task_handlers
from server.tasks.service import tasks_ctx
from server.workspace.app import create_workspace_app
from workspaces.provisioner import Provisioner

log = logging.getLogger(__name__)
HERE = Path(__file__).parent


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    db = Database(app[SETTINGS].db_path)
    applied = await migrate_database(db)
    if applied:
        log.info("applied %d migrations", len(applied))
    app[DB] = db
    yield
    await db.close()


def create_app(settings: Settings, provisioner: Provisioner | None = None) -> web.Application:
    """The interviewer/admin app (pages, JSON API, health probes) with the workspace origin's
    app attached under ``WORKSPACE_APP``. ``provisioner`` replaces the local sandboxed one
    (tests pass a fake)."""
    app = web.Application(
        middlewares=[security_headers_for(settings.workspace_form_targets), error_middleware,
                     auth_middleware],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    if provisioner is not None:
        app[PROVISIONER] = provisioner
    app[LOGIN_LIMITER] = LoginLimiter(settings.login_max_failures, settings.login_window_seconds)
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(default=True),
    )
    app.cleanup_ctx.append(database_ctx)
    app.cleanup_ctx.append(tasks_ctx)
    app.cleanup_ctx.append(rubric_handlers.rubrics_ctx)
    app.cleanup_ctx.append(sessions_ctx)
    app.cleanup_ctx.append(recording_ctx)  # after sessions_ctx: it hooks into the manager
    app.cleanup_ctx.append(webhooks_ctx)
    app.on_shutdown.append(recording_handlers.end_streams)
    app.add_routes(health.routes)
    app.add_routes(login_handlers.routes)
    app.add_routes(admin_handlers.routes)
    app.add_routes(task_handlers.routes)
    app.add_routes(session_handlers.routes)
    app.add_routes(recording_handlers.routes)
    app.add_routes(observe_handlers.routes)
    app.add_routes(scoring_handlers.routes)
    app.add_routes(scoring_pages.routes)
    app.add_routes(rubric_handlers.routes)
    app.add_routes(outcome_handlers.routes)
    app.add_routes(export_handlers.routes)
    app.add_routes(webhook_handlers.routes)
    app.add_routes(analytics_handlers.routes)
    doctor_handlers.setup(app)
    app.add_routes(pages.routes)
    app.router.add_static("/static", HERE / "static", append_version=False)
    app[WORKSPACE_APP] = create_workspace_app(settings, app)
    return app
