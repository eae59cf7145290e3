"""The keystroke-playback API on the app origin (same access as the other recording routes:
the session's interviewers and admins). The computation is ``workspaces/recording/playback.py``.

- ``GET /api/v1/sessions/{id}/docs`` → ``{"docs": [{"id", "path", "type" ('file' | 'notebook'),
  "room", "file_id", "opened_at", "capped_at", "updates", "authors": {actor: updates},
  "first_at", "last_at"}]}``: the collaborative documents recorded in the session.
- ``GET /api/v1/sessions/{id}/docs/{doc}/frames?from=N&limit=M`` → ``{"doc", "last_n",
  "base": {"n", "text" | "cells"}, "frames": [{"n", "at", "actor", "kind", "ops", "cells"?}]}``:
  the document after update ``N - 1`` (default ``N`` = 1: the empty document) and the frames of
  updates ``N`` … ``N + M - 1`` (``M`` 0–5000, default 1000; 0 gives the document alone). An op
  is ``[pos, deleted, "inserted"]`` (files) or ``[cell_id, pos, deleted, "inserted"]``
  (notebooks), positions in Unicode code points.

404 for an unknown document of this session; 422 for a bad ``doc``, ``from`` or ``limit``.
"""

from __future__ import annotations

from aiohttp import web

from common.errors import NotFound, Unprocessable
from server.http.bodies import query_number, whole_number
from server.http.keys import DB
from server.sessions.access import visible_session
from workspaces.recording import doc_log, playback

routes = web.RouteTableDef()
PAGE = 1000


@routes.get("/api/v1/sessions/{session_id}/docs")
async def list_docs(request: web.Request) -> web.Response:
    _, session = await visible_session(request)
    docs = await request.app[DB].read(lambda d: playback.docs_of_session(d, session.id))
    return web.json_response({"docs": docs})


@routes.get("/api/v1/sessions/{session_id}/docs/{doc_id}/frames")
async def doc_frames(request: web.Request) -> web.Response:
    _, session = await visible_session(request)
    doc_id = whole_number(request.match_info["doc_id"])
    if doc_id is None or doc_id > 2**62:
        raise Unprocessable("The document id must be a whole number.")
    doc = await request.app[DB].read(lambda d: doc_log.doc_by_id(d, session.id, doc_id))
    if doc is None:
        raise NotFound("This session has no such document.")
    last = await request.app[DB].read(lambda d: doc_log.last_n(d, doc.id))
    first = query_number(request, "from", 1, 1, last + 1)
    limit = query_number(request, "limit", PAGE, 0, playback.MAX_FRAMES)
    body = await request.app[DB].read(lambda d: playback.frames(d, doc, first, limit))
    return web.json_response(body)
