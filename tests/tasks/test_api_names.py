"""The attack on the rewriter's third-party rule: a deny-listed name imported from the
company's own package that is not in the tree (``from corp_utils import ZephyrineConfig``), or
one a real library does not have (``os.ZephyrineVault``), is kept by the rewriter as if it were
a library's; so the import looks each kept name up in the task's environment, in the sandbox:
those are not there, so they are findings that block publishing; ``np.square`` is there and
blocks nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from server.settings import Settings
from tasks.apicheck import KIND, LABEL
from tests.task_repos import commit_files, tiny_task, tree_files
from tests.tasks.test_every_form import prepare

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

CODE = '''\
"""Feature scaling."""
import numpy as np
from corp_utils import ZephyrineConfig
from sklearn.linear_model import HuberRegressor
import os


def energy(x):
    return float(np.square(np.asarray(x, dtype=float)).sum())


def config():
    return ZephyrineConfig(), os.ZephyrineVault, HuberRegressor
'''
RULES = '[anonymise.replace]\n"Square" = "Roundco"\n'


def test_a_kept_name_the_environment_does_not_have_blocks(task_settings: Settings,
                                                          tmp_path: Path) -> None:
    files = tiny_task(extra={"zephyrine_totals/scale.py": CODE.encode()})
    manifest = files["pairlab-task.toml"].decode().replace(
        "requirements = []", 'requirements = ["numpy", "scikit-learn"]')
    files["pairlab-task.toml"] = manifest.encode()
    repo = tmp_path / "src"
    commit_files(repo, files)
    prepared = prepare(task_settings, repo, RULES)
    report = json.loads((prepared.staged / "report.json").read_text())
    kept = {k["text"] for k in report["anonymisation"]["kept"] if k["rule"] == "third-party-api"}
    # the rewriter took all four for library names ...
    assert kept == {"numpy.square", "corp_utils.ZephyrineConfig", "os.ZephyrineVault"}
    code = tree_files(prepared.staged / "tree")["acme_totals/scale.py"].decode()
    assert "ZephyrineConfig" in code
    # ... the environment has only the real ones: the others block publishing.
    unverified = sorted(f["excerpt"] for f in report["post_scan"]["findings"]
                        if f["kind"] == KIND and f["path"] == LABEL)
    assert unverified == ["corp_utils.ZephyrineConfig", "os.ZephyrineVault"]
    assert any("post-scan" in b for b in prepared.summary["blockers"]), prepared.summary
    assert prepared.summary["visible_tests"] == "passed"
