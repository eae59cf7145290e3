"""Shared fixtures: settings in a temporary data dir, people made directly in a real SQLite file,
and helpers to log in through the real app and to run the real ``pairlab`` command."""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from common import audit
from common.db import write_transaction
from server.app import create_app
from server.db import open_migrated
from server.http.keys import SETTINGS
from server.people import accounts as people
from server.people import credentials
from server.people.passwords import hash_password
from server.settings import Settings, prepare_data_dir
from tests.fake_workspace import FakeProvisioner, closing
from workspaces.package_sources import pip_configuration
from workspaces.sandbox.mounts import orphaned_images, unmount

PASSWORD = "correct horse battery"
REPO = Path(__file__).resolve().parent.parent

MakeSettings = Callable[..., Settings]

# Fixtures every test folder may use, defined next to the helpers they wrap: the running app
# with its workspace origin and a logged-in interviewer (tests/harness.py), headless Chromium
# (tests/browser.py), tiny task repositories and the import's settings (tests/task_repos.py).
pytest_plugins = ["tests.harness", "tests.browser", "tests.task_repos"]


WORKER_UID_STEP = 4_100_000
"""How far apart the sandbox uids of two pytest-xdist workers are (``pytest_configure``)."""
DEFAULT_UID_BASE: int = {f.name: f.default for f in dataclasses.fields(Settings)}[
    "sandbox_uid_base"]
"""``sandbox_uid_base``'s default (server/settings.py)."""


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (``scripts/check``: two workers by default), worker ``gwN`` (N > 0)
    takes a uid block of its own, ``$PAIRLAB_SANDBOX_UID_BASE`` (or the default) + N × 4.1
    million: past the random blocks some tests draw (below 4 million) and every offset the
    suite adds to the base, so its pairlabs never meet the other worker's in a uid (two
    pairlabs on one host are refused an overlap). ``gw0`` keeps the environment's, as a run
    without workers does."""
    worker = getattr(config, "workerinput", {}).get("workerid", "")
    index = int(worker.removeprefix("gw")) if worker.startswith("gw") else 0
    if index > 0:
        given = os.environ.get("PAIRLAB_SANDBOX_UID_BASE")
        base = int(given) if given else DEFAULT_UID_BASE
        os.environ["PAIRLAB_SANDBOX_UID_BASE"] = str(base + index * WORKER_UID_STEP)


@pytest.hookimpl(optionalhook=True)  # a run without pytest-xdist (-p no:xdist) knows no such hook
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """pytest-xdist's work units (``PAIRLAB_TEST_WORKERS``): a test file's tests run on one
    worker, one after another, as they do without workers, so a module's fixtures are made once (two
    workers would each start the same named workspaces, ``wsa`` in one cgroup, and see each
    other's mounts); the journeys share one demo (tests/journeys/conftest.py ``product``), so
    all of them are one unit. (``--dist loadgroup`` with markers would say the same, but it
    renames node ids, which pytest 9.2 no longer lets a plugin do.)"""
    if config.getvalue("dist") != "load":  # another --dist asked for: xdist's own
        return None
    # _split_scope is how LoadFileScheduling itself groups (pytest-xdist 3.x)
    from xdist.scheduler import LoadFileScheduling

    class FileOrJourneys(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "tests/journeys" if path.startswith("tests/journeys/") else path

    return FileOrJourneys(config, log)


@pytest.fixture(autouse=True)
def _release_orphaned_disk_images() -> Iterator[None]:
    """A test that removes a data folder while its app kept live workspaces mounted (for
    restore, as pairlab does at shutdown) leaves a deleted image mounted: unmount it."""
    yield
    for point in orphaned_images():
        # test_mounts (maybe on the other pytest worker) makes orphans on purpose, in
        # /tmp/plmt-*, and unmounts them itself
        if not str(point).startswith("/tmp/plmt-"):
            unmount(point)

@pytest.fixture
def make_settings(tmp_path: Path) -> MakeSettings:
    """``make_settings(**overrides)``: real settings over ``tmp_path/data``, data dir prepared."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {"data_dir": tmp_path / "data"}
        values.update(overrides)
        return prepare_data_dir(Settings(**values))

    return make


@pytest.fixture
def settings(make_settings: MakeSettings) -> Settings:
    return make_settings()


def open_db(settings: Settings) -> Any:
    """A migrated writer connection to the settings' database (close it with ``.conn.close()``)."""
    return open_migrated(settings.db_path)


@functools.cache
def password_hash(password: str) -> str:
    """The argon2 hash of ``password``, made once a test run: argon2 is slow on purpose (about
    0.3 s a hash) and the users tests make share a few passwords (their hashes then share a
    salt; nothing compares them). Logging in still verifies with the product's argon2."""
    return hash_password(password)


def create_user(
    settings: Settings,
    email: str,
    role: str = "admin",
    password: str = PASSWORD,
    *,
    disabled: bool = False,
) -> people.User:
    """Insert a user straight into the database (as the CLI does)."""
    db = open_db(settings)
    try:
        with write_transaction(db):
            user = people.add_user(db, audit.CLI, email, role, password_hash(password))
            if disabled:
                user = people.set_disabled(db, audit.CLI, email, True)
    finally:
        db.conn.close()
    return user


def create_token(settings: Settings, email: str, name: str = "test token") -> str:
    """A fresh API token for ``email``, made directly in the database by its owner."""
    db = open_db(settings)
    try:
        with write_transaction(db):
            owner = people.find_user(db, email)
            _, token = credentials.create_api_token(db, owner.actor(), name, email)
    finally:
        db.conn.close()
    return token


def query(settings: Settings, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Read the database file with a plain sqlite3 connection (no pairlab code in between)."""
    conn = sqlite3.connect(settings.db_path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def audit_actions(settings: Settings) -> list[str]:
    return [row[0] for row in query(settings, "SELECT action FROM audit_log ORDER BY id")]


async def login(client: TestClient[Any, Any], email: str, password: str = PASSWORD) -> str:
    """Log in through ``POST /api/v1/auth/login``; the cookie lands in the client's jar.

    Returns the CSRF token for later state-changing calls.
    """
    response = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status == 200, await response.text()
    body = await response.json()
    token: str = body["csrf_token"]
    assert token
    return token


async def login_admin(client: TestClient[Any, Any], email: str = "admin@example.com") -> str:
    """Make an admin in the client's app and log in as them; returns the CSRF token."""
    create_user(client.app[SETTINGS], email, "admin")
    return await login(client, email)


def session_cookie(client: TestClient[Any, Any]) -> str:
    for cookie in client.session.cookie_jar:
        if cookie.key == "pairlab_session":
            return cookie.value
    raise AssertionError("no pairlab_session cookie in the client's jar")


def form_csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page has no csrf_token field"
    return match.group(1)


def assert_no_traceback(text: str) -> None:
    assert "Traceback" not in text
    assert 'File "' not in text


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


@functools.cache
def package_sources() -> dict[str, str]:
    """Where the test runner's pip gets packages, as ``PIP_*`` variables, and its ``UV_*``
    variables: an allow-listed environment's HOME is a temporary folder, where pip (and so the
    environment build, which reads pip's configuration) would not find the runner's user
    ``pip.conf`` (on a host without PyPI, its only sources)."""
    found = {"PIP_" + name.upper().replace("-", "_"): value
             for name, value in pip_configuration(os.environ).items()}
    return {**found, **{k: v for k, v in os.environ.items() if k.startswith("UV_")}}


@pytest.fixture
def cli_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """An allow-listed environment for ``pairlab`` subprocesses, with a temporary data dir
    (short: workspace socket paths under it must fit a Unix socket address)."""
    env = {key: os.environ[key] for key in ("PATH", "LANG", "LC_ALL", "TZ") if key in os.environ}
    env["HOME"] = str(tmp_path)
    env.update(package_sources())
    data = Path(tempfile.mkdtemp(prefix="plcli-", dir="/tmp"))
    env["PAIRLAB_DATA_DIR"] = str(data / "data")
    # A block of sandbox uids of its own: a ``pairlab serve`` on the default block would be
    # refused while the journeys' demo runs (two pairlabs never share uids).
    given = os.environ.get("PAIRLAB_SANDBOX_UID_BASE")
    env["PAIRLAB_SANDBOX_UID_BASE"] = str(int(given) + 30_000 if given else 60_000)
    yield env
    shutil.rmtree(data, ignore_errors=True)


@pytest.fixture
def run_cli(cli_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., CliResult]]:
    """``run_cli(*args, input=None, env=None)`` runs ``python -m server.cli.main`` for real."""

    def run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> CliResult:
        proc = subprocess.run(
            [sys.executable, "-m", "server.cli.main", *args],
            input=input,
            capture_output=True,
            text=True,
            env={**cli_env, **(env or {})},
            cwd=tmp_path,
            timeout=60,
            check=False,
        )
        return CliResult(proc.returncode, proc.stdout, proc.stderr)

    yield run


def make_app(settings: Settings) -> web.Application:
    """The real ``create_app(settings)``, with the in-process fake workspace provisioner so that
    no sandboxed Jupyter server starts."""
    provisioner = FakeProvisioner(settings.data_dir / "fake-workspaces")
    return closing(create_app(settings, provisioner=provisioner), provisioner)


@pytest.fixture
async def client(aiohttp_client: AiohttpClient, settings: Settings) -> TestClient[Any, Any]:
    """A test client over the real app (migrations run at startup)."""
    return await aiohttp_client(make_app(settings))
