"""Issue 12's browser test: two people edit the same file in JupyterLab, and the record says
who wrote what. The real app on loopback ports, a real sandboxed jupyter-server with real-time
collaboration, two Chromium contexts: the candidate (link → Start) and the interviewer (login →
Join, the handoff). Each types a line at the end of ``notes.md`` and saves; each save's
``file.changed`` names its author in the events API and on the replay page (``#pl-events``)."""

from __future__ import annotations

import asyncio
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
BASE = uid_base(400, UID_BASE + 4400)
"""Sandbox uids of this file."""
CANDIDATE_LINE = "candidate: the sum double-counts refunds"
INTERVIEWER_LINE = "interviewer: what about partial refunds?"


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


async def wait_for_change(real: RealSession, actor: str, after: int = 0) -> dict[str, Any]:
    """The first ``file.changed`` of notes.md by ``actor`` after event ``after``."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while True:
        for e in await real.events():
            if e["seq"] > after and e["kind"] == E.FILE_CHANGED and e["path"] == "notes.md" \
                    and e["actor"] == actor:
                return e
        assert time.monotonic() < deadline, [
            (e["kind"], e["actor"], e["path"]) for e in await real.events()]
        await asyncio.sleep(0.3)


async def test_two_people_in_one_file_are_each_named() -> None:
    async with real_in_browser("plcb-", BASE) as real:
        me = (await (await real.http.get("/api/v1/auth/me")).json())["user"]
        await edit_together(real, E.interviewer_actor(me["id"]), me)


async def edit_together(real: RealSession, lead: str, me: dict[str, Any]) -> None:
    settings, sid = real.settings, real.session_id
    candidate = await real.candidate_in_lab()
    # The interviewer: login → the session's page → Join (the handoff), in a browser of their own.
    lee = await (await real.browser.new_context()).new_page()
    await login_in_browser(lee, settings.app_url, f"/sessions/{sid}")
    await lee.click("#join")
    await lee.wait_for_url("**/lab**", timeout=WAIT_MS, wait_until="commit")
    await open_in_lab(candidate, "notes.md")
    await open_in_lab(lee, "notes.md")

    await type_at_end(candidate, CANDIDATE_LINE)
    first = await wait_for_change(real, "candidate")
    # the interviewer sees the candidate's line, then types below it
    await expect(lee.locator(".jp-MainAreaWidget:visible .cm-content").first).to_contain_text(
        CANDIDATE_LINE, timeout=WAIT_MS)
    await type_at_end(lee, INTERVIEWER_LINE)
    second = await wait_for_change(real, lead, after=first["seq"])

    on_disk = await candidate.evaluate(
        "async (url) => (await (await fetch(url)).json()).content",
        candidate.url.split("/lab", 1)[0] + "/api/contents/notes.md")
    assert on_disk.endswith(f"{CANDIDATE_LINE}\n{INTERVIEWER_LINE}") or \
        on_disk.endswith(f"{CANDIDATE_LINE}\n{INTERVIEWER_LINE}\n"), on_disk

    found = await real.events()
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
