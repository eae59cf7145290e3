"""Scorecards, debrief, report and reveal: the JSON API (thin handlers over
``scoring.scorecard_txns``).

- ``GET /api/v1/sessions/{id}/scorecards/mine`` → the caller's draft
  ``{"session_id", "state": "draft" | "submitted", "version", "updated_at", "submitted_at",
  "rubric": {id, version, title}, "dimensions": [{id, title, description, weight, anchors}],
  "scores", "recommendation", "summary"}`` (interviewers of the session only).
- ``PUT …/scorecards/mine`` with a scorecard body → the same (autosave; partial is fine).
- ``POST …/scorecards/mine/submit`` (optional body: submit that instead of the draft) →
  ``{"scorecard": Scorecard, "debrief_ready": bool}``; 422 lists what is missing.
- ``GET …/scorecards`` → ``{"scorecards": [Scorecard], "waiting_for": [name]}``; 403 until
  the caller has submitted their own (sealed).
- ``GET …/debrief`` and ``GET …/report`` → the debrief / candidate report as JSON (sealed); the
  debrief's ``authorship`` is who wrote what (``workspaces.recording.authorship``), by actor.
- ``POST …/reveal`` → reveal a blind session's candidate (409 until every scorecard is in).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from common.errors import Forbidden
from scoring import scorecard_txns as SC
from scoring import scorecards
from scoring.debrief import Debrief
from scoring.report import candidate_report
from scoring.scorecards import Draft
from server.http.auth import client_address
from server.http.bodies import json_object
from server.http.keys import DB
from server.people.accounts import User
from server.sessions.access import visible_session
from workspaces.recording.authorship import session_authorship

routes = web.RouteTableDef()
API = "/api/v1/sessions/{session_id}"


def mine_json(p: SC.Panel, draft: Draft) -> dict[str, Any]:
    return {
        "session_id": p.session.id, "state": "submitted" if draft.submitted else "draft",
        "version": draft.version, "updated_at": draft.updated_at,
        "submitted_at": draft.submitted_at,
        "rubric": {"id": p.rubric.id, "version": p.rubric.version, "title": p.rubric.title},
        "dimensions": [d.public() for d in p.rubric.dimensions], **draft.card.body(),
    }


async def load_panel(request: web.Request, session_id: str) -> SC.Panel:
    """The session's panel from a reader; pinned first (one write) if the session was
    scheduled before scoring existed."""
    db = request.app[DB]
    found = await db.read(lambda d: SC.read_panel(d, session_id))
    return found if found is not None else await db.write(lambda d: SC.panel(d, session_id))


@routes.get(API + "/scorecards/mine")
async def api_mine(request: web.Request) -> web.Response:
    user, session = await visible_session(request)
    SC.require_panelist(user.id, session)
    p = await load_panel(request, session.id)
    draft = await request.app[DB].read(lambda d: scorecards.get_draft(d, session.id, user.id))
    return web.json_response(mine_json(p, draft))


@routes.put(API + "/scorecards/mine")
async def api_save(request: web.Request) -> web.Response:
    user, session = await visible_session(request)
    SC.require_panelist(user.id, session)
    data = await json_object(request)
    p, draft = await request.app[DB].write(lambda d: SC.save(d, session.id, user.id, data))
    return web.json_response(mine_json(p, draft))


@routes.post(API + "/scorecards/mine/submit")
async def api_submit(request: web.Request) -> web.Response:
    user, session = await visible_session(request)
    SC.require_panelist(user.id, session)
    data = await json_object(request) if request.body_exists else None
    actor = user.actor(client_address(request))
    stored, ready = await request.app[DB].write(
        lambda d: SC.submit(d, session.id, user.id, user.email, data, actor))
    return web.json_response({"scorecard": stored.public(), "debrief_ready": ready})


async def sealed_debrief(request: web.Request) -> tuple[User, SC.Panel, Debrief]:
    """The caller, the session's panel and its debrief if the caller may see every
    scorecard (else 403)."""
    user, session = await visible_session(request)
    p = await load_panel(request, session.id)
    p = SC.Panel(session, p.scoring, p.rubric)  # the session as the caller sees it (blind)

    def load(d: Any) -> Debrief | None:
        return SC.load_debrief(d, p) if SC.may_see_all(d, user.id, user.is_admin, session) else None

    debrief = await request.app[DB].read(load)
    if debrief is None:
        raise Forbidden(SC.SEALED)
    return user, p, debrief


@routes.get(API + "/scorecards")
async def api_all(request: web.Request) -> web.Response:
    _, _, debrief = await sealed_debrief(request)
    return web.json_response({"scorecards": [c.public() for c in debrief.cards],
                              "waiting_for": list(debrief.waiting_for)})


@routes.get(API + "/debrief")
async def api_debrief(request: web.Request) -> web.Response:
    _, p, debrief = await sealed_debrief(request)
    authorship = await request.app[DB].read(lambda d: session_authorship(d, p.session.id))
    return web.json_response({"session": p.session.public(), "scoring": p.scoring.public(),
                              **debrief.public(), "authorship": authorship.public()})


@routes.get(API + "/report")
async def api_report(request: web.Request) -> web.Response:
    _, p, debrief = await sealed_debrief(request)
    return web.json_response(candidate_report(p, debrief))


@routes.post(API + "/reveal")
async def api_reveal(request: web.Request) -> web.Response:
    user, session = await visible_session(request)
    actor = user.actor(client_address(request))
    scoring = await request.app[DB].write(lambda d: SC.reveal(d, session.id, user.id, actor))
    return web.json_response({"scoring": scoring.public()})
