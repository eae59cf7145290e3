"""Attack: someone without a grant asks for workspaces' pages to learn their sessions' state
(ended, restarting, running). Every one answers the same refusal (status, headers that matter
and page alike); only a browser that holds the workspace's grant hears that the interview
ended (410) or that the workspace is restarting (503). Real app, fake workspaces."""

from __future__ import annotations

import secrets

import aiohttp

from tests.harness import Env, EnvFactory

ANSWER_HEADERS = ("Content-Type", "X-Pairlab-Session", "Retry-After")


async def started(env: Env, name: str) -> tuple[str, str]:
    """A session started by its candidate (``env.ws`` keeps their grants): its id and its
    workspace's."""
    created = await env.schedule(candidate_name=name)
    await env.open_link(created["candidate_link"])
    workspace = (await env.start_as_candidate(created["session_id"])).split("/")[2]
    return created["session_id"], workspace


async def answer(env: Env, workspace: str, cookies: dict[str, str]) -> tuple[int, str, str]:
    """What a browser with only ``cookies`` is told at the workspace's page: status, the
    headers that could tell states apart, the page with the workspace id taken out."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as browser:
        response = await browser.get(str(env.ws.make_url(f"/w/{workspace}/lab")),
                                     headers={"Host": f"w-{workspace}.localhost"},
                                     cookies=cookies, allow_redirects=False)
        headers = "|".join(f"{h}={response.headers.get(h)}" for h in ANSWER_HEADERS)
        return response.status, headers, (await response.text()).replace(workspace, "W")


async def test_without_a_grant_a_workspace_never_says_its_sessions_state(
        make_env: EnvFactory) -> None:
    env = await make_env()
    _, running = await started(env, "Ada")
    ended_id, ended = await started(env, "Bea")
    _, restarting = await started(env, "Cy")
    end = await env.client.post(f"/api/v1/sessions/{ended_id}/end",
                                headers={"X-CSRF-Token": env.csrf})
    assert end.status == 200
    held = env.manager.upstreams.pop(restarting)  # between a crash and its restart
    try:
        grants = {c.key: c.value for c in env.ws.session.cookie_jar}
        forged = secrets.token_urlsafe(32)
        for workspace in (running, ended, restarting):
            mine = {k: v for k, v in grants.items() if k.endswith(workspace)}
            assert len(mine) == 1, grants
            name = next(iter(mine))
            # another workspace's (valid) grant, under this workspace's cookie name
            other = next(v for k, v in grants.items() if k != name and k.startswith(
                "pairlab_w_"))
            answers = {await answer(env, workspace, cookies)
                       for cookies in ({}, {name: forged}, {name: other})}
            assert len(answers) == 1, (workspace, answers)
            status, headers, page = answers.pop()
            assert status == 403 and "X-Pairlab-Session=None" in headers, (status, headers)
            assert "no access to this session" in page
            assert "thank you" not in page.lower() and "restarting" not in page
            if workspace == running:
                refused = (status, headers, page)
            else:  # the same as at the running workspace: nothing tells them apart
                assert (status, headers, page) == refused

        # The grant holder is still told: the interview ended, or the workspace restarts.
        status, headers, page = await answer(env, ended, {
            k: v for k, v in grants.items() if k.endswith(ended)})
        assert status == 410 and "X-Pairlab-Session=ended" in headers and "thank you" in page
        status, _, page = await answer(env, restarting, {
            k: v for k, v in grants.items() if k.endswith(restarting)})
        assert status == 503 and "restarting" in page
    finally:
        env.manager.upstreams[restarting] = held
