"""The application factory: reading this shows the architecture in one screen.

Two origins: the app (interviewers, admins, API) and the workspace origin (candidate content,
added by the workspaces area). Long-lived resources are ``cleanup_ctx`` generators.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from common.db import Database
from server.db import migrate_database
from server.doctor import routes as doctor
from server.doctor.full_runs import full_runs_ctx
from server.http import health, pages
from server.http.auth import auth_middleware
from server.http.errors import error_middleware
from server.http.keys import DB, LOGIN_LIMITER, SETTINGS
from server.http.ratelimit import LoginLimiter
from server.http.security_headers import security_headers_for
from server.people import admin, login
from server.recording import casts as recording_casts
from server.recording import playback as recording_playback
from server.recording import routes as recording
from server.scoring import analytics, outcomes, rubrics, webhooks
from server.scoring import export as score_export
from server.scoring import pages as scoring_pages
from server.scoring import routes as scorecards
from server.scoring.wiring import rubrics_ctx, webhooks_ctx
from server.sessions import observe
from server.sessions import routes as sessions
from server.sessions.wiring import PROVISIONER, WORKSPACE_APP, sessions_ctx
from server.settings import Settings
from server.tasks import routes as tasks
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


CleanupCtx = Callable[[web.Application], AsyncIterator[None]]
Hook = Callable[[web.Application], Awaitable[None]]


@dataclass(frozen=True)
class Area:
    """One area of the app: its route tables, its long-lived resources (``cleanup_ctx``
    generators, started in list order and closed in reverse), and what must happen first at
    shutdown."""

    name: str
    routes: tuple[web.RouteTableDef, ...] = ()
    contexts: tuple[CleanupCtx, ...] = ()
    on_shutdown: tuple[Hook, ...] = ()


AREAS: tuple[Area, ...] = (
    Area("http", routes=(health.routes,), contexts=(database_ctx,)),
    Area("people", routes=(login.routes, admin.routes)),
    Area("tasks", routes=(tasks.routes,), contexts=(tasks_ctx,)),
    # before sessions: the built-in rubrics exist before recovery can end a session
    Area("scoring", routes=(scorecards.routes, scoring_pages.routes, rubrics.routes,
                            outcomes.routes, score_export.routes, webhooks.routes,
                            analytics.routes),
         contexts=(rubrics_ctx, webhooks_ctx)),
    # the recorder, then the session manager given its hook (server/sessions/wiring.py)
    Area("sessions", routes=(sessions.routes, observe.routes), contexts=(sessions_ctx,)),
    Area("recording", routes=(recording.routes, recording_casts.routes, recording_playback.routes),
         on_shutdown=(recording.end_streams,)),
    Area("doctor", routes=(doctor.routes,), contexts=(full_runs_ctx,)),
    Area("home", routes=(pages.routes,)),
)
"""The app origin's areas, in order. The workspace origins (``server/workspace/``) are their
own app, attached under ``WORKSPACE_APP``."""


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
    pages.setup_templates(app)
    for area in AREAS:
        app.cleanup_ctx.extend(area.contexts)
        app.on_shutdown.extend(area.on_shutdown)
        for table in area.routes:
            app.add_routes(table)
    app.router.add_static("/static", HERE / "static", append_version=False)
    app[WORKSPACE_APP] = create_workspace_app(settings, app)
    return app
