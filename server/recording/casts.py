"""The terminal casts of a session on the web (same access as the rest of the recording:
the session's interviewers and admins).

- ``GET /api/v1/sessions/{id}/casts`` → ``{"casts": [{"id", "terminal", "conn", "actor",
  "started_at", "ended_at" | null, "width", "height", "bytes", "dropped_bytes", "size",
  "url"}]}``, oldest first: one per terminal connection (``bytes``/``dropped_bytes`` once it
  ended; ``size``: the file's size now).
- ``GET /api/v1/sessions/{id}/casts/{cast}`` → the asciicast v2 file, ``text/plain``
  (``?type=asciicast``: ``application/x-asciicast``), never sniffed or rendered as a page: it
  is candidate output, for the replay page's xterm only. 404 for an unknown cast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from common.errors import NotFound
from server.http.keys import DB, SETTINGS
from server.http.security_headers import CSP
from server.sessions.access import visible_session
from workspaces.recording.casts import cast_dir, cast_file, list_casts

routes = web.RouteTableDef()


def _size(folder: Path, cast_id: str) -> int | None:
    try:
        return (folder / f"{cast_id}.cast").stat().st_size
    except OSError:
        return None


@routes.get("/api/v1/sessions/{session_id}/casts")
async def casts(request: web.Request) -> web.Response:
    _, session = await visible_session(request)
    rows: list[dict[str, Any]] = await request.app[DB].read(
        lambda d: list_casts(d, session.id))
    folder = cast_dir(request.app[SETTINGS].data_dir, session.id)
    for row in rows:
        row["size"] = _size(folder, row["id"])
        row["url"] = f"/api/v1/sessions/{session.id}/casts/{row['id']}"
    return web.json_response({"casts": rows}, headers={"Cache-Control": "no-store"})


@routes.get("/api/v1/sessions/{session_id}/casts/{cast_id}")
async def cast(request: web.Request) -> web.FileResponse:
    _, session = await visible_session(request)
    cast_id = request.match_info["cast_id"]
    data_dir = request.app[SETTINGS].data_dir
    path = await request.app[DB].read(lambda d: cast_file(data_dir, d, session.id, cast_id))
    if path is None:
        raise NotFound("There is no such terminal cast in this session.")
    kind = ("application/x-asciicast" if request.query.get("type") == "asciicast"
            else "text/plain; charset=utf-8")
    return web.FileResponse(path, headers={
        "Content-Type": kind, "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
        "Content-Security-Policy": CSP,
        "Content-Disposition": f'inline; filename="{cast_id}.cast"'})
