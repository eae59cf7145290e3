"""Interviewer pages for scoring: the scorecard form beside the session's timeline (moments
picked from it by static/scorecard_moments.js, autosaved by static/scorecard.js, and a plain
form post without script), the sealed debrief, the printable candidate report and
the reveal action."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from common.errors import Forbidden
from scoring import moment_timeline as T
from scoring import scorecard_txns as SC
from scoring import scorecards
from scoring.report import candidate_report
from scoring.scorecards import RECOMMENDATION_LABELS, ScorecardError
from server.http.auth import client_address, current_user
from server.http.bodies import query_number, whole_number
from server.http.keys import DB
from server.http.pages import render
from server.scoring.routes import load_panel, mine_json, sealed_debrief
from server.sessions.access import visible_session
from server.sessions.names import actor_names
from workspaces import sessions as S
from workspaces.recording.authorship import session_authorship
from workspaces.recording.events import ACTOR_SYSTEM, StoredEvent

routes = web.RouteTableDef()
PAGE = "/sessions/{session_id}"


def _whole(text: str) -> int | str:
    """An ASCII whole number as an int; anything else stays text (and fails validation)."""
    value = whole_number(text)
    return text if value is None else value


def card_from_form(form: MultiDictProxy[Any], p: SC.Panel) -> dict[str, Any]:
    """The form's fields in the API's scorecard shape (validated later like any body)."""
    scores: dict[str, Any] = {}
    for dim in p.rubric.dimensions:
        raw_level = str(form.get(f"level-{dim.id}", "")).strip()
        moments: list[Any] = [_whole(t) for t in re.split(
            r"[\s,]+", str(form.get(f"moments-{dim.id}", "")).strip()) if t]
        scores[dim.id] = {
            "level": _whole(raw_level) if raw_level else None,
            "evidence": str(form.get(f"evidence-{dim.id}", "")), "moments": moments}
    recommendation = str(form.get("recommendation", "")) or None
    return {"scores": scores, "recommendation": recommendation,
            "summary": str(form.get("summary", ""))}


def _picked(mine: dict[str, Any]) -> list[int]:
    """The event numbers already given as moments (whole numbers only: typed text that is
    not one stays in the text field for the interviewer to correct)."""
    return [m for s in mine.get("scores", {}).values() if isinstance(s, dict)
            for m in s.get("moments") or [] if isinstance(m, int) and not isinstance(m, bool)]


async def _scorecard_page(request: web.Request, *, form_data: dict[str, Any] | None = None,
                          problems: list[str] | None = None, missing: list[str] | None = None,
                          status: int = 200) -> web.Response:
    """The form beside the session's timeline; ``problems``: why nothing was saved;
    ``missing``: the draft was saved but lacks these to be submitted
    (``Card.missing_for_submit``). The timeline's filter and page come from the query
    (``kind``, ``q``, ``after``: see ``scoring.moment_timeline``)."""
    user, session = await visible_session(request)
    SC.require_panelist(user.id, session)
    group = request.query.get("kind", "")
    text = request.query.get("q", "")
    after = query_number(request, "after", 0)
    T.check_filter(group, text.strip(), after)

    p = await load_panel(request, session.id)
    draft = await request.app[DB].read(lambda d: scorecards.get_draft(d, session.id, user.id))
    mine = mine_json(p, draft)
    if form_data is not None:
        mine = {**mine, **form_data}

    def load(d: Any) -> tuple[T.TimelinePage, list[StoredEvent]]:
        return (T.timeline_page(d, session.id, group=group, text=text, after=after),
                T.events_by_seq(d, session.id, _picked(mine)))

    page, picked = await request.app[DB].read(load)
    names = {ACTOR_SYSTEM: "pairlab", **await actor_names(request, user, session)}
    return render(request, "scorecard.html", {
        "session": session, "mine": mine, "rubric": p.rubric, "timeline": page,
        "names": names, "groups": T.GROUPS, "group_of": T.GROUP_OF,
        "kind_labels": T.KIND_LABELS,
        "problems": problems or [], "missing": missing or [],
        "recommendations": RECOMMENDATION_LABELS,
        "config": {"api": f"/api/v1/sessions/{session.id}/scorecards/mine",
                   "replay": f"/sessions/{session.id}/replay",
                   "kinds": T.KIND_LABELS,
                   "events": [T.brief(e) for e in (*page.events, *picked)]}},
        status=status)


@routes.get(PAGE + "/scorecard")
async def scorecard_page(request: web.Request) -> web.Response:
    return await _scorecard_page(request)


@routes.post(PAGE + "/scorecard")
async def scorecard_submit(request: web.Request) -> web.Response:
    """Save the draft; on "submit", also submit it if complete. An incomplete submission
    keeps what was typed as the draft, and the page says what is missing."""
    user, session = await visible_session(request)
    SC.require_panelist(user.id, session)
    form = await request.post()
    data = card_from_form(form, await load_panel(request, session.id))
    actor = user.actor(client_address(request))
    submitting = form.get("action") == "submit"

    def write(d: Any) -> list[str]:
        if submitting:
            return SC.save_and_submit(d, session.id, user.id, user.email, data, actor)
        SC.save(d, session.id, user.id, data)
        return []

    try:
        missing = await request.app[DB].write(write)
    except ScorecardError as e:
        return await _scorecard_page(request, form_data=data, problems=e.problems, status=422)
    if missing:
        return await _scorecard_page(request, missing=missing, status=422)
    raise web.HTTPSeeOther(f"/sessions/{session.id}/{'debrief' if submitting else 'scorecard'}")


async def _sealed_page(request: web.Request) -> web.Response:
    """Why the debrief (or report) is not shown, as a page. 403 like the API's answer: the
    debrief is withheld from this caller now, whatever the page says; the page explains why
    and, to a panelist, links their scorecard. Someone not on the panel gets one plain
    sentence and nothing about the session."""
    user = current_user(request)
    session_id = request.match_info["session_id"]
    session = await request.app[DB].read(lambda d: S.get_session(d, session_id))
    on_panel = user.id in session.interviewer_ids
    draft = on_panel and (await request.app[DB].read(
        lambda d: scorecards.get_draft(d, session.id, user.id))).updated_at is not None
    return render(request, "debrief_sealed.html", {
        "session_id": session.id, "on_panel": on_panel, "draft": draft}, status=403)


@routes.get(PAGE + "/debrief")
async def debrief_page(request: web.Request) -> web.Response:
    try:
        user, p, debrief = await sealed_debrief(request)
    except Forbidden:
        return await _sealed_page(request)
    authorship = await request.app[DB].read(lambda d: session_authorship(d, p.session.id))
    # display names as the replay shows them (blind: the candidate's pseudonym)
    names = {ACTOR_SYSTEM: "pairlab", **await actor_names(request, user, p.session)}
    return render(request, "debrief.html", {
        "session": p.session,
        "scoring": p.scoring, "debrief": debrief, "authorship": authorship, "names": names})


@routes.get(PAGE + "/report")
async def report_page(request: web.Request) -> web.Response:
    try:
        user, p, debrief = await sealed_debrief(request)
    except Forbidden:
        return await _sealed_page(request)
    return render(request, "report.html", {"report": candidate_report(p, debrief)})


@routes.post(PAGE + "/reveal")
async def reveal_submit(request: web.Request) -> web.Response:
    user, session = await visible_session(request)
    actor = user.actor(client_address(request))
    await request.app[DB].write(lambda d: SC.reveal(d, session.id, user.id, actor))
    raise web.HTTPSeeOther(f"/sessions/{session.id}/debrief")
