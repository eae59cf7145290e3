"""The text of an import's rules file (``[anonymise]`` TOML): checked, and merged with new rules.

:func:`check_rules_text` says in one sentence why a text is not a rules file (bad TOML with its
line and column, no ``[anonymise]`` table, a table of the wrong type) before an import starts.
:func:`add_rules` adds entries under ``[anonymise.replace]`` / ``[anonymise.people]`` with
``tomlkit``, which keeps the admin's comments, order and layout (dotted keys, inline tables)
and quotes keys such as ``"quintcorp.net"`` correctly; an entry the text already has is kept
as the admin wrote it. The result is read back with ``tomllib`` to be sure it says what was
meant.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError

from tasks.errors import RulesTextInvalid
from tasks.hints import Rule

__all__ = ["RulesTextInvalid", "add_rules", "check_rules_text"]


def _parse(text: str) -> dict[str, Any]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesTextInvalid(f"the rules are not valid TOML: {exc}") from None
    unknown = sorted(k for k in data if k != "anonymise")
    if unknown:
        raise RulesTextInvalid(
            f"the rules may only hold an [anonymise] table, not {', '.join(unknown)!s}")
    table = data.get("anonymise", {})
    if not isinstance(table, dict):
        raise RulesTextInvalid("'anonymise' in the rules must be a table ([anonymise])")
    for name in ("replace", "people"):
        if not isinstance(table.get(name, {}), dict):
            raise RulesTextInvalid(
                f"'anonymise.{name}' in the rules must be a table of strings "
                f"([anonymise.{name}] with \"term\" = \"replacement\" lines)")
    return data


def check_rules_text(text: str) -> None:
    """Raise :class:`RulesTextInvalid` when ``text`` (non-empty) is not a rules file's TOML;
    what the entries say is checked by the import (``tasks.manifest``), with every problem."""
    if text.strip():
        _parse(text)


def add_rules(text: str, rules: Sequence[Rule]) -> str:
    """``text`` (a rules file, possibly empty) with ``rules`` added where it lacks them."""
    data = _parse(text)
    try:
        doc = tomlkit.parse(text)
        anonymise = doc.get("anonymise")
        if anonymise is None:
            anonymise = tomlkit.table()
            doc.add("anonymise", anonymise)
        existing = data.get("anonymise", {})
        for rule in rules:
            have = existing.get(rule.table, {})
            if rule.key in have:
                continue
            table = anonymise.get(rule.table)
            if table is None:
                table = tomlkit.table()
                anonymise.add(rule.table, table)
            table[rule.key] = rule.value
            existing.setdefault(rule.table, {})[rule.key] = rule.value
        merged = tomlkit.dumps(doc)
    except TOMLKitError as exc:  # a layout tomlkit cannot extend (tomllib read it fine)
        raise RulesTextInvalid(f"the rules could not be extended: {exc}") from None
    result = _parse(merged)
    for rule in rules:
        if rule.table not in result.get("anonymise", {}) or \
                rule.key not in result["anonymise"][rule.table]:
            raise RulesTextInvalid(  # pragma: no cover - tomlkit wrote what it was given
                f"the rule {rule.toml()} did not make it into the rules")
    return merged
