"""tasks.manifest: loading, validation (every problem at once), rules merge, hints, fit."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tasks.errors import ManifestInvalid
from tasks.manifest import (
    MANIFEST_NAME,
    AnonymiseRules,
    Checks,
    Environment,
    Manifest,
    TaskSpec,
    hints_from_guide,
    kind_fits_role,
    load_manifest,
)

VALID = """
[task]
id = "daily-features-bug"
title = "Daily features are wrong"
kind = "pipeline-bug"
roles = ["ml-engineer", "data-scientist"]
duration_minutes = 75
brief = "BRIEF.md"
guide = "docs/GUIDE.md"

[environment]
requirements = ["pandas>=2,<3", "numpy"]

[checks]
visible = "python -m pytest -q tests"
hidden = "hidden_checks/"
solution = "solution/"

[anonymise]
drop = ["deploy/", "*.secret"]

[anonymise.replace]
"Quintessa" = "Acme"
"quintessa.internal" = "example.internal"
"""


def make_source(root: Path, manifest: str = VALID) -> Path:
    (root / "docs").mkdir(parents=True)
    (root / "hidden_checks").mkdir()
    (root / "solution").mkdir()
    (root / "BRIEF.md").write_text("# Brief\n")
    (root / "docs" / "GUIDE.md").write_text("# Guide\n")
    (root / MANIFEST_NAME).write_text(textwrap.dedent(manifest))
    return root


def problems_of(root: Path, rules: Path | None = None) -> list[tuple[str, str, str]]:
    with pytest.raises(ManifestInvalid) as caught:
        load_manifest(root, rules)
    assert caught.value.status == 422
    return caught.value.problems


def test_valid_manifest_loads(tmp_path: Path) -> None:
    manifest = load_manifest(make_source(tmp_path))
    assert manifest == Manifest(
        task=TaskSpec(
            id="daily-features-bug", title="Daily features are wrong", kind="pipeline-bug",
            roles=("ml-engineer", "data-scientist"), duration_minutes=75, brief="BRIEF.md",
            guide="docs/GUIDE.md",
        ),
        environment=Environment(requirements=("pandas>=2,<3", "numpy")),
        checks=Checks(visible="python -m pytest -q tests", hidden="hidden_checks",
                      solution="solution"),
        anonymise=AnonymiseRules(
            drop=("deploy/", "*.secret"),
            replace=(("Quintessa", "Acme"), ("quintessa.internal", "example.internal")),
        ),
    )
    assert manifest.never_in_workspace == (
        MANIFEST_NAME, "docs/GUIDE.md", "hidden_checks", "solution")
    assert manifest.anonymise.deny_terms == ("Quintessa", "quintessa.internal")
    assert manifest.role_warnings() == ()


def test_optional_tables_and_keys_default(tmp_path: Path) -> None:
    minimal = VALID.split("[environment]")[0] + '[checks]\nvisible = "pytest"\n'
    manifest = load_manifest(make_source(tmp_path, minimal))
    assert manifest.environment == Environment()
    assert manifest.checks == Checks(visible="pytest")
    assert manifest.anonymise == AnonymiseRules()
    assert manifest.never_in_workspace == (MANIFEST_NAME, "docs/GUIDE.md")


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    root = make_source(tmp_path, """
        extra = 1
        [task]
        id = "Bad_Id"
        title = ""
        kind = "notebook"
        roles = ["ml-engineer", "ceo", "ml-engineer"]
        duration_minutes = true
        brief = "/etc/passwd"
        guide = "../GUIDE.md"
        colour = "blue"

        [environment]
        requirements = ["pandas>=2,<", "evil @ https://example.org/evil.whl", 3]

        [checks]
        hidden = "missing_checks/"
        solution = "BRIEF.md"

        [anonymise]
        drop = ["/abs/", "ok/*.txt", "../up"]
        [anonymise.replace]
        "Quintessa" = "Quintessa Corp"
        "quintessa.io" = 7
        [surprise]
        """)
    keys = {(file, key) for file, key, _ in problems_of(root)}
    assert keys == {
        (MANIFEST_NAME, "extra"),
        (MANIFEST_NAME, "surprise"),
        (MANIFEST_NAME, "task.colour"),
        (MANIFEST_NAME, "task.id"),
        (MANIFEST_NAME, "task.title"),
        (MANIFEST_NAME, "task.kind"),
        (MANIFEST_NAME, "task.roles[1]"),
        (MANIFEST_NAME, "task.roles[2]"),
        (MANIFEST_NAME, "task.duration_minutes"),
        (MANIFEST_NAME, "task.brief"),
        (MANIFEST_NAME, "task.guide"),
        (MANIFEST_NAME, "environment.requirements[2]"),
        (MANIFEST_NAME, "checks.visible"),
        (MANIFEST_NAME, "checks.hidden"),
        (MANIFEST_NAME, "checks.solution"),
        (MANIFEST_NAME, "anonymise.drop[0]"),
        (MANIFEST_NAME, "anonymise.drop[2]"),
        (MANIFEST_NAME, "anonymise.replace.Quintessa"),
        (MANIFEST_NAME, 'anonymise.replace."quintessa.io"'),
    }


def test_problem_reasons_are_human(tmp_path: Path) -> None:
    root = make_source(tmp_path, VALID.replace("75", "300").replace(
        '"numpy"', '"numpy", "pandas>=2,<"').replace('"data-scientist"', '"ceo"').replace(
        'brief = "BRIEF.md"', 'brief = "NOPE.md"'))
    reasons = {key: reason for _, key, reason in problems_of(root)}
    assert reasons["task.duration_minutes"] == "must be between 15 and 240, not 300"
    assert reasons["task.roles[1]"].startswith("'ceo' is not one of: ml-engineer,")
    assert reasons["task.brief"] == "'NOPE.md' does not exist in the task source"
    assert "is not a PEP 508 requirement" in reasons["environment.requirements[2]"]


def test_requirement_problems_and_type_problems(tmp_path: Path) -> None:
    root = make_source(tmp_path, VALID.replace(
        'requirements = ["pandas>=2,<3", "numpy"]',
        'requirements = ["pandas>=2,<", "evil @ https://example.org/evil.whl"]',
    ).replace('[checks]', '[checks]\nextra_check = "x"').replace(
        'kind = "pipeline-bug"', "kind = 3"))
    reasons = {key: reason for _, key, reason in problems_of(root)}
    assert set(reasons) == {"environment.requirements[0]", "environment.requirements[1]",
                            "checks.extra_check", "task.kind"}
    assert "direct URL" in reasons["environment.requirements[1]"]
    assert reasons["task.kind"] == "must be a string, not an integer"


def test_toml_syntax_error_is_one_problem(tmp_path: Path) -> None:
    root = make_source(tmp_path, '[task]\nid = "x\n')
    [(file, key, reason)] = problems_of(root)
    assert (file, key) == (MANIFEST_NAME, "(syntax)")
    assert "line 2" in reason


def test_missing_manifest_and_bad_table_types(tmp_path: Path) -> None:
    [(file, key, reason)] = problems_of(tmp_path)
    assert (file, key) == (MANIFEST_NAME, "(file)")
    assert "not found" in reason
    root = make_source(tmp_path / "src", 'task = "x"\nchecks = []\n')
    assert {k for _, k, _ in problems_of(root)} == {"task", "checks"}


def test_symlink_out_of_the_source_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.md"
    outside.write_text("secret")
    root = make_source(tmp_path / "src", VALID.replace('"BRIEF.md"', '"link.md"'))
    (root / "link.md").symlink_to(outside)
    [(_, key, reason)] = problems_of(root)
    assert key == "task.brief"
    assert "outside the task source" in reason


def test_brief_inside_hidden_checks_is_refused(tmp_path: Path) -> None:
    root = make_source(tmp_path, VALID.replace('"BRIEF.md"', '"hidden_checks/B.md"'))
    (root / "hidden_checks" / "B.md").write_text("x")
    [(_, key, reason)] = problems_of(root)
    assert (key, reason) == ("task.brief", "must not be inside checks.hidden")


def test_rules_file_is_merged_over_the_manifest(tmp_path: Path) -> None:
    root = make_source(tmp_path / "src")
    rules = tmp_path / "rules.toml"
    rules.write_text(textwrap.dedent("""
        [anonymise]
        drop = ["notes/", "*.secret"]
        [anonymise.replace]
        "Quintessa" = "Initech"
        "Maya Okafor" = "Alex Doe"
        """))
    rules_merged = load_manifest(root, rules).anonymise
    assert rules_merged.drop == ("deploy/", "*.secret", "notes/")
    assert dict(rules_merged.replace) == {
        "Quintessa": "Initech", "quintessa.internal": "example.internal",
        "Maya Okafor": "Alex Doe",
    }


def test_rules_file_problems_are_reported_with_manifest_problems(tmp_path: Path) -> None:
    root = make_source(tmp_path / "src", VALID.replace("75", "5"))
    rules = tmp_path / "rules.toml"
    rules.write_text('[anonymise]\ndrop = "deploy/"\nallow = []\n[other]\n')
    found = {(f, k) for f, k, _ in problems_of(root, rules)}
    assert found == {
        (MANIFEST_NAME, "task.duration_minutes"),
        ("rules.toml", "anonymise.drop"),
        ("rules.toml", "anonymise.allow"),
        ("rules.toml", "other"),
    }
    rules.write_text("[anonymise\n")
    assert [(f, k) for f, k, _ in problems_of(tmp_path / "src", rules)][-1] == (
        "rules.toml", "(syntax)")


@pytest.mark.parametrize("task_id", ["quintessa-feed-bug", "fix-quin-tessa", "q-u-i-n-t-e-s-s-a"])
def test_an_id_holding_a_deny_listed_term_is_refused(tmp_path: Path, task_id: str) -> None:
    root = make_source(tmp_path / "src", VALID.replace('"daily-features-bug"', f'"{task_id}"'))
    with pytest.raises(ManifestInvalid) as caught:
        load_manifest(root)
    assert caught.value.problems == [(MANIFEST_NAME, "task.id", (
        f"{task_id!r} contains the deny-listed term 'Quintessa'; an id is a stable key and is "
        "never rewritten: choose an id without it"))]
    assert "task.id" in caught.value.message and "'Quintessa'" in caught.value.message


def test_an_id_holding_a_term_of_the_rules_file_is_refused(tmp_path: Path) -> None:
    root = make_source(tmp_path / "src", VALID.replace("daily-features-bug", "halcyon-features"))
    rules = tmp_path / "rules.toml"
    rules.write_text('[anonymise.replace]\n"Halcyon" = "Contoso"\n')
    assert load_manifest(root).task.id == "halcyon-features"  # not a term without the rules
    with pytest.raises(ManifestInvalid, match="task.id: 'halcyon-features' contains the "
                       "deny-listed term 'Halcyon'"):
        load_manifest(root, rules)


@pytest.mark.parametrize("task_id", ["jose-nunez-feed", "nunez-jose-bug"])
def test_an_id_naming_a_declared_person_is_refused(tmp_path: Path, task_id: str) -> None:
    people = '\n[anonymise.people]\n"José Núñez" = "Jane Doe"\n'
    root = make_source(tmp_path / "src",
                       VALID.replace('"daily-features-bug"', f'"{task_id}"') + people)
    with pytest.raises(ManifestInvalid) as caught:
        load_manifest(root)
    assert caught.value.problems == [(MANIFEST_NAME, "task.id", (
        f"{task_id!r} contains a declared person's name ({task_id.rsplit('-', 1)[0]!r}); an id "
        "is a stable key and is never rewritten: choose an id without it"))]
    # one of the names alone is nobody
    ok = make_source(tmp_path / "ok",
                     VALID.replace('"daily-features-bug"', '"nunez-feed"') + people)
    assert load_manifest(ok).task.id == "nunez-feed"


def test_manifest_invalid_message_lists_problems(tmp_path: Path) -> None:
    root = make_source(tmp_path, VALID.replace('"pipeline-bug"', '"notebook"'))
    with pytest.raises(ManifestInvalid) as caught:
        load_manifest(root)
    assert "pairlab-task.toml: task.kind: 'notebook' is not one of" in caught.value.message


@pytest.mark.parametrize(
    ("path", "dropped"),
    [
        ("deploy/dag.py", True),
        ("deploy", False),
        ("src/deploy/x.py", False),
        ("config/db.secret", True),
        ("db.secret", True),
        ("secret.txt", False),
        ("deployment.yaml", False),
    ],
)
def test_drop_patterns(path: str, dropped: bool) -> None:
    rules = AnonymiseRules(drop=("deploy/", "*.secret"))
    assert rules.is_dropped(path) is dropped


def test_hints_from_guide() -> None:
    guide = textwrap.dedent("""\
        # Guide

        1. Not a hint: this list is before the section.

        ## Hint ladder

        Give these one at a time.

        1. Compare the totals
           of input and output.
        2) Count rows around
        each join.

        Some remark that is not a hint.

        10. Read the README.
        ## After
        3. Not a hint either.
        """)
    assert hints_from_guide(guide) == [
        "Compare the totals of input and output.",
        "Count rows around each join.",
        "Read the README.",
    ]
    assert hints_from_guide("# Guide\n\n## Hints\n1. nope\n") == []
    assert hints_from_guide("## HINT LADDER ##\n1. Only one\n") == ["Only one"]


def test_kind_fits_role() -> None:
    assert kind_fits_role("serving-feature", "data-scientist") == (
        "this task tests ML engineering (production serving), which this role does not do")
    assert kind_fits_role("serving-feature", "mlops-engineer") is None
    assert kind_fits_role("pipeline-bug", "data-scientist") is None
    assert kind_fits_role("eval-script", "ai-researcher") is None
    assert "evaluation" in (kind_fits_role("eval-script", "mlops-engineer") or "")
    assert "pipeline" in (kind_fits_role("pipeline-bug", "ai-researcher") or "")
    with pytest.raises(ValueError):
        kind_fits_role("notebook", "ml-engineer")
    with pytest.raises(ValueError):
        kind_fits_role("eval-script", "ceo")


def test_role_warnings_on_a_manifest(tmp_path: Path) -> None:
    root = make_source(tmp_path, VALID.replace('"pipeline-bug"', '"serving-feature"'))
    assert load_manifest(root).role_warnings() == (
        "data-scientist: this task tests ML engineering (production serving), "
        "which this role does not do",
    )
