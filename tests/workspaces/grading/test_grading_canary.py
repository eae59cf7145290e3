"""The canary every session check run carries (``workspaces.grading.harness``): what its outcome
says about the run, and the run's output as if it had not been there. Pure functions; the attack
it catches runs for real in ``test_grading_attacks.py``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from workspaces.grading.harness import (
    TAMPERED,
    check_canary,
    harness_job,
    plant_canary,
    without_canary,
)
from workspaces.sandbox.bwrap import WORKSPACE

CANARY = "test_0a1b2c3d4e5f6a7b.py"
def case(name: str, status: str) -> dict[str, Any]:
    return {"name": name, "status": status}


CANARY_CASE = f"{CANARY}::test_0a1b2c3d4e5f6a7b"


@pytest.mark.parametrize(("cases", "code", "expected_code", "tampered"), [
    # it failed as it must: the verdict is the checks' own
    ([case(CANARY_CASE, "failed"), case("h/t.py::a", "passed")], 1, 0, None),
    ([case(CANARY_CASE, "failed"), case("h/t.py::a", "failed")], 1, 1, None),
    # only the canary ran: nothing of the task's was collected
    ([case(CANARY_CASE, "failed")], 1, 5, None),
    # errored or skipped (a revision's conftest can do that): inconclusive, never "failed"
    ([case(CANARY_CASE, "error"), case("h/t.py::a", "passed")], 1, 0, None),
    ([case(CANARY_CASE, "skipped"), case("h/t.py::a", "passed")], 0, 0, None),
    # a run cut short after it: it is still there (it runs first), no suspicion
    ([case(CANARY_CASE, "failed")], 2, 2, None),
    # reported passed, or dropped from a run that passed tests: forged from inside
    ([case(CANARY_CASE, "passed"), case("h/t.py::a", "passed")], 0, 0, "passed"),
    ([case("h/t.py::a", "passed")], 0, 0, "missing"),
])
def test_what_the_canary_says_about_a_run(cases: list[dict[str, Any]], code: int,
                                          expected_code: int, tampered: str | None) -> None:
    rest, new_code, why, failed = check_canary(cases, code, CANARY)
    assert failed == any(c["name"] == CANARY_CASE and c["status"] == "failed" for c in cases)
    assert all(not c["name"].startswith(CANARY) for c in rest)
    assert len(rest) == len([c for c in cases if not c["name"].startswith(CANARY)])
    assert new_code == expected_code
    assert why == (TAMPERED.format(status=tampered) if tampered else None)


def test_the_output_reads_as_if_the_canary_had_not_run(tmp_path: Path) -> None:
    """On the output a real pytest run printed (the canary planted by ``plant_canary``, first,
    then a failing and a passing check), with the harness's output options."""
    canary = plant_canary(tmp_path)
    (tmp_path / "checks").mkdir()
    (tmp_path / "checks" / "test_h.py").write_text(
        "def test_a():\n    assert 0 == 1\n\n\ndef test_b():\n    pass\n")
    run = subprocess.run(  # noqa: S603 - this test's own files, pytest itself
        [sys.executable, "-m", "pytest", "-q", "--color=no", "-rfE", "-p", "no:cacheprovider",
         "-c", os.devnull, f"--rootdir={tmp_path}", canary, "checks"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})  # as the harness runs it
    printed = run.stdout
    assert run.returncode == 1 and "2 failed, 1 passed" in printed, printed
    assert canary in printed and "hashlib" in printed  # what there is to take out
    shown = without_canary(printed, canary)
    progress = next(line for line in shown.splitlines() if line.startswith(("F", ".")))
    assert progress.split()[0] == "F."  # its progress mark is gone
    assert canary.removesuffix(".py") not in shown and "hashlib" not in shown, shown
    assert "test_a" in shown and "assert 0 == 1" in shown
    assert re.fullmatch(r"1 failed, 1 passed in [\d.]+s", shown.splitlines()[-1]), shown


def test_the_canary_runs_first() -> None:
    job = harness_job("hidden_checks", WORKSPACE, WORKSPACE, 10.0, canary=CANARY)
    assert job.argv[-2:] == [CANARY, "hidden_checks"]
