"""Interviewer pages over the recording API: live observation and replay (thin handlers).

The pages are static HTML with their data in one ``<script type="application/json">`` block (the
app's Content-Security-Policy allows no inline script); ``static/observe.js`` and
``static/replay.js`` read the events, snapshots and files through the JSON/SSE API.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from server.http.keys import SETTINGS
from server.http.pages import render
from server.http.times import time_left
from server.sessions.access import visible_session
from server.sessions.names import actor_names
from server.tasks.service import task_store
from tasks.errors import RevisionNotFound
from tasks.manifest import hints_from_guide
from workspaces import sessions as S

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


async def _hints(request: web.Request, session: S.Session) -> list[str]:
    store = task_store(request.app[SETTINGS])
    try:
        guide = await asyncio.to_thread(store.text, session.task_id, session.revision_id,
                                        "guide.md")
    except (RevisionNotFound, OSError, UnicodeDecodeError):  # free-text hints still work
        log.warning("no readable guide for %s revision %s", session.task_id,
                    session.revision_id)
        return []
    return hints_from_guide(guide)


def _config(session: S.Session, page: str, names: dict[str, str]) -> dict[str, Any]:
    """What the page's script needs, as JSON in the page (``|tojson`` escapes it)."""
    return {
        "page": page,
        "session_id": session.id,
        "state": session.state,
        "seconds_left": session.seconds_left(),
        "api": f"/api/v1/sessions/{session.id}",
        "names": names,
    }


@routes.get("/sessions/{session_id}/observe")
async def observe_page(request: web.Request) -> web.Response:
    user, session = await visible_session(request)
    names = await actor_names(request, user, session)
    hints = await _hints(request, session)
    return render(request, "observe.html", {
        "session": session, "hints": hints,
        # the script's words replace it at once (to the second, or whole days far ahead)
        "countdown": f"{time_left(session.seconds_left())} left",
        "config": _config(session, "observe", names),
    })


@routes.get("/sessions/{session_id}/replay")
async def replay_page(request: web.Request) -> web.Response:
    user, session = await visible_session(request)
    names = await actor_names(request, user, session)
    return render(request, "replay.html", {
        "session": session,
        "config": _config(session, "replay", names),
    })
