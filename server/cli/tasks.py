"""``pairlab task ...``: import, list, show, publish, reject, acknowledge, accept, checkout."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from common import audit
from common.db import write_transaction
from server.db import open_migrated
from server.settings import Settings
from server.tasks.service import (
    accept_findings,
    import_config,
    record_revision_created,
    require_runnable,
    task_store,
)
from tasks import acceptances, revisions
from tasks.errors import RevisionNotFound
from tasks.importer import ImportRequest, install_revision, prepare_import
from tasks.source import validate_source

Adder = Any  # argparse's private _SubParsersAction type
CLI_HINTS = 10
"""Possible identifiers printed after an import (the report holds them all)."""


def add_task_commands(sub: Adder, add_setting_flags: Any) -> None:
    task = sub.add_parser("task", help="the task catalogue")
    tsub = task.add_subparsers(dest="task_command", required=True, metavar="TASK_COMMAND")

    imp = tsub.add_parser("import", help="import a task from a git repository")
    imp.add_argument("url", help="https:// URL (or a local path / file:// with --allow-local)")
    imp.add_argument("--ref", help="branch, tag or commit (default: the default branch)")
    imp.add_argument("--subdir", help="folder holding pairlab-task.toml")
    imp.add_argument("--rules", type=Path, help="TOML file with an [anonymise] table")
    imp.add_argument("--allow-local", action="store_true",
                     help="operator only: allow local paths, file:// URLs and loopback/private "
                          "hosts (as the git_allow_local setting does)")
    imp.add_argument("--publish", action="store_true",
                     help="publish the new revision at once if nothing blocks it")
    imp.add_argument("--json", action="store_true", help="machine-readable output")
    imp.set_defaults(func=cmd_import)

    lst = tsub.add_parser("list", help="list tasks and their revisions")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=cmd_list)

    show = tsub.add_parser("show", help="show a task or a revision with its report")
    show.add_argument("id", help="task id or revision id")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_show)

    for name, helptext in (("publish", "publish a revision (makes it current)"),
                           ("reject", "reject a revision in review"),
                           ("acknowledge", "acknowledge a revision's flagged files")):
        p = tsub.add_parser(name, help=helptext)
        p.add_argument("rev", help="revision id")
        p.add_argument("--json", action="store_true")
        p.set_defaults(func=cmd_decide, action=name)

    acc = tsub.add_parser("accept", help="accept a post-scan finding (or every finding of one "
                          "file) with a reason, so it no longer blocks publishing")
    acc.add_argument("rev", help="revision id")
    which = acc.add_mutually_exclusive_group(required=True)
    which.add_argument("--finding", default="", help="the finding's id (pairlab task show REV)")
    which.add_argument("--path", default="", help="a file: every finding in it and inside it")
    acc.add_argument("--reason", required=True, help="why it may be published (recorded)")
    acc.add_argument("--json", action="store_true")
    acc.set_defaults(func=cmd_accept)

    co = tsub.add_parser("checkout", help="write the tree a candidate's workspace would get")
    co.add_argument("rev", help="revision id")
    co.add_argument("dest", type=Path, help="a new or empty folder")
    co.set_defaults(func=cmd_checkout)

    for p in (imp, lst, show, co, acc, *[tsub.choices[n] for n in ("publish", "reject",
                                                                   "acknowledge")]):
        add_setting_flags(p, None)


def _print(data: Any, as_json: bool, text: str) -> None:
    print(json.dumps(data, indent=2, sort_keys=True) if as_json else text)


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    config = import_config(settings, allow_local=args.allow_local, cli=True)
    # A refused source is one line on stderr, before any progress is shown.
    validate_source(args.url, args.ref, args.subdir, config.policy)
    request = ImportRequest(args.url, args.ref, args.subdir, args.rules, "cli")
    tty = sys.stderr.isatty()

    def progress(step: str) -> None:
        if tty:
            print(f"\r\033[Kimport: {step}", end="", file=sys.stderr, flush=True)
        else:
            print(f"import: {step}", file=sys.stderr, flush=True)

    try:
        prepared = prepare_import(request, config, progress)
    finally:
        if tty:  # end the progress line, so an error starts on a line of its own
            print(file=sys.stderr)
    db = open_migrated(settings.db_path)
    with write_transaction(db):
        rev = install_revision(db, config.store, prepared)
        record_revision_created(db, audit.CLI, rev.id, prepared.summary)
    if args.publish and not prepared.summary["blockers"]:
        with write_transaction(db):
            rev = revisions.publish(db, rev.id)
            audit.record(db, audit.CLI, "task.revision.publish", "task_revision", rev.id)
    summary = prepared.summary
    lines = [
        f"revision {rev.id} ({rev.status})",
        f"  files {summary['files']}, replacements {summary['replacements']}, dropped "
        f"{summary['dropped']}, renamed {summary['renamed']}, flags {summary['flags']}",
        f"  post-scan findings {summary['post_scan_findings']}; visible tests "
        f"{summary['visible_tests']}; hidden checks on the solution "
        f"{summary['hidden_on_solution']}, on the starter {summary['hidden_on_starter']}",
    ]
    lines += [f"  blocks publishing: {b}" for b in summary["blockers"]]
    lines += [f"  role warning: {w}" for w in summary["role_warnings"]]
    lines += [f"  kept as declared: {k['entry']!r} x{k['count']}"
              + (" (the rewriter would have rewritten it)" if k["stops_rewrite"] else "")
              for k in summary["kept"]]
    shown = summary["possible_identifiers"][:CLI_HINTS]
    more = len(summary["possible_identifiers"]) - len(shown) + \
        summary["possible_identifiers_left_off"]
    if shown:
        lines.append(f"  possible identifiers (not declared; see `pairlab task show {rev.id}`):")
        lines += [f"    {h}" for h in shown]
        lines += [f"    and {more} more"] if more else []
    _print({"revision": rev.public(), "summary": summary}, args.json, "\n".join(lines))
    return 0


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    db = open_migrated(settings.db_path)
    tasks = revisions.list_tasks(db)
    revs = [r.public() for r in revisions.list_revisions(db)]
    text = "\n".join(
        f"{t['id']}\t{t['kind']}\tcurrent={t['current_revision'] or '-'}\t"
        f"revisions={t['revisions']}\t{t['title']}" for t in tasks
    ) or "no tasks"
    _print({"tasks": tasks, "revisions": revs}, args.json, text)
    return 0


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    db = open_migrated(settings.db_path)
    try:
        rev = revisions.get_revision(db, args.id)
    except RevisionNotFound:
        task = revisions.get_task(db, args.id)
        text = f"{task['id']}: {task['title']} ({task['kind']})\n" + "\n".join(
            f"  {r['id']}\t{r['status']}{' (current)' if r['current'] else ''}"
            for r in task["revision_list"]
        )
        _print({"task": task}, args.json, text)
        return 0
    report = task_store(settings).report(rev.task_id, rev.id)
    findings = acceptances.report_findings(report)
    accepted = acceptances.list_acceptances(db, rev.id)
    report["post_scan"]["findings"] = findings
    text = (f"{rev.id}: {rev.title} ({rev.kind}), {rev.status}\n  source {rev.source_url} "
            f"@ {rev.source_commit}\n  blockers: {'; '.join(report['blockers']) or 'none'}")
    for f in findings:
        a = accepted.get(f["id"])
        state = f"accepted by {a.accepted_by}: {a.reason}" if a else "not accepted"
        text += (f"\n  finding {f['id']}  {f['path']}:{f['line'] or ''}  {f['kind']}  "
                 f"{f['excerpt']}  ({state})")
    _print({"revision": rev.public(), "report": report,
            "acceptances": [a.to_dict() for a in accepted.values()]}, args.json, text)
    return 0


def cmd_decide(args: argparse.Namespace, settings: Settings) -> int:
    db = open_migrated(settings.db_path)
    findings: list[dict[str, Any]] = []
    if args.action == "publish":
        rev = revisions.get_revision(db, args.rev)
        findings = acceptances.report_findings(task_store(settings).report(rev.task_id, rev.id))
        left = len(acceptances.unaccepted(db, rev.id, findings))
        require_runnable(settings, rev, None, left)
    with write_transaction(db):
        if args.action == "publish":
            rev = revisions.publish(db, args.rev, findings)
        elif args.action == "reject":
            rev = revisions.reject(db, args.rev)
        else:
            rev = revisions.acknowledge_flags(db, args.rev, "cli")
        audit.record(db, audit.CLI, f"task.revision.{args.action}", "task_revision", rev.id)
    _print({"revision": rev.public()}, args.json, f"{rev.id} is now {rev.status}")
    return 0


def cmd_accept(args: argparse.Namespace, settings: Settings) -> int:
    db = open_migrated(settings.db_path)
    rev = revisions.get_revision(db, args.rev)
    findings = acceptances.report_findings(task_store(settings).report(rev.task_id, rev.id))
    with write_transaction(db):
        done = accept_findings(db, audit.CLI, rev.id, findings, args.reason, "cli",
                               finding=args.finding, path=args.path)
    left = len(acceptances.unaccepted(db, rev.id, findings))
    text = "\n".join(f"accepted {a.finding_id}  {a.path}  {a.kind}" for a in done)
    text += f"\n{left} post-scan finding(s) of {rev.id} not accepted"
    _print({"acceptances": [a.to_dict() for a in done], "unaccepted": left}, args.json, text)
    return 0


def cmd_checkout(args: argparse.Namespace, settings: Settings) -> int:
    rev = revisions.get_revision(open_migrated(settings.db_path), args.rev)
    dest = task_store(settings).checkout(rev.task_id, rev.id, args.dest)
    print(f"wrote {rev.id} to {dest}")
    return 0
