"""``pairlab session ...``: create, list, end. A running server notices changes within seconds
(its reconcile loop stops the workspace of a session ended here)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from common import audit
from common.db import write_transaction
from server.db import open_migrated
from server.people import accounts as people
from server.sessions import scheduling
from server.sessions.scheduling import ScheduleRequest, schedule
from server.settings import Settings
from workspaces import sessions as S
from workspaces.recording.archive import export_session


def add_session_commands(sub: Any, add_setting_flags: Any) -> None:
    session = sub.add_parser("session", help="interview sessions")
    ssub = session.add_subparsers(dest="session_command", required=True, metavar="SESSION_COMMAND")
    create = ssub.add_parser("create", help="schedule a session and print the candidate link")
    create.add_argument("--task", required=True, help="task id (current revision) or revision id")
    create.add_argument("--candidate", required=True, help="candidate display name")
    create.add_argument("--candidate-email", default="", help="candidate email (optional)")
    create.add_argument("--interviewer", action="append", required=True,
                        help="interviewer email (repeat for several)")
    create.add_argument("--duration", type=int, help="minutes (default: the task's)")
    create.add_argument("--starts-at", help="ISO 8601 start time (default: now)")
    create.add_argument("--role", default="", help=f"role hired for: {', '.join(S.ROLES)}")
    create.add_argument("--confirm", action="store_true",
                        help="schedule even if the task kind does not fit the role")
    create.add_argument("--blind", action=argparse.BooleanOptionalAction, default=None,
                        help="blind scoring (default: the blind_scoring setting)")
    create.add_argument("--json", action="store_true", help="machine-readable output")
    create.set_defaults(func=cmd_create)
    lst = ssub.add_parser("list", help="list sessions")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=cmd_list)
    end = ssub.add_parser("end", help="end a session (its workspace stops)")
    end.add_argument("id")
    end.set_defaults(func=cmd_end)
    export = ssub.add_parser(
        "export", help="write a session archive: DEST/events.jsonl, DEST/history.bundle, "
                       "DEST/final/")
    export.add_argument("id")
    export.add_argument("dest", type=Path, help="a new or empty folder")
    export.add_argument("--json", action="store_true", help="machine-readable summary")
    export.set_defaults(func=cmd_export)
    for p in (create, lst, end, export):
        add_setting_flags(p, None)


def cmd_create(args: argparse.Namespace, settings: Settings) -> int:
    db = open_migrated(settings.db_path)
    req = ScheduleRequest(
        task=args.task, candidate_name=args.candidate, candidate_email=args.candidate_email,
        interviewers=tuple(args.interviewer), duration_minutes=args.duration,
        starts_at=args.starts_at, role=args.role, confirm_role_mismatch=args.confirm,
        blind=args.blind,
    )
    with write_transaction(db):
        creator = people.find_user(db, args.interviewer[0])
        result = schedule(db, settings, audit.CLI, creator.id, req)
    if args.json:
        out = result.public()
        print(json.dumps({k: out[k] for k in ("session_id", "candidate_link", "interviewer_url",
                                               "warnings")}))
        return 0
    print(f"session {result.session.id} scheduled for {result.session.starts_at}")
    for warning in result.warnings:
        print(f"warning: {warning}")
    print(f"candidate link (send it to {result.session.candidate_name}): {result.candidate_link}")
    print(f"interviewer page: {result.interviewer_url}")
    return 0


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    found = S.list_sessions(open_migrated(settings.db_path))
    if args.json:
        print(json.dumps([s.public() for s in found], indent=2))
        return 0
    for s in found:
        print(f"{s.id}\t{s.state}\t{s.starts_at}\t{s.task_id}\t{s.candidate_name}")
    return 0


def cmd_end(args: argparse.Namespace, settings: Settings) -> int:
    db = open_migrated(settings.db_path)
    with write_transaction(db):
        session = scheduling.end(db, args.id, audit.CLI, "pairlab session end")
    print(f"{session.id} is now ended")
    return 0


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    db = open_migrated(settings.db_path)
    try:
        summary = export_session(db, settings.data_dir, args.id, args.dest)
    finally:
        db.conn.close()
    if args.json:
        print(json.dumps(summary))
        return 0
    final = summary["final"]
    print(f"exported session {summary['session_id']} to {args.dest}: {summary['events']} events, "
          f"{summary['snapshots']} snapshots, {final['files']} files in final/ "
          f"(from the {final['source']})")
    if final["skipped"]:
        print(f"{len(final['skipped'])} file(s) left out of final/: see final-skipped.json")
    return 0
