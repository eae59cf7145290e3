"""Suggested rules merged into an admin's rules text: TOML in, TOML out, the admin's own text
kept; a text that is not a rules file is refused with a sentence that says why."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tasks.errors import ManifestInvalid, RulesTextInvalid
from tasks.hints import Rule
from tasks.manifest import load_manifest
from tasks.rulestext import add_rules, check_rules_text
from tests.task_repos import tiny_task

DOMAIN = Rule("replace", "quintcorp.net", "acme.example")
PERSON = Rule("people", "Tomas Berg", "Alex Roe")
TRICKY = Rule("replace", 'say "hi"\\now', "greeting")


def test_rules_are_added_to_an_empty_text_as_valid_tables() -> None:
    merged = add_rules("", [DOMAIN, PERSON, TRICKY])
    assert tomllib.loads(merged) == {"anonymise": {
        "replace": {"quintcorp.net": "acme.example", 'say "hi"\\now': "greeting"},
        "people": {"Tomas Berg": "Alex Roe"},
    }}


def test_the_admins_text_comments_and_entries_are_kept() -> None:
    text = ('# rules for the orders task\n[anonymise]\ndrop = ["deploy/"]  # never shipped\n\n'
            '[anonymise.replace]\n"Quintcorp" = "Acme"\n"quintcorp.net" = "mine.example"\n')
    merged = add_rules(text, [DOMAIN, PERSON])
    assert merged.startswith(text.rstrip("\n"))
    assert "# never shipped" in merged
    data = tomllib.loads(merged)["anonymise"]
    assert data["replace"] == {"Quintcorp": "Acme", "quintcorp.net": "mine.example"}
    assert data["people"] == {"Tomas Berg": "Alex Roe"}
    assert data["drop"] == ["deploy/"]


def test_inline_and_dotted_tables_are_extended() -> None:
    inline = add_rules('anonymise.replace = {Quintcorp = "Acme"}\n', [DOMAIN])
    assert tomllib.loads(inline)["anonymise"]["replace"] == {"Quintcorp": "Acme",
                                                             "quintcorp.net": "acme.example"}
    people = add_rules('[anonymise]\npeople = {"Maya Okafor" = "Jane Doe"}\n', [PERSON, DOMAIN])
    assert tomllib.loads(people)["anonymise"] == {
        "people": {"Maya Okafor": "Jane Doe", "Tomas Berg": "Alex Roe"},
        "replace": {"quintcorp.net": "acme.example"},
    }


def test_the_merged_text_is_a_rules_file_the_import_accepts(tmp_path: Path) -> None:
    for name, data in tiny_task().items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    rules = tmp_path / "rules.toml"
    rules.write_text(add_rules('[anonymise.replace]\n"Lumenfold" = "Northwind"\n',
                               [DOMAIN, PERSON]))
    anonymise = load_manifest(tmp_path, rules).anonymise
    assert ("quintcorp.net", "acme.example") in anonymise.replace
    assert ("Lumenfold", "Northwind") in anonymise.replace
    assert ("Tomas Berg", "Alex Roe") in anonymise.people
    bad = tmp_path / "bad.toml"
    bad.write_text('[anonymise.people]\n"Tomas" = "Alex Roe"\n')  # TOML, but not a person
    with pytest.raises(ManifestInvalid, match="two parts"):
        load_manifest(tmp_path, bad)


@pytest.mark.parametrize(("text", "says"), [
    ('[anonymise.replace]\n"Quintcorp = "Acme"\n', "not valid TOML: .*line 2"),
    ("[anonymise\n", "not valid TOML"),
    ("anonymise = 3\n", "must be a table"),
    ('[anonymise]\nreplace = ["Quintcorp"]\n', "'anonymise.replace' in the rules must be a table"),
    ("[other]\nx = 1\n", "only hold an \\[anonymise\\] table, not other"),
])
def test_a_malformed_rules_text_is_refused_with_the_reason(text: str, says: str) -> None:
    with pytest.raises(RulesTextInvalid, match=says):
        check_rules_text(text)
    with pytest.raises(RulesTextInvalid, match=says):
        add_rules(text, [DOMAIN])


def test_an_empty_text_is_no_rules() -> None:
    check_rules_text("")
    check_rules_text("  \n# nothing yet\n")
