"""When an interview counts as over: ended or failed, or past its scheduled end in any state."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from common.clock import iso_in
from workspaces.sessions import Session


def live() -> Session:
    """A live session that started 5 minutes ago and ends in 25, as of now (made when a test
    runs, not when the module is collected: a long run reaches tests after 25 minutes)."""
    return Session(
        id="s1", revision_id="r1", task_id="t1", candidate_name="Ada",
        candidate_email="a@x.org", role="ml-engineer", duration_minutes=30,
        starts_at=iso_in(timedelta(minutes=-5)), ends_at=iso_in(timedelta(minutes=25)),
        state="live", failure_reason="", workspace_id=None, created_by=1,
        created_at=iso_in(timedelta(days=-1)), started_at=None, ended_at=None,
        interviewer_ids=(1,),
    )


@pytest.mark.parametrize("state", ["scheduled", "provisioning", "live"])
def test_an_open_session_before_its_end_is_not_over(state: str) -> None:
    assert not replace(live(), state=state).is_over()


@pytest.mark.parametrize("state", ["ended", "failed"])
def test_an_ended_or_failed_session_is_over_even_before_its_scheduled_end(state: str) -> None:
    assert replace(live(), state=state).is_over()


@pytest.mark.parametrize("state", ["scheduled", "provisioning", "live"])
def test_any_session_past_its_scheduled_end_is_over(state: str) -> None:
    past = replace(live(), state=state, ends_at=iso_in(timedelta(seconds=-1)))
    assert past.is_over()
