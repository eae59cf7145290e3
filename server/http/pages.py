"""How a page is rendered (the one helper that adds the user and the CSRF token), and the home page.

Every page handler calls :func:`render`: it adds ``user`` (:func:`current_user`: the logged-in
user, or the 401 / the redirect to the login page a handler's own check gives) and
``csrf_token`` (bound to the login session) to the template's context; a handler never passes
them itself, and the helper's values win over the context's.

Pages that deliberately render WITHOUT a user call :func:`render_anonymous`, which sets
``user`` to ``None`` and takes the CSRF token the page's form must carry:

- the login page (``server/people/login.py``): the pre-login double-submit token, since there
  is no login session yet;
- the candidate landing page on the workspace origin (``server/workspace/app.py``): the token of
  the candidate's capability session, since candidates never log in.

The error page is not a handler: ``server.http.errors.render_error`` renders ``error.html``
itself with neither, so it renders for anyone, even when resolving the caller was what failed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp_jinja2
import jinja2
from aiohttp import web

from common.clock import now
from server.http import times
from server.http.auth import csrf_token, current_user
from server.http.keys import DB
from server.http.times import human_utc, time_tag
from server.sessions.home import interviewer_day

routes = web.RouteTableDef()
TEMPLATES = Path(__file__).parent.parent / "templates"


def seconds(value: str | None) -> str:
    """A stored timestamp (``common.clock``: microseconds) as a page shows it: to the second."""
    if not value:
        return ""
    try:
        return datetime.fromisoformat(value).isoformat(timespec="seconds")
    except ValueError:
        return value


def setup_templates(app: web.Application) -> None:
    """The one template environment of both origins: ``server/templates``, autoescaped."""
    env = aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(TEMPLATES),
                               autoescape=jinja2.select_autoescape(default=True))
    env.filters["seconds"] = seconds
    env.filters["when"] = time_tag
    env.filters["utc"] = human_utc


def render(request: web.Request, template: str, context: Mapping[str, Any], *,
           status: int = 200) -> web.Response:
    """``template`` with ``context``, the caller as ``user`` and their ``csrf_token``."""
    return aiohttp_jinja2.render_template(template, request, {
        **context, "user": current_user(request), "csrf_token": csrf_token(request),
    }, status=status)


def render_anonymous(request: web.Request, template: str, context: Mapping[str, Any], *,
                     csrf: str, status: int = 200) -> web.Response:
    """``template`` for someone not logged in: ``user`` is ``None``, ``csrf_token`` is ``csrf``."""
    return aiohttp_jinja2.render_template(template, request, {
        **context, "user": None, "csrf_token": csrf,
    }, status=status)


@routes.get("/")
async def home(request: web.Request) -> web.Response:
    """The caller's day (``server.sessions.home``): their interviews, owed scorecards and
    open debriefs."""
    user = current_user(request)
    zone_name, zone = times.viewer_zone(request.cookies.get(times.ZONE_COOKIE))
    moment = now().astimezone(zone)  # "Today" is the viewer's day
    day = await request.app[DB].read(lambda d: interviewer_day(d, user.id, moment))
    return render(request, "home.html", {"day": day, "day_zone": zone_name})
