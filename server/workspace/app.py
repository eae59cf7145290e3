"""The workspace origins: candidate links, the candidate's landing page, interviewer handoffs,
and the authenticated proxy to each workspace under ``/w/<workspace id>/``.

A separate origin from the app (its own host/port), so that candidate-controlled content never
runs with the interviewers' cookies; and each workspace on its own host (``server/
workspace/hosts.py``), so that it never runs with another workspace's. The shared host keeps the
capability link (a cookie of its own, for the landing page) and the handoff; both send the
browser on to the workspace's host with a one-time entry code, exchanged there for a cookie of
that host alone. Every request and WebSocket is checked against the workspace's session.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import html
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from aiohttp import web
from markupsafe import Markup
from yarl import URL

from common.audit import Actor
from common.errors import Forbidden, NotFound
from common.markdown_safe import brief_html
from scoring import session_scoring
from server.http.accesslog import scrub_path
from server.http.auth import host_only
from server.http.client_address import client_address
from server.http.errors import ERROR_TEMPLATE, error_middleware
from server.http.keys import DB, SETTINGS
from server.http.pages import render_anonymous, setup_templates
from server.http.security_headers import CSP, security_headers_except
from server.http.times import time_left
from server.people import accounts as people
from server.recording.keys import RECORDING
from server.sessions.keys import SESSIONS
from server.settings import Settings
from server.workspace.hosts import WHERE, frame_only_by_itself, host_routing
from server.workspace.landing_facts import landing_facts, queue_message
from server.workspace.panel_facts import panel_facts
from server.workspace.proxy import proxy_http, proxy_websocket
from tasks import revisions
from workspaces import candidate_links, entry_codes, records
from workspaces import sessions as S
from workspaces.session_errors import (
    EntryUsed,
    LinkClosed,
    LinkNotValid,
    LinkReplaced,
    SessionEnded,
    SessionEndedForInterviewer,
    WorkspaceUnavailable,
)
from workspaces.upstream import Principal

HERE = Path(__file__).parent.parent  # server/: the templates and static files are shared
COOKIE_PREFIX = "pairlab_s_"
"""The shared host's cookie for a session (the landing page)."""
WORKSPACE_COOKIE_PREFIX = "pairlab_w_"
"""A workspace host's cookie for its workspace."""
PERSON_KINDS = ("candidate", "interviewer")
"""The grants that are cookies (a handoff token is not one)."""
MAIN_APP = web.AppKey("main_app", web.Application)
THANKS = ("The interview has ended — thank you for your time. Your work is saved and the"
          " interviewers have it; you can close this tab.")
ENDED_FOR_INTERVIEWER = ("The interview has ended and its workspace is closed. The recording and"
                         " the candidate's work are on the session's page in pairlab.")
INVALID_LINK = ("This interview link is not valid. Check that you opened the whole link from"
                " your invitation; if it still does not open, ask the person who invited you"
                " (your recruiter or interviewer) for a new one.")
NO_ACCESS = "You have no access to this session's workspace."
_LAB_PAGE = re.compile(r"^/w/[A-Za-z0-9]+/(lab|tree|doc)(/|$)")
routes = web.RouteTableDef()


def _cookie_name(request: web.Request, session_id: str) -> str:
    """The cookie this host keeps for the session: the shared host's per session, a workspace
    host's per workspace. ``__Host-`` over https: no sibling host can plant one (no Domain)."""
    workspace_id = request[WHERE].workspace_id
    name = COOKIE_PREFIX + session_id if workspace_id is None \
        else WORKSPACE_COOKIE_PREFIX + workspace_id
    return host_only(name, request.app[SETTINGS].secure_workspace_cookies)


def _main(request: web.Request) -> web.Application:
    return request.app[MAIN_APP]


def _csrf(request: web.Request, session_id: str) -> str:
    grant = request.cookies.get(_cookie_name(request, session_id), "")
    key = request.app[SETTINGS].cookie_secret.reveal().encode()
    return hmac.new(key, b"ws-csrf:" + grant.encode(), hashlib.sha256).hexdigest() if grant else ""


def _own_origin(request: web.Request) -> str:
    settings = request.app[SETTINGS]
    workspace_id = request[WHERE].workspace_id
    return settings.workspace_url if workspace_id is None \
        else settings.workspace_origin(workspace_id)


def _check_origin(request: web.Request, required: bool) -> None:
    """Only this host's own origin (the host was checked by ``host_routing``): a page of
    another workspace, or of the shared origin, is refused."""
    origin = request.headers.get("Origin")
    allowed = {_own_origin(request).lower(), f"{request.scheme}://{request.host}".lower()}
    if origin is None:
        if required:
            raise Forbidden("A WebSocket without an Origin header is refused.")
        return
    if origin.lower() not in allowed:
        raise Forbidden("Requests from another site are refused (Origin check).")


async def principal_for(request: web.Request, session: S.Session) -> Principal:
    """Who may use this session's workspace: its candidate, or an assigned interviewer.

    Only a grant made for this host counts: a shared-host grant on the shared host, a
    workspace's own on that workspace's host; never a handoff token or an entry code."""
    token = request.cookies.get(_cookie_name(request, session.id))
    db = _main(request)[DB]
    grant = await db.read(lambda d: S.resolve_grant(d, token)) if token else None
    here = request[WHERE].workspace_id
    if grant is None or grant["session_id"] != session.id or grant["kind"] not in PERSON_KINDS \
            or grant["workspace_id"] != here \
            or (here is not None and session.workspace_id != here):
        raise Forbidden(NO_ACCESS)
    if grant["kind"] == "candidate":
        # The name every collaborator sees in JupyterLab: the pseudonym in blind mode.
        scoring = await db.read(lambda d: session_scoring.get(d, session.id))
        shown = session_scoring.masked(session, scoring).candidate_name
        return Principal("candidate", shown, "candidate")
    user_id = int(grant["user_id"])
    user = await db.read(lambda d: people.get_user(d, user_id))
    if user.disabled or user.id not in session.interviewer_ids:
        raise Forbidden("You are no longer an interviewer of this session.")
    return Principal(f"interviewer-{user.id}", user.display_name, "interviewer")


def _set_grant_cookie(request: web.Request, response: web.StreamResponse, session: S.Session,
                      token: str) -> None:
    """Host-only (never a Domain): no other workspace's host, nor the shared one, gets it."""
    response.set_cookie(
        _cookie_name(request, session.id), token, httponly=True, samesite="Lax", path="/",
        secure=request.app[SETTINGS].secure_workspace_cookies,
    )


@routes.get("/c/{token}")
async def capability_link(request: web.Request) -> web.StreamResponse:
    """Exchange the link's token for a cookie, then land on a URL without the token."""
    token = request.match_info["token"]
    db = _main(request)[DB]
    session = await db.read(lambda d: S.session_for_link(d, token))
    if session is None:
        if await db.read(lambda d: candidate_links.was_replaced(d, token)):
            raise LinkReplaced("This interview link was replaced by a newer one and no longer"
                               " works. Please use the latest link your interviewer sent you,"
                               " or ask them to send it again.")
        raise LinkNotValid(INVALID_LINK)
    if not session.link_open():
        if session.is_over():
            raise SessionEnded(THANKS)
        raise LinkClosed("This interview has not started yet: open the link again shortly"
                         " before the start time.")
    return await _enter_as_candidate(request, session)


@routes.get("/handoff/{token}")
async def handoff(request: web.Request) -> web.StreamResponse:
    """An interviewer's one-time join link: on to the workspace's own host with an entry code
    (the handoff token itself is never a cookie, anywhere)."""
    token = request.match_info["token"]
    db = _main(request)[DB]
    row = await db.write(lambda d: S.use_handoff(d, token))
    if row is None:
        raise EntryUsed("This join link was already used or has expired; press Join again on"
                        " the session's page.")
    session = await db.read(lambda d: S.get_session(d, row["session_id"]))
    user_id = int(row["user_id"])
    address, agent = client_address(request), request.headers.get("User-Agent", "")

    def record(d: Any) -> None:
        email = people.get_user(d, user_id).email
        S.record_connection(d, session.id, email, "interviewer joined", address, agent)

    await db.write(record)
    return await _to_workspace(request, session, "interviewer", user_id)


async def _to_workspace(request: web.Request, session: S.Session, kind: str,
                        user_id: int | None) -> web.StreamResponse:
    """Send the browser to the session's workspace on its own host, with a one-time code."""
    workspace_id = session.workspace_id
    if session.state in ("scheduled", "provisioning") and kind == "candidate":
        raise web.HTTPSeeOther(f"/s/{session.id}")  # the landing page waits for it
    if session.state != "live" or workspace_id is None:
        raise LinkClosed(f"The session is {session.state}; there is no workspace to open.")
    code = await _main(request)[DB].write(
        lambda d: entry_codes.issue(d, session.id, workspace_id, kind, user_id))
    origin = request.app[SETTINGS].workspace_origin(workspace_id)
    response = web.HTTPSeeOther(f"{origin}/enter/{code}")
    response.headers["Referrer-Policy"] = "no-referrer"  # the token is in the URL we leave
    raise response


@routes.get("/enter/{code}")
async def enter_workspace(request: web.Request) -> web.StreamResponse:
    """On a workspace's own host: exchange a one-time entry code for this host's cookie."""
    code, here = request.match_info["code"], request[WHERE].workspace_id
    _refuse_entry_from_inside(request)
    assert here is not None  # noqa: S101 - host_routing serves /enter/ only on workspace hosts
    db = _main(request)[DB]
    row = await db.write(lambda d: entry_codes.use(d, code, here))
    if row is None:
        raise EntryUsed("This entry link was already used or has expired: open the workspace"
                        " again from your interview page (or press Join again).")
    session = await db.read(lambda d: S.get_session(d, row["session_id"]))
    if session.state != "live" or session.workspace_id != here:
        raise LinkClosed(f"The session is {session.state}; its workspace is closed.")
    await _refuse_another_person(request, session, row)
    address, agent = client_address(request), request.headers.get("User-Agent", "")
    grant = await db.write(lambda d: S.grant(
        d, session.id, row["kind"], user_id=row["user_id"], address=address, user_agent=agent,
        workspace_id=here))
    response = web.HTTPSeeOther(f"/w/{here}/lab")
    response.headers["Referrer-Policy"] = "no-referrer"
    _set_grant_cookie(request, response, session, grant)
    raise response


def _refuse_entry_from_inside(request: web.Request) -> None:
    """An entry code is followed only as a top-level navigation that did not start on this
    workspace's own host. The real ways here (Join, Start, "Open your workspace") are redirects
    from the shared host, which Chromium sends as ``Sec-Fetch-Site: cross-site`` (or
    ``same-site`` when the app and the workspaces share a site, ``none`` when typed); a link or
    script in the workspace (the candidate's content) is ``same-origin``, and a script's
    ``fetch`` is not a navigation. Browsers without Fetch Metadata send none of these headers
    and are left to ``_refuse_another_person``."""
    site = request.headers.get("Sec-Fetch-Site")
    mode = request.headers.get("Sec-Fetch-Mode")
    dest = request.headers.get("Sec-Fetch-Dest")
    if site == "same-origin" or mode not in (None, "navigate") or dest not in (None, "document"):
        raise Forbidden("An entry link opened from inside the workspace is refused (it could"
                        " switch you to someone else): open the workspace from your interview"
                        " page, or press Join again.")


async def _refuse_another_person(request: web.Request, session: S.Session,
                                 row: dict[str, Any]) -> None:
    """A browser that holds a valid interviewer's grant for this workspace is never switched
    to the candidate (a candidate's code slipped to the interviewer, whose edits would then be
    recorded as the candidate's). An interviewer's code, which only a logged-in interviewer can
    get (Join), may replace any grant: an interviewer who first tried the candidate link in
    their own browser can still join."""
    if row["kind"] != "candidate":
        return
    try:
        held = await principal_for(request, session)
    except Forbidden:
        return  # no grant, or one no longer valid: nothing to keep
    if held.kind != "candidate":
        who = "the candidate" if held.kind == "candidate" else f"{held.display_name}"
        raise Forbidden(f"This browser is already in this workspace as {who}; an entry link for"
                        " someone else is refused, so that nobody's work is recorded under"
                        " another name. Use another browser (or a private window) for the"
                        " other person.")


async def _enter_as_candidate(request: web.Request, session: S.Session) -> web.StreamResponse:
    """Grant this browser the candidate's access to the session on the shared host (a cookie),
    record the connection, and redirect to the landing page, away from the token-bearing URL
    it came by. A browser that already holds the candidate's grant keeps it: a new one would
    expire the Start form of a landing page open in another tab (the link opened twice)."""
    address, agent = client_address(request), request.headers.get("User-Agent", "")
    try:
        held = (await principal_for(request, session)).kind == "candidate"
    except Forbidden:
        held = False  # no grant, one no longer valid, or someone else's: a new one

    def run(d: Any) -> str | None:
        S.record_connection(d, session.id, "candidate", "link opened", address, agent)
        return None if held else S.grant(d, session.id, "candidate", user_id=None,
                                         address=address, user_agent=agent)

    grant = await _main(request)[DB].write(run)
    response = web.HTTPSeeOther(f"/s/{session.id}")
    response.headers["Referrer-Policy"] = "no-referrer"  # the token is in the URL we leave
    if grant is not None:
        _set_grant_cookie(request, response, session, grant)
    raise response


async def _session(request: web.Request) -> S.Session:
    session_id = request.match_info["session_id"]
    return await _main(request)[DB].read(lambda d: S.get_session(d, session_id))


async def _as_seen_by(request: web.Request, session: S.Session, who: Principal) -> S.Session:
    """The candidate sees their own name; an interviewer the pseudonym while it is blind."""
    if who.kind == "candidate":
        return session
    scoring = await _main(request)[DB].read(lambda d: session_scoring.get(d, session.id))
    return session_scoring.masked(session, scoring)


def _public(request: web.Request, session: S.Session) -> dict[str, Any]:
    data = {k: v for k, v in session.public().items() if k != "candidate_email"}
    data["time_left"] = time_left(int(data["seconds_left"]))  # the landing page shows it
    if session.state == "live" and session.workspace_id:
        settings = request.app[SETTINGS]
        data["workspace_url"] = \
            f"{settings.workspace_origin(session.workspace_id)}/w/{session.workspace_id}/lab"
        data["open_url"] = f"{settings.workspace_url}/s/{session.id}/open"
    data["queue"] = _queue(request, session)
    return data


def _queue(request: web.Request, session: S.Session) -> dict[str, Any] | None:
    """Where the session's start waits in the start queue (None: not waiting)."""
    place = _main(request)[SESSIONS].gate.place_of(session)
    return None if place is None else {**place.to_dict(), "message": queue_message(place)}


def _brief(store: Any, rev: Any) -> Markup:
    """The revision's ``brief.md`` as safe HTML. A revision never changes, so each is read and
    sanitised once (the side panel asks every few seconds in every open tab)."""
    return _brief_of(store, rev.task_id, rev.id)


@functools.lru_cache(maxsize=128)
def _brief_of(store: Any, task_id: str, revision_id: str) -> Markup:
    return brief_html(store.text(task_id, revision_id, "brief.md"))


@routes.get("/s/{session_id}")
async def landing(request: web.Request) -> web.Response:
    session = await _session(request)
    session = await _as_seen_by(request, session, await principal_for(request, session))
    main = _main(request)
    rev = await main[DB].read(lambda d: revisions.get_revision(d, session.revision_id))
    facts = await main[DB].read(lambda d: landing_facts(d, session))
    response = render_anonymous(request, "candidate_landing.html", {
        "session": session, "title": rev.title, "brief": _brief(main[SESSIONS].store, rev),
        "facts": facts, "queue": _queue(request, session), "stale": "stale" in request.query,
    }, csrf=_csrf(request, session.id))
    # Start posts here and is redirected on to the workspace's host, which form-action must
    # allow (CSP checks a form's redirects too): any workspace host, no other site.
    shared = URL(request.app[SETTINGS].workspace_url)
    port = f":{shared.explicit_port}" if shared.explicit_port else ""
    response.headers["Content-Security-Policy"] = CSP.replace(
        "form-action 'self'", f"form-action 'self' {shared.scheme}://*.{shared.host}{port}")
    return response


@routes.post("/s/{session_id}/start")
async def landing_start(request: web.Request) -> web.StreamResponse:
    session = await _session(request)
    who = await principal_for(request, session)
    _check_origin(request, required=False)
    form = await request.post()
    if not hmac.compare_digest(str(form.get("csrf_token", "")), _csrf(request, session.id)):
        # A form from an older copy of the page (the link opened again at the same moment in
        # another tab, or re-issued since): nothing starts; back to a fresh copy, which says so.
        raise web.HTTPSeeOther(f"/s/{session.id}?stale=1#start-form")
    session = await _main(request)[SESSIONS].start_session(
        session.id, _actor_of(who, request)
    )
    return await _to_workspace(request, session, who.kind, _user_id(who))


@routes.get("/s/{session_id}/open")
async def landing_open(request: web.Request) -> web.StreamResponse:
    """The landing page's "Open your workspace": on to its host with a fresh entry code."""
    session = await _session(request)
    who = await principal_for(request, session)
    return await _to_workspace(request, session, who.kind, _user_id(who))


def _user_id(who: Principal) -> int | None:
    return int(who.username.removeprefix("interviewer-")) if who.kind == "interviewer" else None


def _actor_of(who: Principal, request: web.Request) -> Actor:
    return Actor(f"{who.kind}:{who.display_name}", None, client_address(request))


@routes.get("/api/v1/sessions/{session_id}")
async def api_session(request: web.Request) -> web.Response:
    session = await _session(request)
    who = await principal_for(request, session)
    return web.json_response(
        {"session": _public(request, await _as_seen_by(request, session, who))})


@routes.get("/api/v1/sessions/{session_id}/panel")
async def api_session_panel(request: web.Request) -> web.Response:
    """What pairlab's side panel in JupyterLab shows: the brief, the end, the hints given."""
    session = await _session(request)
    await principal_for(request, session)
    main = _main(request)
    rev = await main[DB].read(lambda d: revisions.get_revision(d, session.revision_id))
    brief = _brief(main[SESSIONS].store, rev)
    facts = await main[DB].read(lambda d: panel_facts(d, session, brief))
    return web.json_response({"panel": facts.to_dict()},
                             headers={"Cache-Control": "no-store"})


@routes.post("/api/v1/sessions/{session_id}/start")
async def api_session_start(request: web.Request) -> web.Response:
    if request[WHERE].workspace_id is not None:
        raise NotFound("A session is started from its landing page, not from a workspace.")
    session = await _session(request)
    who = await principal_for(request, session)
    _check_origin(request, required=False)
    if not hmac.compare_digest(request.headers.get("X-CSRF-Token", ""),
                               _csrf(request, session.id)):
        raise Forbidden("The CSRF token is missing or wrong (X-CSRF-Token).")
    session = await _main(request)[SESSIONS].start_session(session.id, _actor_of(who, request))
    return web.json_response(
        {"session": _public(request, await _as_seen_by(request, session, who))})


ACCESS_CACHE = web.AppKey("access_cache", dict)
ACCESS_TTL_S = 2.0
"""Proxied requests reuse an access decision for this long. Ending a session still closes its
workspace at once (the upstream is dropped first); other changes take effect within it."""


async def _cached_principal(request: web.Request, session_id: str) -> Principal:
    cache: dict[tuple[str, str, str | None], tuple[float, Principal]] = request.app[ACCESS_CACHE]
    key = (request.cookies.get(_cookie_name(request, session_id), ""), session_id,
           request[WHERE].workspace_id)
    now = time.monotonic()
    hit = cache.get(key)
    if hit is not None and hit[0] > now:
        return hit[1]
    session = await _main(request)[DB].read(lambda d: S.get_session(d, session_id))
    who = await principal_for(request, session)
    if len(cache) > 10_000:
        cache.clear()
    cache[key] = (now + ACCESS_TTL_S, who)
    return who


def _html_rewriter(session_id: str, token: str, countdown: bool, person: str,
                   session_page: str) -> Callable[[bytes], bytes]:
    """Pages get the countdown badge and the end of the interview (``countdown.js``: not
    deferred, so that it runs before JupyterLab and sees its requests) and an "Opening
    JupyterLab…" backdrop while its scripts load; and the jupyter token, which JupyterLab would
    embed in its page config, is removed so that it never reaches a browser (the proxy adds
    it)."""
    tag = (f'<script src="/_pairlab/countdown.js" data-session="{session_id}"'
           f' data-person="{person}" data-session-page="{html.escape(session_page)}"></script>'
           '<link rel="stylesheet" href="/_pairlab/opening.css">').encode()
    secret = token.encode()

    def rewrite(page: bytes) -> bytes:
        page = page.replace(secret, b"")
        return page.replace(b"</head>", tag + b"</head>", 1) if countdown else page

    return rewrite


async def _closed_workspace(request: web.Request, workspace_id: str) -> NoReturn:
    """Why a workspace that is not running cannot be reached: its interview is over (the
    candidate's thank-you page, also on every reload), or it is being restarted. Said only to
    whoever may use it: a request without a valid grant is refused as at a running workspace
    (the same 403), so that it learns nothing of the session's state."""
    db = _main(request)[DB]
    row = await db.read(lambda d: records.get(d, workspace_id))
    if row is None:
        raise NotFound("There is no such workspace.")
    session_id = row["session_id"]
    session = await db.read(lambda d: S.get_session(d, session_id)) if session_id else None
    if session is None:  # a workspace never claimed: nobody holds a grant for it
        raise Forbidden(NO_ACCESS)
    who = await principal_for(request, session)
    if session.is_over():
        if who.kind == "interviewer":
            raise SessionEndedForInterviewer(ENDED_FOR_INTERVIEWER)
        raise SessionEnded(THANKS)
    raise WorkspaceUnavailable("The workspace is restarting; reload this page in a minute.")


@routes.route("*", "/w/{workspace_id}/{tail:.*}")
async def workspace_proxy(request: web.Request) -> web.StreamResponse:
    workspace_id = request.match_info["workspace_id"]
    if workspace_id != request[WHERE].workspace_id:  # host_routing refused it already
        raise NotFound("There is no such workspace at this address.")
    main = _main(request)
    manager = main[SESSIONS]
    found = manager.upstreams.get(workspace_id)
    if found is None:
        await _closed_workspace(request, workspace_id)
    upstream, session_id = found
    who = await _cached_principal(request, session_id)
    is_ws = request.headers.get("Upgrade", "").lower() == "websocket"
    if is_ws:
        _check_origin(request, required=True)  # before the handshake
        return await proxy_websocket(request, upstream, who, manager.clients,
                                     main[RECORDING].ws_tap)
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        _check_origin(request, required=False)
    rewrite = None
    if request.method == "GET":
        countdown = _LAB_PAGE.match(request.path) is not None
        # Only an interviewer's page names the staff app (the candidate gets no link into it).
        session_page = (f"{request.app[SETTINGS].app_url}/sessions/{session_id}"
                        if who.kind == "interviewer" else "")
        rewrite = _html_rewriter(session_id, upstream.token, countdown, who.kind, session_page)
    return await proxy_http(request, upstream, who, manager.clients, rewrite,
                            main[RECORDING].http_tap)


def create_workspace_app(settings: Settings, main_app: web.Application) -> web.Application:
    """The candidate-content origin (shares the main app's database and session manager)."""
    app = web.Application(
        middlewares=[security_headers_except("/w/"), error_middleware, host_routing],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[MAIN_APP] = main_app
    app[ACCESS_CACHE] = {}
    app[ERROR_TEMPLATE] = "workspace_error.html"
    app.on_response_prepare.append(frame_only_by_itself)
    setup_templates(app)
    app.add_routes([web.get("/healthz", _healthz), web.get("/_pairlab/times.js", _times_js)])
    app.router.add_static("/_pairlab", HERE / "static" / "workspace", append_version=False)
    app.add_routes(routes)
    return app


async def _times_js(request: web.Request) -> web.FileResponse:
    """The staff pages' ``times.js`` (times in the viewer's zone), here for the landing page:
    one file, not the app's whole ``/static``."""
    return web.FileResponse(HERE / "static" / "times.js")


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


__all__ = ["create_workspace_app", "scrub_path"]
