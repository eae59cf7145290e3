"""Docs as tests: README.md names every setting, every CLI command and every API route.

Each test lists everything missing at once, so one run tells the writer all there is to add.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from server.app import create_app
from server.cli.main import build_parser
from server.settings import Settings, setting_fields

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.fixture(scope="module")
def readme() -> str:
    return README.read_text(encoding="utf-8")


def mentioned(text: str, name: str) -> bool:
    """``name`` as a whole word (so ``port`` is not found inside ``workspace_port``)."""
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text) is not None


def cli_commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[str]:
    """Every runnable command, e.g. ``user add`` (groups such as ``user`` are not listed)."""
    commands = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                below = cli_commands(sub, (*prefix, name))
                commands += below or [" ".join((*prefix, name))]
    return commands


def api_routes() -> list[str]:
    app = create_app(Settings())
    paths = {route.resource.canonical for route in app.router.routes() if route.resource}
    return sorted(p for p in paths if p.startswith("/api/"))


def test_every_setting_is_documented(readme: str) -> None:
    missing = [f.name for f in setting_fields() if not mentioned(readme, f.name)]
    assert not missing, f"README.md does not mention these settings: {', '.join(missing)}"


def test_every_cli_command_is_documented(readme: str) -> None:
    commands = cli_commands(build_parser())
    assert "user add" in commands
    missing = [c for c in commands if not mentioned(readme, f"pairlab {c}")]
    assert not missing, "README.md does not show these commands: " + ", ".join(
        f"pairlab {c}" for c in missing
    )


def test_every_api_route_is_documented(readme: str) -> None:
    routes = api_routes()
    assert "/api/v1/auth/login" in routes
    missing = [r for r in routes if r not in readme]
    assert not missing, f"README.md does not list these API routes: {', '.join(missing)}"
