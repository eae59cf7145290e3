"""The ``pairlab`` command, run for real as a subprocess against a temporary data dir."""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlite_utils

from server.cli.main import build_parser
from server.migrations import MIGRATION_SETS
from server.people.passwords import verify_password
from tests.conftest import CliResult, assert_no_traceback

# slow: every test runs the real ``pairlab`` command (a Python start-up each)
pytestmark = pytest.mark.slow

Run = Callable[..., CliResult]


def command_paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[
    tuple[str, ...]
]:
    """Every command and subcommand of the parser, e.g. ("user", "add")."""
    paths = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                paths.append((*prefix, name))
                paths += command_paths(sub, (*prefix, name))
    return paths


def empty_db() -> sqlite_utils.Database:
    return sqlite_utils.Database(memory=True)


def data_dir(cli_env: dict[str, str]) -> Path:
    return Path(cli_env["PAIRLAB_DATA_DIR"])


def stored_hash(cli_env: dict[str, str], email: str) -> str:
    conn = sqlite3.connect(data_dir(cli_env) / "pairlab.db")
    try:
        row = conn.execute("SELECT password_hash FROM users WHERE email = ?", [email]).fetchone()
    finally:
        conn.close()
    assert row is not None
    return str(row[0])


def assert_one_line_error(result: CliResult, *words: str) -> None:
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("pairlab: ")
    assert_no_traceback(result.stderr + result.stdout)
    for word in words:
        assert word in lines[0], lines[0]


@pytest.mark.parametrize("path", [(), *command_paths(build_parser())], ids=" ".join)
def test_every_command_has_help(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args([*path, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: pairlab {' '.join(path)}".rstrip())


def test_command_list_has_the_foundation_commands() -> None:
    paths = command_paths(build_parser())
    for path in [("serve",), ("demo",), ("db", "upgrade"), ("user", "add"), ("user", "list"),
                 ("user", "disable"), ("user", "enable")]:
        assert path in paths


@pytest.mark.parametrize("path", [(), ("user", "add"), ("db", "upgrade")], ids=" ".join)
def test_installed_script_help(
    cli_env: dict[str, str], tmp_path: Path, path: tuple[str, ...]
) -> None:
    """The ``pairlab`` console script itself (the entry point in pyproject.toml)."""
    script = Path(sys.executable).parent / "pairlab"
    proc = subprocess.run(
        [str(script), *path, "--help"], capture_output=True, text=True, env=cli_env,
        cwd=tmp_path, timeout=60, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: pairlab")
    assert proc.stderr == ""
    assert not data_dir(cli_env).exists()  # --help touches nothing


def test_user_add_prints_a_generated_password_once(run_cli: Run, cli_env: dict[str, str]) -> None:
    result = run_cli("user", "add", "Ada@Example.com", "--role", "admin", "--name", "Ada L")
    assert result.returncode == 0, result
    assert "added ada@example.com (admin)" in result.stdout
    match = re.search(r"password \(shown once\): (\S+)", result.stdout)
    assert match
    password = match.group(1)
    assert len(password) >= 10
    assert result.stdout.count(password) == 1
    assert password not in result.stderr
    assert verify_password(stored_hash(cli_env, "ada@example.com"), password)
    db_bytes = (data_dir(cli_env) / "pairlab.db").read_bytes()
    assert password.encode() not in db_bytes
    assert stat.S_IMODE(data_dir(cli_env).stat().st_mode) == 0o700
    assert stat.S_IMODE((data_dir(cli_env) / "pairlab.db").stat().st_mode) == 0o600


def test_user_add_password_stdin(run_cli: Run, cli_env: dict[str, str]) -> None:
    result = run_cli(
        "user", "add", "bob@example.com", "--role", "interviewer", "--password-stdin",
        input="a chosen password\n",
    )
    assert result.returncode == 0, result
    assert "a chosen password" not in result.stdout
    assert "shown once" not in result.stdout
    assert verify_password(stored_hash(cli_env, "bob@example.com"), "a chosen password")


def test_user_add_short_password_stdin_is_refused(run_cli: Run) -> None:
    result = run_cli(
        "user", "add", "bob@example.com", "--role", "interviewer", "--password-stdin",
        input="short\n",
    )
    assert_one_line_error(result, "password")


def test_user_list_text_and_json(run_cli: Run) -> None:
    assert run_cli("user", "add", "ada@example.com", "--role", "admin").returncode == 0
    assert run_cli("user", "add", "bob@example.com", "--role", "interviewer").returncode == 0
    text = run_cli("user", "list")
    assert text.returncode == 0, text
    lines = text.stdout.strip().splitlines()
    assert lines[0].split("\t")[:3] == ["ada@example.com", "admin", "active"]
    assert lines[1].split("\t")[:3] == ["bob@example.com", "interviewer", "active"]

    as_json = run_cli("user", "list", "--json")
    assert as_json.returncode == 0
    users = json.loads(as_json.stdout)
    assert [(u["email"], u["role"], u["disabled"]) for u in users] == [
        ("ada@example.com", "admin", False),
        ("bob@example.com", "interviewer", False),
    ]
    assert all("password_hash" not in u for u in users)


def test_user_list_on_an_empty_data_dir(run_cli: Run) -> None:
    result = run_cli("user", "list", "--json")
    assert result.returncode == 0, result
    assert json.loads(result.stdout) == []


def test_user_disable_and_enable(run_cli: Run, cli_env: dict[str, str]) -> None:
    assert run_cli("user", "add", "bob@example.com", "--role", "interviewer").returncode == 0
    result = run_cli("user", "disable", "BOB@example.com")
    assert result.returncode == 0, result
    assert "bob@example.com is now disabled" in result.stdout
    users = json.loads(run_cli("user", "list", "--json").stdout)
    assert users[0]["disabled"] is True
    result = run_cli("user", "enable", "bob@example.com")
    assert result.returncode == 0
    assert json.loads(run_cli("user", "list", "--json").stdout)[0]["disabled"] is False

    conn = sqlite3.connect(data_dir(cli_env) / "pairlab.db")
    try:
        actions = [r[0] for r in conn.execute("SELECT action FROM audit_log ORDER BY id")]
        actors = {r[0] for r in conn.execute("SELECT actor FROM audit_log")}
    finally:
        conn.close()
    assert actions == ["user.add", "user.disable", "user.enable"]
    assert actors == {"cli"}


def test_db_upgrade_applies_then_does_nothing(run_cli: Run, cli_env: dict[str, str]) -> None:
    first = run_cli("db", "upgrade")
    assert first.returncode == 0, first
    expected = [f"{m.name}:{p.name}" for m in MIGRATION_SETS() for p in m.pending(empty_db())]
    assert first.stdout.strip() == (
        f"applied {len(expected)} migration(s): {', '.join(expected)}"
    )
    assert "server:m001_people_and_login" in expected
    second = run_cli("db", "upgrade")
    assert second.returncode == 0
    assert second.stdout.strip() == "applied 0 migration(s)"
    secret = data_dir(cli_env) / "cookie_secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert secret.read_text().strip() not in first.stdout + first.stderr


def test_duplicate_user_is_refused(run_cli: Run) -> None:
    assert run_cli("user", "add", "ada@example.com", "--role", "admin").returncode == 0
    result = run_cli("user", "add", "ADA@example.com", "--role", "interviewer")
    assert_one_line_error(result, "ada@example.com", "already exists")
    assert result.stdout == ""


@pytest.mark.parametrize("email", ["not-an-email", "a@b@example.com", "<x>@example.com", "@x.org"])
def test_bad_email_is_refused(run_cli: Run, cli_env: dict[str, str], email: str) -> None:
    result = run_cli("user", "add", email, "--role", "admin")
    assert_one_line_error(result, "is not an email address")
    assert "password" not in result.stdout


@pytest.mark.parametrize("command", ["disable", "enable"])
def test_unknown_user_is_refused(run_cli: Run, command: str) -> None:
    result = run_cli("user", command, "nobody@example.com")
    assert_one_line_error(result, "nobody@example.com")


def test_bad_role_is_a_usage_error(run_cli: Run) -> None:
    result = run_cli("user", "add", "ada@example.com", "--role", "root")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr
    assert_no_traceback(result.stderr)
