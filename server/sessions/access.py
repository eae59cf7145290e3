"""Who may see a session on the app origin: its assigned interviewers and admins.

Every interviewer-facing page and API gets the session from here, so blind mode (the
candidate's pseudonym instead of their name and email) applies to all of them at once."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from common.errors import Forbidden
from scoring import session_scoring
from server.http.auth import current_user
from server.http.keys import DB
from server.people.accounts import User
from server.sessions.scheduling import can_see
from workspaces import sessions as S


async def visible_session(request: web.Request) -> tuple[User, S.Session]:
    """The caller and the session named in the URL, or 401/403/404."""
    user = current_user(request)
    session_id = request.match_info["session_id"]
    session, scoring = await request.app[DB].read(lambda d: _load(d, session_id))
    if not can_see(user, session):
        raise Forbidden("You are not an interviewer of this session.")
    return user, session_scoring.masked(session, scoring)


def _load(d: Any, session_id: str) -> tuple[S.Session, session_scoring.Scoring | None]:
    return S.get_session(d, session_id), session_scoring.get(d, session_id)
