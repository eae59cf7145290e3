"""Interview sessions on the app origin: JSON API and interviewer pages (thin handlers)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from common.errors import NotFound, TooManyRequests, Unprocessable
from scoring import session_scoring
from server.http.auth import client_address, current_user
from server.http.bodies import json_body, whole_number
from server.http.keys import DB, SETTINGS
from server.http.pages import render
from server.mail.smtp import MailError, send
from server.people.accounts import User, get_user
from server.sessions import link_email
from server.sessions.access import visible_session
from server.sessions.keys import SESSIONS
from server.sessions.scheduling import (
    ScheduleRequest,
    candidate_link,
    countdown,
    may_hold_link,
    reissue_link,
    schedule,
)
from tasks import revisions
from tasks.manifest import kind_fits_role
from workspaces import sessions as S

routes = web.RouteTableDef()
UPCOMING = ("scheduled", "provisioning", "live")
"""States listed as upcoming on the Sessions page; the others (ended, failed) are past."""


async def _session_json(request: web.Request, session: S.Session) -> dict[str, Any]:
    scoring = await request.app[DB].read(lambda d: session_scoring.get(d, session.id))
    data = session_scoring.masked(session, scoring).public()
    data["scoring"] = scoring.public() if scoring else None
    place = request.app[SESSIONS].gate.place_of(session)
    data["queue"] = None if place is None else place.to_dict()  # its start waits its turn
    if session.state == "live" and session.workspace_id:
        origin = request.app[SETTINGS].workspace_origin(session.workspace_id)
        data["workspace_url"] = f"{origin}/w/{session.workspace_id}/lab"
    return data


async def _schedule(request: web.Request, user: User, req: ScheduleRequest) -> Any:
    settings = request.app[SETTINGS]
    actor = user.actor(client_address(request))
    result = await request.app[DB].write(lambda d: schedule(d, settings, actor, user.id, req))
    request.app[SESSIONS].refill_for(result.session.revision_id)
    return result


@routes.post("/api/v1/sessions")
async def api_create(request: web.Request) -> web.Response:
    user = current_user(request)
    body = await json_body(
        request, {"task": str, "candidate_name": str},
        {"candidate_email": str, "interviewers": list, "duration_minutes": int,
         "starts_at": str, "role": str, "confirm_role_mismatch": bool, "blind": bool},
    )
    interviewers = body.get("interviewers", [])
    if not all(isinstance(e, str) for e in interviewers):
        raise Unprocessable("interviewers must be a list of email addresses")
    result = await _schedule(request, user, ScheduleRequest(
        task=body["task"], candidate_name=body["candidate_name"],
        candidate_email=body.get("candidate_email", ""), interviewers=tuple(interviewers),
        duration_minutes=body.get("duration_minutes"), starts_at=body.get("starts_at"),
        role=body.get("role", ""), confirm_role_mismatch=body.get("confirm_role_mismatch", False),
        blind=body.get("blind"),
    ))
    return web.json_response(result.public(), status=201)


@routes.get("/api/v1/sessions")
async def api_list(request: web.Request) -> web.Response:
    user = current_user(request)
    found = await request.app[DB].read(
        lambda d: session_scoring.masked_all(d, S.list_sessions(d, None if user.is_admin
                                                                else user.id))
    )
    return web.json_response({"sessions": [s.public() for s in found]})


@routes.get("/api/v1/sessions/{session_id}")
async def api_get(request: web.Request) -> web.Response:
    user, session = await visible_session(request)
    settings = request.app[SETTINGS]
    holder = may_hold_link(user, session)
    conns, link = await request.app[DB].read(
        lambda d: (S.connections(d, session.id),
                   candidate_link(d, settings, session.id) if holder else None))
    data = await _session_json(request, session)
    return web.json_response({"session": data, "connections": conns, "candidate_link": link,
                              "may_hold_link": holder})


@routes.post("/api/v1/sessions/{session_id}/link")
async def api_reissue_link(request: web.Request) -> web.Response:
    user, session = await visible_session(request)
    return web.json_response({"candidate_link": await _reissue(request, user, session.id)})


@routes.post("/api/v1/sessions/{session_id}/link/email")
async def api_email_link(request: web.Request) -> web.Response:
    user, session = await visible_session(request)
    body = await json_body(request, {}, {"to": str})
    recipient, sent_at = await _email_link(request, user, session.id, body.get("to", ""))
    return web.json_response({"sent_to": recipient, "sent_at": sent_at})


@routes.post("/api/v1/sessions/{session_id}/start")
async def api_start(request: web.Request) -> web.Response:
    user, session = await visible_session(request)
    session = await request.app[SESSIONS].start_session(
        session.id, user.actor(client_address(request))
    )
    return web.json_response({"session": await _session_json(request, session)})


@routes.post("/api/v1/sessions/{session_id}/end")
async def api_end(request: web.Request) -> web.Response:
    user, session = await visible_session(request)
    session = await request.app[SESSIONS].end_session(
        session.id, user.actor(client_address(request)), "ended by an interviewer"
    )
    return web.json_response({"session": await _session_json(request, session)})


@routes.post("/api/v1/sessions/{session_id}/extend")
async def api_extend(request: web.Request) -> web.Response:
    user, session = await visible_session(request)
    body = await json_body(request, {"minutes": int})
    session = await request.app[SESSIONS].extend(
        session.id, body["minutes"], user.actor(client_address(request))
    )
    return web.json_response({"session": await _session_json(request, session)})


@routes.post("/api/v1/sessions/{session_id}/handoff")
async def api_handoff(request: web.Request) -> web.Response:
    user, session = await visible_session(request)
    url = await request.app[SESSIONS].handoff_url(session.id,
                                                  user.actor(client_address(request)))
    return web.json_response({"url": url})


# ---- pages ----------------------------------------------------------------------------------


@routes.get("/sessions")
async def sessions_page(request: web.Request) -> web.Response:
    user = current_user(request)

    def load(d: Any) -> tuple[Any, Any]:
        tasks = [t for t in revisions.list_tasks(d) if t["current_revision"]]
        found = S.list_sessions(d, None if user.is_admin else user.id)
        return session_scoring.masked_all(d, found), tasks

    found, tasks = await request.app[DB].read(load)
    upcoming = sorted((s for s in found if s.state in UPCOMING), key=lambda s: s.starts_at)
    past = [s for s in found if s.state not in UPCOMING]  # newest first, as listed
    return render(request, "sessions.html", {
        "upcoming": upcoming, "past": past, "tasks": tasks,
        "roles": S.ROLES, "blind_default": request.app[SETTINGS].blind_scoring,
    })


@routes.post("/sessions")
async def sessions_create_submit(request: web.Request) -> web.Response:
    user = current_user(request)
    form = await request.post()
    minutes = str(form.get("duration_minutes", "")).strip()
    duration = whole_number(minutes, 6) if minutes else None
    if minutes and duration is None:
        raise Unprocessable("the duration must be a whole number of minutes")
    interviewers = tuple(
        e.strip() for e in str(form.get("interviewers", "")).split(",") if e.strip()
    )
    result = await _schedule(request, user, ScheduleRequest(
        task=str(form.get("task", "")), candidate_name=str(form.get("candidate_name", "")),
        candidate_email=str(form.get("candidate_email", "")), interviewers=interviewers,
        duration_minutes=duration,
        # The hidden UTC field the picker's script fills, else the picker itself (no script).
        starts_at=(str(form.get("starts_at", "")).strip()
                   or str(form.get("starts_local", "")).strip() or None),
        role=str(form.get("role", "")), confirm_role_mismatch=form.get("confirm") == "yes",
        blind=form.get("blind") == "yes",
    ))
    # Post/redirect/get: reloading the session's page never schedules it again.
    raise web.HTTPSeeOther(f"/sessions/{result.session.id}?scheduled=1")


@routes.get("/sessions/{session_id}")
async def session_page(request: web.Request) -> web.Response:
    user, session = await visible_session(request)
    return await _session_page(request, user, session)


async def _session_page(request: web.Request, user: User, session: S.Session, *,
                        status: int = 200, mail_error: str = "",
                        mail_to: str | None = None) -> web.Response:
    settings = request.app[SETTINGS]
    holder = may_hold_link(user, session)

    def load(d: Any) -> dict[str, Any]:
        kind = revisions.get_revision(d, session.revision_id).kind
        scoring = session_scoring.get(d, session.id)
        return {
            "blind": scoring is not None and scoring.hidden,
            "connections": S.connections(d, session.id),
            "candidate_link": candidate_link(d, settings, session.id) if holder else None,
            "role_warning": (kind_fits_role(kind, session.role) or "") if session.role else "",
            "link_holder": _scheduler_name(d, session.created_by),
            "last_email": link_email.last_sent(d, session.id) if holder else None,
        }

    facts = await request.app[DB].read(load)
    return render(request, "session.html", {
        **facts,
        "session": session,
        "countdown": countdown(session),
        "workspace_url": (await _session_json(request, session)).get("workspace_url"),
        "may_hold_link": holder,
        "just_scheduled": request.query.get("scheduled") == "1",
        "link_reissued": request.query.get("link") == "new",
        "link_mailed": request.query.get("mailed") == "1",
        "smtp_configured": settings.smtp_configured,
        "how_to_enable_email": link_email.how_to_enable(),
        "mail_error": mail_error,
        "mail_to": session.candidate_email if mail_to is None else mail_to,
    }, status=status)


def _scheduler_name(d: Any, user_id: int) -> str:
    try:
        return get_user(d, user_id).display_name
    except NotFound:  # a removed account
        return "whoever scheduled it"


@routes.post("/sessions/{session_id}/link/email")
async def session_link_email_submit(request: web.Request) -> web.Response:
    user, session = await visible_session(request)
    form = await request.post()
    typed = str(form.get("to", ""))
    try:
        await _email_link(request, user, session.id, typed)
    except (MailError, Unprocessable, TooManyRequests) as exc:
        # The SMTP server's answer, a bad address or the rate limit: said on the session's
        # page, with the address as typed.
        page = await _session_page(request, user, session, status=exc.status,
                                   mail_error=exc.message, mail_to=typed)
        page.headers.update(exc.headers)  # Retry-After of the rate limit
        return page
    raise web.HTTPSeeOther(f"/sessions/{session.id}?mailed=1#candidate-link-section")


async def _email_link(request: web.Request, user: User, session_id: str,
                      typed: str) -> tuple[str, str | None]:
    """Send the session's current link; (recipient, sent at) or ``MailError``."""
    settings, actor = request.app[SETTINGS], user.actor(client_address(request))
    reserved = await request.app[DB].write(
        lambda d: link_email.prepare(d, settings, user, session_id, typed))
    error = ""
    try:
        await send(settings, reserved.message, reserved.recipient, shown=reserved.shown)
    except MailError as exc:
        error = exc.message
    sent_at = await request.app[DB].write(
        lambda d: link_email.finish(d, actor, session_id, reserved, error))
    if error:
        raise MailError(error)
    return reserved.shown, sent_at


@routes.post("/sessions/{session_id}/link")
async def session_link_reissue_submit(request: web.Request) -> web.Response:
    user, session = await visible_session(request)
    await _reissue(request, user, session.id)
    raise web.HTTPSeeOther(f"/sessions/{session.id}?link=new#candidate-link-section")


async def _reissue(request: web.Request, user: User, session_id: str) -> str:
    settings, actor = request.app[SETTINGS], user.actor(client_address(request))
    link: str = await request.app[DB].write(
        lambda d: reissue_link(d, settings, user, actor, session_id))
    return link


@routes.post("/sessions/{session_id}/{action:start|end|extend|join}")
async def session_action_submit(request: web.Request) -> web.Response:
    user, session = await visible_session(request)
    action = request.match_info["action"]
    manager = request.app[SESSIONS]
    actor = user.actor(client_address(request))
    if action == "start":
        await manager.start_session(session.id, actor)
    elif action == "end":
        await manager.end_session(session.id, actor, "ended by an interviewer")
    elif action == "extend":
        form = await request.post()
        minutes_to_add = whole_number(str(form.get("minutes", "10")), 6)
        if minutes_to_add is None:
            raise Unprocessable("Enter the minutes to add as a whole number, 1 to 120.")
        await manager.extend(session.id, minutes_to_add, actor)
    else:
        raise web.HTTPSeeOther(
            await manager.handoff_url(session.id, user.actor(client_address(request))))
    raise web.HTTPSeeOther(f"/sessions/{session.id}")
