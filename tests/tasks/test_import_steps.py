"""step_states: how far an import got, step by step, from the steps it took and its status."""

from __future__ import annotations

from tasks.import_steps import IMPORT_STEPS, step_states


def states(taken: list[str], status: str) -> dict[str, str]:
    result = step_states(taken, status)
    assert [s["step"] for s in result] == list(IMPORT_STEPS)
    return {s["step"]: s["state"] for s in result}


def test_a_queued_import_has_every_step_pending() -> None:
    assert set(states([], "running").values()) == {"pending"}


def test_a_running_import_has_done_running_and_pending_steps() -> None:
    got = states(list(IMPORT_STEPS[:3]), "running")
    assert [got[s] for s in IMPORT_STEPS[:4]] == ["done", "done", "running", "pending"]
    assert got[IMPORT_STEPS[-1]] == "pending"


def test_steps_a_task_did_not_need_are_skipped_not_done() -> None:
    taken = [s for s in IMPORT_STEPS if "third-party" not in s and "hidden" not in s]
    got = states(taken, "succeeded")
    assert got["looking up the kept third-party names in the task environment"] == "skipped"
    assert got["running the hidden checks on the solution"] == "skipped"
    assert {got[s] for s in taken} == {"done"}
    running = states(taken[:-1], "running")  # at the visible tests: the lookup was skipped
    assert running["looking up the kept third-party names in the task environment"] == "skipped"
    assert running["running the hidden checks on the starter"] == "pending"


def test_a_failed_import_marks_the_step_it_failed_in() -> None:
    got = states(list(IMPORT_STEPS[:3]), "failed")
    assert [got[s] for s in IMPORT_STEPS[:4]] == ["done", "done", "failed", "not reached"]
    assert "pending" not in got.values() and "running" not in got.values()
