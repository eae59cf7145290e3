"""Deny-listed words that are not the company: part of another word (``Gruber``,
``HuberRegressor``, ``trying``), a third-party API (``np.square``) or a declared exception
(``keep``). The rewriter leaves them, the post-scan agrees, and the post-scan is attacked on its
own: with the rewriter's exceptions stretched to everything, it still blocks the company's own
identifiers. Also: the one-pass term search finds exactly what the combined regex finds."""

from __future__ import annotations

import dataclasses
import random
import re
import textwrap
from pathlib import Path

import pytest

import tasks.anonymise
from tasks.anonymise import anonymise_tree
from tasks.errors import ManifestInvalid
from tasks.manifest import MANIFEST_NAME, MAX_KEEP, load_manifest
from tasks.postscan import post_scan
from tasks.pyapis import KeptName, might_keep, third_party_names
from tasks.scanterms import TermScan
from tasks.termforms import TermRewriter
from tests.task_repos import MANIFEST, TASK_ID, commit_files, tree_files

REPLACE = (("Uber", "Acme"), ("Square", "Boxco"), ("ryi", "devuser"),
           ("Quintessa Analytics", "Initech"), ("quintessa.io", "example.org"))
DENY = [t for t, _ in REPLACE]

CLIENT_PY = '''\
"""Client of the Uber internal API."""
import numpy as np
import pandas as pd
from sklearn.linear_model import HuberRegressor

from uber_sdk import UberToken  # the company's own package: not a third party

API = "https://api.uber.internal/v1"


class UberEats:
    """Uber's orders."""


def getUberClient() -> UberEats:  # returns the Uber client
    return UberEats()


def energy(x):
    return np.square(x).sum() + np.linalg.norm(x)


def robust(x, y):
    return HuberRegressor().fit(x, y), pd.DataFrame.square, UberToken
'''
README = """\
# Orders

Method after Gruber, J. (2011), *Robust fits*. Trying the directory is fine for yi, xi.
Ask ryi or @ryi; the Uber team owns it.
"""


@dataclasses.dataclass(frozen=True)
class Rules:
    drop: tuple[str, ...] = (".git/",)
    replace: tuple[tuple[str, str], ...] = REPLACE
    people: tuple[tuple[str, str], ...] = ()
    keep: tuple[str, ...] = ()


@pytest.fixture
def source(tmp_path: Path) -> Path:
    repo = tmp_path / "src"
    commit_files(repo, {"uber_client.py": CLIENT_PY.encode(), "README.md": README.encode()})
    return repo


def test_words_that_hold_a_term_stay_and_the_company_is_rewritten(
    source: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    report = anonymise_tree(source, out, Rules())
    files = tree_files(out)
    assert sorted(files) == ["README.md", "acme_client.py"]
    code, readme = files["acme_client.py"].decode(), files["README.md"].decode()
    # The company's own names, strings and comments: rewritten.
    for rewritten in ('"""Client of the Acme internal API."""', "class AcmeEats:",
                      '"""Acme\'s orders."""', "def getAcmeClient() -> AcmeEats:",
                      "# returns the Acme client", "from acme_sdk import AcmeToken",
                      "pd.DataFrame.square, AcmeToken"):
        assert rewritten in code, rewritten
    assert "api.uber.internal" not in code
    # Third-party API names and parts of other words: kept.
    for kept in ("np.square(x).sum()", "HuberRegressor().fit(x, y)",
                 "from sklearn.linear_model import HuberRegressor"):
        assert kept in code, kept
    assert "Gruber, J. (2011)" in readme
    assert "Trying the directory is fine for yi, xi." in readme
    assert "Ask devuser or @devuser; the Acme team owns it." in readme
    kept_api = {(k.text, k.count) for k in report.kept if k.rule == "third-party-api"}
    assert kept_api == {("numpy.square", 1), ("pandas.DataFrame.square", 1)}
    # The independent check agrees: nothing left to block.
    assert post_scan(out, DENY) == []


def test_a_third_party_name_in_prose_is_rewritten_unless_declared(tmp_path: Path) -> None:
    src = tmp_path / "src"
    commit_files(src, {"NOTES.md": b"We call np.square here.\n"})
    anonymise_tree(src, tmp_path / "a", Rules())
    assert (tmp_path / "a/NOTES.md").read_text() == "We call np.boxco here.\n"
    report = anonymise_tree(src, tmp_path / "b", Rules(keep=("np.square",)))
    assert (tmp_path / "b/NOTES.md").read_text() == "We call np.square here.\n"
    assert post_scan(tmp_path / "b", DENY, keep=["np.square"]) == []
    assert [f.excerpt for f in post_scan(tmp_path / "b", DENY)] == ["square"]
    assert [(k.rule, k.text, k.count, k.stops_rewrite) for k in report.kept] == [
        ("keep", "np.square", 1, True)]


def test_attack_the_rewriter_keeps_everything_the_post_scan_still_blocks_the_company(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rewriter's third-party rule is broken (every name counts as a library's): the
    company's own identifiers survive the rewrite, and the post-scan must block each of them,
    while still not blocking the real library names."""
    def everything(text: str, *_args: object) -> list[KeptName]:
        return [KeptName(0, len(text), "everything")]

    monkeypatch.setattr(tasks.anonymise, "third_party_names", everything)
    monkeypatch.setattr(tasks.anonymise, "might_keep", lambda *_args: True)
    out = tmp_path / "out"
    anonymise_tree(source, out, Rules())
    findings = [(f.path, f.line, f.excerpt) for f in post_scan(out, DENY)
                if f.kind == "deny-term"]
    lines = CLIENT_PY.splitlines()
    # Every line naming the company (less the URL, whose host the host rule numbered).
    expected = {("acme_client.py", n + 1, word)
                for n, line in enumerate(lines) for word in ("Uber", "uber")
                if word in line.replace("HuberRegressor", "") and "://" not in line}
    assert set(findings) == expected, findings
    assert {6, 11, 15, 16, 24} <= {f[1] for f in findings}  # import, class, def, use
    assert not [f for f in findings if "quare" in f[2]]


def test_attack_the_rewrite_bypassed_the_post_scan_finds_each_company_form(
    tmp_path: Path,
) -> None:
    tree = tmp_path / "t"
    planted = {
        "a.py": "uber_client = 1\n", "b.py": "class UberEats: ...\n",
        "c.py": "def getUberClient(): ...\n", "d.md": "see uber.internal\n",
        "e.md": "ubereats and UBER_KEY\n", "f.md": "ping ryi\n", "g.md": "quintessa_analytics\n",
        "h.py": "from uber_sdk import Client\n",
    }
    for rel, content in planted.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_text(content)
    found = {f.path for f in post_scan(tree, DENY)}
    assert found == set(planted)


def test_the_handle_and_the_company_inside_other_words_are_no_findings(tmp_path: Path) -> None:
    tree = tmp_path / "t"
    tree.mkdir()
    text = ("trying, the directory is here, for yi, in x: Gruber (2011), HuberRegressor, "
            "Schuberth, tryit\n")
    (tree / "notes.md").write_text(text)
    assert post_scan(tree, DENY) == []
    assert TermRewriter(list(REPLACE)).rewrite_text(text) == text


def test_a_declared_keep_only_keeps_its_own_text(source: Path, tmp_path: Path) -> None:
    """``keep = ["UberEats"]``: that identifier stays, listed as stopping a rewrite; the
    company's other names are rewritten as before and the post-scan blocks any other."""
    out = tmp_path / "out"
    report = anonymise_tree(source, out, Rules(keep=("UberEats",)))
    code = (out / "acme_client.py").read_text()
    assert "class UberEats:" in code and "def getAcmeClient() -> UberEats:" in code
    assert "Acme's orders" in code and "from acme_sdk import AcmeToken" in code
    assert [(k.text, k.count, k.stops_rewrite) for k in report.kept if k.rule == "keep"] == [
        ("UberEats", 3, True)]
    assert post_scan(out, DENY, keep=["UberEats"]) == []
    (out / "late.py").write_text("x = 'Uber'  # UberEats\n")
    assert [f.excerpt for f in post_scan(out, DENY, keep=["UberEats"])] == ["Uber"]


@pytest.mark.parametrize(("source", "maybe"), [
    ("import numpy as np\nx = np.square(y)\n", True),
    ("import numpy as np\nx = np . linalg . square(y)\n", True),
    ("from sklearn.linear_model import (\n    Ridge,\n    SquareLoss,\n)\nSquareLoss()\n", True),
    ("from uber_sdk import SquareClient\nSquareClient()\n", False),  # the company's package
    ("from orders import SquareClient\nSquareClient()\n", False),  # the repository's own
    ("import numpy as np\nself.square = 1\nsquare_total = 2\n", False),
    ("x = 1  # square\n", False),
])
def test_the_cheap_pre_check_never_misses_a_kept_name(source: str, maybe: bool) -> None:
    terms = TermRewriter(list(REPLACE))
    spans = [(m.start, m.end) for m in terms.finditer(source)]
    own = frozenset({"orders"})
    kept = third_party_names(source, own, terms.contains_term)
    kept_terms = [s for s in spans if any(k.start <= s[0] and s[1] <= k.end for k in kept)]
    assert might_keep(source, spans, own, terms.contains_term) is maybe
    assert bool(kept_terms) == maybe, kept


def test_one_pass_search_finds_what_the_combined_regex_finds() -> None:
    rewriter = TermRewriter(list(REPLACE) + [("Straße", "Weg"), ("warehouse-prod", "store")],
                            subdomains=True)
    pieces = ["uber", "Uber", "UBER", "Gruber", "square", "np.", "ryi", "trying", "quintessa",
              "Quintessa", "_", "-", ".", " ", "\n", "analytics", ".io", "io", "x.", "1",
              "warehouse", "prod", "Straße", "STRASSE", "é", "\u212a", "İ", "ſ", "-a.", "Eats"]
    rnd = random.Random(13)
    for _ in range(3000):
        text = "".join(rnd.choice(pieces) for _ in range(rnd.randint(1, 30)))
        assert list(rewriter.finditer(text)) == list(rewriter.reference_finditer(text)), text
    big = (CLIENT_PY + README) * 200
    assert list(rewriter.finditer(big)) == list(rewriter.reference_finditer(big))


def _source(root: Path, anonymise: str) -> Path:
    manifest = MANIFEST.format(task_id=TASK_ID, company="Uber", replacement="Acme")
    for rel in ("BRIEF.md", "GUIDE.md", "hidden_checks/t.py", "solution/x.py"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("x\n")
    (root / MANIFEST_NAME).write_text(
        manifest.replace("[anonymise]\n", "[anonymise]\n" + textwrap.dedent(anonymise)))
    return root


def test_keep_entries_are_validated(tmp_path: Path) -> None:
    bad = _source(tmp_path / "bad", 'keep = ["Gruber", " Gruber", "Gruber", "a\\nb", 3]\n')
    with pytest.raises(ManifestInvalid) as caught:
        load_manifest(bad)
    assert {(k, r) for _f, k, r in caught.value.problems} == {
        ("anonymise.keep[4]", "must be a string, not an integer"),
    }
    bad = _source(tmp_path / "bad2", 'keep = ["Gruber", " Gruber", "Gruber", "a\\nb"]\n')
    with pytest.raises(ManifestInvalid) as caught:
        load_manifest(bad)
    assert {(k, r) for _f, k, r in caught.value.problems} == {
        ("anonymise.keep[1]", "must be one non-empty line without surrounding spaces"),
        ("anonymise.keep[2]", "'Gruber' is listed twice"),
        ("anonymise.keep[3]", "must be one non-empty line without surrounding spaces"),
    }
    root = _source(tmp_path / "src", """\
        keep = ["Gruber", "Acme Corp", "Uber", "U-B-E-R", "np.square"]
        """)
    with pytest.raises(ManifestInvalid) as caught:
        load_manifest(root)
    problems = {(k, r) for _f, k, r in caught.value.problems}
    assert problems == {
        ("anonymise.keep[1]", "'Acme Corp' holds no deny-listed term, so it would keep nothing "
                              "(the terms: 'Uber')"),
        ("anonymise.keep[2]", "'Uber' is only the deny-listed term 'Uber': keeping it would "
                              "leave the term everywhere; keep the longer text that holds it "
                              "(e.g. a surname or 'np.square')"),
        ("anonymise.keep[3]", "'U-B-E-R' is only the deny-listed term 'Uber': keeping it would "
                              "leave the term everywhere; keep the longer text that holds it "
                              "(e.g. a surname or 'np.square')"),
        ("anonymise.keep[4]", "'np.square' holds no deny-listed term, so it would keep nothing "
                              "(the terms: 'Uber')"),
    }
    many = _source(tmp_path / "many", f"keep = {[f'Gruber{i}' for i in range(MAX_KEEP + 1)]}\n")
    with pytest.raises(ManifestInvalid) as caught:
        load_manifest(many)
    assert ("anonymise.keep", f"must hold at most {MAX_KEEP} entries, not {MAX_KEEP + 1}") in {
        (k, r) for _f, k, r in caught.value.problems}
    ok = _source(tmp_path / "ok", 'keep = ["Gruber"]\n')
    assert load_manifest(ok).anonymise.keep == ("Gruber",)


def test_a_rules_file_keeps_a_manifest_term_and_is_checked_against_it(tmp_path: Path) -> None:
    root = _source(tmp_path / "src", 'keep = ["Gruber"]\n')
    rules = tmp_path / "rules.toml"
    rules.write_text('[anonymise]\nkeep = ["np.square", "Acme Corp"]\n'
                     '[anonymise.replace]\n"Square" = "Boxco"\n')
    with pytest.raises(ManifestInvalid) as caught:
        load_manifest(root, rules)
    assert [(f, k) for f, k, _r in caught.value.problems] == [("rules.toml", "anonymise.keep[1]")]
    rules.write_text('[anonymise]\nkeep = ["np.square"]\n[anonymise.replace]\n"Square" = "Boxco"\n')
    assert load_manifest(root, rules).anonymise.keep == ("Gruber", "np.square")


def test_kept_text_in_names_stays_and_is_counted_once_per_name(tmp_path: Path) -> None:
    src = tmp_path / "src"
    commit_files(src, {"gruber_refs/a.md": b"Gruber\n", "gruber_refs/b.md": b"x\n",
                       "uber_notes/c.md": b"x\n"})
    out = tmp_path / "out"
    report = anonymise_tree(src, out, Rules(keep=("gruber_refs",)))
    assert sorted(tree_files(out)) == ["acme_notes/c.md", "gruber_refs/a.md", "gruber_refs/b.md"]
    assert [(k.text, k.count) for k in report.kept] == [("gruber_refs", 1)]
    assert post_scan(out, DENY, keep=["gruber_refs"]) == []


def test_the_post_scan_maps_every_hit_back_in_a_large_text() -> None:
    """Thousands of hits, written with separators inside, far apart: each is reported at its
    place in the text (the offsets walk drops runs behind it as it goes)."""
    chunk = "x = 1; the_Uber y.u-b-e-r z\n" + "filler words here. " * 40 + "\n"
    text = chunk * 3000
    hits = list(TermScan(DENY).hits(text))
    assert len(hits) == 6000
    starts = [m.start() for m in re.finditer(r"Uber|u-b-e-r", text)]
    assert [h.start for h in hits] == starts
    assert {h.excerpt for h in hits} == {"Uber", "u-b-e-r"}
