"""One repository with every form issue 13 names planted at once, imported for real (git, the
anonymiser, the post-scan, the task environment with numpy and scikit-learn, the checks in the
sandbox): the company in the title; a declared person in a citation, a ``.bib``, ``CITATION.cff``,
wrapped, unaccented and as initials; the company, the person and an internal host inside a
``.gz``, a zip member, a zlib pickle, a notebook attachment's PNG zTXt, a PNG, a JPEG, base64 in
code and UTF-16; a ``/home/<user>/`` path; ``np.square`` and a ``HuberRegressor`` call; a citation
of "Gruber" with "Uber" deny-listed and kept.

No revision made from it is publishable while any of it is left: the text forms are rewritten,
each encoded one is a post-scan finding under its label, the home path is a possible identifier.
Imported again with the encoded files dropped and the suggested rule added (as the review page's
"Add to rules" would), nothing blocks, none of it is in the tree, and the code's tests pass."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from server.settings import Settings
from server.tasks.service import import_config
from tasks.importer import ImportRequest, Prepared, prepare_import
from tests.task_repos import COMPANY, commit_files, tree_files
from tests.tasks import encoded
from tests.tasks.test_person_names import LEFT_OVER, PEOPLE_TOML, people_task

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROBUST = '''\
"""Robust slopes for the order feed."""
import numpy as np
from sklearn.linear_model import HuberRegressor


def energy(x):
    return float(np.square(np.asarray(x, dtype=float)).sum())


def slope(x, y):
    xs = np.asarray(x, dtype=float).reshape(-1, 1)
    return float(HuberRegressor().fit(xs, np.asarray(y, dtype=float)).coef_[0])
'''
ROBUST_TESTS = '''\
from zephyrine_totals.robust import energy, slope


def test_energy():
    assert energy([1, 2]) == 5.0


def test_slope():
    assert abs(slope([0, 1, 2, 3, 4, 5], [0, 2, 4, 6, 8, 10]) - 2.0) < 0.05
'''
EXTRA_RULES = """
[anonymise]
keep = ["Gruber"]

[anonymise.replace]
"Uber" = "Boxco"
"Square" = "Roundco"
"""
HOME = "/home/kwame"


def every_form() -> dict[str, bytes]:
    files = people_task()
    manifest = files["pairlab-task.toml"].decode()
    manifest = manifest.replace('title = "Nightly totals are too low"',
                                f'title = "{COMPANY} nightly totals are too low"')
    manifest = manifest.replace("requirements = []",
                                'requirements = ["numpy", "scikit-learn"]')
    assert PEOPLE_TOML in manifest
    files["pairlab-task.toml"] = manifest.encode()
    files.update(encoded.planted())
    files["zephyrine_totals/robust.py"] = ROBUST.encode()
    files["tests/test_robust.py"] = ROBUST_TESTS.encode()
    files["docs/method.md"] = b"# Method\n\nAfter Gruber, J. (2011), as the Uber team did.\n"
    files["scripts/rerun.sh"] = f"python run.py --out {HOME}/runs/nightly\n".encode()
    return files


def prepare(settings: Settings, repo: Path, rules: str) -> Prepared:
    rules_file = repo.parent / "rules.toml"
    rules_file.write_text(rules)
    cfg = dataclasses.replace(import_config(settings, allow_local=True))
    return prepare_import(ImportRequest(str(repo), rules_file=rules_file), cfg, lambda s: None)


def leftovers(tree: dict[str, bytes]) -> list[str]:
    """Forms left in ``tree``; ``docs/others.md`` holds "Núñez" alone and another Núñez, which
    are nobody declared (people_task keeps them on purpose)."""
    tree = {k: v for k, v in tree.items() if k != "docs/others.md"}
    text = "\n".join([*(c.decode("utf-8", "replace") for c in tree.values()), *tree])
    folded = text.casefold()
    found = [form for form in LEFT_OVER if form.casefold() in folded]
    found += [t for t in (COMPANY, "Uber", HOME) if t.casefold() in
              folded.replace("gruber", "").replace("huberregressor", "")]
    return found


def test_nothing_of_it_reaches_a_publishable_revision(task_settings: Settings,
                                                      tmp_path: Path) -> None:
    repo = tmp_path / "src"
    commit_files(repo, every_form())

    # 1. Everything in one import: the encoded forms block, under their labels.
    first = prepare(task_settings, repo, EXTRA_RULES)
    report = json.loads((first.staged / "report.json").read_text())
    labels = {(f["path"], f["kind"]) for f in report["post_scan"]["findings"]}
    for name, expected in encoded.EXPECTED.items():
        assert expected <= labels, (name, sorted(labels))
    outside = {path for path, _ in labels} - {
        label for labels_of in encoded.EXPECTED.values() for label, _ in labels_of}
    # nothing but the encoded files (and their raw bytes) is a finding
    assert {p.split(" › ")[0] for p in outside} <= set(encoded.EXPECTED), sorted(outside)
    assert any("post-scan" in b for b in first.summary["blockers"]), first.summary
    assert first.summary["visible_tests"] == "passed", first.summary
    tree = tree_files(first.staged / "tree")
    text_files = {k: v for k, v in tree.items() if k not in encoded.EXPECTED}
    assert leftovers({k: v for k, v in text_files.items() if k != "scripts/rerun.sh"}) == []
    assert first.revision.title == "Acme nightly totals are too low"
    robust = tree["acme_totals/robust.py"].decode()
    assert "np.square(np.asarray(" in robust and "HuberRegressor().fit(xs" in robust
    assert "After Gruber, J. (2011), as the Boxco team did." in tree["docs/method.md"].decode()
    assert {"entry": "Gruber", "count": 1, "stops_rewrite": False} in first.summary["kept"]
    home = [h for h in report["possible_identifiers"]["hints"] if h["value"] == HOME]
    assert len(home) == 1 and home[0]["examples"] == ["scripts/rerun.sh:1"], home
    suggested = "\n".join(f'"{r["key"]}" = "{r["value"]}"' for r in home[0]["rules"]
                          if r["table"] == "replace")
    assert suggested, home

    # 2. The admin drops the encoded files and adds the suggested rule: publishable, clean.
    drop = json.dumps(sorted(encoded.EXPECTED))
    second = prepare(task_settings, repo, EXTRA_RULES.replace(
        'keep = ["Gruber"]', f'keep = ["Gruber"]\ndrop = {drop}').replace(
        '"Square" = "Roundco"', f'"Square" = "Roundco"\n{suggested}'))
    assert second.summary["blockers"] == [], second.summary
    assert second.summary["post_scan_findings"] == 0
    assert second.summary["visible_tests"] == "passed"
    tree = tree_files(second.staged / "tree")
    assert not set(encoded.EXPECTED) & set(tree)
    assert leftovers(tree) == []
    assert "Cite: Doe, Jane (2024)." in tree["README.md"].decode()
