"""The names the interviewer pages show for a session's event actors (observe, replay,
debrief): each interviewer's display name, the candidate's name, and the viewer's own."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from common.errors import NotFound
from server.http.keys import DB
from server.people.accounts import User, get_user
from workspaces import sessions as S
from workspaces.recording.events import ACTOR_CANDIDATE, interviewer_actor


async def actor_names(request: web.Request, user: User, session: S.Session) -> dict[str, str]:
    """Display names of the people in the session's events, keyed by their event actor."""

    def load(d: Any) -> dict[str, str]:
        names: dict[str, str] = {}
        for user_id in session.interviewer_ids:
            try:
                names[interviewer_actor(user_id)] = get_user(d, user_id).display_name
            except NotFound:  # a removed user keeps their id as label
                continue
        return names

    names: dict[str, str] = await request.app[DB].read(load)
    names[interviewer_actor(user.id)] = user.display_name  # e.g. an admin who is not listed
    names[ACTOR_CANDIDATE] = session.candidate_name
    return names
