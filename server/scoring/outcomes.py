"""Hiring outcomes: admin page and forms, JSON API and CSV import (thin handlers over
``scoring.outcomes`` and ``scoring.outcome_import``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

import sqlite_utils
from aiohttp import web

from common import audit
from common.errors import BadRequest
from scoring import outcome_import, outcome_table, outcomes
from server.http.auth import client_address, require_admin
from server.http.bodies import json_body
from server.http.keys import DB
from server.http.pages import render
from server.people.accounts import User

routes = web.RouteTableDef()
CSV_TYPES = ("text/csv", "text/plain", "application/csv")
FORM_FLAGS: Mapping[str, bool | None] = {"": None, "yes": True, "no": False}


def _audited_record(
    admin: User, address: str, session_id: str, changes: dict[str, Any], source: str
) -> Callable[[sqlite_utils.Database], outcomes.Outcome]:
    def run(d: sqlite_utils.Database) -> outcomes.Outcome:
        outcome = outcomes.record_outcome(d, session_id, changes, admin.id)
        _audit(d, admin, address, session_id, changes, source)
        return outcome

    return run


def _audit(
    d: sqlite_utils.Database, admin: User, address: str, session_id: str,
    changes: Mapping[str, Any], source: str,
) -> None:
    detail = {k: v for k, v in changes.items() if k != "note"}
    audit.record(d, admin.actor(address), "outcome.recorded", "session", session_id,
                 source=source, note_changed="note" in changes, **detail)


def _import(
    admin: User, address: str, raw: bytes
) -> Callable[[sqlite_utils.Database], outcome_import.ImportResult]:
    def run(d: sqlite_utils.Database) -> outcome_import.ImportResult:
        result = outcome_import.import_csv(d, raw, admin.id)
        for session_id, _, changes in result.imported:
            _audit(d, admin, address, session_id, changes, "csv")
        return result

    return run


def _set_baseline(
    admin: User, address: str, value: Any
) -> Callable[[sqlite_utils.Database], outcomes.Baseline]:
    def run(d: sqlite_utils.Database) -> outcomes.Baseline:
        baseline = outcomes.set_baseline(d, value, admin.id)
        audit.record(d, admin.actor(address), "outcome.baseline_set", "baseline",
                     baseline.name, value=baseline.value)
        return baseline

    return run


def _outcome_of(
    session_id: str,
) -> Callable[[sqlite_utils.Database], outcomes.Outcome | None]:
    def run(d: sqlite_utils.Database) -> outcomes.Outcome | None:
        outcomes.session_state(d, session_id)  # 404 for an unknown session
        return outcomes.get_outcome(d, session_id)

    return run


# ---- JSON API ----------------------------------------------------------------------------


@routes.get("/api/v1/sessions/{session_id}/outcome")
async def api_get_outcome(request: web.Request) -> web.Response:
    require_admin(request)
    session_id = request.match_info["session_id"]
    outcome = await request.app[DB].read(_outcome_of(session_id))
    return web.json_response(
        {"session_id": session_id, "outcome": outcome.public() if outcome else None}
    )


@routes.put("/api/v1/sessions/{session_id}/outcome")
async def api_put_outcome(request: web.Request) -> web.Response:
    admin = require_admin(request)
    session_id = request.match_info["session_id"]
    changes = await json_body(request, {}, {name: object for name in outcomes.FIELDS})
    outcome = await request.app[DB].write(
        _audited_record(admin, client_address(request), session_id, changes, "api")
    )
    return web.json_response({"session_id": session_id, "outcome": outcome.public()})


@routes.post("/api/v1/outcomes/import")
async def api_import(request: web.Request) -> web.Response:
    admin = require_admin(request)
    if request.content_type not in CSV_TYPES:
        raise BadRequest("Send the CSV file as the body with 'Content-Type: text/csv'.")
    raw = await request.read()
    result = await request.app[DB].write(_import(admin, client_address(request), raw))
    return web.json_response({"imported": len(result.imported), "skipped": result.skipped})


@routes.get("/api/v1/outcomes/baseline")
async def api_get_baseline(request: web.Request) -> web.Response:
    require_admin(request)
    baseline = await request.app[DB].read(outcomes.get_baseline)
    return web.json_response({"baseline": baseline.public() if baseline else None})


@routes.put("/api/v1/outcomes/baseline")
async def api_put_baseline(request: web.Request) -> web.Response:
    admin = require_admin(request)
    body = await json_body(request, {"value": object})
    set_it = _set_baseline(admin, client_address(request), body["value"])
    baseline = await request.app[DB].write(set_it)
    return web.json_response({"baseline": baseline.public()})


# ---- page and forms ----------------------------------------------------------------------


async def _page(request: web.Request, status: int = 200, **extra: Any) -> web.Response:
    require_admin(request)
    sessions = await request.app[DB].read(outcomes.ended_sessions_with_outcomes)
    baseline = await request.app[DB].read(outcomes.get_baseline)
    context = {
        "sessions": sessions,
        "baseline": baseline, "columns": outcome_import.COLUMNS, **extra,
    }
    return render(request, "outcomes.html", context, status=status)


def _form_flag(name: str, text: str) -> bool | None:
    if text not in FORM_FLAGS:
        raise outcomes.OutcomeInvalid([(name, "choose yes, no or not known")])
    return FORM_FLAGS[text]


def _form_number(name: str, text: str) -> float | None:
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise outcomes.OutcomeInvalid([(name, f"{text[:40]!r} is not a number")]) from None


@routes.get("/outcomes")
async def outcomes_page(request: web.Request) -> web.Response:
    return await _page(request)


@routes.post("/outcomes/sessions/{session_id}")
async def outcome_submit(request: web.Request) -> web.Response:
    admin = require_admin(request)
    session_id = request.match_info["session_id"]
    form = await request.post()
    try:  # the form shows every stored field, so it sends them all
        changes = {
            "hired": _form_flag("hired", str(form.get("hired", ""))),
            "employed_6m": _form_flag("employed_6m", str(form.get("employed_6m", ""))),
            "performance": _form_number("performance", str(form.get("performance", "")).strip()),
            "note": str(form.get("note", "")).strip(),
        }
        await request.app[DB].write(
            _audited_record(admin, client_address(request), session_id, changes, "form")
        )
    except outcomes.OutcomeInvalid as exc:
        return await _page(request, 422, error=exc.message, error_session=session_id)
    raise web.HTTPSeeOther(f"/outcomes#outcome-{session_id}")


def _save_table(
    admin: User, address: str, rows: list[outcome_table.RowInput]
) -> Callable[[sqlite_utils.Database], list[tuple[str, dict[str, Any]]]]:
    def run(d: sqlite_utils.Database) -> list[tuple[str, dict[str, Any]]]:
        saved = outcome_table.save_table(d, rows, admin.id)
        for session_id, changes in saved:
            _audit(d, admin, address, session_id, changes, "table")
        return saved

    return run


@routes.post("/outcomes/table")
async def table_submit(request: web.Request) -> web.Response:
    """The whole table at once: one ``session`` field per row, then ``<field>:<session id>``."""
    admin = require_admin(request)
    form = await request.post()
    session_ids = [str(v) for v in form.getall("session", [])][:5000]
    rows = [outcome_table.RowInput(sid, {name: str(form.get(f"{name}:{sid}", ""))
                                         for name in outcome_table.TEXT_FIELDS})
            for sid in session_ids]
    try:
        saved = await request.app[DB].write(_save_table(admin, client_address(request), rows))
    except outcome_table.TableRejected as exc:
        typed = {row.session_id: row.texts for row in rows}
        return await _page(request, 422, table_error=exc.message, row_problems=exc.problems,
                           typed=typed)
    return await _page(request, table_saved=len(saved))


def _preview(raw: bytes) -> Callable[[sqlite_utils.Database], tuple[
        list[outcome_import.Planned], int, dict[str, str]]]:
    def run(d: sqlite_utils.Database) -> tuple[list[outcome_import.Planned], int,
                                               dict[str, str]]:
        planned, skipped = outcome_import.preview_csv(d, raw)
        names = {s["id"]: s["candidate_name"] for s, _ in
                 outcomes.ended_sessions_with_outcomes(d)}
        return planned, skipped, names

    return run


@routes.post("/outcomes/paste")
async def paste_submit(request: web.Request) -> web.Response:
    """Pasted CSV text: ``action=preview`` shows what would change (nothing stored);
    ``action=import`` stores it all or nothing."""
    admin = require_admin(request)
    form = await request.post()
    text = str(form.get("csv", ""))
    raw = text.encode()
    if not text.strip():
        return await _page(request, 422, paste_error="Paste the CSV text first.", pasted=text)
    try:
        if form.get("action") == "import":
            result = await request.app[DB].write(_import(admin, client_address(request), raw))
            return await _page(request, paste_imported=len(result.imported))
        planned, skipped, names = await request.app[DB].read(_preview(raw))
    except outcome_import.ImportRejected as exc:
        return await _page(request, 422, paste_error=exc.message, paste_lines=exc.lines,
                           paste_rows=[] if exc.lines else exc.rows, pasted=text)
    return await _page(request, preview=planned, preview_skipped=skipped, names=names,
                       pasted=text)


@routes.post("/outcomes/import")
async def import_submit(request: web.Request) -> web.Response:
    admin = require_admin(request)
    form = await request.post()
    upload = form.get("file")
    if isinstance(upload, web.FileField):
        raw = await asyncio.to_thread(upload.file.read)
    else:
        raw = str(form.get("csv", "")).encode()
    if not raw.strip():
        return await _page(request, 422, import_error="Choose a CSV file (or paste its text).")
    try:
        result = await request.app[DB].write(_import(admin, client_address(request), raw))
    except outcome_import.ImportRejected as exc:
        return await _page(request, 422, import_error=exc.message, import_rows=exc.rows)
    return await _page(
        request, imported=len(result.imported), skipped=result.skipped
    )


@routes.post("/outcomes/baseline")
async def baseline_submit(request: web.Request) -> web.Response:
    admin = require_admin(request)
    form = await request.post()
    try:
        value = _form_number("value", str(form.get("value", "")).strip())
        if value is None:
            raise outcomes.OutcomeInvalid([("value", "enter a rate above 0 and at most 1")])
        await request.app[DB].write(_set_baseline(admin, client_address(request), value))
    except outcomes.OutcomeInvalid as exc:
        return await _page(request, 422, baseline_error=exc.message)
    raise web.HTTPSeeOther("/outcomes#baseline")
