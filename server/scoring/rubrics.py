"""Rubrics: JSON API and pages. Everyone logged in reads them; admins create, edit (each
edit is a new version) and attach them to tasks.

- ``GET /api/v1/rubrics`` → ``{"rubrics": [Rubric]}`` (latest versions).
- ``GET /api/v1/rubrics/{id}?version=N`` → ``{"rubric": Rubric, "versions": [...]}``.
- ``POST /api/v1/rubrics`` (admin) with a definition → 201 ``{"rubric": Rubric}``.
- ``PUT /api/v1/rubrics/{id}`` (admin) → ``{"rubric": Rubric}``, the next version.
- ``PUT /api/v1/tasks/{task_id}/rubric`` (admin) ``{"rubric_id"}`` → attach.

``Rubric`` is ``{"id", "version", "builtin", "title", "description", "kinds", "roles",
"dimensions": [{"id", "title", "description", "weight", "anchors": {"1".."4": text}}]}``.
Invalid definitions get a 422 whose message (and ``problems`` list) names every problem.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from common import audit
from common.errors import Unprocessable
from scoring import rubric_form
from scoring import rubrics as R
from server.http.auth import client_address, current_user, require_admin
from server.http.bodies import (
    MAX_JSON_DEPTH,
    JSONTooDeep,
    json_body,
    json_object,
    load_json,
    whole_number,
)
from server.http.keys import DB
from server.http.pages import render
from server.people.accounts import User
from tasks import revisions
from tasks.manifest import KINDS, ROLES

routes = web.RouteTableDef()


def _save(d: Any, data: Any, user: User, address: str, *, new: bool) -> R.Rubric:
    # a RubricError (422 with every problem) and RubricNotFound (404) are answered by the
    # error middleware
    rubric = R.save_version(d, data, user.id, expect_new=new)
    audit.record(d, user.actor(address), "rubric.created" if new else "rubric.edited",
                 "rubric", rubric.id, version=rubric.version)
    return rubric


def _get(d: Any, rubric_id: str, version: int | None) -> tuple[R.Rubric, list[dict[str, Any]]]:
    return R.get_rubric(d, rubric_id, version), R.versions(d, rubric_id)


def _version(request: web.Request) -> int | None:
    raw = request.query.get("version")
    if raw is None:
        return None
    version = whole_number(raw, 6)
    if version is None or not 1 <= version <= 100_000:
        raise Unprocessable("version must be a positive whole number")
    return version


def _attach(d: Any, task_id: str, rubric_id: str, user: User, address: str) -> None:
    revisions.get_task(d, task_id)
    R.attach(d, task_id, rubric_id, user.id)
    audit.record(d, user.actor(address), "rubric.attached", "task", task_id, rubric=rubric_id)


@routes.get("/api/v1/rubrics")
async def api_list(request: web.Request) -> web.Response:
    current_user(request)
    found = await request.app[DB].read(R.list_rubrics)
    return web.json_response({"rubrics": [r.public() for r in found]})


@routes.get("/api/v1/rubrics/{rubric_id}")
async def api_get(request: web.Request) -> web.Response:
    current_user(request)
    rubric_id, version = request.match_info["rubric_id"], _version(request)
    rubric, versions = await request.app[DB].read(lambda d: _get(d, rubric_id, version))
    return web.json_response({"rubric": rubric.public(), "versions": versions})


@routes.post("/api/v1/rubrics")
async def api_create(request: web.Request) -> web.Response:
    user = require_admin(request)
    data = await json_object(request)
    address = client_address(request)
    rubric = await request.app[DB].write(lambda d: _save(d, data, user, address, new=True))
    return web.json_response({"rubric": rubric.public()}, status=201)


@routes.put("/api/v1/rubrics/{rubric_id}")
async def api_edit(request: web.Request) -> web.Response:
    user = require_admin(request)
    data = await json_object(request)
    if data.get("id", request.match_info["rubric_id"]) != request.match_info["rubric_id"]:
        raise Unprocessable("The rubric id in the body differs from the one in the URL.")
    data["id"] = request.match_info["rubric_id"]
    address = client_address(request)
    rubric = await request.app[DB].write(lambda d: _save(d, data, user, address, new=False))
    return web.json_response({"rubric": rubric.public()})


@routes.put("/api/v1/tasks/{task_id}/rubric")
async def api_attach(request: web.Request) -> web.Response:
    user = require_admin(request)
    body = await json_body(request, {"rubric_id": str})
    task_id, address = request.match_info["task_id"], client_address(request)
    await request.app[DB].write(lambda d: _attach(d, task_id, body["rubric_id"], user, address))
    return web.json_response({"task_id": task_id, "rubric_id": body["rubric_id"]})


# ---- pages ----------------------------------------------------------------------------------


async def _rubrics_page(request: web.Request, *, status: int = 200,
                        problems: list[str] | None = None, definition: str = "",
                        form: rubric_form.RubricDraft | None = None,
                        form_id: str = "", placed: rubric_form.Placed | None = None,
                        copied_from: str = "") -> web.Response:
    found = await request.app[DB].read(R.list_rubrics)
    placed = placed or rubric_form.Placed()
    return render(request, "rubrics.html", {
        "rubrics": found, "problems": problems or [], "definition": definition,
        "form": form or rubric_form.RubricDraft("", "", [], [], []), "form_id": form_id,
        "placed": placed, "form_problems": placed.all(), "kinds": KINDS, "roles": ROLES,
        "copied_from": copied_from}, status=status)


@routes.get("/rubrics")
async def rubrics_page(request: web.Request) -> web.Response:
    """The list, and for admins the new-rubric form (``?from=<id>``: a copy of that rubric's
    latest version, under a title and id of its own to choose)."""
    current_user(request)
    source = request.query.get("from", "")
    if not source:
        return await _rubrics_page(request)
    original = await request.app[DB].read(lambda d: R.get_rubric(d, source, None))
    draft = rubric_form.draft_of(original)
    draft.title = f"{original.title} (copy)"
    return await _rubrics_page(request, form=draft, copied_from=original.id)


async def _rubric_page(request: web.Request, rubric_id: str, *, draft: str | None = None,
                       problems: list[str] | None = None, status: int = 200,
                       form: rubric_form.RubricDraft | None = None,
                       placed: rubric_form.Placed | None = None) -> web.Response:
    current_user(request)
    version = _version(request)

    def load(d: Any) -> tuple[R.Rubric, list[dict[str, Any]], list[dict[str, Any]]]:
        rubric, versions = _get(d, rubric_id, version)
        return rubric, versions, revisions.list_tasks(d)

    rubric, versions, tasks = await request.app[DB].read(load)
    placed = placed or rubric_form.Placed()
    return render(request, "rubric.html", {
        "rubric": rubric, "versions": versions, "tasks": tasks, "problems": problems or [],
        "definition": draft or json.dumps(rubric.definition(), indent=2),
        "form": form or rubric_form.draft_of(rubric), "placed": placed,
        "form_problems": placed.all(), "kinds": KINDS, "roles": ROLES,
        "levels": R.LEVELS, "request_saved": "saved" in request.query}, status=status)


@routes.get("/rubrics/{rubric_id}")
async def rubric_page(request: web.Request) -> web.Response:
    return await _rubric_page(request, request.match_info["rubric_id"])


def _parse_definition(text: str) -> tuple[Any, list[str]]:
    try:
        return load_json(text), []
    except JSONTooDeep:
        return None, [f"the definition is nested too deeply (at most {MAX_JSON_DEPTH} levels)"]
    except json.JSONDecodeError as e:
        return None, [f"the definition is not valid JSON ({e.msg} at line {e.lineno})"]


@routes.post("/rubrics")
async def rubric_create_submit(request: web.Request) -> web.Response:
    user = require_admin(request)
    form = await request.post()
    if "definition" not in form:
        return await _create_from_form(request, form, user)
    text = str(form.get("definition", ""))
    data, problems = _parse_definition(text)
    address = client_address(request)
    if not problems:
        try:
            rubric = await request.app[DB].write(
                lambda d: _save(d, data, user, address, new=True))
        except R.RubricError as e:
            problems = e.problems
        else:
            raise web.HTTPSeeOther(f"/rubrics/{rubric.id}")
    return await _rubrics_page(request, status=422, problems=problems, definition=text)


async def _create_from_form(request: web.Request, form: Any, user: User) -> web.Response:
    """The new-rubric form: a definition from its fields (the id from the title if none was
    typed), validated as the JSON API validates; problems next to their fields."""
    draft = rubric_form.read_form(lambda name: [str(v) for v in form.getall(name, [])])
    typed = str(form.get("id", ""))
    address = client_address(request)

    def create(d: Any) -> tuple[R.Rubric | None, rubric_form.Placed, str]:
        taken = {r.id for r in R.list_rubrics(d)}
        rubric_id = rubric_form.new_rubric_id(typed, draft.title, taken)
        data, where = rubric_form.definition(rubric_id, draft)
        try:
            return _save(d, data, user, address, new=True), rubric_form.Placed(), rubric_id
        except R.RubricError as e:
            return None, rubric_form.place(draft, data, where, e.problems), rubric_id

    rubric, placed, rubric_id = await request.app[DB].write(create)
    if rubric is not None:
        raise web.HTTPSeeOther(f"/rubrics/{rubric.id}?saved=1")
    return await _rubrics_page(request, status=422, form=draft, placed=placed,
                               form_id=typed.strip() or rubric_id)


@routes.post("/rubrics/{rubric_id}")
async def rubric_edit_submit(request: web.Request) -> web.Response:
    user = require_admin(request)
    rubric_id = request.match_info["rubric_id"]
    form = await request.post()
    address = client_address(request)
    if "task_id" in form:
        task_id = str(form.get("task_id", ""))
        await request.app[DB].write(lambda d: _attach(d, task_id, rubric_id, user, address))
        raise web.HTTPSeeOther(f"/rubrics/{rubric_id}")
    if "definition" not in form:
        return await _form_submit(request, rubric_id, form, user, address)
    text = str(form.get("definition", ""))
    data, problems = _parse_definition(text)
    if not problems:
        if isinstance(data, dict):
            data["id"] = rubric_id
        try:
            await request.app[DB].write(lambda d: _save(d, data, user, address, new=False))
        except R.RubricError as e:
            problems = e.problems
        else:
            raise web.HTTPSeeOther(f"/rubrics/{rubric_id}")
    return await _rubric_page(request, rubric_id, draft=text, problems=problems, status=422)


async def _form_submit(request: web.Request, rubric_id: str, form: Any, user: User,
                       address: str) -> web.Response:
    """The editor form: a definition from its fields, validated as the JSON API validates."""
    draft = rubric_form.read_form(lambda name: [str(v) for v in form.getall(name, [])])
    data, where = rubric_form.definition(rubric_id, draft)
    try:
        await request.app[DB].write(lambda d: _save(d, data, user, address, new=False))
    except R.RubricError as e:
        placed = rubric_form.place(draft, data, where, e.problems)
        return await _rubric_page(request, rubric_id, status=422, form=draft, placed=placed)
    raise web.HTTPSeeOther(f"/rubrics/{rubric_id}?saved=1")
