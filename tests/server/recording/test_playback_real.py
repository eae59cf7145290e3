"""Issue 12's playback test: a file typed in JupyterLab (a real sandboxed jupyter-server with
real-time collaboration, a real Chromium) in three bursts, each saved. The content at each
``file.changed`` (from ``/file`` and from the collaboration log at its ``doc.n``) is the file on
disk right after that save, read through the proxy's contents API; the replay page's player
shows the three states."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
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
BASE = int(os.environ.get("PAIRLAB_SANDBOX_UID_BASE", UID_BASE + 4000)) + 600
"""Sandbox uids of this file (PAIRLAB_SANDBOX_UID_BASE when given: one range per engineer)."""
WAIT_MS = 120_000
BURSTS = ["total = 0", "total += 1", "total *= 2"]  # nothing the editor would auto-complete
PAUSE_S = 3.5


def _loopback() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextlib.asynccontextmanager
async def serving_real() -> AsyncIterator[tuple[Settings, web.Application]]:
    """The real app (real provisioner and sandbox) and its workspace origin on loopback."""
    data = Path(tempfile.mkdtemp(prefix="plpb-", dir="/tmp"))  # short: AF_UNIX path bound
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


async def on_disk(page: Page, path: str) -> str:
    """The file as the workspace's contents API reads it, through pairlab's proxy."""
    url = page.url.split("/lab", 1)[0] + f"/api/contents/{path}?content=1"
    text = await page.evaluate(
        "async (url) => (await (await fetch(url, {cache: 'no-store'})).json()).content", url)
    assert isinstance(text, str)
    return text


async def saved(page: Page, http: aiohttp.ClientSession, sid: str, path: str,
                typed: str) -> tuple[str, dict[str, Any]]:
    """Once the file on disk holds ``typed`` and a ``file.changed`` with its hash is recorded:
    (the content on disk, that event)."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while True:
        text = await on_disk(page, path)
        if typed in text:
            digest = hashlib.sha256(text.encode()).hexdigest()
            found = [e for e in await events_of(http, sid) if e["kind"] == E.FILE_CHANGED
                     and e["path"] == path and e["payload"].get("sha256") == digest]
            if found:
                return text, found[-1]
        assert time.monotonic() < deadline, (text, typed)
        await asyncio.sleep(0.3)


async def test_three_bursts_play_back_and_match_the_disk() -> None:
    async with serving_real() as (settings, app), interviewer(settings.app_url) as (http, csrf):
        created = await (await http.post("/api/v1/sessions", headers=csrf, json={
            "task": "rec-task", "candidate_name": "Casey Candidate"})).json()
        sid = created["session_id"]
        try:
            async with async_playwright() as p:
                browser = await p.chromium.launch(executable_path=CHROMIUM,
                                                  args=CHROMIUM_ARGS)
                try:
                    await type_and_replay(settings, browser, http, sid, created)
                finally:
                    await browser.close()
        finally:
            with contextlib.suppress(Exception):
                await app[SESSIONS].end_session(sid, SYSTEM, "the test is over")


async def type_and_replay(settings: Settings, browser: Any, http: aiohttp.ClientSession,
                          sid: str, created: dict[str, Any]) -> None:
    candidate = await (await browser.new_context()).new_page()
    await candidate.goto(created["candidate_link"])
    await candidate.click("#start")
    await candidate.wait_for_url("**/lab**", timeout=WAIT_MS, wait_until="commit")
    lab = candidate.url.split("/lab", 1)[0] + "/lab"
    await candidate.goto(f"{lab}/tree/main.py")
    editor = candidate.locator(".jp-MainAreaWidget:visible .cm-content").first
    await expect(editor).to_be_visible(timeout=WAIT_MS)
    await expect(editor).to_contain_text("print('hello')", timeout=WAIT_MS)

    states: list[tuple[str, dict[str, Any]]] = []
    for burst in BURSTS:
        await editor.click()
        await candidate.keyboard.press("Control+End")
        await candidate.keyboard.press("Enter")
        await candidate.keyboard.type(burst, delay=40)  # a person's pace, key by key
        states.append(await saved(candidate, http, sid, "main.py", burst))
        await asyncio.sleep(PAUSE_S)
    assert [t for t, _ in states] == [
        "print('hello')\n\n" + "\n".join(BURSTS[:i + 1]) for i in range(3)]

    base = f"/api/v1/sessions/{sid}"
    docs = (await (await http.get(f"{base}/docs")).json())["docs"]
    (doc,) = [d for d in docs if d["path"] == "main.py"]
    assert doc["type"] == "file" and "candidate" in doc["authors"], doc
    for text, event in states:
        assert event["payload"]["doc"]["id"] == doc["id"], event
        n = event["payload"]["doc"]["n"]
        exact = await (await http.get(f"{base}/file?at={event['seq']}&path=main.py")).json()
        assert (exact["text"], exact["source"], exact["seq"]) == (text, "event", event["seq"])
        played = await (await http.get(f"{base}/docs/{doc['id']}/frames?from={n + 1}"
                                       "&limit=0")).json()
        assert played["base"]["text"] == text
    # Every save of the file, not only these three: the document at its doc.n is what the
    # watcher hashed on disk.
    for event in await events_of(http, sid):
        if event["kind"] == E.FILE_CHANGED and event["path"] == "main.py":
            n = event["payload"]["doc"]["n"]
            played = await (await http.get(f"{base}/docs/{doc['id']}/frames?from={n + 1}"
                                           "&limit=0")).json()
            assert hashlib.sha256(played["base"]["text"].encode()).hexdigest() == \
                event["payload"]["sha256"], event

    # The replay page's player shows each state at its file change.
    reviewer = await (await browser.new_context()).new_page()
    await login_in_browser(reviewer, settings.app_url, f"/sessions/{sid}/replay")
    await expect(reviewer.locator("body[data-replay-ready]")).to_have_count(1, timeout=WAIT_MS)
    panel = reviewer.locator("#pb-panel")
    await expect(panel).to_have_attribute("data-ready", "1", timeout=WAIT_MS)
    for text, event in states:
        await reviewer.locator("#pl-range").fill(str(event["seq"]))
        await expect(panel).to_have_attribute("data-event", str(event["seq"]))
        shown = await reviewer.locator("#pb-text pre").text_content()
        assert shown == text
        spans = await reviewer.locator("#pb-text span").evaluate_all(
            "spans => spans.map(s => s.dataset.actor)")
        assert "candidate" in spans
