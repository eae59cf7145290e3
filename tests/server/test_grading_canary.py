"""The canary every session check run carries (``server.grading``): what its outcome says about
the run, and the run's output as if it had not been there. Pure functions; the attack it catches
runs for real in ``test_grading_attacks.py``."""

from __future__ import annotations

from typing import Any

import pytest

from server.grading import TAMPERED, check_canary, harness_job, without_canary
from workspaces.sandbox import WORKSPACE

CANARY = "test_0a1b2c3d4e5f6a7b.py"
# What pytest -q -rfE printed for a run of the canary (first) and two checks, one failing.
OUTPUT = f"""\
FF.                                                                      [100%]
=================================== FAILURES ===================================
___________________________ test_0a1b2c3d4e5f6a7b ____________________________

    def test_0a1b2c3d4e5f6a7b():
>       assert hashlib.sha256(b"seed").hexdigest()[:16] == "other"
E       AssertionError: assert '2d711642b726b044' == 'other'

{CANARY}:5: AssertionError
____________________________________ test_a ____________________________________

    def test_a():
>       assert total([1]) == 1
E       assert 0 == 1

hidden_checks/test_h.py:2: AssertionError
=========================== short test summary info ============================
FAILED {CANARY}::test_0a1b2c3d4e5f6a7b - AssertionError: assert '2d711642b726b044' ==...
FAILED hidden_checks/test_h.py::test_a - assert 0 == 1
2 failed, 1 passed in 0.06s"""


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


def test_the_output_reads_as_if_the_canary_had_not_run() -> None:
    shown = without_canary(OUTPUT, CANARY)
    assert shown.splitlines()[0].startswith("F. ")  # its progress mark is gone
    assert "0a1b2c3d4e5f6a7b" not in shown and "hashlib" not in shown
    assert "test_a" in shown and "assert 0 == 1" in shown
    assert shown.splitlines()[-1] == "1 failed, 1 passed in 0.06s"


def test_the_canary_runs_first() -> None:
    job = harness_job("hidden_checks", WORKSPACE, WORKSPACE, 10.0, canary=CANARY)
    assert job.argv[-2:] == [CANARY, "hidden_checks"]
