"""The replay page, driven in a real headless Chromium."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from server.http.keys import DB
from tests.browser import (
    HOSTILE_NAME,
    Browsing,
    assert_inert,
    login_in_browser,
    record_hostile,
)
from tests.harness import Live
from workspaces.recording import events as E

pytestmark = [pytest.mark.browser, pytest.mark.integration]
SHOTS = os.environ.get("PAIRLAB_SHOTS")


async def open_replay(live: Live, page: Page, moment: int | None = None) -> None:
    target = f"/sessions/{live.session_id}/replay"
    await login_in_browser(page, live.url, target)
    if moment is not None:
        await page.goto(f"{live.url}{target}#seq={moment}")
    await expect(page.locator("body[data-replay-ready]")).to_have_count(1)


async def scrub(page: Page, seq: int) -> None:
    await page.locator("#pl-range").fill(str(seq))
    await expect(page.locator("#pl-pos")).to_contain_text(f"#{seq} of ")


async def shown_file(page: Page, path: str, expected: str) -> str:
    await page.locator(f'#pl-tree button[data-path="{path}"]').click()
    await expect(page.locator("#pl-file pre")).to_have_text(expected)
    return await page.locator("#pl-file pre").text_content() or ""


async def shot(page: Page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(Path(SHOTS) / name), full_page=True)


async def test_the_workspace_at_three_moments_and_the_diff_between_them(
        live: Live, browsing: Browsing) -> None:
    versions = ["rows = load()\n", "rows = load()\nrows = rows.dropna()\n",
                "rows = load()\nrows = rows.dropna()  # drops 12% of rows!\nprint(len(rows))\n"]
    moments = []
    for n, text in enumerate(versions):
        moments.append(await live.write({"pipeline.py": text}))
        await live.record(E.TERMINAL_COMMAND, line=f"python pipeline.py  # run {n}",
                          output=f"{n}\n")
    (live.workspace / "notes.md").unlink()
    last_snapshot = await live.wait_for_snapshot(await live.last_seq())

    # What the history holds at those moments is what was written then.
    history = live.service.history(live.session_id)
    commits = dict(await live.snapshots())
    for moment, text in zip(moments, versions, strict=True):
        assert (await history.afile_at(commits[moment], "pipeline.py")) == text.encode()

    page = browsing.page
    await open_replay(live, page)
    for moment, text in zip(moments, versions, strict=True):
        await scrub(page, moment)
        assert await shown_file(page, "pipeline.py", text) == text
        await expect(page.locator("#pl-ws-at")).to_contain_text(f"as of #{moment}")
    # Between snapshots the workspace is the one of the latest change before.
    await scrub(page, moments[1] + 1)
    assert await shown_file(page, "pipeline.py", versions[1]) == versions[1]
    found = await live.app[DB].read(lambda d: E.query_events(d, live.session_id, 0, 1000))
    # Before its first event, and before the first snapshot that holds it, the file did not
    # exist yet; the task's files did. (A snapshot can hold a file before its event is
    # recorded: the start's snapshot is taken 1.5 s after recording begins, from the disk, and
    # on a loaded host the watcher's event for a file written just before came after it.)
    holding = [seq for seq, commit in commits.items()
               if await history.afile_at(commit, "pipeline.py") is not None]
    first = min([e.seq for e in found if e.path == "pipeline.py"] + holding)
    await scrub(page, first - 1)
    await expect(page.locator("#pl-tree button[data-path='pipeline.py']")).to_have_count(
        0, timeout=30_000)
    assert await shown_file(page, "main.py", "print('hello')\n") == "print('hello')\n"
    await scrub(page, last_snapshot)
    await expect(page.locator("#pl-tree .pl-deleted")).to_have_text(["notes.md deleted"])

    # At a file change, before the snapshot that follows it, the file is the new one (it was
    # the snapshot before the change).
    final = versions[2] + "print('done')\n"
    staged = live.workspace.parent / "staged.py"  # written whole, then moved in
    staged.write_text(final)
    staged.replace(live.workspace / "pipeline.py")
    digest = hashlib.sha256(final.encode()).hexdigest()
    async with asyncio.timeout(60):
        while not (change := next((e.seq for e in await live.app[DB].read(
                lambda d: E.query_events(d, live.session_id, 0, 2000))
                if e.kind == E.FILE_CHANGED and e.path == "pipeline.py"
                and e.payload.get("sha256") == digest), 0)):
            await asyncio.sleep(0.05)
    await page.reload()
    await expect(page.locator("body[data-replay-ready]")).to_have_count(1)
    await scrub(page, change)
    await expect(page.locator("#pl-ws-at")).to_contain_text(f"as of #{change}")
    assert await shown_file(page, "pipeline.py", final) == final
    await scrub(page, change - 1)
    assert await shown_file(page, "pipeline.py", versions[2]) == versions[2]

    await page.fill("#pl-diff-from", str(moments[0]))
    await page.fill("#pl-diff-to", str(moments[2]))
    await page.click("#pl-diff-show")
    await expect(page.locator("#pl-diff .pl-add")).to_have_text(
        ["+rows = rows.dropna()  # drops 12% of rows!", "+print(len(rows))"])
    await expect(page.locator("#pl-diff .pl-del")).to_have_count(0)

    # A moment can be linked: the position is in the URL.
    await scrub(page, moments[1])
    await expect(page).to_have_url(re.compile(f"#seq={moments[1]}$"))
    await page.reload()
    await expect(page.locator("body[data-replay-ready]")).to_have_count(1)
    await expect(page.locator("#pl-range")).to_have_value(str(moments[1]))
    await shot(page, "replay.png")
    assert browsing.csp_violations() == [] and browsing.page_errors == []


async def test_markers_for_ml_work_signals(live: Live, browsing: Browsing) -> None:
    nb = "explore.ipynb"
    first = await live.record(E.CELL_EXECUTED, nb, code="df = load()", execution_count=1,
                              status="ok", kernel_id="k1", cell_id="a", duration_ms=900)
    long = await live.record(E.CELL_EXECUTED, nb, code="model.fit(X, y)", execution_count=2,
                             status="ok", kernel_id="k1", cell_id="b", duration_ms=45_000)
    back = await live.record(E.CELL_EXECUTED, nb, code="df = load()", execution_count=3,
                             status="ok", kernel_id="k1", cell_id="a", duration_ms=800)
    restart = await live.record(E.KERNEL_RESTARTED, kernel_id="k1", requested=True)
    await live.record(E.TESTS_RUN, passed=2, failed=1)
    green = await live.record(E.TESTS_RUN, passed=3, failed=0)
    await live.record(E.TESTS_RUN, passed=3, failed=0)

    page = browsing.page
    await open_replay(live, page)
    markers = page.locator("#pl-markers button")
    found = await markers.evaluate_all(
        "buttons => buttons.map(b => [b.dataset.kind, Number(b.dataset.seq)])")
    assert found == [["first-run", first], ["long-cell", long], ["out-of-order", back],
                     ["kernel-restart", restart], ["first-green", green]]
    await page.locator("#pl-markers button[data-kind=first-green]").click()
    await expect(page.locator("#pl-range")).to_have_value(str(green))
    await expect(page.locator("#pl-current")).to_contain_text("green: 3 passed, 0 failed")
    await expect(page.locator("#pl-track .pl-flag")).to_have_count(5)
    await expect(page.locator("#pl-tests li")).to_have_count(3)
    await expect(page.locator("#pl-tests li.pl-future")).to_have_count(1)

    await page.select_option("#pl-filter", "cell.")
    visible = await page.locator("#pl-events li.pl-event:visible").evaluate_all(
        "items => items.map(li => li.dataset.kind)")
    assert visible == ["cell.executed"] * 3
    assert browsing.csp_violations() == [] and browsing.page_errors == []


async def test_idle_stretches_are_marked_and_compressible(live: Live,
                                                         browsing: Browsing) -> None:
    start = datetime.now(UTC)
    await live.record(E.TERMINAL_COMMAND, line="ls", at=start + timedelta(seconds=5))
    await live.record(E.TERMINAL_COMMAND, line="pytest", at=start + timedelta(minutes=45))
    await live.record(E.TERMINAL_COMMAND, line="git diff", at=start + timedelta(minutes=46))

    page = browsing.page
    await open_replay(live, page)
    await expect(page.locator("#pl-events li.pl-idle")).to_have_count(1)
    await expect(page.locator("#pl-events li.pl-idle")).to_have_text(
        re.compile(r"idle for 4\d:\d\d"))

    async def gap_width() -> float:
        style = await page.locator("#pl-track .pl-gap").get_attribute("style") or ""
        match = re.search(r"width:\s*([\d.]+)%", style)
        assert match, style
        return float(match.group(1))

    compressed = await gap_width()
    await page.uncheck("#pl-compress")
    full = await gap_width()
    assert full > 90 > compressed
    await page.check("#pl-compress")
    assert await gap_width() == compressed
    await page.fill("#pl-idle-min", "60")
    await page.dispatch_event("#pl-idle-min", "change")
    await expect(page.locator("#pl-events li.pl-idle")).to_have_count(0)
    await expect(page.locator("#pl-track .pl-gap")).to_have_count(0)


async def test_hostile_content_is_inert(live: Live, browsing: Browsing) -> None:
    last = await record_hostile(live)
    page = browsing.page
    await open_replay(live, page)
    await expect(page.locator("#pl-range")).to_have_value(str(last))
    # (the recorded rename adds a ".bak" of it to the tree: pick the file itself)
    itself = re.compile(re.escape(HOSTILE_NAME) + "$")
    await page.locator("#pl-tree button", has_text=itself).click()
    await expect(page.locator("#pl-file pre")).to_contain_text("<script>")
    for details in await page.locator("#pl-events details").all():
        await details.evaluate("d => d.open = true")
    await shot(page, "replay-hostile.png")
    await assert_inert(page, browsing, "#pl-replay")


async def test_a_run_of_edited_tests_says_so(live: Live, browsing: Browsing) -> None:
    """The ``tests.run`` of a snapshot where the candidate edited a visible test names the
    file (the revision's version ran) wherever the run is summarised."""
    note = "tests edited by the candidate: test_pricing.py (the revision's version ran)"
    run = await live.record(E.TESTS_RUN, status="failed", passed=0, failed=1, errors=0,
                            edited_tests=["test_pricing.py"], note=note)
    page = browsing.page
    await open_replay(live, page, run)
    await expect(page.locator("#pl-current")).to_contain_text(f"red: 0 passed, 1 failed · {note}")
    assert browsing.csp_violations() == [] and browsing.page_errors == []
