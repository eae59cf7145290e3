"""Issue 12's browser test: two people edit the same file in JupyterLab, and the record says
who wrote what. The real app on loopback ports, a real sandboxed jupyter-server with real-time
collaboration, two Chromium contexts: the candidate (link → Start) and the interviewer (login →
Join, the handoff). Each types a line at the end of ``notes.md`` and saves; each save's
``file.changed`` names its author in the events API and on the replay page (``#pl-events``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from playwright.async_api import Page, async_playwright, expect

from common.audit import SYSTEM
from server.app import create_app
from server.sessions.keys import SESSIONS
from server.sessions.wiring import WORKSPACE_APP
from server.settings import Settings, prepare_data_dir
from tests.browser import CHROMIUM, CHROMIUM_ARGS, login_in_browser
from tests.conftest import create_user
from tests.fixture_tasks import SHARED_ENVS
from tests.harness import LEAD, interviewer
from tests.server.recording.conftest import UID_BASE, publish_task
from workspaces.recording import events as E

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.slow,
              pytest.mark.timeout(600)]
BASE = int(os.environ.get("PAIRLAB_SANDBOX_UID_BASE", UID_BASE + 4000)) + 400
"""Sandbox uids of this file (PAIRLAB_SANDBOX_UID_BASE when given: one range per engineer)."""
WAIT_MS = 120_000
CANDIDATE_LINE = "candidate: the sum double-counts refunds"
INTERVIEWER_LINE = "interviewer: what about partial refunds?"


def _loopback() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextlib.asynccontextmanager
async def serving_real() -> AsyncIterator[tuple[Settings, web.Application]]:
    """The real app (real provisioner and sandbox) and its workspace origin on loopback."""
    data = Path(tempfile.mkdtemp(prefix="plcb-", dir="/tmp"))  # short: AF_UNIX path bound
    app_sock, ws_sock = _loopback(), _loopback()
    settings = prepare_data_dir(Settings(
        data_dir=data, warm_pool_size=0, environments_dir=str(SHARED_ENVS),
        continuous_checks=False, sandbox_uid_base=BASE, host="127.0.0.1",
        port=app_sock.getsockname()[1], workspace_host="127.0.0.1",
        workspace_port=ws_sock.getsockname()[1]))
    publish_task(settings)
    create_user(settings, LEAD, "interviewer")
    app = create_app(settings)
    runner, ws_runner = web.AppRunner(app), web.AppRunner(app[WORKSPACE_APP])
    await runner.setup()
    await ws_runner.setup()
    try:
        await web.SockSite(runner, app_sock).start()
        await web.SockSite(ws_runner, ws_sock).start()
        yield settings, app
    finally:
        await ws_runner.cleanup()
        await runner.cleanup()
        shutil.rmtree(data, ignore_errors=True)


async def open_in_lab(page: Page, path: str) -> None:
    lab = page.url.split("/lab", 1)[0] + "/lab"
    await page.goto(f"{lab}/tree/{path}")
    await expect(page.locator(".jp-MainAreaWidget:visible .cm-content").first).to_be_visible(
        timeout=WAIT_MS)


async def type_at_end(page: Page, text: str) -> None:
    """Type a line at the end of the open editor, then save it as a person would
    (tests/journeys/test_interview.py's)."""
    editor = page.locator(".jp-MainAreaWidget:visible .cm-content").first
    await editor.click()
    await page.keyboard.press("Control+End")
    await page.keyboard.press("Enter")
    await page.keyboard.type(text)
    await page.keyboard.press("Control+s")


async def events_of(http: aiohttp.ClientSession, sid: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    after = 0
    while True:
        page = await (await http.get(f"/api/v1/sessions/{sid}/events?after={after}"
                                     "&limit=2000")).json()
        found += page["events"]
        after = page["last_seq"]
        if not page["more"]:
            return found


async def wait_for_change(http: aiohttp.ClientSession, sid: str, actor: str,
                          after: int = 0) -> dict[str, Any]:
    """The first ``file.changed`` of notes.md by ``actor`` after event ``after``."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while True:
        for e in await events_of(http, sid):
            if e["seq"] > after and e["kind"] == E.FILE_CHANGED and e["path"] == "notes.md" \
                    and e["actor"] == actor:
                return e
        assert time.monotonic() < deadline, [
            (e["kind"], e["actor"], e["path"]) for e in await events_of(http, sid)]
        await asyncio.sleep(0.3)


async def test_two_people_in_one_file_are_each_named() -> None:
    async with serving_real() as (settings, app), interviewer(settings.app_url) as (http, csrf):
        created = await (await http.post("/api/v1/sessions", headers=csrf, json={
            "task": "rec-task", "candidate_name": "Casey Candidate"})).json()
        sid = created["session_id"]
        me = (await (await http.get("/api/v1/auth/me")).json())["user"]
        lead = E.interviewer_actor(me["id"])
        try:
            async with async_playwright() as p:
                browser = await p.chromium.launch(executable_path=CHROMIUM,
                                                  args=CHROMIUM_ARGS)
                try:
                    await edit_together(settings, browser, http, sid, created, lead, me)
                finally:
                    await browser.close()
        finally:
            with contextlib.suppress(Exception):
                await app[SESSIONS].end_session(sid, SYSTEM, "the test is over")


async def edit_together(settings: Settings, browser: Any, http: aiohttp.ClientSession,
                        sid: str, created: dict[str, Any], lead: str,
                        me: dict[str, Any]) -> None:
    # The candidate: link → Start → JupyterLab.
    candidate = await (await browser.new_context()).new_page()
    await candidate.goto(created["candidate_link"])
    await candidate.click("#start")
    await candidate.wait_for_url("**/lab**", timeout=WAIT_MS, wait_until="commit")
    # The interviewer: login → the session's page → Join (the handoff), in a browser of their own.
    lee = await (await browser.new_context()).new_page()
    await login_in_browser(lee, settings.app_url, f"/sessions/{sid}")
    await lee.click("#join")
    await lee.wait_for_url("**/lab**", timeout=WAIT_MS, wait_until="commit")
    await open_in_lab(candidate, "notes.md")
    await open_in_lab(lee, "notes.md")

    await type_at_end(candidate, CANDIDATE_LINE)
    first = await wait_for_change(http, sid, "candidate")
    # the interviewer sees the candidate's line, then types below it
    await expect(lee.locator(".jp-MainAreaWidget:visible .cm-content").first).to_contain_text(
        CANDIDATE_LINE, timeout=WAIT_MS)
    await type_at_end(lee, INTERVIEWER_LINE)
    second = await wait_for_change(http, sid, lead, after=first["seq"])

    on_disk = await candidate.evaluate(
        "async (url) => (await (await fetch(url)).json()).content",
        candidate.url.split("/lab", 1)[0] + "/api/contents/notes.md")
    assert on_disk.endswith(f"{CANDIDATE_LINE}\n{INTERVIEWER_LINE}") or \
        on_disk.endswith(f"{CANDIDATE_LINE}\n{INTERVIEWER_LINE}\n"), on_disk

    found = await events_of(http, sid)
    changes = [e for e in found if e["kind"] == E.FILE_CHANGED and e["path"] == "notes.md"]
    for e in changes:  # every save of the shared file is one person's, and says how
        assert e["payload"]["via"] == "collaboration", e
        assert list(e["payload"]["authors"]) == [e["actor"]], e
        assert e["payload"]["doc"]["n"] >= 1
    assert [e["actor"] for e in changes if e["seq"] <= first["seq"]] == \
        ["candidate"] * len([e for e in changes if e["seq"] <= first["seq"]])
    assert {e["actor"] for e in changes if e["seq"] >= second["seq"]} == {lead}
    ins = second["payload"]["authors"][lead]["ins"]
    assert ins >= len(INTERVIEWER_LINE), second

    # The replay page names each one (the interviewer's own browser).
    await lee.goto(f"{settings.app_url}/sessions/{sid}/replay")
    await expect(lee.locator("body[data-replay-ready]")).to_have_count(1, timeout=WAIT_MS)
    for event, name in ((first, "Casey Candidate"), (second, me["display_name"])):
        item = lee.locator(f"#pl-events li.pl-event[data-seq='{event['seq']}']")
        await expect(item.locator(".pl-kind")).to_have_text(E.FILE_CHANGED)
        await expect(item.locator(".pl-actor")).to_have_text(name)
        await expect(item.locator(".pl-summary")).to_contain_text("notes.md")
