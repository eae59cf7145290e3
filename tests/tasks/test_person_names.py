"""Declared people (``[anonymise.people]``) in the forms people write names: "Family, Given" in a
citation and a ``.bib`` author list, initials, a name wrapped across lines or split by markup,
an unaccented or transliterated spelling, ``CITATION.cff`` split fields. Each form is planted in
a real git repository and imported through the real import path: none is left in the published
tree and the task's own tests still pass. The post-scan is attacked on its own: with the rewrite
bypassed, every planted form blocks publishing."""

from __future__ import annotations

import dataclasses
import json
import textwrap
from pathlib import Path

import pytest

import tasks.anonymise
from server.settings import Settings
from server.tasks.service import import_config
from tasks.anonymise import anonymise_tree
from tasks.errors import ManifestInvalid
from tasks.importer import ImportRequest, Prepared, prepare_import
from tasks.manifest import MANIFEST_NAME, load_manifest
from tasks.personforms import PersonRewriter
from tasks.postscan import post_scan
from tests.task_repos import (
    COMPANY,
    COMPANY_REPLACEMENT,
    MANIFEST,
    TASK_ID,
    commit_files,
    git,
    tiny_task,
    tree_files,
)

PEOPLE_TOML = """
[anonymise.people]
"José Núñez" = "Jane Doe"
"Ravi Kumaran" = "Sam Roe"
"Сергей Иванов" = "Kim Lee"
"""
PEOPLE = ["José Núñez", "Ravi Kumaran", "Сергей Иванов"]

# (file, content, the form as planted, the line it is on)
PLANTED: list[tuple[str, str, str, int]] = [
    ("README.md", "# Totals\n\nCite: Núñez, José (2024). *Nightly totals*.\n",
     "Núñez, José", 3),
    ("paper.bib", "@article{totals2024,\n  author = {Núñez, José and Other, Person},\n"
     "  title = {Totals},\n}\n", "Núñez, José", 2),
    ("docs/credits.md", "# Credits\n\nReviewed by R. Kumaran.\n", "R. Kumaran", 3),
    ("docs/refs.md", "# Refs\n\n1. Kumaran, R. and Other, P. (2023).\n", "Kumaran, R.", 3),
    ("docs/thanks.md", "# Thanks\n\nThanks to **José**\n Núñez for the data.\n",
     "José**\n Núñez", 3),
    ("zephyrine_totals/owners.py",
     '"""Owners of the feed: written by José\n    Núñez in 2023."""\n\n'
     "MAINTAINER = 'Jose Nunez'\n\n\ndef jose_nunez_threshold() -> int:\n    return 3\n",
     "José\n    Núñez", 1),
    ("docs/ascii.md", "# Owner\n\nAsk Jose Nunez.\n", "Jose Nunez", 3),
    ("docs/translit.md", "# Team\n\nSergei Ivanov wrote the loader.\n", "Sergei Ivanov", 3),
    ("CITATION.cff", "cff-version: 1.2.0\ntitle: Totals\nauthors:\n"
     "  - family-names: Nunez\n    given-names: José\n    orcid: https://orcid.org/0000\n"
     "  - family-names: Other\n    given-names: Person\n",
     "family-names: Nunez\n    given-names: José", 4),
]
# Every way the planted forms could survive, looked for in the published bytes.
LEFT_OVER = ["Núñez", "Nunez", "nunez", "José", "Jose", "R. Kumaran", "Kumaran", "Sergei",
             "Ivanov"]
TEST_OF_OWNERS = (
    "from zephyrine_totals.owners import MAINTAINER, jose_nunez_threshold\n\n\n"
    "def test_owner():\n    assert jose_nunez_threshold() == 3 and MAINTAINER == 'Jose Nunez'\n"
)


def people_task() -> dict[str, bytes]:
    manifest = MANIFEST.format(task_id=TASK_ID, company=COMPANY, replacement=COMPANY_REPLACEMENT)
    extra = {name: content.encode() for name, content, _form, _line in PLANTED}
    extra["pairlab-task.toml"] = (manifest + PEOPLE_TOML).encode()
    extra["tests/test_owners.py"] = TEST_OF_OWNERS.encode()
    # Not a declared person's forms: these stay as they are.
    extra["docs/others.md"] = (
        "R. says hi. Núñez alone is a family name. Javier Núñez is someone else. "
        "NUNEZ, JAVIER too.\n"
    ).encode()
    return tiny_task(extra=extra)


def prepare(settings: Settings, repo: Path) -> Prepared:
    cfg = dataclasses.replace(import_config(settings, allow_local=True))
    return prepare_import(ImportRequest(str(repo)), cfg, lambda s: None)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_every_form_is_gone_after_a_real_import_and_the_code_still_runs(
    task_settings: Settings, tmp_path: Path
) -> None:
    repo = tmp_path / "src"
    commit_files(repo, people_task())
    prepared = prepare(task_settings, repo)
    summary = prepared.summary
    assert summary["blockers"] == [], summary
    assert summary["post_scan_findings"] == 0
    assert summary["visible_tests"] == "passed"  # tests/test_owners.py renamed consistently

    tree = tree_files(prepared.staged / "tree")
    text = {name: content.decode() for name, content in tree.items()}
    others = text.pop("docs/others.md")
    everything = "\n".join([*text.values(), *text])
    for leaked in LEFT_OVER:
        assert leaked.casefold() not in everything.casefold(), leaked
    assert "Cite: Doe, Jane (2024)." in text["README.md"]
    assert "author = {Doe, Jane and Other, Person}" in text["paper.bib"]
    assert "Reviewed by S. Roe." in text["docs/credits.md"]
    assert "1. Roe, S. and Other, P. (2023)." in text["docs/refs.md"]
    assert "Thanks to **Jane**\n Doe for the data." in text["docs/thanks.md"]
    owners = text["acme_totals/owners.py"]
    assert "written by Jane\n    Doe in 2023" in owners
    assert "MAINTAINER = 'Jane Doe'" in owners and "def jane_doe_threshold()" in owners
    assert "Ask Jane Doe." in text["docs/ascii.md"]
    assert "Kim Lee wrote the loader." in text["docs/translit.md"]
    assert "  - family-names: Doe\n    given-names: Jane\n" in text["CITATION.cff"]
    assert "  - family-names: Other\n    given-names: Person\n" in text["CITATION.cff"]
    assert others == (
        "R. says hi. Núñez alone is a family name. Javier Núñez is someone else. "
        "NUNEZ, JAVIER too.\n"
    )


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_with_the_rewrite_bypassed_the_post_scan_blocks_each_form_of_an_import(
    task_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The attack: the anonymiser misses every person form (its rewriter knows no one)."""
    monkeypatch.setattr(tasks.anonymise, "PersonRewriter", lambda pairs: PersonRewriter([]))
    repo = tmp_path / "src"
    commit_files(repo, people_task())
    prepared = prepare(task_settings, repo)
    assert any(b.startswith("the post-scan found") for b in prepared.summary["blockers"])
    report = json.loads((prepared.staged / "report.json").read_text())
    findings = {(f["path"], f["line"]) for f in report["post_scan"]["findings"]
                if f["kind"] == "person"}
    for name, _content, _form, line in PLANTED:
        published = name.replace("zephyrine", "acme")
        assert (published, line) in findings, (name, findings)
    assert not [f for f in findings if f[0] == "docs/others.md"]


@pytest.fixture
def source_tree(tmp_path: Path) -> Path:
    """A real git checkout holding every planted form (the .git folder is dropped)."""
    repo = tmp_path / "src"
    commit_files(repo, {name: content.encode() for name, content, _f, _l in PLANTED})
    assert git(repo, "ls-files").count("\n") == len(PLANTED) - 1
    return repo


@dataclasses.dataclass(frozen=True)
class Rules:
    drop: tuple[str, ...] = (".git/",)
    replace: tuple[tuple[str, str], ...] = ()
    people: tuple[tuple[str, str], ...] = ()
    keep: tuple[str, ...] = ()


@pytest.mark.parametrize(("name", "form", "line"), [(n, f, ln) for n, _c, f, ln in PLANTED],
                         ids=[n for n, _c, _f, _l in PLANTED])
def test_the_post_scan_finds_each_form_the_rules_did_not_rewrite(
    source_tree: Path, tmp_path: Path, name: str, form: str, line: int
) -> None:
    out = tmp_path / "out"
    anonymise_tree(source_tree, out, Rules())  # rules without the people: nothing rewritten
    found = [f for f in post_scan(out, [], PEOPLE) if f.path == name and f.kind == "person"]
    assert [(f.line, f.excerpt) for f in found][:1] == [(line, form)], found


def test_a_form_planted_after_the_rewrite_blocks(source_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    rules = Rules(people=(("José Núñez", "Jane Doe"), ("Ravi Kumaran", "Sam Roe")))
    anonymise_tree(source_tree, out, rules)
    assert [f for f in post_scan(out, [], ["José Núñez", "Ravi Kumaran"])
            if f.kind == "person"] == []
    planted = {
        "late/a.md": "see Nunez J. et al.\n",
        "late/b.py": "# by jose_nunez\n",
        "late/c.md": "<b>José</b>\n> Núñez\n",
        "late/d.cff": "authors:\n  - given-names: \"Jose\"\n    family-names: \"Núñez\"\n",
        "late/e.md": "RAVI KUMARAN\n",
        "late/jose-nunez.txt": "x\n",
    }
    for rel, content in planted.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(content)
    findings = post_scan(out, [], ["José Núñez", "Ravi Kumaran"])
    assert sorted({f.path for f in findings}) == sorted(planted), findings
    assert {f.kind for f in findings} == {"person", "person-in-name"}


def test_alone_or_other_people_are_not_findings(tmp_path: Path) -> None:
    tree = tmp_path / "t"
    tree.mkdir()
    (tree / "a.md").write_text(
        "R. said so. J. said so. Núñez alone. Javier Núñez. NUNEZ, JAVIER. Núñez, A.\n"
        "JSON Kumaran-like. José Ortega.\n"
    )
    (tree / "CITATION.cff").write_text(
        "authors:\n  - family-names: Núñez\n    given-names: Ana\n"
        "  - family-names: Other\n    given-names: José\n"
    )
    assert post_scan(tree, [], PEOPLE) == []
    rewriter = PersonRewriter([("José Núñez", "Jane Doe")])
    for path in tree.iterdir():
        text = path.read_text()
        assert rewriter.rewrite_text(text) == text, path


@pytest.mark.parametrize(("planted", "rewritten"), [
    ("José Núñez", "Jane Doe"),
    ("Núñez, J.", "Doe, J."),
    ("J.Núñez", "J.Doe"),
    ("NÚÑEZ JOSÉ", "DOE JANE"),
    ("jose.nunez", "jane.doe"),
    ("Jose\u0301 Nu\u0301n\u0303ez", "Jane Doe"),  # decomposed accents (NFD)
    ("  - given-names: José\n    affiliation: X\n    family-names: Núñez\n",
     "  - given-names: Jane\n    affiliation: X\n    family-names: Doe\n"),
])
def test_each_form_takes_the_same_form_of_the_stand_in(planted: str, rewritten: str) -> None:
    assert PersonRewriter([("José Núñez", "Jane Doe")]).rewrite_text(planted) == rewritten


def test_umlauts_and_multi_word_family_names() -> None:
    rewriter = PersonRewriter([("Anna Müller", "Pat Roe"), ("van Beethoven, Ludwig", "Lee, Kim")])
    assert rewriter.rewrite_text("Anna Mueller; Müller, A.") == "Pat Roe; Roe, P."
    assert rewriter.rewrite_text("Ludwig van Beethoven; van Beethoven, L.") == "Kim Lee; Lee, K."


def _source(root: Path, people: str) -> Path:
    manifest = MANIFEST.format(task_id=TASK_ID, company=COMPANY, replacement=COMPANY_REPLACEMENT)
    for rel in ("BRIEF.md", "GUIDE.md", "hidden_checks/t.py", "solution/x.py"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("x\n")
    (root / MANIFEST_NAME).write_text(manifest + textwrap.dedent(people))
    return root


def test_declared_people_are_validated(tmp_path: Path) -> None:
    root = _source(tmp_path, """
        [anonymise.people]
        "Madonna" = "Jane Doe"
        "José Núñez" = "Jane Nunez"
        "Ravi Kumaran" = 3
        "Ana Lima" = "Ana Lima Costa"
        """)
    with pytest.raises(ManifestInvalid) as caught:
        load_manifest(root)
    assert sorted((k, r) for _f, k, r in caught.value.problems) == [
        ('anonymise.people."Ana Lima"', "the stand-in must not contain the name it replaces"),
        ('anonymise.people."José Núñez"', "the stand-in must have another family name"),
        ('anonymise.people."Ravi Kumaran"', "must be a string, not an integer"),
        ("anonymise.people.Madonna",
         "the name must be 'Given Family' or 'Family, Given' (two parts)"),
    ]
    ok = _source(tmp_path / "ok", '[anonymise.people]\n"Núñez, José" = "Jane Doe"\n')
    assert load_manifest(ok).anonymise.people == (("Núñez, José", "Jane Doe"),)


def test_names_far_apart_in_a_large_file_are_all_rewritten() -> None:
    """The forms are tried near each family name: ones at the ends and far apart are found."""
    text = "Núñez, José" + " data" * 3000 + "\nJ. Núñez\n" + "x = 1\n" * 2000 + "José Núñez"
    out = PersonRewriter([("José Núñez", "Jane Doe")]).rewrite_text(text)
    assert out == "Doe, Jane" + " data" * 3000 + "\nJ. Doe\n" + "x = 1\n" * 2000 + "Jane Doe"


def test_file_names_holding_a_person_are_renamed(tmp_path: Path) -> None:
    src = tmp_path / "src"
    commit_files(src, {"notes/jose-nunez.md": b"by Nunez, J.\n", "Jose_Nunez/a.txt": b"x\n"})
    out = tmp_path / "out"
    report = anonymise_tree(src, out, Rules(people=(("José Núñez", "Jane Doe"),)))
    assert sorted(tree_files(out)) == ["Jane_Doe/a.txt", "notes/jane-doe.md"]
    assert (out / "notes/jane-doe.md").read_text() == "by Doe, J.\n"
    assert {r.rule for r in report.replacements} == {"person"}
    assert post_scan(out, [], ["José Núñez"]) == []


def test_a_rules_file_adds_people_over_the_manifest(tmp_path: Path) -> None:
    root = _source(tmp_path / "src", '[anonymise.people]\n"José Núñez" = "Jane Doe"\n')
    rules = tmp_path / "rules.toml"
    rules.write_text('[anonymise.people]\n"José Núñez" = "Ann Roe"\n"Ravi Kumaran" = "Sam Roe"\n')
    people = load_manifest(root, rules).anonymise.people
    assert dict(people) == {"José Núñez": "Ann Roe", "Ravi Kumaran": "Sam Roe"}
