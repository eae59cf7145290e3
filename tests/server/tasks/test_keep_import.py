"""Real imports of a repository whose code calls ``np.square`` and sklearn's ``HuberRegressor``
and whose README cites "Gruber", with "Uber", "Square" and the handle "ryi" deny-listed: through
the JSON API with ``keep = ["Gruber"]`` (the report counts it, the revision page shows it, the
audit log records it) and the real ``pairlab task import`` without it; the code's own tests run
in the real sandbox against numpy and scikit-learn. A keep entry naming no deny-listed term, or
naming only the company, is refused by both, with a sentence."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from server.settings import Settings
from tests.conftest import query
from tests.server.tasks.test_import_api import (
    admin_csrf,
    get_json,
    import_and_wait,
    page,
    serve_repo,
    start_import,
)
from tests.task_repos import (
    Client,
    Run,
    make_repo,
    staging_leftovers,
    tree_files,
    wait_for_import,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

MANIFEST = """\
[task]
id = "robust-orders"
title = "Robust order totals"
kind = "pipeline-bug"
roles = ["ml-engineer"]
duration_minutes = 30
brief = "BRIEF.md"
guide = "GUIDE.md"

[environment]
requirements = ["numpy", "scikit-learn"]

[checks]
visible = "python -m pytest -q tests"

[anonymise.replace]
"Uber" = "Acme"
"Square" = "Boxco"
"ryi" = "devuser"
"""
CLIENT = '''\
"""Orders of the Uber Eats team."""
import numpy as np
from sklearn.linear_model import HuberRegressor


class UberEats:
    """Uber's order totals."""

    def energy(self, x):
        return float(np.square(np.asarray(x, dtype=float)).sum())

    def slope(self, x, y):
        xs = np.asarray(x, dtype=float).reshape(-1, 1)
        model = HuberRegressor().fit(xs, np.asarray(y, dtype=float))
        return float(model.coef_[0])


def getUberClient():  # the Uber client
    return UberEats()
'''
TESTS = '''\
from uber_client import UberEats, getUberClient


def test_energy():
    assert getUberClient().energy([1, 2]) == 5.0


def test_slope():
    assert abs(UberEats().slope([0, 1, 2, 3, 4, 5], [0, 2, 4, 6, 8, 10]) - 2.0) < 0.05
'''
README = ("# Orders\n\nMethod after Gruber, J. (2011). Trying it: the directory is read "
          "for yi in ys.\nAsk ryi.\n")
FILES = {
    "pairlab-task.toml": MANIFEST.encode(), "BRIEF.md": b"Fix the Uber totals.\n",
    "GUIDE.md": b"## Hint ladder\n\n1. Look at the slope.\n",
    "uber_client.py": CLIENT.encode(), "tests/test_uber_client.py": TESTS.encode(),
    "README.md": README.encode(),
}
KEEP_RULES = '[anonymise]\nkeep = ["Gruber"]\n'


def assert_anonymised(tree: dict[str, bytes]) -> None:
    assert sorted(tree) == ["BRIEF.md", "README.md", "acme_client.py",
                            "tests/test_acme_client.py"]
    code = tree["acme_client.py"].decode()
    for text in ('"""Orders of the Acme Eats team."""', "class AcmeEats:", "Acme's order totals",
                 "def getAcmeClient():  # the Acme client", "np.square(np.asarray(",
                 "from sklearn.linear_model import HuberRegressor", "HuberRegressor().fit(xs"):
        assert text in code, text
    readme = tree["README.md"].decode()
    assert readme == ("# Orders\n\nMethod after Gruber, J. (2011). Trying it: the directory is "
                      "read for yi in ys.\nAsk devuser.\n")
    everything = "\n".join(c.decode() for c in tree.values()).replace("HuberRegressor", "")
    assert "uber" not in everything.replace("Gruber", "").casefold()


async def test_api_import_with_a_keep_runs_the_code_lists_and_audits_the_exception(
    task_client: Client, task_settings: Settings, tmp_path: Path, served: Path,
    git_server: tuple[str, int],
) -> None:
    base, _ = git_server
    name = serve_repo(tmp_path, served, "orders", FILES)
    headers = await admin_csrf(task_client, task_settings)
    import_id = await start_import(task_client, headers, url=f"{base}/{name}", rules=KEEP_RULES)
    row = await wait_for_import(task_client, import_id, headers, deadline_s=800)
    assert (row["status"], row["error"]) == ("succeeded", None), row
    rev_id = row["revision_id"]
    body = await get_json(task_client, f"/api/v1/task-revisions/{rev_id}")
    report = body["report"]
    assert report["blockers"] == [] and report["post_scan"]["clean"], report["post_scan"]
    assert report["checks"]["visible"]["passed"], report["checks"]["visible"]["output"]
    assert "2 passed" in report["checks"]["visible"]["output"]
    kept = report["anonymisation"]["kept"]
    assert {"rule": "keep", "text": "Gruber", "count": 1, "stops_rewrite": False} in kept
    assert {"rule": "third-party-api", "text": "numpy.square", "count": 1,
            "stops_rewrite": False} in kept
    rows = query(task_settings, "SELECT actor, object_id, detail FROM audit_log "
                 "WHERE action = 'task.anonymise.keep'")
    assert [(r[0], r[1], json.loads(r[2])) for r in rows] == [
        ("admin@example.com", rev_id,
         {"keep": [{"entry": "Gruber", "count": 1, "stops_rewrite": False}]})]
    html = await page(task_client, f"/admin/tasks/revisions/{rev_id}")
    kept_table = html.split('<table id="kept">')[1].split("</table>")[0]
    assert "<code>Gruber</code>" in kept_table and "declared exception (keep)" in kept_table
    assert "<code>numpy.square</code>" in kept_table
    store = task_settings.data_dir / "tasks" / "robust-orders" / rev_id / "tree"
    assert_anonymised(tree_files(store))
    assert staging_leftovers(task_settings) == []


async def test_api_import_refuses_a_keep_that_names_no_term_or_only_the_company(
    task_client: Client, task_settings: Settings, tmp_path: Path, served: Path,
    git_server: tuple[str, int],
) -> None:
    base, _ = git_server
    name = serve_repo(tmp_path, served, "orders", FILES)
    headers = await admin_csrf(task_client, task_settings)
    row = await import_and_wait(task_client, headers, url=f"{base}/{name}",
                                rules='[anonymise]\nkeep = ["Acme Corp", "Uber"]\n')
    assert row["status"] == "failed" and row["revision_id"] is None, row
    assert ("rules.toml: anonymise.keep[0]: 'Acme Corp' holds no deny-listed term, so it would "
            "keep nothing (the terms: 'Uber', 'Square', 'ryi')") in row["error"]
    assert ("rules.toml: anonymise.keep[1]: 'Uber' is only the deny-listed term 'Uber'"
            in row["error"])
    assert query(task_settings, "SELECT 1 FROM audit_log WHERE action = 'task.anonymise.keep'") \
        == []


def test_cli_import_without_keep_still_rewrites_the_company_and_refuses_a_bad_keep(
    pairlab: Callable[..., Run], tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path / "src", FILES)
    done = pairlab("task", "import", str(repo), "--allow-local", "--json")
    assert done.returncode == 0, done
    summary = json.loads(done.stdout)["summary"]
    assert summary["blockers"] == [] and summary["visible_tests"] == "passed", summary
    assert summary["kept"] == []
    rev_id = json.loads(done.stdout)["revision"]["id"]
    assert_anonymised(tree_files(tmp_path / "cli-data/tasks/robust-orders" / rev_id / "tree"))

    rules = tmp_path / "rules.toml"
    rules.write_text('[anonymise]\nkeep = ["Uber"]\n')
    refused = pairlab("task", "import", str(repo), "--allow-local", "--rules", str(rules))
    assert refused.returncode == 2 and refused.stdout == "", refused
    last = refused.stderr.strip().splitlines()[-1]
    assert last == (
        "pairlab: the task manifest is invalid: rules.toml: anonymise.keep[0]: 'Uber' is only "
        "the deny-listed term 'Uber': keeping it would leave the term everywhere; keep the "
        "longer text that holds it (e.g. a surname or 'np.square')")
    assert "Traceback" not in refused.stderr
