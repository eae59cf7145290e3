"""A change waits for a room's save (``SAVE_WAIT_S``) that does not come: the evidence windows
still count from when the change was seen, so a cell an interviewer ran just before it still
names them (with a wait longer than ``ACTIVE_S``, counting from the wait's end named the
candidate)."""

from __future__ import annotations

import asyncio

import pytest

from workspaces.recording import attribution
from workspaces.recording.attribution import Attribution

WAITED = attribution.SAVE_WAIT_S
"""The product's wait, which the fake clock lets pass (the real wait is cut short)."""


async def test_a_change_after_a_cell_still_names_its_runner_when_no_save_came(
        monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]

    class NeverSaved:
        async def wait(self) -> None:
            now[0] += WAITED  # the whole wait passes, and no save comes
            await asyncio.Event().wait()

    monkeypatch.setattr(attribution, "SAVE_WAIT_S", 0.05)
    claims = Attribution(pending_saves=lambda path: (NeverSaved(),), clock=lambda: now[0])
    claims.active("interviewer:7")
    now[0] += 1.0  # the change comes a second after their cell
    actor, why = await claims.attribute("main.py", "ab" * 32)
    assert now[0] - 1.0 - 100.0 >= attribution.ACTIVE_S  # the wait outlasted the window
    assert (actor, why) == ("interviewer:7", {"via": "process", "inferred": True})
