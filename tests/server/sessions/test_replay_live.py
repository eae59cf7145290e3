"""The replay page of a session that is not over does not pretend to be final: a banner says
the session is live and counts the events recorded since the page loaded, and says so when the
session ends (the stream's end: nothing reconnects). Driven in a real headless Chromium."""

from __future__ import annotations

import pytest
from playwright.async_api import Request, expect

from tests.browser import Browsing, login_in_browser
from tests.harness import Live, interviewer
from workspaces.recording import events as E

pytestmark = [pytest.mark.browser, pytest.mark.integration]


async def test_a_live_session_s_replay_says_it_is_not_final(live: Live,
                                                            browsing: Browsing) -> None:
    page = browsing.page
    streams: list[Request] = []
    page.on("request", lambda r: streams.append(r) if "/events/stream" in r.url else None)
    await login_in_browser(page, live.url, f"/sessions/{live.session_id}/replay")
    await expect(page.locator("body[data-replay-ready]")).to_have_count(1)
    loaded = int(await page.locator("#pl-range").get_attribute("max") or "")
    assert loaded >= 2  # session.started, workspace.ready, ...
    banner = page.locator("#pl-live-banner")
    await expect(banner).to_contain_text(
        f"This session is live: the replay shows it up to #{loaded}; no new events since.")
    await expect(banner).to_contain_text("Following…")
    await expect(page.locator("#pl-live-reload")).to_be_hidden()

    await live.record(E.CELL_EXECUTED, "nb.ipynb", code="x = 1", execution_count=1,
                      status="ok", kernel_id="k1")
    newest = await live.record(E.NOTE, actor=E.ACTOR_SYSTEM, text="later")
    await expect(banner).to_contain_text(f"{newest - loaded} new events since (up to #{newest})")
    await expect(page.locator("#pl-live-reload")).to_be_visible()
    await expect(page.locator("#pl-range")).to_have_attribute("max", str(loaded))  # as loaded

    async with interviewer(live.url) as (http, csrf):
        ended = await http.post(f"/api/v1/sessions/{live.session_id}/end", headers=csrf)
        assert ended.status == 200, await ended.text()
    await expect(banner).to_contain_text("The session has ended since this page loaded",
                                         timeout=30_000)
    await expect(page.locator("#pl-replay-state")).to_have_text("ended")
    await expect(banner).not_to_contain_text("Following")  # the stream's end: checks are out
    final = await live.last_seq()
    await expect(banner).to_contain_text(f"since (up to #{final})")
    await page.wait_for_timeout(4000)
    assert len(streams) == 1, [r.url for r in streams]  # the stream ended; nothing reconnects

    await page.click("#pl-live-reload")
    await expect(page.locator("body[data-replay-ready]")).to_have_count(1)
    await expect(page.locator("#pl-range")).to_have_attribute("max", str(final))
    await expect(page.locator("#pl-replay-state")).to_have_text("ended")
    await page.wait_for_timeout(500)  # its stream ends at once: the record is final
    await expect(banner).to_be_hidden()
    assert browsing.csp_violations() == [] and browsing.page_errors == []
