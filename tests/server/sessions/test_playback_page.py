"""The replay page's "Code playback" panel, driven in a real headless Chromium over a
collaboration log made with pycrdt: it shows the document at any update, coloured by author,
plays it, follows the replay to a file change that names an update, and says which event
its position was saved as."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import expect
from pycrdt import Map, Text

from server.http.keys import DB
from tests.browser import Browsing
from tests.harness import Live
from tests.server.recording.doc_logs import CANDIDATE, Typist, end, store_doc
from tests.server.sessions.test_replay_page import open_replay, scrub
from workspaces.recording import events as E

pytestmark = [pytest.mark.browser, pytest.mark.integration]


async def test_code_playback_follows_the_replay_and_plays(live: Live,
                                                          browsing: Browsing) -> None:
    lead = await live.app[DB].read(lambda d: d.execute(
        "SELECT id FROM users WHERE email = 'lead@example.com'").fetchone()[0])
    actor = f"interviewer:{lead}"
    t = Typist("source")
    t.do("system", lambda s: s.insert(0, "x = 1\n"))
    for ch in "y = x + 1\n":
        t.do(CANDIDATE, lambda s, ch=ch: s.insert(end(s), ch))
    saved_n = len(t.states)
    for ch in "# <b>ok</b>\n":
        t.do(actor, lambda s, ch=ch: s.insert(end(s), ch))
    doc_id = await store_doc(live.app[DB], live.session_id, "text:file:p1", "file", "calc.py", t)
    saved = await live.record(E.FILE_CHANGED, "calc.py", sha256="0" * 64, size=16,
                              doc={"id": doc_id, "n": saved_n})
    await live.record(E.NOTE, actor=actor, text="later")

    page = browsing.page
    await open_replay(live, page)
    panel = page.locator("#pb-panel")
    text = page.locator("#pb-text pre")
    await expect(panel).to_have_attribute("data-ready", "1")
    await expect(text).to_have_text(t.states[-1])  # the end, at the replay's last event
    await expect(page.locator("#pb-pos")).to_contain_text(f"update {len(t.states)} of ")
    names = await page.evaluate(
        "JSON.parse(document.getElementById('pl-config').textContent).names")
    assert names.get(CANDIDATE) and names.get(actor)
    await expect(page.locator("#pb-legend li")).to_have_text(
        ["loaded from disk (system)", names[CANDIDATE], names[actor]])
    by = await page.locator("#pb-text span").evaluate_all(
        "spans => spans.map(s => [s.dataset.actor, s.className, s.textContent])")
    assert by == [["system", "pb-who-system", "x = 1\n"],
                  [CANDIDATE, "pb-who-1", "y = x + 1\n"],
                  [actor, "pb-who-2", "# <b>ok</b>\n"]]
    await expect(page.locator("#pb-text b")).to_have_count(0)

    # The replay on the file change that names an update: the player there, and it says so.
    await scrub(page, saved)
    await expect(text).to_have_text(t.states[saved_n - 1])
    await expect(panel).to_have_attribute("data-n", str(saved_n))
    await expect(panel).to_have_attribute("data-event", str(saved))
    await expect(page.locator("#pb-event")).to_have_text(f"saved as #{saved} file.changed")

    # Any update from the slider; before the save, no event names it yet.
    await page.locator("#pb-slider").fill("3")
    await expect(text).to_have_text(t.states[2])
    await expect(panel).to_have_attribute("data-event", "")
    await page.locator("#pb-slider").fill(str(saved_n + 2))
    await expect(page.locator("#pb-event")).to_have_text(f"last saved as #{saved} file.changed")
    await page.locator("#pb-event").click()  # the replay follows the player
    await expect(page.locator("#pl-range")).to_have_value(str(saved))
    # the player has followed the replay there (on a loaded host that can come later than
    # the slider below, and moved the player on from 0 while it played)
    await expect(panel).to_have_attribute("data-event", str(saved))
    await expect(panel).to_have_attribute("data-n", str(saved_n))

    # Play from the start at 8x (updates are 1 s apart): through every state to the end.
    await page.locator("#pb-slider").fill("0")
    await expect(text).to_have_text("")
    await page.select_option("#pb-speed", "8")
    await page.evaluate("""() => {
      window.seenStates = [];
      new MutationObserver(() => window.seenStates.push(
        document.querySelector('#pb-text pre').textContent)).observe(
        document.getElementById('pb-panel'), {attributes: true, attributeFilter: ['data-n']});
    }""")
    await page.locator("#pb-play").click()
    await expect(page.locator("#pb-play")).to_have_attribute("aria-pressed", "true")
    await expect(text).to_have_text(t.states[-1], timeout=10_000)
    await expect(page.locator("#pb-play")).to_have_attribute("aria-pressed", "false")
    assert await page.evaluate("window.seenStates") == t.states
    assert browsing.csp_violations() == [] and browsing.page_errors == []


async def test_no_collaboration_says_so(live: Live, browsing: Browsing) -> None:
    await live.record(E.NOTE, text="hello")
    page = browsing.page
    await open_replay(live, page)
    await expect(page.locator("#pb-status")).to_have_text(
        "No collaborative editing was recorded in this session.")
    assert browsing.csp_violations() == [] and browsing.page_errors == []


async def test_a_notebook_plays_cell_by_cell(live: Live, browsing: Browsing) -> None:
    t = Typist("cells")

    def cell(cell_id: str, source: str, kind: str = "code") -> Map[Any]:
        return Map({"id": cell_id, "cell_type": kind, "source": Text(source)})

    t.do("system", lambda c: c.append(cell("a", "import math")))
    for ch in "\nmath.pi":
        t.do(CANDIDATE, lambda c, ch=ch: c[0]["source"].insert(end(c[0]["source"]), ch))
    t.do(CANDIDATE, lambda c: c.insert(0, cell("m", "# Circles", "markdown")))
    doc_id = await store_doc(live.app[DB], live.session_id, "json:notebook:nb1", "notebook",
                             "circles.ipynb", t)
    await live.record(E.FILE_CHANGED, "circles.ipynb", doc={"id": doc_id, "n": 3})

    page = browsing.page
    await open_replay(live, page)
    panel = page.locator("#pb-panel")
    await expect(panel).to_have_attribute("data-ready", "1")
    await expect(panel).to_have_attribute("data-n", "3")  # the replay is on that change
    cells = page.locator("#pb-text .pb-cell")
    assert await cells.evaluate_all("cs => cs.map(c => [c.dataset.cell, "
                                    "c.querySelector('pre').textContent])") == \
        [["a", "import math\nm"]]
    await page.locator("#pb-slider").fill(str(len(t.states)))
    await expect(cells).to_have_count(2)
    shown = await cells.evaluate_all(
        "cs => cs.map(c => [c.dataset.cell, c.classList.contains('pb-cell-markdown'), "
        "c.querySelector('pre').textContent])")
    assert shown == [["m", True, "# Circles"], ["a", False, "import math\nmath.pi"]]
    assert browsing.csp_violations() == [] and browsing.page_errors == []


async def test_an_update_that_changes_nothing_shown_names_no_author(live: Live,
                                                                    browsing: Browsing) -> None:
    """An interviewer who only opened the file: their client's one update (state of its own,
    not the text) does not put them in the legend of who wrote it (a walk of the demo saw an
    interviewer listed as an author of a notebook they never edited)."""
    lead = await live.app[DB].read(lambda d: d.execute(
        "SELECT id FROM users WHERE email = 'lead@example.com'").fetchone()[0])
    t = Typist("source")
    t.do("system", lambda s: s.insert(0, "x = 1\n"))
    t.do(CANDIDATE, lambda s: s.insert(end(s), "y = 2\n"))
    state = t.doc.get("state", type=Map)
    t.do(f"interviewer:{lead}", lambda s: state.__setitem__("opened", True))
    assert len(t.rows) == 3  # the interviewer's update is stored like any other
    await store_doc(live.app[DB], live.session_id, "text:file:p2", "file", "calc.py", t)
    await live.record(E.NOTE, text="later")

    page = browsing.page
    await open_replay(live, page)
    await expect(page.locator("#pb-panel")).to_have_attribute("data-ready", "1")
    await expect(page.locator("#pb-pos")).to_contain_text("update 3 of ")
    names = await page.evaluate(
        "JSON.parse(document.getElementById('pl-config').textContent).names")
    await expect(page.locator("#pb-legend li")).to_have_text(
        ["loaded from disk (system)", names[CANDIDATE]])
