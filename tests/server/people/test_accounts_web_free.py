"""The accounts domain (people, login sessions and API tokens, passwords) is web-free."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
ACCOUNTS = ("server/people/accounts.py", "server/people/credentials.py",
            "server/people/passwords.py")


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", ACCOUNTS)
def test_the_accounts_domain_imports_nothing_of_the_web(module: str) -> None:
    web = {name for name in _imported(ROOT / module)
           if name.split(".")[0] == "aiohttp" or name.startswith("server.http")}
    assert web == set()
