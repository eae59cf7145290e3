"""Issue 12's playback test: a file typed in JupyterLab (a real sandboxed jupyter-server with
real-time collaboration, a real Chromium) in three bursts, each saved. The content at each
``file.changed`` (from ``/file`` and from the collaboration log at its ``doc.n``) is the file on
disk right after that save, read through the proxy's contents API; the replay page's player
shows the three states."""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.browser import login_in_browser
from tests.server.recording.conftest import UID_BASE
from tests.server.recording.real_app import WAIT_MS, RealSession, real_in_browser, uid_base
from workspaces.recording import events as E

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.slow,
              pytest.mark.timeout(600)]
BASE = uid_base(600, UID_BASE + 4600)
"""Sandbox uids of this file."""
BURSTS = ["total = 0", "total += 1", "total *= 2"]  # nothing the editor would auto-complete
PAUSE_S = 3.5


async def on_disk(page: Page, path: str) -> str:
    """The file as the workspace's contents API reads it, through pairlab's proxy."""
    url = page.url.split("/lab", 1)[0] + f"/api/contents/{path}?content=1"
    text = await page.evaluate(
        "async (url) => (await (await fetch(url, {cache: 'no-store'})).json()).content", url)
    assert isinstance(text, str)
    return text


async def saved(real: RealSession, page: Page, path: str, typed: str) -> tuple[str, dict[str, Any]]:
    """Once the file on disk holds ``typed`` and a ``file.changed`` with its hash is recorded:
    (the content on disk, that event)."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while True:
        text = await on_disk(page, path)
        if typed in text:
            digest = hashlib.sha256(text.encode()).hexdigest()
            found = [e for e in await real.events() if e["kind"] == E.FILE_CHANGED
                     and e["path"] == path and e["payload"].get("sha256") == digest]
            if found:
                return text, found[-1]
        assert time.monotonic() < deadline, (text, typed)
        await asyncio.sleep(0.3)


async def test_three_bursts_play_back_and_match_the_disk() -> None:
    async with real_in_browser("plpb-", BASE) as real:
        await type_and_replay(real)


async def type_and_replay(real: RealSession) -> None:
    settings, http, sid = real.settings, real.http, real.session_id
    candidate = await real.candidate_in_lab()
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
        states.append(await saved(real, candidate, "main.py", burst))
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
    for event in await real.events():
        if event["kind"] == E.FILE_CHANGED and event["path"] == "main.py":
            n = event["payload"]["doc"]["n"]
            played = await (await http.get(f"{base}/docs/{doc['id']}/frames?from={n + 1}"
                                           "&limit=0")).json()
            assert hashlib.sha256(played["base"]["text"].encode()).hexdigest() == \
                event["payload"]["sha256"], event

    # The replay page's player shows each state at its file change.
    reviewer = await (await real.browser.new_context()).new_page()
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
