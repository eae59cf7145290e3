"""The replay page's Terminal panel: a recorded cast played in xterm.js (vendored), in a real
headless Chromium under the page's strict CSP, following the event list."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from common.clock import now
from tests.browser import Browsing, login_in_browser
from tests.harness import Live
from workspaces.recording import events as E

pytestmark = [pytest.mark.browser, pytest.mark.integration]
SHOTS = os.environ.get("PAIRLAB_SHOTS")
HOSTILE = ("\x1b]8;;http://evil.example/\x07click-evil\x1b]8;;\x07 <img src=x onerror=alert(1)>"
           " <script>alert(2)</script>\x1b]52;c;ZXZpbA==\x07\r\n")


async def screen_text(page: Page, showing: str, hidden: str) -> str:
    """The rows xterm shows (its screen-reader rows: the canvas has no text), once ``showing``
    is among them and ``hidden`` is not."""
    rows = page.locator("#pl-cast .xterm-accessibility-tree")
    await page.locator("#pl-cast-screen").scroll_into_view_if_needed()  # xterm draws when seen
    await expect(rows).to_contain_text(showing)
    await expect(rows).not_to_contain_text(hidden)
    return await rows.inner_text()


async def test_the_replay_page_plays_the_terminal_in_xterm(live: Live,
                                                          browsing: Browsing) -> None:
    store = live.service.taps.casts
    assert store is not None
    cast = await store.open(live.session_id, "1", E.ACTOR_CANDIDATE)
    start, offset = cast.started, [0.0]
    cast.clock = lambda: start + timedelta(seconds=offset[0])

    def frame(direction: str, kind: str, *args: object, at: float) -> None:
        offset[0] = at
        cast.feed(direction, json.dumps([kind, *args]))

    frame("in", "set_size", 20, 90, at=0)
    frame("out", "stdout", "$ ", at=0.1)
    frame("in", "stdin", "echo first-marker\r", at=1)
    frame("out", "stdout", "echo first-marker\r\nfirst-marker\r\n" + HOSTILE + "$ ", at=1.1)
    frame("out", "stdout", "vim x\r\n\x1b[?1049h\x1b[H\x1b[2J~ in-vim-only\r\n~\r\n", at=3)
    frame("out", "stdout", "\x1b[?1049l$ ", at=6)
    frame("in", "stdin", "echo second-marker\r", at=10)
    frame("out", "stdout", "echo second-marker\r\nsecond-marker\r\n$ ", at=10.2)
    await store.close(cast)
    # the first command's duration runs past the next command's Enter (keys typed ahead): the
    # screen shown for it stops just before the next one
    first = await live.record(E.TERMINAL_COMMAND, line="echo first-marker", output="",
                              duration_ms=3000, terminal="1", cast={"id": cast.id, "t": 1.0},
                              source="shell", keys_differ=True, keys_line="echo frist-marker")
    in_vim = await live.record(E.TERMINAL_COMMAND, line="vim x", output="", duration_ms=500,
                               terminal="1", cast={"id": cast.id, "t": 2.5})
    last = await live.record(E.TERMINAL_COMMAND, line="echo second-marker", output="",
                             duration_ms=200, terminal="1", cast={"id": cast.id, "t": 10.0},
                             at=now())

    page = browsing.page
    await login_in_browser(page, live.url, f"/sessions/{live.session_id}/replay")
    await expect(page.locator("body[data-replay-ready]")).to_have_count(1)
    panel = page.locator("#pl-cast")
    # at the last event: the screen after the second command, from the start of the cast
    await expect(panel).to_have_attribute("data-cast-t", "10.200")  # (the end of the cast)
    text = await screen_text(page, "second-marker", "in-vim-only")
    assert "first-marker" in text
    assert "click-evil <img src=x onerror=alert(1)> <script>alert(2)</script>" in text
    assert await page.locator("#pl-cast canvas").count() > 0  # the canvas renderer drew it
    await expect(page.locator("#pl-cast-status")).to_contain_text("terminal 1 · 90x20")
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        await page.locator("#pl-cast").screenshot(path=str(Path(SHOTS) / "replay-terminal.png"))

    for seq, t, shown, hidden in ((first, "2.499", "first-marker", "in-vim-only"),
                                  (in_vim, "3.050", "in-vim-only", "first-marker")):
        await page.locator("#pl-range").fill(str(seq))
        await expect(panel).to_have_attribute("data-cast-t", t)
        if seq == first:  # the timeline says the keys and the shell disagreed
            await expect(page.locator("#pl-current")).to_contain_text(
                "bash ran this; the keys read: echo frist-marker")
        await screen_text(page, shown, hidden)
    # playing on from the vim screen reaches the end: vim's screen gone, the prompt back
    await page.locator("#pl-cast-speed").select_option("8")
    await page.locator("#pl-cast-play").click()
    await expect(panel).to_have_attribute("data-cast-t", "10.200", timeout=10_000)
    await screen_text(page, "second-marker", "in-vim-only")
    await expect(page.locator("#pl-cast-play")).to_have_text("Play")
    assert last > in_vim

    # nothing the candidate printed became markup, a link or a request
    found = await page.evaluate("""() => ({
        made: document.querySelectorAll('#pl-cast img, #pl-cast script, #pl-cast a').length,
        styles: document.querySelectorAll('style').length})""")
    assert found == {"made": 0, "styles": 0}
    assert browsing.csp_violations() == []
    assert browsing.page_errors == []
