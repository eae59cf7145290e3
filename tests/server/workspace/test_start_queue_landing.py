"""A start waiting in the start queue, over the real app (a fake workspace whose start the test
holds): the candidate's landing page as rendered and the session API say its place and the
estimate; once the start ahead is done, both starts go live and nothing is queued."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.fake_workspace import FakeProvisioner
from tests.harness import EnvFactory
from tests.server.workspace.test_candidate_landing import Page
from workspaces.provisioner import WorkspaceInfo, WorkspaceSpec


@dataclass
class HeldProvisioner(FakeProvisioner):
    """A fake provisioner whose starts wait until the test lets them finish."""

    go: asyncio.Event = field(default_factory=asyncio.Event)
    inside: int = 0

    async def start(self, spec: WorkspaceSpec) -> WorkspaceInfo:
        self.inside += 1
        await self.go.wait()
        return await super().start(spec)


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)  # the app's request tasks run meanwhile
    raise AssertionError("timed out")


async def test_a_waiting_start_is_told_its_place_then_goes_live(make_env: EnvFactory,
                                                                tmp_path: Path) -> None:
    provisioner = HeldProvisioner(tmp_path / "held")
    env = await make_env(provisioner, max_parallel_starts=1)
    first = await env.schedule(candidate_name="Ada First")
    second = await env.schedule(candidate_name="Ben Second")
    ids = [first["session"]["id"], second["session"]["id"]]
    for created in (first, second):
        await env.open_link(created["candidate_link"])

    starting = asyncio.create_task(env.press_start(ids[0]))
    await _until(lambda: provisioner.inside == 1)
    waiting = asyncio.create_task(env.press_start(ids[1]))
    await _until(lambda: env.manager.gate.waiting == 1)

    page = Page(await (await env.ws.get(f"/s/{ids[1]}")).text())
    expected = "Your workspace starts in about 4 s (1 ahead of you)."  # 1 / K=1 x 4 s seed
    assert page.text["preparing"] == expected
    api = (await (await env.ws.get(f"/api/v1/sessions/{ids[1]}")).json())["session"]
    assert api["queue"] == {"position": 1, "ahead": 1, "starts_in_s": 4, "message": expected}
    ahead = (await (await env.ws.get(f"/api/v1/sessions/{ids[0]}")).json())["session"]
    assert ahead["state"] == "provisioning" and ahead["queue"] is None  # running, not waiting
    assert Page(await (await env.ws.get(f"/s/{ids[0]}")).text()).text["preparing"] \
        == "Preparing your workspace…"
    assert provisioner.inside == 1  # the bound holds the second start back

    provisioner.go.set()
    answers = await asyncio.gather(starting, waiting)
    assert [a.status for a in answers] == [303, 303]
    for session_id in ids:
        api = (await (await env.ws.get(f"/api/v1/sessions/{session_id}")).json())["session"]
        assert (api["state"], api["queue"]) == ("live", None)
