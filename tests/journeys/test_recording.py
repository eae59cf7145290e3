"""The record an interviewer stands behind (issue 12), on the demo that README command 1 starts.

The interviewer schedules a session on the Sessions page and watches it on the observe page.
The candidate starts, opens ``README.md`` in JupyterLab and types a line; the interviewer joins
(the handoff, in a browser of their own) and types a line below it in the same file; each
saves. In a JupyterLab terminal the candidate prints an alternate-screen switch (the trick that
once switched the terminal record off), runs a command after it, and edits a line with Alt-T
(a readline key the line rebuilder does not model); in the notebook they run a cell that
registers an input transformer and a second cell that it rewrites. The interviewer ends the
session from the observe page, which follows without a reload. Then, as the interviewer: the
events API names each save's author, the replay page lists both names, its Code playback plays
the file to its final text, its terminal shows the screen after the trick, its timeline has the
commands as bash ran them and the transformed cell flagged; ``pairlab session export`` writes
the casts and the collaboration log, which rebuilds the final file; the debrief's "Who wrote
what" names both people.
"""

from __future__ import annotations

import base64
import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect
from pycrdt import Doc, Text

from tests.journeys.conftest import (
    WAIT_MS,
    Product,
    browsing,
    end_session,
    schedule_through_the_page,
    start_workspace,
    submit_scorecard,
    timeline_has,
)
from tests.journeys.test_interview import open_lab_path, open_terminal, type_at_end

pytestmark = [pytest.mark.journey, pytest.mark.integration, pytest.mark.browser,
              pytest.mark.timeout(1500)]

INTERVIEWER = "interviewer@example.com"
CANDIDATE = "Rita Recorded"
TASK = "daily-features-bug"
FILE = "README.md"
CANDIDATE_LINE = "candidate: refunds are summed twice"
INTERVIEWER_LINE = "interviewer: what about partial refunds?"
SENT, RAN = "PL_SENT_MARK", "PL_RAN_MARK"
# A cell that registers an input transformer (the marker is split so that this cell's own text
# does not hold it), and a cell the transformer rewrites before the kernel runs it.
REGISTER = ("get_ipython().input_transformers_post.append("
            "lambda lines: [l.replace('PL_SENT' + '_MARK', 'PL_RAN' + '_MARK') for l in lines])")
REWRITTEN = f"print('{SENT}')"


async def api(page: Page, product: Product, path: str) -> Any:
    """A GET of the JSON API with the interviewer's browser cookie."""
    response = await page.context.request.get(f"{product.app_url}{path}")
    assert response.ok, (path, response.status, await response.text())
    return await response.json()


async def events_of(page: Page, product: Product, sid: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    after = 0
    while True:
        got = await api(page, product, f"/api/v1/sessions/{sid}/events?after={after}&limit=2000")
        found += got["events"]
        after = got["last_seq"]
        if not got["more"]:
            return found


async def saves_of(page: Page, product: Product, sid: str, actor: str) -> list[dict[str, Any]]:
    """The ``file.changed`` events of FILE credited to ``actor``, once there is one."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while True:
        found = await events_of(page, product, sid)
        mine = [e for e in found if e["kind"] == "file.changed" and e["path"] == FILE
                and e["actor"] == actor]
        if mine:
            return mine
        assert time.monotonic() < deadline, [(e["seq"], e["kind"], e["actor"], e["path"])
                                             for e in found if e["kind"].startswith("file.")]
        await page.wait_for_timeout(500)  # the watcher's and the writer's pace


async def run_cells(lab_page: Page, lab: str) -> None:
    """Two new cells at the top of the task's notebook: the transformer's, then the one it
    rewrites; the candidate sees the rewritten code's output."""
    await open_lab_path(lab_page, lab, "explore.ipynb")
    await expect(lab_page.get_by_text("Python 3 (task) | Idle")).to_be_visible(timeout=WAIT_MS)
    await lab_page.locator(".jp-Notebook .jp-CodeCell .jp-InputArea-editor").first.click()
    await lab_page.keyboard.press("Escape")
    await lab_page.keyboard.press("a")  # a new cell above, selected
    await lab_page.keyboard.press("Enter")
    await lab_page.keyboard.insert_text(REGISTER)
    await lab_page.keyboard.press("Alt+Enter")  # run, and a new cell below in edit mode
    await lab_page.keyboard.insert_text(REWRITTEN)
    await lab_page.keyboard.press("Shift+Enter")
    output = lab_page.locator(".jp-OutputArea-output", has_text=RAN)
    await expect(output.first).to_be_visible(timeout=WAIT_MS)


async def use_the_terminal(lab_page: Page) -> None:
    """The alternate-screen trick, a command after it, and an Alt-T readline edit."""
    await open_terminal(lab_page)
    terminal = lab_page.locator(".jp-Terminal:visible").first
    await terminal.click()
    await lab_page.keyboard.type("printf '\\e[?1049h'\n")
    await lab_page.keyboard.type("echo after-trick\n")
    await expect(terminal).to_contain_text(re.compile(r"^after-trick\s*$", re.M),
                                           timeout=WAIT_MS)
    await lab_page.keyboard.type("echo aa bb")
    await lab_page.keyboard.press("Alt+t")  # readline's transpose-words: bash runs echo bb aa
    await lab_page.keyboard.press("Enter")
    await expect(terminal).to_contain_text(re.compile(r"^bb aa\s*$", re.M), timeout=WAIT_MS)


async def test_the_record_of_two_people_a_terminal_and_a_notebook(product: Product,
                                                                 browser: Browser) -> None:
    async with browsing(browser, product, "recording") as people:
        # The interviewer schedules the session and opens its observe page.
        observe = await people.as_user(INTERVIEWER, "observe")
        me = (await api(observe, product, "/api/v1/auth/me"))["user"]
        lead = f"interviewer:{me['id']}"
        link = await schedule_through_the_page(observe, product, TASK, CANDIDATE)
        href = await observe.locator("#session-link").get_attribute("href")
        assert href and href.startswith("/sessions/"), href
        sid = href.rsplit("/", 1)[1]
        session_url = f"{product.app_url}/sessions/{sid}"
        await observe.goto(f"{session_url}/observe")
        await expect(observe.locator("#pl-stream")).to_have_text("live", timeout=WAIT_MS)

        # 1. The candidate starts, opens README.md and types a line, and saves.
        lab_page = await people.anonymous("candidate")
        lab = await start_workspace(lab_page, link)
        await open_lab_path(lab_page, lab, FILE)
        await type_at_end(lab_page, CANDIDATE_LINE)
        mine = await saves_of(observe, product, sid, "candidate")

        # The interviewer joins (the handoff, a tab of their own browser), sees the candidate's
        # line in the same file, types below it and saves.
        async with observe.context.expect_page() as opened:
            await observe.click("#pl-join")
        pairing = people.keep("pairing", await opened.value)
        await pairing.wait_for_url("**/lab**", timeout=WAIT_MS, wait_until="commit")
        await expect(pairing.locator("#jp-main-dock-panel")).to_be_visible(timeout=WAIT_MS)
        assert pairing.url.split("/lab", 1)[0] + "/lab" == lab
        await open_lab_path(pairing, lab, FILE)
        editor = pairing.locator(".jp-MainAreaWidget:visible .cm-content").first
        await expect(editor).to_contain_text(CANDIDATE_LINE, timeout=WAIT_MS)
        await type_at_end(pairing, INTERVIEWER_LINE)
        theirs = await saves_of(observe, product, sid, lead)
        await expect(lab_page.locator(".jp-MainAreaWidget:visible .cm-content").first
                     ).to_contain_text(INTERVIEWER_LINE, timeout=WAIT_MS)

        # 2. The candidate's terminal and notebook.
        await use_the_terminal(lab_page)
        await run_cells(lab_page, lab)

        # The interviewer saw it arrive, then ends the session from the observe page, which
        # follows without a reload: ended, the stream finished, no Join.
        await timeline_has(observe, "terminal.command", "echo after-trick")
        await timeline_has(observe, "cell.executed", SENT)
        await end_session(observe)
        await expect(observe.locator("#pl-stream")).to_have_text("finished", timeout=WAIT_MS)
        await expect(observe.locator("#pl-join")).to_be_hidden()

        # 3b. The interviewer's own JupyterLab tab is told the end in their words (no
        # thank-you) with the way back to the session; a reload says the same, 410.
        ended = pairing.locator("#pairlab-ended")
        await expect(ended).to_contain_text("The interview has ended", timeout=WAIT_MS)
        assert "thank you" not in (await ended.inner_text()).lower()
        await expect(pairing.locator("#pairlab-leave")).to_have_attribute("href", session_url)
        reloaded = await pairing.reload()
        assert reloaded is not None and reloaded.status == 410
        await expect(pairing.locator("h1")).to_have_text("The interview has ended")
        await expect(pairing.locator("p.message")).to_contain_text("the session's page")

        # 4. As the interviewer: the events API names each save's author.
        found = await events_of(observe, product, sid)
        saves = [e for e in found if e["kind"] == "file.changed" and e["path"] == FILE]
        assert {e["actor"] for e in saves} == {"candidate", lead}, saves
        for e in saves:
            assert e["payload"]["via"] == "collaboration", e
            assert list(e["payload"]["authors"]) == [e["actor"]], e
        assert mine[0]["seq"] < theirs[0]["seq"]
        ins = theirs[-1]["payload"]["authors"][lead]["ins"]
        assert ins >= len(INTERVIEWER_LINE), theirs
        commands = [e for e in found if e["kind"] == "terminal.command"]
        lines = [e["payload"]["line"] for e in commands]
        assert "echo after-trick" in lines, lines
        # the Alt-T line as bash ran it, or flagged
        (swapped,) = [e for e in commands if "aa" in e["payload"]["line"]]
        assert swapped["payload"]["line"] == "echo bb aa" or \
            swapped["payload"].get("keys_differ") or swapped["payload"].get("approximate"), swapped
        cells = [e for e in found if e["kind"] == "cell.executed"
                 and e["payload"].get("code") == REWRITTEN]
        assert [c["payload"].get("flags") for c in cells] == [["transformed"]], cells
        assert RAN in cells[0]["payload"]["code_ran"]

        # The export, with the CLI as the README says.
        dest = product.folder / f"export-{sid}"
        done = product.cli("session", "export", sid, str(dest))
        assert done.returncode == 0, done.stdout + done.stderr
        final = (dest / "final" / FILE).read_text()
        assert final.rstrip("\n").endswith(f"{CANDIDATE_LINE}\n{INTERVIEWER_LINE}"), final[-200:]
        check_export(dest, final, lead)

        # The replay page: both names, the playback to the final text, the terminal, the flags.
        replay = await people.another_tab(observe, "replay")
        await check_replay(replay, product, sid, mine[0], theirs[-1], swapped, cells[0], final,
                           me["display_name"])

        # The debrief (once the interviewer's scorecard is in): who wrote what names both.
        card = await people.another_tab(observe, "scorecard")
        await submit_scorecard(card, session_url, "Found the refunds.", "Paired well.")
        table = card.locator("#authorship")
        await expect(table.locator("tbody[data-actor='candidate'] .person-name")).to_have_text(
            CANDIDATE)
        await expect(table.locator(f"tbody[data-actor='{lead}'] .person-name")).to_have_text(
            me["display_name"])
        for actor in ("candidate", lead):
            row = table.locator(f"tbody[data-actor='{actor}'] tr.file[data-path='{FILE}']")
            await expect(row.locator(".via")).to_contain_text("shared editing")
        # and lists the transformed cell among the cells the record cannot vouch for
        flagged = card.locator(f"#flagged-cells li[data-seq='{cells[0]['seq']}']")
        await expect(flagged).to_contain_text("ran transformed code")


def check_export(dest: Path, final: str, lead: str) -> None:
    """casts/ holds the terminal's screen; docs/ rebuilds the final file with pycrdt."""
    casts = json.loads((dest / "casts" / "index.json").read_text())["casts"]
    assert casts, "no cast in the export"
    drawn = ""
    for c in casts:
        assert c["file"], c
        header, *frames = (dest / "casts" / c["file"]).read_text().splitlines()
        assert json.loads(header)["version"] == 2
        drawn += "".join(data for _, code, data in map(json.loads, frames) if code == "o")
    # the switch to the alternate screen, and the command's output after it (its own line)
    assert "\x1b[?1049h" in drawn and re.search(r"[\r\n]after-trick\r\n", drawn), drawn[-500:]
    docs = json.loads((dest / "docs" / "index.json").read_text())
    (doc,) = [d for d in docs if d["path"] == FILE]
    assert set(doc["authors"]) == {"candidate", lead}, doc
    rebuilt: Doc[Any] = Doc()
    text = rebuilt.get("source", type=Text)
    for line in (dest / "docs" / doc["file"]).read_text().splitlines():
        rebuilt.apply_update(base64.b64decode(json.loads(line)["data"]))
    assert str(text) == final


async def check_replay(page: Page, product: Product, sid: str, first: dict[str, Any],
                       second: dict[str, Any], swapped: dict[str, Any], cell: dict[str, Any],
                       final: str, lead_name: str) -> None:
    await page.goto(f"{product.app_url}/sessions/{sid}/replay")
    await expect(page.locator("body[data-replay-ready]")).to_have_count(1, timeout=WAIT_MS)
    for event, name in ((first, CANDIDATE), (second, lead_name)):
        item = page.locator(f"#pl-events li.pl-event[data-seq='{event['seq']}']")
        await expect(item.locator(".pl-kind")).to_have_text("file.changed")
        await expect(item.locator(".pl-actor")).to_have_text(name)
        await expect(item.locator(".pl-summary")).to_contain_text(FILE)

    # Code playback: README.md from its first update, played at 8x to its final text.
    docs = (await api(page, product, f"/api/v1/sessions/{sid}/docs"))["docs"]
    (doc,) = [d for d in docs if d["path"] == FILE]
    await page.select_option("#pb-doc", str(doc["id"]))
    panel, text = page.locator("#pb-panel"), page.locator("#pb-text pre")
    await expect(panel).to_have_attribute("data-ready", "1", timeout=WAIT_MS)
    await page.locator("#pb-slider").fill("0")
    await expect(text).to_have_text("")
    await page.select_option("#pb-speed", "8")
    await page.locator("#pb-play").click()
    await expect(page.locator("#pb-play")).to_have_attribute("aria-pressed", "false",
                                                              timeout=WAIT_MS)
    assert await text.text_content() == final
    legend = await page.locator("#pb-legend li").all_inner_texts()
    assert CANDIDATE in legend and lead_name in legend, legend

    # The terminal panel at the command after the trick: xterm draws it.
    after = page.locator("#pl-events li[data-kind='terminal.command']",
                         has_text="$ echo after-trick").first
    seq = await after.get_attribute("data-seq")
    assert seq is not None
    await page.locator("#pl-range").fill(seq)
    await expect(page.locator("#pl-pos")).to_contain_text(f"#{seq} of ")
    await page.locator("#pl-cast-screen").scroll_into_view_if_needed()
    await expect(page.locator("#pl-cast .xterm-accessibility-tree")).to_contain_text(
        "after-trick", timeout=WAIT_MS)
    # The Alt-T line as bash ran it (or flagged), and the transformed cell flagged.
    alt_t = page.locator(f"#pl-events li[data-seq='{swapped['seq']}'] .pl-summary")
    await expect(alt_t).to_contain_text(re.compile(r"\$ echo bb aa|bash ran this"))
    flags = page.locator(f"#pl-events li.pl-flagged[data-seq='{cell['seq']}'] .pl-flags")
    await expect(flags).to_have_text("⚠ ran transformed code")
