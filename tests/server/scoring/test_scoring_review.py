"""Review of scoring (issue 6): blind mode on the workspace origin and the outcomes page, and
scorecard input that used to crash or slip through validation."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from pytest_aiohttp import AiohttpClient

from server.sessions.wiring import WORKSPACE_APP
from server.settings import Settings
from tests.conftest import form_csrf_token, login, query
from tests.host_routing import enter, routing
from tests.server.scoring.conftest import PIPELINE_DIMS, Panel
from workspaces import sessions as S


def card(level: Any = 3, moments: list[Any] | None = None) -> dict[str, Any]:
    return {"scores": {d: {"level": level, "evidence": f"saw {d}", "moments": moments or []}
                       for d in PIPELINE_DIMS},
            "recommendation": "yes", "summary": "a summary"}


async def test_blind_candidate_hidden_from_interviewers_on_the_workspace_origin(
        panel: Panel, aiohttp_client: AiohttpClient) -> None:
    """An interviewer who joins through a handoff has the workspace origin's cookie: its
    landing page and session API must show the pseudonym, not the candidate's name."""
    sid = await panel.schedule(blind=True)
    _, session = await panel.call("alice", "GET", f"/api/v1/sessions/{sid}")
    pseudonym = session["session"]["candidate_name"]
    assert (await panel.call("alice", "POST", f"/api/v1/sessions/{sid}/start"))[0] == 200
    status, data = await panel.call("alice", "POST", f"/api/v1/sessions/{sid}/handoff")
    assert status == 200, data
    ws = routing(await aiohttp_client(panel.client.app[WORKSPACE_APP]))
    joined = await ws.get("/handoff/" + data["url"].rsplit("/", 1)[1], allow_redirects=False)
    assert joined.status == 303
    lab = await enter(ws, joined.headers["Location"])
    host = {"Host": f"w-{lab.split('/')[2]}.localhost"}  # the workspace's own host
    response = await ws.get(f"/api/v1/sessions/{sid}", headers=host)  # its countdown's API
    assert response.status == 200
    text = await response.text()
    assert "Grace" not in text and "grace@" not in text
    assert pseudonym in text


async def test_outcomes_page_shows_the_pseudonym_of_an_unrevealed_blind_session(
        panel: Panel) -> None:
    blind = await panel.schedule(blind=True)
    plain = await panel.schedule()
    for sid in (blind, plain):
        assert (await panel.call("alice", "POST", f"/api/v1/sessions/{sid}/end"))[0] == 200
    _, session = await panel.call("admin", "GET", f"/api/v1/sessions/{blind}")
    pseudonym = session["session"]["candidate_name"]
    status, html = await panel.page("admin", "/outcomes")
    assert status == 200
    blind_row = html.split(f'id="outcome-{blind}"', 1)[1].split("</tr>", 1)[0]
    plain_row = html.split(f'id="outcome-{plain}"', 1)[1].split("</tr>", 1)[0]
    assert pseudonym in blind_row
    assert "Grace" not in blind_row and "grace@" not in blind_row
    assert "Grace Hopper" in plain_row and "grace@example.org" in plain_row  # not blind


async def test_levels_must_be_whole_numbers(panel: Panel) -> None:
    sid = await panel.schedule()
    for level in (3.0, 2.5, "3", True):
        for method, path in (("PUT", "mine"), ("POST", "mine/submit")):
            status, data = await panel.call("alice", method,
                                            f"/api/v1/sessions/{sid}/scorecards/{path}",
                                            card(level))
            assert status == 422, (level, path, data)
            assert "scores.debugging.level" in data["error"]["message"]
    assert query(panel.settings, "SELECT COUNT(*) FROM scorecards") == [(0,)]
    assert query(panel.settings, "SELECT COUNT(*) FROM scorecard_versions") == [(0,)]


async def test_a_huge_moment_number_is_a_422_not_a_crash(panel: Panel) -> None:
    sid = await panel.schedule()
    for method, path in (("PUT", "mine"), ("POST", "mine/submit")):
        status, data = await panel.call("alice", method,
                                        f"/api/v1/sessions/{sid}/scorecards/{path}",
                                        card(3, [10**30]))
        assert status == 422, data
        assert "moments" in data["error"]["message"]
    assert query(panel.settings, "SELECT COUNT(*) FROM scorecards") == [(0,)]


async def test_scorecard_form_with_non_ascii_digits_is_a_422_not_a_crash(
        panel: Panel, settings: Settings) -> None:
    sid = await panel.schedule()
    await login(panel.client, "alice@example.com")
    page = await panel.client.get(f"/sessions/{sid}/scorecard")
    assert page.status == 200
    token = form_csrf_token(await page.text())
    form: dict[str, str] = {"csrf_token": token, "action": "save", "summary": "s"}
    for dim in PIPELINE_DIMS:
        form[f"level-{dim}"] = "3"
        form[f"evidence-{dim}"] = "x"
        form[f"moments-{dim}"] = ""
    for field, value in (("level-debugging", "\u00b2"), ("moments-debugging", "\u00b2"),
                         ("moments-questions", "9" * 5000), ("moments-questions", "9" * 30)):
        response = await panel.client.post(f"/sessions/{sid}/scorecard",
                                           data={**form, field: value}, allow_redirects=False)
        assert response.status == 422, (field, value[:10], response.status)
        assert "Not saved" in await response.text()
    assert query(settings, "SELECT COUNT(*) FROM scorecards") == [(0,)]


async def test_number_look_alikes_in_urls_and_huge_numbers_are_4xx_not_crashes(
        panel: Panel) -> None:
    for path in ("/api/v1/rubrics/pipeline-bug?version=\u00b2",
                 "/api/v1/rubrics/pipeline-bug?version=" + "9" * 5000,
                 "/api/v1/webhooks/\u00b2/deliveries"):
        status, data = await panel.call("admin", "GET", path)
        assert 400 <= status < 500, (path[:60], status, data)
    sid = await panel.schedule()
    assert (await panel.call("alice", "POST", f"/api/v1/sessions/{sid}/end"))[0] == 200
    status, data = await panel.call("admin", "PUT", f"/api/v1/sessions/{sid}/outcome",
                                    {"hired": True, "performance": 10**400})
    assert status == 422 and "performance" in data["error"]["message"], data
    status, data = await panel.call("admin", "PUT", "/api/v1/outcomes/baseline",
                                    {"value": 10**400})
    assert status == 422 and "value" in data["error"]["message"], data
    assert query(panel.settings, "SELECT COUNT(*) FROM outcomes") == [(0,)]
    assert query(panel.settings, "SELECT COUNT(*) FROM report_baselines") == [(0,)]
    # the same look-alike digits on the older routes (events, tokens)
    for who, path in (("alice", f"/api/v1/sessions/{sid}/events?after=\u00b2"),
                      ("alice", f"/api/v1/sessions/{sid}/events?limit=" + "9" * 5000),
                      ("admin", "/api/v1/tokens/\u00b2")):
        method = "DELETE" if "tokens" in path else "GET"
        status, data = await panel.call(who, method, path)
        assert 400 <= status < 500, (path[:60], status, data)


async def test_an_unhandled_error_on_a_capability_link_does_not_log_its_token(
        panel: Panel, aiohttp_client: AiohttpClient, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    def broken(*args: Any) -> Any:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(S, "session_for_link", broken)
    ws = routing(await aiohttp_client(panel.client.app[WORKSPACE_APP]))
    secret = "CapabilityTokenThatMustNotBeLogged"
    with caplog.at_level(logging.ERROR, logger="server.http.errors"):
        response = await ws.get(f"/c/{secret}", allow_redirects=False)
    assert response.status == 500
    assert "unhandled error on GET /c/[token]" in caplog.text
    assert secret not in caplog.text
