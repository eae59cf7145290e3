"""Who may see a session on the app origin: its assigned interviewers and admins."""

from __future__ import annotations

from aiohttp import web

from server.auth import current_user
from server.errors import Forbidden
from server.keys import DB
from server.people import User
from server.scheduling import can_see
from workspaces import sessions as S


async def visible_session(request: web.Request) -> tuple[User, S.Session]:
    """The caller and the session named in the URL, or 401/403/404."""
    user = current_user(request)
    session_id = request.match_info["session_id"]
    session = await request.app[DB].read(lambda d: S.get_session(d, session_id))
    if not can_see(user, session):
        raise Forbidden("You are not an interviewer of this session.")
    return user, session
