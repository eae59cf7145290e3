"""Helpers and fixtures (exposed from tests/conftest.py) for the import pipeline's tests
in tests/tasks, tests/server/tasks, tests/server/cli and the journeys: tiny task repositories
built with real git, one shared environments folder per test session, settings for loopback git
over HTTP, the real app as a test client, the real ``pairlab`` command, and leftover-process
checks."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from server.app import create_app
from server.settings import Settings
from tests.conftest import MakeSettings
from tests.tasks.githttp import serve_git
from workspaces.environments import ensure_environment

Client = TestClient[Any, Any]

COMPANY = "Zephyrine"
COMPANY_REPLACEMENT = "Acme"
FAKE_AWS_KEY = "AKIAZ7Q2XJ4K5PLM3N8R"
FAKE_PASSWORD = "Zp9xQ2vL7mK4wR8tNc3"
FAKE_EMAIL = "maya.okafor@zephyrine.io"
HOSTILE_MARKUP = '<script>alert("Zephyrine")</script>'
TASK_ID = "tiny-totals"
NEUTRAL_AUTHOR = "pairlab <tasks@pairlab.invalid>"
CLI_TIMEOUT_S = 300


# ---- git ----------------------------------------------------------------------------------


def git(cwd: Path, *args: str, data: bytes = b"") -> str:
    """Run the system ``git`` with an empty config (never the developer's own)."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(cwd),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_AUTHOR_NAME": "Maya Okafor",
        "GIT_AUTHOR_EMAIL": FAKE_EMAIL,
        "GIT_COMMITTER_NAME": "Maya Okafor",
        "GIT_COMMITTER_EMAIL": FAKE_EMAIL,
    }
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, input=data, capture_output=True, check=True
    )
    return done.stdout.decode("utf-8", "surrogateescape").strip()


def commit_files(
    repo: Path,
    files: dict[str, bytes],
    *,
    executable: tuple[str, ...] = (),
    symlinks: dict[str, str] | None = None,
    message: str = f"{COMPANY}: nightly totals",
) -> str:
    """Write ``files`` (and ``symlinks``) into the work repo ``repo`` and commit; returns HEAD."""
    if not (repo / ".git").exists():
        repo.mkdir(parents=True, exist_ok=True)
        git(repo, "init", "-q", "-b", "main")
    for name, content in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_bytes(content)
    for name in executable:
        (repo / name).chmod(0o755)
    for name, target in (symlinks or {}).items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).symlink_to(target)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def publish_bare(repo: Path, served: Path, name: str) -> None:
    """Serve ``repo`` as ``served/NAME.git`` (what the loopback HTTP server exposes)."""
    git(served, "clone", "-q", "--bare", "--", str(repo), str(served / f"{name}.git"))


# ---- a tiny stdlib-only task --------------------------------------------------------------


MANIFEST = """\
[task]
id = "{task_id}"
title = "Nightly totals are too low"
kind = "pipeline-bug"
roles = ["ml-engineer", "data-scientist"]
duration_minutes = 30
brief = "BRIEF.md"
guide = "GUIDE.md"

[environment]
requirements = []

[checks]
visible = "python -m pytest -q tests"
hidden = "hidden_checks/"
solution = "solution/"

[anonymise]
drop = ["deploy/"]

[anonymise.replace]
"{company}" = "{replacement}"
"""

STARTER = f'''\
"""Nightly totals for {COMPANY}'s order feed."""


def total(values):
    out = 0
    for value in values[1:]:
        out += value
    return out
'''

SOLUTION = f'''\
"""Nightly totals for {COMPANY}'s order feed."""


def total(values):
    return sum(values)
'''


def tiny_task(
    task_id: str = TASK_ID, *, visible_passes: bool = True, extra: dict[str, bytes] | None = None
) -> dict[str, bytes]:
    """Files of a small stdlib-only task with a company name, an email, an internal host and a
    fake credential for the anonymiser; the hidden check fails on the starter, passes on the
    solution. ``visible_passes=False`` makes the candidate-visible test fail."""
    expected = 0 if visible_passes else 1
    files = {
        "pairlab-task.toml": MANIFEST.format(
            task_id=task_id, company=COMPANY, replacement=COMPANY_REPLACEMENT
        ),
        "BRIEF.md": f"# Totals\n\n{COMPANY}'s nightly totals look low. Find out why.\n",
        "GUIDE.md": "# Interviewer guide\n\n## Hint ladder\n\n1. Look at the loop bounds.\n"
                    "2. Count a three-row example by hand.\n",
        "README.md": f"# {COMPANY} totals\n\n{HOSTILE_MARKUP}\n\nAsk {FAKE_EMAIL}.\n",
        "zephyrine_totals/__init__.py": "",
        "zephyrine_totals/totals.py": STARTER,
        "tests/test_totals.py": "from zephyrine_totals.totals import total\n\n\n"
                                f"def test_empty():\n    assert total([]) == {expected}\n",
        "hidden_checks/test_hidden.py": "from zephyrine_totals.totals import total\n\n\n"
                                        "def test_every_row_counts():\n"
                                        "    assert total([1, 2, 3]) == 6\n",
        "solution/zephyrine_totals/totals.py": SOLUTION,
        "config/service.toml": "[service]\n"
                               f'owner = "{FAKE_EMAIL}"\n'
                               'database = "db01.zephyrine.internal"\n'
                               f'aws_access_key_id = "{FAKE_AWS_KEY}"\n'
                               f'password = "{FAKE_PASSWORD}"\n',
        "deploy/prod.env": f"DEPLOY_PASSWORD={FAKE_PASSWORD}\n",
    }
    out = {name: text.encode() for name, text in files.items()}
    out.update(extra or {})
    return out


def notebook(*, source: str, output: str) -> bytes:
    """A small executed notebook: one code cell whose output printed ``output``."""
    cell = {
        "cell_type": "code", "execution_count": 3, "id": "c1", "metadata": {},
        "source": source.splitlines(keepends=True),
        "outputs": [{"name": "stdout", "output_type": "stream", "text": [output + "\n"]}],
    }
    nb = {"cells": [cell], "metadata": {"kernelspec": {"name": "python3",
                                                       "display_name": "Python 3"}},
          "nbformat": 4, "nbformat_minor": 5}
    return (json.dumps(nb, indent=1, sort_keys=True) + "\n").encode()


def make_repo(path: Path, files: dict[str, bytes] | None = None, **kwargs: Any) -> Path:
    commit_files(path, tiny_task() if files is None else files, **kwargs)
    return path


# ---- settings, app, CLI -------------------------------------------------------------------


@pytest.fixture(scope="session")
def envs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ONE environments folder for the whole session; the stdlib-only one is built up front."""
    root = tmp_path_factory.mktemp("environments")
    ensure_environment(root, [])
    return root


@pytest.fixture
def task_settings(make_settings: MakeSettings, envs_dir: Path) -> Settings:
    """Settings for imports: the shared environments, plain http from 127.0.0.1 allowed."""
    return make_settings(
        environments_dir=str(envs_dir), git_allow_http=True, git_allowed_hosts="127.0.0.1",
        import_timeout_seconds=60.0, check_timeout_seconds=120.0,
    )


@pytest.fixture
async def task_client(aiohttp_client: AiohttpClient, task_settings: Settings) -> Client:
    return await aiohttp_client(create_app(task_settings))


async def wait_for_import(
    client: Client, import_id: str, headers: dict[str, str] | None = None,
    deadline_s: float = 240.0,
) -> dict[str, Any]:
    """Poll the import until it is no longer running (backoff, deadline); returns its row."""
    deadline = time.monotonic() + deadline_s
    delay = 0.05
    while True:
        response = await client.get(f"/api/v1/tasks/imports/{import_id}", headers=headers)
        assert response.status == 200, await response.text()
        row: dict[str, Any] = (await response.json())["import"]
        if row["status"] != "running":
            return row
        assert time.monotonic() < deadline, f"import {import_id} still running: {row}"
        await asyncio.sleep(delay)
        delay = min(delay * 2, 1.0)


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def pairlab(tmp_path: Path, envs_dir: Path) -> Callable[..., Run]:
    """``pairlab(*args)`` runs the real command (``python -m server.cli.main``) in a subprocess with
    an allow-listed environment; ``--data-dir`` and ``--environments-dir`` are given for task
    subcommands."""
    data = tmp_path / "cli-data"
    env = {key: os.environ[key] for key in ("PATH", "LANG", "TZ") if key in os.environ}
    env["HOME"] = str(tmp_path)
    repo_root = Path(__file__).resolve().parents[1]

    def run(*args: str) -> Run:
        flags = ["--data-dir", str(data), "--environments-dir", str(envs_dir)]
        proc = subprocess.run(
            [sys.executable, "-m", "server.cli.main", *args, *flags],
            capture_output=True, text=True, env=env, cwd=repo_root, timeout=CLI_TIMEOUT_S,
            check=False,
        )
        return Run(proc.returncode, proc.stdout, proc.stderr)

    return run


# ---- leftovers ----------------------------------------------------------------------------


def staging_leftovers(settings: Settings) -> list[str]:
    staging = settings.data_dir / "tasks" / ".staging"
    return sorted(p.name for p in staging.iterdir()) if staging.exists() else []


def stray_git_processes(exclude_tree_of: int | None = None) -> list[str]:
    """Our child processes named git* (the loopback HTTP server's own children excluded)."""
    skip: set[int] = set()
    if exclude_tree_of is not None and psutil.pid_exists(exclude_tree_of):
        server = psutil.Process(exclude_tree_of)
        skip = {server.pid} | {p.pid for p in server.children(recursive=True)}
    stray = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.pid not in skip and proc.name().startswith("git"):
                stray.append(f"{proc.pid} {proc.name()} {proc.status()}")
        except psutil.NoSuchProcess:
            continue
    return stray


def tree_files(root: Path) -> dict[str, bytes]:
    """Every regular file under ``root`` outside ``.git``, as relative path -> bytes."""
    found = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[0] == ".git":
            continue
        assert not path.is_symlink(), path
        if path.is_file():
            found[rel.as_posix()] = path.read_bytes()
    return found


@pytest.fixture
def no_stray_git() -> Iterator[Callable[[int | None], None]]:
    """``check(server_pid)``: assert no git process of ours is alive (with a short grace)."""

    def check(server_pid: int | None = None) -> None:
        deadline = time.monotonic() + 5.0
        while (stray := stray_git_processes(server_pid)) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert stray == []

    yield check


# ---- a loopback git server ------------------------------------------------------------------


@pytest.fixture
def served(tmp_path: Path) -> Path:
    """The folder of bare repositories :func:`git_server` serves (empty; tests publish into it)."""
    root = tmp_path / "served"
    root.mkdir()
    return root


@pytest.fixture
def git_server(served: Path) -> Iterator[tuple[str, int]]:
    """``served`` over loopback HTTP (git's smart protocol): ``(base URL, server pid)``."""
    with serve_git(served) as (base, pid):
        yield base, pid
