"""A session whose scheduled end has passed is ended by the deadline loop whatever its state:
one never started, and one stuck starting (its workspace claimed, never live) — that one's
workspace is stopped too, even though the start still holds the session. Real app and SQLite,
fake workspaces; the end is moved into the past in the database."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from common.clock import iso_in
from server.http.keys import DB
from tests.conftest import audit_actions, query
from tests.harness import Env, EnvFactory
from workspaces import lifecycle
from workspaces.provisioner import WorkspaceInfo

CHECKS = lifecycle.WATCH_INTERVAL_S * 5
"""Long enough for two deadline checks and then some."""


async def end_passed(env: Env, session_id: str) -> None:
    ended = iso_in(timedelta(seconds=-1))
    await env.app[DB].write(lambda d: d.execute(
        "UPDATE interview_sessions SET ends_at = ? WHERE id = ?", [ended, session_id]))


def state_of(env: Env, session_id: str) -> str:
    return str(query(env.settings, "SELECT state FROM interview_sessions WHERE id = ?",
                     (session_id,))[0][0])


async def until(check: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not check():
        await asyncio.sleep(0.1)


async def test_a_session_never_started_ends_at_its_scheduled_end(make_env: EnvFactory) -> None:
    env = await make_env()
    created = await env.schedule()
    sid = created["session_id"]
    assert state_of(env, sid) == "scheduled"
    await end_passed(env, sid)
    await until(lambda: state_of(env, sid) == "ended", CHECKS)
    assert state_of(env, sid) == "ended"
    assert "session.end" in audit_actions(env.settings)
    closed = await env.ws.get("/" + created["candidate_link"].split("/", 3)[3],
                              allow_redirects=False)
    assert closed.status == 410 and "thank you" in await closed.text()


async def test_a_session_stuck_starting_is_ended_and_its_workspace_stopped(
        make_env: EnvFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    env = await make_env()
    created = await env.schedule()
    sid = created["session_id"]
    await env.open_link(created["candidate_link"])
    filling, release = asyncio.Event(), asyncio.Event()
    real_fill = env.provisioner.fill

    async def hung(info: WorkspaceInfo, tree: Path) -> None:
        filling.set()
        await release.wait()  # the copy of the task's files never finishes (until released)
        await real_fill(info, tree)

    monkeypatch.setattr(env.provisioner, "fill", hung)
    pressed = asyncio.create_task(env.press_start(sid))
    try:
        await asyncio.wait_for(filling.wait(), 120)  # a first run builds the environment
        claimed = query(env.settings, "SELECT id FROM workspaces WHERE session_id = ?"
                        " AND state = 'live'", (sid,))
        assert len(claimed) == 1 and state_of(env, sid) == "provisioning"
        workspace = str(claimed[0][0])
        assert workspace in env.provisioner.running

        await end_passed(env, sid)
        await until(lambda: workspace in env.provisioner.stopped, CHECKS)
        assert state_of(env, sid) == "ended"
        assert workspace in env.provisioner.stopped and workspace not in env.provisioner.running
        assert query(env.settings, "SELECT state FROM workspaces WHERE id = ?",
                     (workspace,)) == [("stopped",)]
        assert not pressed.done()  # ended without waiting for the start
    finally:
        release.set()
    # The start comes back: it is refused going live, and nobody is let into the workspace.
    response = await asyncio.wait_for(pressed, 30)
    assert response.status != 303, await response.text()
    await until(lambda: workspace not in env.manager.upstreams, CHECKS)
    assert workspace not in env.manager.upstreams
    assert state_of(env, sid) == "ended"
