"""The recording API on the app origin: timeline, live stream, notes, snapshots, export.

Only the session's assigned interviewers and admins may call these (cookie or API token;
state-changing calls with a cookie also pass the CSRF/Origin check of the auth middleware).
Candidate-authored text is returned as JSON data, never as HTML.

JSON shapes
-----------
``Event`` (everywhere)::

    {"seq": int, "at": "2026-01-01T10:00:00.000000+00:00", "kind": str, "path": str,
     "actor": "candidate" | "interviewer:<user id>" | "system", "payload": {...}}

``Snapshot``: ``{"seq": int, "commit": str, "at": ISO time}`` (``seq`` 0 is the task's start).

- ``GET /api/v1/sessions/{id}/events?after=N&limit=M`` → ``{"events": [Event], "last_seq": int,
  "more": bool}``: events with ``seq > N`` (default 0), at most ``M`` (1–2000, default 500);
  ``last_seq`` is the last one returned (else ``N``); ``more`` when another page follows.
- ``GET /api/v1/sessions/{id}/events/stream?after=N``: Server-Sent Events. ``retry: 2000``,
  then for each stored event ``id: <seq>``, ``event: <kind>``, ``data: <Event JSON>``; a
  ``: keep-alive`` comment every 15 s. A reconnect with ``Last-Event-ID`` resumes after that
  ``seq`` (it wins over ``after``): no gap, no duplicate. Nothing is sent before it is stored.
  Once the session is over and its last events are out (``checks.run``, or 120 s after the
  end without it), and at once after the backlog of a session already over, the stream ends
  with ``event: end``, ``data: {"state": "ended" | "failed", "last_seq": int}``: do not
  reconnect after it.
- ``POST /api/v1/sessions/{id}/notes`` ``{"text": str, "kind"?: "note" | "hint",
  "at_seq"?: int}`` → 201 ``{"event": Event}`` (kind ``note``/``hint``, the caller as actor,
  payload ``{"text", "at_seq"?, "shown"?}``; ``at_seq``: the timeline position the note refers
  to; ``shown: true`` on a hint: the candidate's panel shows it).
- ``GET /api/v1/sessions/{id}/snapshots`` → ``{"snapshots": [Snapshot]}``, oldest first.
- ``GET /api/v1/sessions/{id}/tree?at=SEQ`` → ``{"at": SEQ | null, "snapshot": Snapshot,
  "files": [{"path", "size", "status": "added" | "modified" | "unchanged", "large": bool}],
  "deleted": [path], "events_to": int | null}``: the workspace as of event ``SEQ`` (default:
  latest), compared with the task's start: the latest snapshot at or before ``SEQ`` with the
  ``file.*`` events after it (up to ``SEQ``) laid over (``events_to``: the newest such
  event). ``large`` files were recorded by size and sha256 only.
- ``GET /api/v1/sessions/{id}/file?at=SEQ&path=P`` → ``{"path", "at", "snapshot", "exists",
  "kind": "text" | "binary" | "large" | "missing", "size": int | null, "sha256": str | null,
  "text": str | null, "source": "event" | "snapshot", "seq": int}``: exact content for text;
  binary and large files by size and hash only. ``source: "event"``: the content the watcher
  read for the newest ``file.*`` event of ``P`` at or before ``SEQ`` (``seq``: that event);
  ``"snapshot"``: the latest snapshot at or before ``SEQ`` (``seq``: its seq), when it is newer
  than any such event.
- ``GET /api/v1/sessions/{id}/diff?from=SEQ&to=SEQ`` → ``{"from": Snapshot, "to": Snapshot,
  "files": [{"status": "A" | "M" | "D" | "T", "path"}], "diff": str}``: a unified diff
  (bounded; cut with ``…[truncated N chars]``). Defaults: the task's start → the latest.
- ``GET /api/v1/sessions/{id}/export``: ``application/gzip``, a tar of ``session-<id>/``
  with ``events.jsonl``, ``history.bundle`` and ``final/``.

Errors are the usual ``{"error": {"code", "message"}}``: 404 for a session without snapshots
yet, 422 for a bad ``at``/``from``/``to``/``path``/``limit``.
"""

from __future__ import annotations

import asyncio
import json
import tarfile
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from common import clock
from common.db import connect
from common.errors import NotFound, Unprocessable
from server.http.bodies import json_body, query_number, whole_number
from server.http.keys import DB, SETTINGS
from server.http.security_headers import CSP
from server.recording import exact_files
from server.recording.keys import RECORDING
from server.sessions.access import visible_session
from server.settings import Settings
from workspaces.recording import events as E
from workspaces.recording import stream_end
from workspaces.recording.archive import export_session
from workspaces.recording.events import Event, StoredEvent, query_events, snapshot_at
from workspaces.recording.history import History
from workspaces.sandbox.permissions import remove_tree

routes = web.RouteTableDef()
PAGE, MAX_PAGE = 500, 2000
HEARTBEAT_S = 15.0
NOTE_CHARS = 10_000
LATEST = 2**62
STREAM_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-store",
                  "X-Accel-Buffering": "no", "X-Content-Type-Options": "nosniff",
                  "Content-Security-Policy": CSP}


# ---- the timeline ---------------------------------------------------------------------------


@routes.get("/api/v1/sessions/{session_id}/events")
async def list_events(request: web.Request) -> web.Response:
    _, session = await visible_session(request)
    after = query_number(request, "after", 0)
    limit = query_number(request, "limit", PAGE, 1, MAX_PAGE)
    page = await request.app[DB].read(lambda d: query_events(d, session.id, after, limit + 1))
    more = len(page) > limit
    page = page[:limit]
    body = '{"events": [%s], "last_seq": %d, "more": %s}' % (  # noqa: UP031 - stored JSON reused
        ", ".join(e.to_json() for e in page), page[-1].seq if page else after,
        "true" if more else "false")
    return web.Response(text=body, content_type="application/json")


def _sse(event: StoredEvent) -> bytes:
    return f"id: {event.seq}\nevent: {event.kind}\ndata: {event.to_json()}\n\n".encode()


@routes.get("/api/v1/sessions/{session_id}/events/stream")
async def stream_events(request: web.Request) -> web.StreamResponse:
    _, session = await visible_session(request)
    after = query_number(request, "after", 0)
    last_id = whole_number(request.headers.get("Last-Event-ID", "").strip())
    if last_id is not None and last_id <= LATEST:
        after = last_id
    service = request.app[RECORDING]
    response = web.StreamResponse(headers=STREAM_HEADERS)
    await response.prepare(request)
    sub = service.recorder.subscribe(session.id, after)
    closing: asyncio.Future[Any] = asyncio.ensure_future(service.closing.wait())
    pending: asyncio.Future[Any] | None = None
    loop_time = asyncio.get_running_loop().time
    sent = after
    ahead: stream_end.Outlook | None = None  # what the stream still waits for, once read
    recheck: float | None = loop_time()  # when to read it (again)
    try:
        await response.write(b"retry: 2000\n\n")
        while True:
            if recheck is not None and loop_time() >= recheck:
                ahead = await request.app[DB].read(lambda d: stream_end.outlook(d, session.id))
                recheck = None if ahead.recheck_s is None else loop_time() + ahead.recheck_s
            if ahead is not None and ahead.final and sent >= ahead.last_seq:
                await response.write(b"event: end\ndata: %s\n\n" % json.dumps(
                    ahead.end_message()).encode())
                break
            if pending is None:
                pending = asyncio.ensure_future(anext(sub))
            wait = HEARTBEAT_S if recheck is None else min(HEARTBEAT_S, recheck - loop_time())
            done, _ = await asyncio.wait({pending, closing}, timeout=max(0.0, wait),
                                         return_when=asyncio.FIRST_COMPLETED)
            if closing in done:
                break
            if pending not in done:
                if recheck is None or loop_time() < recheck:
                    await response.write(b": keep-alive\n\n")
                continue
            try:
                event = pending.result()
            except StopAsyncIteration:
                break
            pending = None
            await response.write(_sse(event))
            sent = event.seq
            if event.kind in stream_end.END_KINDS:
                recheck = loop_time()
    except ConnectionError:
        pass  # the observer went away; it resumes with Last-Event-ID
    finally:
        for future in (pending, closing):
            if future is not None:
                future.cancel()
        sub.close()
    return response


@routes.post("/api/v1/sessions/{session_id}/notes")
async def add_note(request: web.Request) -> web.Response:
    user, session = await visible_session(request)
    body = await json_body(request, {"text": str}, {"kind": str, "at_seq": int})
    text = body["text"].strip()
    kind = body.get("kind", E.NOTE)
    if not text or len(text) > NOTE_CHARS:
        raise Unprocessable(f"A note or hint has 1 to {NOTE_CHARS:,} characters ('text'); this"
                           f" one has {len(text):,}.")
    if kind not in (E.NOTE, E.HINT):
        raise Unprocessable("'kind' must be 'note' or 'hint'.")
    payload: dict[str, Any] = {"text": text}
    if kind == E.HINT:
        # Given to the candidate: their JupyterLab panel shows it (server/workspace/
        # panel_facts.py). Hints recorded before the panel existed lack this and stay private.
        payload["shown"] = True
    if "at_seq" in body:
        if body["at_seq"] < 0:
            raise Unprocessable("'at_seq' must not be negative.")
        payload["at_seq"] = body["at_seq"]
    event = Event(session.id, E.interviewer_actor(user.id), kind, "", payload)
    stored = await request.app[RECORDING].record_stored(event)
    return web.json_response({"event": stored.to_dict()}, status=201)


# ---- the workspace at any moment -------------------------------------------------------------


def _snapshot_json(found: tuple[int, str, datetime]) -> dict[str, Any]:
    seq, commit, at = found
    return {"seq": seq, "commit": commit, "at": clock.iso(at)}


async def _snapshot(request: web.Request, session_id: str, at: int) -> dict[str, Any]:
    found = await request.app[DB].read(lambda d: snapshot_at(d, session_id, at))
    if found is None:
        raise NotFound("No snapshot of this session's workspace was recorded yet.")
    return _snapshot_json(found)


def _history(request: web.Request, session_id: str) -> History:
    return request.app[RECORDING].history(session_id)


@routes.get("/api/v1/sessions/{session_id}/snapshots")
async def list_snapshots(request: web.Request) -> web.Response:
    _, session = await visible_session(request)
    rows = await request.app[DB].read(lambda d: d.execute(
        "SELECT seq, commit_sha, at FROM snapshots WHERE session_id = ? ORDER BY seq, at",
        [session.id]).fetchall())
    return web.json_response({"snapshots": [
        _snapshot_json((row[0], row[1], datetime.fromisoformat(row[2]))) for row in rows]})


@routes.get("/api/v1/sessions/{session_id}/tree")
async def tree(request: web.Request) -> web.Response:
    _, session = await visible_session(request)
    at = query_number(request, "at", None)
    snap = await _snapshot(request, session.id, LATEST if at is None else at)
    start = await _snapshot(request, session.id, 0)
    history = _history(request, session.id)
    files = await history.atree_at(snap["commit"])
    changes = dict((path, status) for status, path in await asyncio.to_thread(
        history.changed_paths, start["commit"], snap["commit"]))
    large = {f.path for f in await asyncio.to_thread(history.large_files, snap["commit"])}
    letters = {"A": "added", "M": "modified", "T": "modified"}
    status = {path: letters.get(changes.get(path, ""), "unchanged") for path, _ in files}
    start_paths = {path for path, _ in await history.atree_at(start["commit"])}
    files, large, status, deleted, newest = await exact_files.tree_at(
        request.app[DB], session.id, LATEST if at is None else at, snap["seq"], files, large,
        status, start_paths)
    return web.json_response({
        "at": at, "snapshot": snap, "events_to": newest,
        "files": [{"path": path, "size": size, "status": status.get(path, "unchanged"),
                   "large": path in large} for path, size in files],
        "deleted": deleted,
    })


def _path(request: web.Request) -> str:
    path = request.query.get("path", "")
    parts = path.split("/")
    if not path or len(path) > 4096 or "\0" in path or path.startswith("/") or \
            any(p in ("", ".", "..") for p in parts):
        raise Unprocessable("'path' must be a relative file path inside the workspace.")
    return path


@routes.get("/api/v1/sessions/{session_id}/file")
async def file(request: web.Request) -> web.Response:
    _, session = await visible_session(request)
    at = query_number(request, "at", None)
    path = _path(request)
    snap = await _snapshot(request, session.id, LATEST if at is None else at)
    history = _history(request, session.id)
    body: dict[str, Any] = {"path": path, "at": at, "snapshot": snap, "exists": True,
                            "kind": "text", "size": None, "sha256": None, "text": None,
                            "source": "snapshot", "seq": snap["seq"]}
    exact = await exact_files.file_at(request.app[DB], history, session.id,
                                      LATEST if at is None else at, path, snap["seq"])
    if exact is not None:
        return web.json_response({**body, **exact})
    large = {f.path: f for f in await asyncio.to_thread(history.large_files, snap["commit"])}
    if path in large:
        body.update(kind="large", size=large[path].size, sha256=large[path].sha256)
        return web.json_response(body)
    content = await history.afile_at(snap["commit"], path)
    if content is None:
        body.update(exists=False, kind="missing")
        return web.json_response(body)
    body.update(exact_files.describe(content))
    return web.json_response(body)


@routes.get("/api/v1/sessions/{session_id}/diff")
async def diff(request: web.Request) -> web.Response:
    _, session = await visible_session(request)
    first, last = query_number(request, "from", 0), query_number(request, "to", None)
    old = await _snapshot(request, session.id, first or 0)
    new = await _snapshot(request, session.id, LATEST if last is None else last)
    history = _history(request, session.id)
    files = await asyncio.to_thread(history.changed_paths, old["commit"], new["commit"])
    text = await history.adiff(old["commit"], new["commit"])
    return web.json_response({"from": old, "to": new,
                              "files": [{"status": s, "path": p} for s, p in files],
                              "diff": text})


# ---- export ---------------------------------------------------------------------------------


def _archive(settings: Settings, session_id: str, work: Path) -> Path:
    db = connect(settings.db_path)
    try:
        export_session(db, settings.data_dir, session_id, work / f"session-{session_id}")
    finally:
        db.conn.close()
    archive = work / "archive.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(work / f"session-{session_id}", arcname=f"session-{session_id}")
    return archive


@routes.get("/api/v1/sessions/{session_id}/export")
async def export(request: web.Request) -> web.StreamResponse:
    _, session = await visible_session(request)
    settings = request.app[SETTINGS]
    base = settings.data_dir / "exports"
    base.mkdir(mode=0o700, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=base))
    try:
        archive = await asyncio.to_thread(_archive, settings, session.id, work)
        response = web.StreamResponse(headers={
            "Content-Type": "application/gzip", "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff", "Content-Security-Policy": CSP,
            "Content-Disposition": f'attachment; filename="session-{session.id}.tar.gz"'})
        response.content_length = archive.stat().st_size
        await response.prepare(request)
        with archive.open("rb") as handle:
            while chunk := await asyncio.to_thread(handle.read, 1 << 20):
                await response.write(chunk)
        await response.write_eof()
        return response
    finally:
        await asyncio.to_thread(remove_tree, work)


async def end_streams(app: web.Application) -> None:
    """``on_shutdown``: live streams end before the server waits for its handlers."""
    if RECORDING in app:
        app[RECORDING].closing.set()
