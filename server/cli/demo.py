"""``pairlab demo``: demo people with fresh generated passwords, then the server.

Safe to run again: existing demo accounts get new passwords (printed once) and are re-enabled.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from common import audit
from common.db import write_transaction
from server.cli.demo_history import ensure_demo_history
from server.cli.runner import serve
from server.db import open_migrated
from server.people import accounts as people
from server.people.passwords import generate_password, hash_password
from server.sessions.scheduling import Scheduled, ScheduleRequest, schedule
from server.settings import Settings
from server.tasks.service import import_config
from tasks import revisions
from tasks.builtin import as_git_repo, builtin_task_dirs
from tasks.importer import ImportRequest, install_revision, prepare_import
from tasks.manifest import load_manifest

DEMO_TASK = "daily-features-bug"
"""The demo session's task: it has a notebook to run, tests to run and a bug to find."""
DEMO_PEOPLE = (
    ("admin@example.com", "admin", "Demo Admin"),
    ("interviewer@example.com", "interviewer", "Demo Interviewer"),
    ("interviewer2@example.com", "interviewer", "Demo Interviewer Two"),
)


def ensure_demo_people(settings: Settings) -> list[tuple[str, str, str]]:
    """Create or reset the demo accounts; returns (email, role, password)."""
    db = open_migrated(settings.db_path)
    created = []
    try:
        for email, role, name in DEMO_PEOPLE:
            password = generate_password()
            password_hash = hash_password(password)
            with write_transaction(db):
                found = people.password_hash_of(db, email)
                if found is None:
                    people.add_user(db, audit.CLI, email, role, password_hash, name)
                else:
                    people.set_password(db, audit.CLI, email, password_hash)
                    if found[0].disabled:
                        people.set_disabled(db, audit.CLI, email, False)
            created.append((email, role, password))
    finally:
        db.conn.close()
    return created


def ensure_builtin_tasks(settings: Settings) -> list[str]:
    """Import and publish each built-in task that has no published revision yet, through the
    same import path an admin's repository takes. Returns one line per task."""
    lines = []
    db = open_migrated(settings.db_path)
    try:
        config = import_config(settings, allow_local=True)
        for task_dir in builtin_task_dirs():
            task_id = load_manifest(task_dir).task.id
            current = revisions.list_tasks(db, task_id)
            if current and current[0]["current_revision"]:
                lines.append(f"{task_id}: {current[0]['current_revision']} (already published)")
                continue
            print(f"demo: importing the built-in task {task_id} ...", file=sys.stderr, flush=True)
            with tempfile.TemporaryDirectory(prefix="pairlab-builtin-") as tmp:
                repo = as_git_repo(task_dir, Path(tmp) / task_id)
                prepared = prepare_import(
                    ImportRequest(str(repo), created_by="demo"), config, lambda step: None
                )
            # The import has just built the environment and seen a sandbox run it (a problem
            # would be among its blockers), so publishing needs no second look.
            why = "; ".join(prepared.summary["blockers"])
            with write_transaction(db):
                rev = install_revision(db, config.store, prepared)
                audit.record(db, audit.CLI, "task.revision.create", "task_revision", rev.id)
                if not why:
                    rev = revisions.publish(db, rev.id)
                    audit.record(db, audit.CLI, "task.revision.publish", "task_revision", rev.id)
            lines.append(f"{task_id}: {rev.id} ({rev.status})" + (f": {why}" if why else ""))
    finally:
        db.conn.close()
    return lines


def demo_session(settings: Settings) -> Scheduled | None:
    """A session starting now for the demo interviewer on ``DEMO_TASK`` (else the first
    published task; a new one at every run, so every run prints a link that works now)."""
    db = open_migrated(settings.db_path)
    try:
        tasks = [t for t in revisions.list_tasks(db) if t["current_revision"]]
        if not tasks:
            return None
        tasks.sort(key=lambda t: t["id"] != DEMO_TASK)
        interviewer = people.find_user(db, DEMO_PEOPLE[1][0])
        with write_transaction(db):
            return schedule(db, settings, audit.CLI, interviewer.id, ScheduleRequest(
                task=tasks[0]["id"], candidate_name="Demo Candidate",
                interviewers=(interviewer.email,),
            ))
    finally:
        db.conn.close()


def demo_history(settings: Settings) -> int:
    """Past scored interviews with outcomes (once), for the debrief and the reports."""
    db = open_migrated(settings.db_path)
    try:
        panel = [people.find_user(db, email) for email, role, _ in DEMO_PEOPLE
                 if role == "interviewer"]
        with write_transaction(db):
            return ensure_demo_history(db, panel, settings.cookie_secret.reveal())
    finally:
        db.conn.close()


def run_demo(settings: Settings) -> int:
    accounts = ensure_demo_people(settings)
    task_lines = ensure_builtin_tasks(settings)
    history = demo_history(settings)
    session = demo_session(settings)

    def announce(s: Settings) -> None:
        lines = [
            "",
            "pairlab demo is running. Press Ctrl-C to stop.",
            f"  Log in at:        {s.app_url}/login",
            f"  Workspace origin: {s.workspace_url}",
            "  Workspaces:       "
            f"{s.workspace_origin('id').replace('//w-id.', '//w-<id>.')} (each its own origin)",
        ]
        pages = {"admin": "/admin/tasks", "interviewer": "/sessions"}
        for email, role, password in accounts:
            lines.append(f"  {role:<12} {s.app_url}{pages[role]}  {email}  password: {password}")
        lines.append(f"  Tasks ({s.app_url}/admin/tasks):")
        lines += [f"    {line}" for line in task_lines]
        lines.append(f"  Past interviews with scorecards and outcomes"
                     f"{f' ({history} made now)' if history else ''}: {s.app_url}/sessions,"
                     f" {s.app_url}/calibration, {s.app_url}/reports/validity")
        if session is not None:
            lines.append(f"  Demo session ({session.session.task_id}, "
                         f"{session.session.duration_minutes} minutes):")
            lines.append(f"    candidate link:   {session.candidate_link}")
            lines.append(f"    interviewer page: {session.interviewer_url}")
        lines.append("")
        print("\n".join(lines), flush=True)

    asyncio.run(serve(settings, on_ready=announce))
    return 0


if __name__ == "__main__":
    sys.exit("run it as: pairlab demo")
