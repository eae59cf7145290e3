"""The ``pairlab`` command line: serve, demo, db, user (later: task, session).

Errors end the program with one line on stderr: any ``common.errors.DomainError`` (exit 2
when its status is below 500, else 1) or an invalid setting (exit 2). Never a traceback for a
user's mistake.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from common import audit
from common.db import connect, write_transaction
from common.errors import DomainError
from server.cli.sessions import add_session_commands
from server.cli.tasks import add_task_commands
from server.db import migrate, open_migrated
from server.people import accounts as people
from server.people.passwords import generate_password, hash_password
from server.settings import Settings, SettingsError, load_settings, prepare_data_dir, setting_fields
from workspaces.sandbox.permissions import set_private_umask

COMMON = ("data_dir", "log_level")
Command = Callable[[argparse.Namespace, Settings], int]


def _add_setting_flags(parser: argparse.ArgumentParser, names: Sequence[str] | None) -> None:
    parser.add_argument("--config", type=Path, help="TOML settings file (or PAIRLAB_CONFIG)")
    for f in setting_fields():
        if names is not None and f.name not in names:
            continue
        flag = "--" + f.name.replace("_", "-")
        parser.add_argument(
            flag, dest=f"setting_{f.name}", default=None, metavar=f.name.upper(),
            help=f"{f.metadata['help']} (env PAIRLAB_{f.name.upper()})",
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pairlab", description="Pair-programming interviews for AI/ML roles."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the server")
    _add_setting_flags(serve, None)
    serve.set_defaults(func=cmd_serve)

    demo = sub.add_parser("demo", help="create demo people and data, then run the server")
    _add_setting_flags(demo, None)
    demo.set_defaults(func=cmd_demo)

    doctor = sub.add_parser(
        "doctor", help="check what workspaces need here (exit 0 only when all holds)")
    doctor.add_argument("--fast", action="store_true",
                        help="skip the throwaway workspace (what serve checks at start)")
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    _add_setting_flags(doctor, COMMON + ("sandbox_uid_base", "environments_dir",
                                         "unsafe_no_sandbox", "workspace_disk_mib",
                                         "workspace_max_files", "workspace_cpus",
                                         "unsafe_no_disk_image",
                                         "unsafe_no_cgroups"))
    doctor.set_defaults(func=cmd_doctor)

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="DB_COMMAND")
    upgrade = db_sub.add_parser("upgrade", help="apply pending schema migrations")
    _add_setting_flags(upgrade, COMMON)
    upgrade.set_defaults(func=cmd_db_upgrade)

    user = sub.add_parser("user", help="manage admins and interviewers")
    user_sub = user.add_subparsers(dest="user_command", required=True, metavar="USER_COMMAND")
    add = user_sub.add_parser("add", help="add a user; prints a generated password once")
    add.add_argument("email")
    add.add_argument("--role", required=True, choices=people.ROLES)
    add.add_argument("--name", default="", help="display name")
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    _add_setting_flags(add, COMMON)
    add.set_defaults(func=cmd_user_add)
    lst = user_sub.add_parser("list", help="list users")
    lst.add_argument("--json", action="store_true", help="machine-readable output")
    _add_setting_flags(lst, COMMON)
    lst.set_defaults(func=cmd_user_list)
    for name, disabled in (("disable", True), ("enable", False)):
        p = user_sub.add_parser(name, help=f"{name} a user (disabling ends their sessions)")
        p.add_argument("email")
        _add_setting_flags(p, COMMON)
        p.set_defaults(func=cmd_user_disable if disabled else cmd_user_enable)
    add_task_commands(sub, _add_setting_flags)
    add_session_commands(sub, _add_setting_flags)
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    cli = {
        key.removeprefix("setting_"): value
        for key, value in vars(args).items()
        if key.startswith("setting_") and value is not None
    }
    settings = load_settings(cli=cli, config_file=args.config)
    return prepare_data_dir(settings)


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )


def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    db = connect(settings.db_path, writer=True)
    applied = migrate(db)
    print(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else ""))
    return 0


def cmd_user_add(args: argparse.Namespace, settings: Settings) -> int:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
        generated = False
    else:
        password, generated = generate_password(), True
    email = people.validate_new_user(args.email, args.role, password, args.name)
    db = open_migrated(settings.db_path)
    password_hash = hash_password(password)
    with write_transaction(db):
        user = people.add_user(db, audit.CLI, email, args.role, password_hash, args.name)
    print(f"added {user.email} ({user.role})")
    if generated:
        print(f"password (shown once): {password}")
    return 0


def cmd_user_list(args: argparse.Namespace, settings: Settings) -> int:
    users = people.list_users(open_migrated(settings.db_path))
    if args.json:
        print(json.dumps([u.public() for u in users], indent=2))
        return 0
    for u in users:
        status = "disabled" if u.disabled else "active"
        print(f"{u.email}\t{u.role}\t{status}\t{u.display_name}")
    return 0


def _set_disabled(args: argparse.Namespace, settings: Settings, disabled: bool) -> int:
    db = open_migrated(settings.db_path)
    with write_transaction(db):
        user = people.set_disabled(db, audit.CLI, args.email, disabled)
    print(f"{user.email} is now {'disabled' if user.disabled else 'active'}")
    return 0


def cmd_user_disable(args: argparse.Namespace, settings: Settings) -> int:
    return _set_disabled(args, settings, True)


def cmd_user_enable(args: argparse.Namespace, settings: Settings) -> int:
    return _set_disabled(args, settings, False)


def cmd_doctor(args: argparse.Namespace, settings: Settings) -> int:
    from server.doctor.checks import fast_report, full_report

    open_migrated(settings.db_path).conn.close()
    report = fast_report(settings) if args.fast else asyncio.run(full_report(settings))
    if args.json:
        print(json.dumps(report.public(), indent=2))
    else:
        print(report.text())
    if not report.ok:
        failed = sum(f.status == "fail" for f in report.findings)
        print(f"pairlab doctor: {failed} check(s) failed", file=sys.stderr)
        return 1
    return 0


def require_workable(settings: Settings) -> None:
    """The doctor's fast part, at start: refuse to serve when no workspace could work."""
    from server.doctor.checks import fast_report

    report = fast_report(settings)
    log = logging.getLogger("pairlab.doctor")
    for finding in report.findings:
        if finding.status in ("warn", "fail"):
            log.warning("%s", finding.line())
    blocking = report.blocking()
    if blocking:
        raise StartRefused("workspaces could not work here: " + "; ".join(
            f.line().removeprefix("FAIL ") for f in blocking) + " (pairlab doctor shows all)")


class StartRefused(DomainError):
    """Workspaces could not work on this host (a critical doctor finding): exit 1."""

    status = 503
    code = "start_refused"


def own_uids(settings: Settings) -> AbstractContextManager[None]:
    """The server's block of sandbox uids, held host-wide while it runs: a second pairlab
    whose block overlaps is refused at start (each would kill the other's sandboxes)."""
    from workspaces.sandbox.run import sandbox_uids
    from workspaces.sandbox.uid_locks import uid_block

    if os.geteuid() != 0:  # refused by the doctor's "root" check, which says why
        return nullcontext()
    return uid_block(sandbox_uids(settings.sandbox_uid_base), f"data dir {settings.data_dir}")


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from server.cli.runner import serve

    with own_uids(settings):
        open_migrated(settings.db_path).conn.close()
        require_workable(settings)
        asyncio.run(serve(settings))
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from server.cli.demo import run_demo

    with own_uids(settings):
        open_migrated(settings.db_path).conn.close()
        require_workable(settings)
        return run_demo(settings)


def main(argv: Sequence[str] | None = None) -> int:
    set_private_umask()  # owner-only unless workspaces.sandbox.permissions publishes it
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = settings_from_args(args)
        configure_logging(settings.log_level)
        func: Command = args.func
        return func(args, settings)
    except SettingsError as exc:
        print(f"pairlab: invalid setting {exc}", file=sys.stderr)
        return 2
    except DomainError as exc:
        print(f"pairlab: {exc.message}", file=sys.stderr)
        return 2 if exc.status < 500 else 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
