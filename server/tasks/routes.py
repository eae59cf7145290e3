"""Task catalogue: JSON API and admin pages (thin: parse -> call tasks/ -> serialise)."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import tempfile
from pathlib import Path
from typing import Any

from aiohttp import web

from common import audit
from common.errors import Unprocessable
from server.http.auth import client_address, current_user, require_admin
from server.http.bodies import json_body
from server.http.keys import DB, SETTINGS
from server.http.pages import render
from server.people.accounts import User
from server.tasks.service import (
    IMPORTS,
    STORE,
    accept_findings,
    check_source,
    import_sources,
    require_runnable,
)
from tasks import acceptances, review_summary, revisions
from tasks.errors import RulesTextInvalid, TaskError
from tasks.hints import Rule, rules_of
from tasks.import_steps import step_states
from tasks.importer import ImportRequest
from tasks.rulestext import add_rules, check_rules_text

routes = web.RouteTableDef()
MAX_RULES_BYTES = 64 * 1024
RULES_NAME = "rules.toml"


def _check_rules(rules: str) -> None:
    """Bad rules TOML is said now, not after a fetch."""
    if len(rules.encode()) > MAX_RULES_BYTES:
        raise Unprocessable(f"the rules must be at most {MAX_RULES_BYTES} bytes of TOML")
    if rules:
        check_rules_text(rules)


def _rules_file(rules: str | None) -> Path | None:
    """A ``--rules`` TOML text from a request (checked), written as ``rules.toml`` (the name that
    problems are reported under) in a private temp folder, which the import removes when it
    ends."""
    if not rules:
        return None
    path = Path(tempfile.mkdtemp(prefix="pairlab-rules-")) / RULES_NAME
    path.write_text(rules, encoding="utf-8")
    return path


async def _start_import(
    request: web.Request, admin: User, url: str, ref: str, subdir: str, rules: str
) -> str:
    if not url.strip():
        raise Unprocessable("Give the git URL of the task source.")
    req = ImportRequest(
        url=url.strip(), ref=ref.strip() or None, subdir=subdir.strip() or None,
        rules_file=None, created_by=admin.email,
    )
    _check_rules(rules)
    # A refused source is said now (InvalidSource, 400), with no import started.
    await asyncio.to_thread(check_source, request.app[SETTINGS], req.url, req.ref, req.subdir)
    rules_file = await asyncio.to_thread(_rules_file, rules)
    req = dataclasses.replace(req, rules_file=rules_file)
    try:
        return await request.app[IMPORTS].start(req, admin.actor(client_address(request)))
    except BaseException:
        if rules_file is not None:
            shutil.rmtree(rules_file.parent, ignore_errors=True)
        raise


async def _decide(request: web.Request, action: str) -> revisions.Revision:
    admin = require_admin(request)
    rev_id = request.match_info["rev_id"]
    actor = admin.actor(client_address(request))
    findings: list[dict[str, Any]] = []
    if action == "publish":
        rev, findings = await _revision_findings(request, rev_id)
        left = await request.app[DB].read(
            lambda d: len(acceptances.unaccepted(d, rev_id, findings)))
        await asyncio.to_thread(require_runnable, request.app[SETTINGS], rev, None, left)

    def run(d: Any) -> revisions.Revision:
        if action == "publish":
            rev = revisions.publish(d, rev_id, findings)
        elif action == "reject":
            rev = revisions.reject(d, rev_id)
        else:
            rev = revisions.acknowledge_flags(d, rev_id, admin.email)
        audit.record(d, actor, f"task.revision.{action}", "task_revision", rev_id)
        return rev

    return await request.app[DB].write(run)


async def _revision_findings(
    request: web.Request, rev_id: str
) -> tuple[revisions.Revision, list[dict[str, Any]]]:
    rev = await request.app[DB].read(lambda d: revisions.get_revision(d, rev_id))
    report = await asyncio.to_thread(request.app[STORE].report, rev.task_id, rev.id)
    return rev, acceptances.report_findings(report)


async def _accept(request: web.Request, finding: str, path: str, reason: str
                  ) -> list[acceptances.Acceptance]:
    """Accept one post-scan finding (or every finding of one file) with a reason, audited."""
    admin = require_admin(request)
    rev_id = request.match_info["rev_id"]
    actor = admin.actor(client_address(request))
    _rev, findings = await _revision_findings(request, rev_id)

    def run(d: Any) -> list[acceptances.Acceptance]:
        return accept_findings(d, actor, rev_id, findings, reason, admin.email,
                               finding=finding, path=path)

    return await request.app[DB].write(run)


# ---- API ------------------------------------------------------------------------------------


@routes.post("/api/v1/tasks/imports")
async def api_import(request: web.Request) -> web.Response:
    admin = require_admin(request)
    body = await json_body(
        request, {"url": str}, {"ref": str, "subdir": str, "rules": str}
    )
    import_id = await _start_import(
        request, admin, body["url"], body.get("ref", ""), body.get("subdir", ""),
        body.get("rules", ""),
    )
    return web.json_response(
        {"import_id": import_id, "status_url": f"/api/v1/tasks/imports/{import_id}"},
        status=202,
    )


@routes.get("/api/v1/tasks/imports/{import_id}")
async def api_import_status(request: web.Request) -> web.Response:
    require_admin(request)
    import_id = request.match_info["import_id"]
    row = await request.app[DB].read(lambda d: revisions.get_import(d, import_id))
    return web.json_response({"import": row})


@routes.get("/api/v1/tasks")
async def api_tasks(request: web.Request) -> web.Response:
    current_user(request)
    tasks = await request.app[DB].read(revisions.list_tasks)
    return web.json_response({"tasks": tasks})


@routes.get("/api/v1/tasks/{task_id}")
async def api_task(request: web.Request) -> web.Response:
    current_user(request)
    task_id = request.match_info["task_id"]
    task = await request.app[DB].read(lambda d: revisions.get_task(d, task_id))
    return web.json_response({"task": task})


@routes.get("/api/v1/task-revisions/{rev_id}")
async def api_revision(request: web.Request) -> web.Response:
    require_admin(request)
    rev_id = request.match_info["rev_id"]
    rev = await request.app[DB].read(lambda d: revisions.get_revision(d, rev_id))
    report = await asyncio.to_thread(request.app[STORE].report, rev.task_id, rev.id)
    accepted = await request.app[DB].read(lambda d: acceptances.list_acceptances(d, rev_id))
    report["post_scan"]["findings"] = acceptances.report_findings(report)
    return web.json_response({
        "revision": rev.public(), "report": report,
        "acceptances": [a.to_dict() for a in accepted.values()],
    })


@routes.post("/api/v1/task-revisions/{rev_id}/acceptances")
async def api_accept(request: web.Request) -> web.Response:
    body = await json_body(request, {"reason": str}, {"finding": str, "path": str})
    done = await _accept(request, body.get("finding", ""), body.get("path", ""),
                         body["reason"])
    return web.json_response({"acceptances": [a.to_dict() for a in done]}, status=201)


@routes.get("/api/v1/task-revisions/{rev_id}/diff")
async def api_revision_diff(request: web.Request) -> web.Response:
    require_admin(request)
    rev_id = request.match_info["rev_id"]
    rev = await request.app[DB].read(lambda d: revisions.get_revision(d, rev_id))
    files = await asyncio.to_thread(request.app[STORE].diff, rev.task_id, rev.id)
    return web.json_response({"files": files})


@routes.post("/api/v1/task-revisions/{rev_id}/publish")
async def api_publish(request: web.Request) -> web.Response:
    return web.json_response({"revision": (await _decide(request, "publish")).public()})


@routes.post("/api/v1/task-revisions/{rev_id}/reject")
async def api_reject(request: web.Request) -> web.Response:
    return web.json_response({"revision": (await _decide(request, "reject")).public()})


@routes.post("/api/v1/task-revisions/{rev_id}/acknowledge")
async def api_acknowledge(request: web.Request) -> web.Response:
    return web.json_response({"revision": (await _decide(request, "acknowledge")).public()})


# ---- pages ----------------------------------------------------------------------------------


@routes.get("/admin/tasks")
async def tasks_page(request: web.Request) -> web.Response:
    require_admin(request)

    def load(d: Any) -> tuple[Any, Any, Any]:
        return revisions.list_tasks(d), revisions.list_revisions(d), revisions.list_imports(d)

    tasks, revs, imports = await request.app[DB].read(load)
    return render(request, "tasks.html", {
        "tasks": tasks, "revisions": revs,
        "imports": imports, "sources": import_sources(request.app[SETTINGS]),
    })


@routes.post("/admin/tasks/imports")
async def tasks_import_submit(request: web.Request) -> web.Response:
    admin = require_admin(request)
    form = await request.post()
    fields = {name: str(form.get(name, "")) for name in ("url", "ref", "subdir", "rules")}
    try:
        import_id = await _start_import(
            request, admin, fields["url"], fields["ref"], fields["subdir"], fields["rules"]
        )
    except (TaskError, Unprocessable) as exc:  # the form again, as typed, with what to fix
        return render(request, "task_import_form.html",
                      {"form": fields, "error": exc.message, "added": [], "rev": None,
                       "sources": import_sources(request.app[SETTINGS])},
                      status=exc.status)
    raise web.HTTPSeeOther(f"/admin/tasks/imports/{import_id}")


def missing_local_source(url: str) -> bool:
    """A revision's source that was a local folder (a path or ``file://``) no longer there:
    ``pairlab demo`` imports its built-in tasks from a temporary copy."""
    path = url.removeprefix("file://") if url.startswith(("file://", "/")) else None
    if path is None:
        return False
    try:
        return not Path(path).is_dir()
    except OSError:  # a parent this server may not enter: not there for an import either
        return True


@routes.get("/admin/tasks/revisions/{rev_id}/reimport")
async def reimport_page(request: web.Request) -> web.Response:
    """The import form for ``rev``'s source, its rules text with the rules of the chosen
    possible identifiers (``?hint=<id>``, repeatable) added: one submit imports it again."""
    require_admin(request)
    rev_id = request.match_info["rev_id"]
    rev = await request.app[DB].read(lambda d: revisions.get_revision(d, rev_id))
    report = await asyncio.to_thread(request.app[STORE].report, rev.task_id, rev.id)
    stored = {h["id"]: h for h in report.get("possible_identifiers", {}).get("hints", [])}
    chosen = list(dict.fromkeys(request.query.getall("hint", [])))
    unknown = [h for h in chosen if h not in stored]
    if unknown:
        raise Unprocessable(f"{rev.id} has no possible identifier {unknown[0][:20]!r}")
    added: list[Rule] = []
    for hint_id in chosen:
        added.extend(r for r in rules_of(stored[hint_id]) if r not in added)
    base = str(report.get("import_rules", ""))
    error = None
    try:
        rules = add_rules(base, added) if added else base
    except RulesTextInvalid as exc:
        rules, error = base, f"{exc.message}; add the rules below by hand"
    gone = rev.source_url if missing_local_source(rev.source_url) else None
    fields = {"url": "" if gone else rev.source_url, "ref": rev.source_ref,
              "subdir": rev.source_subdir, "rules": rules}
    return render(request, "task_import_form.html", {
        "form": fields, "error": error, "added": [r.toml() for r in added], "rev": rev,
        "gone_source": gone,
        "rules_known": "import_rules" in report, "sources": import_sources(request.app[SETTINGS]),
    })


@routes.get("/admin/tasks/imports/{import_id}")
async def import_page(request: web.Request) -> web.Response:
    require_admin(request)
    import_id = request.match_info["import_id"]
    row = await request.app[DB].read(lambda d: revisions.get_import(d, import_id))
    response = render(request, "task_import.html",
                      {"imp": row, "steps": step_states(row["steps"], row["status"])})
    if row["status"] == "running":
        response.headers["Refresh"] = "2"
    return response


@routes.get("/admin/tasks/revisions/{rev_id}")
async def revision_page(request: web.Request) -> web.Response:
    require_admin(request)
    rev_id = request.match_info["rev_id"]
    rev = await request.app[DB].read(lambda d: revisions.get_revision(d, rev_id))
    store = request.app[STORE]
    report = await asyncio.to_thread(store.report, rev.task_id, rev.id)
    diff = await asyncio.to_thread(store.diff, rev.task_id, rev.id)
    accepted = await request.app[DB].read(lambda d: acceptances.list_acceptances(d, rev_id))
    findings = acceptances.report_findings(report)
    real = {f["path"] for f in findings if f["kind"] == "confusing-name"}
    files = sorted({acceptances.file_of(f["path"], real) for f in findings
                    if f["id"] not in accepted})  # files with a finding left to accept
    left = sum(1 for f in findings if f["id"] not in accepted)
    blocking = revisions.still_blocking(rev, left)
    summary = review_summary.summarise(report, diff, [f["id"] for f in findings], accepted,
                                       blocking, rev.flags_acknowledged_by)
    return render(request, "task_revision.html", {
        "rev": rev, "report": report, "blocking": blocking, "summary": summary,
        "diff": diff, "changed": review_summary.CHANGED,
        "findings": findings, "accepted": accepted, "finding_files": files,
        "max_reason": acceptances.MAX_REASON,
    })


@routes.post("/admin/tasks/revisions/{rev_id}/accept")
async def revision_accept_submit(request: web.Request) -> web.Response:
    require_admin(request)
    form = await request.post()
    await _accept(request, str(form.get("finding", "")), str(form.get("path", "")),
                  str(form.get("reason", "")))
    raise web.HTTPSeeOther(f"/admin/tasks/revisions/{request.match_info['rev_id']}#findings")


@routes.post("/admin/tasks/revisions/{rev_id}/{action:publish|reject|acknowledge}")
async def revision_decide_submit(request: web.Request) -> web.Response:
    rev = await _decide(request, request.match_info["action"])
    raise web.HTTPSeeOther(f"/admin/tasks/revisions/{rev.id}")
