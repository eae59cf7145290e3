"""The steps of an import, in order, and how far one import got through them.

``prepare_import`` reports each step as it starts (``progress(step)``); the server records them
on the import's row (``revisions.set_import_step``) and the import page lists every step with
its state. Some steps happen only for some tasks (the kept third-party names, the hidden checks),
so a step not taken is "skipped" once a later one was taken, not "done".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["IMPORT_STEPS", "step_states"]

VALIDATING = "validating the source"
FETCHING = "fetching one snapshot"
READING_MANIFEST = "reading the manifest"
ANONYMISING = "anonymising"
POST_SCANNING = "post-scanning every byte of the result"
FINDING_IDENTIFIERS = "looking for identifiers nobody declared"
BUILDING_ENVIRONMENT = "building the task environment"
LOOKING_UP_NAMES = "looking up the kept third-party names in the task environment"
VISIBLE_TESTS = "running the visible tests on the anonymised tree"
HIDDEN_ON_SOLUTION = "running the hidden checks on the solution"
HIDDEN_ON_STARTER = "running the hidden checks on the starter"
WRITING_REPORT = "writing the report"

IMPORT_STEPS = (
    VALIDATING, FETCHING, READING_MANIFEST, ANONYMISING, POST_SCANNING, FINDING_IDENTIFIERS,
    BUILDING_ENVIRONMENT, LOOKING_UP_NAMES, VISIBLE_TESTS, HIDDEN_ON_SOLUTION, HIDDEN_ON_STARTER,
    WRITING_REPORT,
)
"""Every step, in the order they happen. An import's row starts at ``queued`` and a succeeded
one ends at ``done``; a failed one keeps the step it failed in."""


def step_states(taken: Sequence[str], status: str) -> list[dict[str, Any]]:
    """Each of ``IMPORT_STEPS`` with its state for an import that has ``taken`` these steps (in
    order) and has ``status`` (running, succeeded, failed): done, running, failed (the step it
    failed in), skipped (not needed for this task), not reached (after a failure) or pending."""
    last = taken[-1] if taken else None
    later = {step: i for i, step in enumerate(IMPORT_STEPS)}
    furthest = max((later[s] for s in taken if s in later), default=-1)
    states = []
    for i, step in enumerate(IMPORT_STEPS):
        if step == last and status != "succeeded":
            state = "running" if status == "running" else "failed"
        elif step in taken:
            state = "done"
        elif i < furthest or status == "succeeded":
            state = "skipped"
        elif status == "failed":
            state = "not reached"
        else:
            state = "pending"
        states.append({"step": step, "state": state})
    return states
