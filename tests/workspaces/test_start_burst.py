"""A burst of session starts through the real app and lifecycle, on the real ``LocalProvisioner``
(sandboxed jupyter-servers): with ``max_parallel_starts=2`` no more than two servers are ever
being started at once, the others wait in the start queue and the candidate's session API says
where (``queue``), and every start still ends in a live workspace."""

from __future__ import annotations

import asyncio
import os
import random
import re
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient

from tests.conftest import MakeSettings, create_user
from tests.fixture_tasks import publish_fake_task
from tests.harness import LEAD, QUIET, Env, start_env
from tests.workspaces.conftest import make_data_dir, remove_data_dir, require_sandbox
from workspaces import sessions as S
from workspaces.local import LocalProvisioner
from workspaces.provisioner import WorkspaceInfo, WorkspaceSpec

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]
BURST = 5
BOUND = 2
MESSAGE = re.compile(
    r"^Your workspace starts in about \d+ s \((\d+ ahead of you|you are next)\)\.$")


class CountingProvisioner(LocalProvisioner):
    """The real provisioner, counting the ``start`` calls under way at once."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.calls = 0
        self.inside = 0
        self.most = 0
        self.spares: list[str] = []

    async def start(self, spec: WorkspaceSpec) -> WorkspaceInfo:
        self.calls += 1
        self.spares.append(spec.spare_kernel)
        self.inside += 1
        self.most = max(self.most, self.inside)
        try:
            return await super().start(spec)
        finally:
            self.inside -= 1


def uid_base() -> int:
    """The developer's own uid block if set (as the product reads it), else a random one."""
    return int(os.environ.get("PAIRLAB_SANDBOX_UID_BASE") or
               random.randrange(100_000, 4_000_000, 2000))  # noqa: S311 - not security


async def test_a_burst_of_starts_runs_at_most_the_bound_at_once_and_says_the_queue(
        make_settings: MakeSettings, aiohttp_client: AiohttpClient) -> None:
    require_sandbox()
    data = make_data_dir()  # short paths: the workspaces' Unix sockets must fit
    provisioner = CountingProvisioner(data / "workspaces")
    settings = make_settings(**{**QUIET, "max_parallel_starts": BOUND,
                                "sandbox_uid_base": uid_base()})
    publish_fake_task(settings)
    create_user(settings, LEAD, "interviewer")
    env: Env | None = None
    try:
        env = await start_env(aiohttp_client, settings, provisioner, Env)
        sessions = [await env.schedule(candidate_name=f"Burst {i}") for i in range(BURST)]
        ids = [s["session"]["id"] for s in sessions]
        for s in sessions:
            await env.open_link(s["candidate_link"])
        queues: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
        staff_saw: list[dict[str, Any]] = []

        async def watch() -> None:
            while True:
                for session_id in ids:
                    answer = await env.ws.get(f"/api/v1/sessions/{session_id}")
                    queue = (await answer.json())["session"]["queue"]
                    if queue is not None:
                        queues[session_id].append(queue)
                    staff = await env.client.get(f"/api/v1/sessions/{session_id}")
                    queue = (await staff.json())["session"]["queue"]
                    if queue is not None:  # the interviewers' API says it too, unworded
                        staff_saw.append(queue)
                await asyncio.sleep(0.05)  # a poll's pace, as the landing page's

        watcher = asyncio.create_task(watch())
        try:
            answers = await asyncio.gather(*(env.press_start(i) for i in ids))
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        assert [a.status for a in answers] == [303] * BURST, [await a.text() for a in answers]
        assert provisioner.calls == BURST
        assert provisioner.most == BOUND, provisioner.most  # bounded, and the bound was used
        # Those started while others waited start their spare kernel when JupyterLab loads;
        # the last, with no one behind it, with its server.
        assert "lab_load" in provisioner.spares and provisioner.spares[-1] == "now", \
            provisioner.spares
        seen = [q for qs in queues.values() for q in qs]
        assert len([i for i in ids if queues[i]]) >= BURST - BOUND - 1, queues
        assert all(MESSAGE.match(q["message"]) and q["starts_in_s"] >= 1 for q in seen), seen
        assert max(q["position"] for q in seen) >= 2, seen
        assert staff_saw and all(set(q) == {"position", "ahead", "starts_in_s"}
                                 and q["ahead"] >= q["position"] >= 1 for q in staff_saw)
        for session_id in ids:
            session = await env.manager.db.read(partial(S.get_session, session_id=session_id))
            assert session.state == "live"
        assert env.manager.gate.running == env.manager.gate.waiting == 0
        for session_id in ids:
            answer = await env.ws.get(f"/api/v1/sessions/{session_id}")
            assert (await answer.json())["session"]["queue"] is None
    finally:
        if env is not None:  # the app's clean-up stops the workspaces (before their folder goes)
            await env.client.close()
            await env.ws.close()
        await asyncio.to_thread(remove_data_dir, data)
