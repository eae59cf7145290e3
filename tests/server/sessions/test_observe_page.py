"""The interviewer's live observation page, driven in a real headless Chromium."""

from __future__ import annotations

import os
import re
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Page, Request, expect

from common.clock import iso, now
from server.http.keys import DB
from tests.browser import (
    HOSTILE_NAME,
    Browsing,
    assert_inert,
    login_in_browser,
    record_hostile,
)
from tests.conftest import PASSWORD
from tests.harness import LEAD, OTHER, Live
from workspaces import sessions as S
from workspaces.recording import events as E

pytestmark = [pytest.mark.browser, pytest.mark.integration]
SHOTS = os.environ.get("PAIRLAB_SHOTS")


async def open_observer(live: Live, page: Page) -> None:
    last = await live.last_seq()
    await login_in_browser(page, live.url, f"/sessions/{live.session_id}/observe")
    await expect(page.locator("#pl-stream")).to_have_text("live")
    await expect(page.locator(f'#pl-timeline li[data-seq="{last}"]')).to_have_count(1)


async def timeline_seqs(page: Page) -> list[int]:
    values: list[str] = await page.locator("#pl-timeline li[data-seq]").evaluate_all(
        "items => items.map(li => li.dataset.seq)")
    return [int(v) for v in values]


async def shot(page: Page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(Path(SHOTS) / name), full_page=True)


async def test_a_cell_run_shows_up_within_a_second(live: Live, browsing: Browsing) -> None:
    page = browsing.page
    await open_observer(live, page)
    started = time.perf_counter()
    seq = await live.record(E.CELL_EXECUTED, "analysis.ipynb", code="df.describe()",
                            execution_count=1, status="ok", duration_ms=12,
                            output="count 3\nmean 2.0\n", kernel_id="k1")
    stored = time.perf_counter()
    await expect(page.locator(f'#pl-timeline li[data-seq="{seq}"]')).to_have_count(1, timeout=1000)
    shown = time.perf_counter()
    print(f"\ncell.executed: stored after {1000 * (stored - started):.1f} ms, "
          f"in the observer's DOM {1000 * (shown - started):.1f} ms after recording started")
    await expect(page.locator("#pl-cells article").first).to_contain_text("df.describe()")
    await expect(page.locator("#pl-cells article").first).to_contain_text("mean 2.0")
    await expect(page.locator("#pl-last-seq")).to_have_text(str(seq))
    assert browsing.csp_violations() == [] and browsing.page_errors == []


async def test_the_stream_resumes_without_gaps_or_duplicates(live: Live,
                                                            browsing: Browsing) -> None:
    page = browsing.page
    for n in range(5):
        await live.record(E.TERMINAL_COMMAND, line=f"echo before {n}", output=f"{n}\n")
    streams: list[Request] = []
    page.on("request", lambda r: streams.append(r) if "/events/stream" in r.url else None)
    await open_observer(live, page)
    assert len(streams) == 1
    for n in range(2):  # these come over the stream, so EventSource knows their ids
        seen = await live.record(E.TERMINAL_COMMAND, line=f"echo live {n}", output=f"{n}\n")
    await expect(page.locator("#pl-last-seq")).to_have_text(str(seen))

    # The server drops the connection; events keep coming while the page is away.
    assert live.cut_streams() >= 1
    for n in range(5):
        last = await live.record(E.TERMINAL_COMMAND, line=f"echo away {n}", output=f"{n}\n")
    await expect(page.locator(f'#pl-timeline li[data-seq="{last}"]')).to_have_count(
        1, timeout=10_000)
    assert len(streams) == 2
    resumed = await streams[1].all_headers()
    assert resumed.get("last-event-id") == str(seen), resumed  # EventSource's own resume

    # The page's own reconnect (a fresh EventSource from ?after=) neither repeats nor skips.
    seen = int(await page.locator("#pl-last-seq").inner_text())
    await page.evaluate("window.pairlabObserver.reconnect()")
    for n in range(3):
        last = await live.record(E.CELL_EXECUTED, "nb.ipynb", code=f"x = {n}",
                                 execution_count=n + 1, status="ok", kernel_id="k1")
    await expect(page.locator(f'#pl-timeline li[data-seq="{last}"]')).to_have_count(1)
    assert streams[-1].url.endswith(f"after={seen}")

    seqs = await timeline_seqs(page)
    assert len(seqs) == len(set(seqs)), "an event is shown twice"
    assert sorted(seqs) == list(range(1, max(seqs) + 1)), "an event is missing"
    assert max(seqs) >= last
    assert browsing.page_errors == []


async def test_hostile_content_is_inert(live: Live, browsing: Browsing) -> None:
    page = browsing.page
    await open_observer(live, page)
    last = await record_hostile(live)
    await expect(page.locator(f'#pl-timeline li[data-seq="{last}"]')).to_have_count(1)
    await expect(page.locator("#pl-tree")).to_contain_text(HOSTILE_NAME)
    await page.locator("#pl-tree button", has_text=HOSTILE_NAME).click()
    await expect(page.locator("#pl-file pre")).to_contain_text("<script>")
    for details in await page.locator("#pl-timeline details").all():
        await details.evaluate("d => d.open = true")
    await shot(page, "observe-hostile.png")
    await assert_inert(page, browsing, "#pl-observe")


async def test_notes_and_hints_are_linked_to_the_current_moment(live: Live,
                                                               browsing: Browsing) -> None:
    page = browsing.page
    seq = await live.record(E.CELL_EXECUTED, "nb.ipynb", code="1/0", execution_count=1,
                            status="error", error={"ename": "ZeroDivisionError",
                                                   "evalue": "division by zero",
                                                   "traceback": "1/0\nZeroDivisionError"})
    await open_observer(live, page)
    await expect(page.locator("#pl-note-at")).to_have_text(str(seq))

    await page.get_by_role("button", name="Give hint 1").click()
    hint = page.locator("#pl-notes li.pl-kind-hint")
    await expect(hint).to_contain_text("Look at main.py")
    await expect(hint).to_contain_text(f"at #{seq}")
    await expect(hint).to_contain_text("lead")

    await page.fill("#pl-note-text", "Asked about the data <b>before</b> coding")
    await page.click("#pl-note-save")
    note = page.locator("#pl-notes li.pl-kind-note")
    await expect(note).to_contain_text("Asked about the data <b>before</b> coding")
    await expect(note).to_contain_text(f"at #{seq + 1}")  # the hint is now the latest event
    await expect(page.locator("#pl-note-text")).to_have_value("")
    await expect(page.locator("#pl-cells .pl-error")).to_contain_text("ZeroDivisionError")
    assert browsing.csp_violations() == [] and browsing.page_errors == []


async def test_changes_tests_countdown_and_actions(live: Live, browsing: Browsing) -> None:
    page = browsing.page
    await open_observer(live, page)
    await live.write({"main.py": "print('hello, world')\n",
                      "metrics.py": "def f1(p, r):\n    return 2 * p * r / (p + r)\n"})
    await live.record(E.TESTS_RUN, passed=3, failed=2)
    await live.record(E.TESTS_RUN, passed=5, failed=0)

    await expect(page.locator("#pl-diff")).to_contain_text("+print('hello, world')")
    await expect(page.locator("#pl-diff .pl-del")).to_contain_text("-print('hello')")
    await expect(page.locator("#pl-tree button.pl-changed")).to_have_count(2)
    await expect(page.locator("#pl-tree button:not(.pl-changed)")).to_have_text(
        ["explore.ipynb", "notes.md"])
    await expect(page.locator("#pl-tests .pl-red")).to_have_count(1)
    await expect(page.locator("#pl-tests .pl-green")).to_have_text(["5/5"])
    await expect(page.locator("#pl-countdown")).to_have_text(
        re.compile(r"^\d+:\d\d left$"))

    ends_before = await session_ends_at(live)
    await page.click("#pl-extend")
    await expect(page.locator("#pl-action-result")).to_have_text("Extended by 10 min.")
    assert await session_ends_at(live) > ends_before
    await shot(page, "observe.png")
    assert browsing.csp_violations() == [] and browsing.page_errors == []


async def session_ends_at(live: Live) -> str:
    session = await live.app[DB].read(lambda d: S.get_session(d, live.session_id))
    return session.ends_at


async def test_only_the_sessions_interviewers_may_observe(live: Live) -> None:
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(live.url, cookie_jar=jar) as http:
        lead = await http.post("/api/v1/auth/login", json={"email": LEAD, "password": PASSWORD})
        assert lead.status == 200
        for page in ("observe", "replay"):
            shown = await http.get(f"/sessions/{live.session_id}/{page}")
            assert shown.status == 200
            assert "script-src 'self'" in shown.headers["Content-Security-Policy"]
            html = await shown.text()
            assert "Ada &lt;b&gt;Lovelace&lt;/b&gt;" in html  # autoescaped
            assert "Ada <b>" not in html and "\\u003cb\\u003e" in html  # JSON via tojson
        jar.clear()
        anonymous = await http.get(f"/sessions/{live.session_id}/observe", allow_redirects=False)
        assert anonymous.status == 303
        assert anonymous.headers["Location"].startswith("/login?next=")
        login = await http.post("/api/v1/auth/login", json={"email": OTHER, "password": PASSWORD})
        assert login.status == 200
        for page in ("observe", "replay"):
            refused = await http.get(f"/sessions/{live.session_id}/{page}")
            assert refused.status == 403, page
            body: Any = await refused.text()
            assert "Ada" not in body



async def test_the_page_follows_the_session_to_its_end_without_a_reload(
        live: Live, browsing: Browsing) -> None:
    page = browsing.page
    streams: list[Request] = []
    page.on("request", lambda r: streams.append(r) if "/events/stream" in r.url else None)
    await open_observer(live, page)
    await page.evaluate("window.__sameDocument = true")
    for live_control in ("#pl-join-form", "#pl-extend-form", "#pl-end-form", "#pl-hints",
                         "#pl-hint-save"):
        await expect(page.locator(live_control)).to_be_visible()
    await expect(page.locator("#pl-over")).to_be_hidden()
    await expect(page.locator("#pl-health")).to_have_text("live")

    page.once("dialog", lambda dialog: dialog.accept())
    clicked = time.perf_counter()
    await page.click("#pl-end")
    await expect(page.locator("#pl-stream")).to_have_text("finished", timeout=30_000)
    print(f"\nEnd clicked → 'Stream: finished' in {time.perf_counter() - clicked:.2f} s")
    await expect(page.locator("#pl-state")).to_have_text("ended")
    await expect(page.locator("#pl-countdown")).to_have_text("Session ended")
    await expect(page.locator("#pl-health")).to_have_text("closed")
    for live_control in ("#pl-join-form", "#pl-extend-form", "#pl-end-form", "#pl-hints",
                         "#pl-hint-save"):
        await expect(page.locator(live_control)).to_be_hidden()
    await expect(page.locator("#pl-over")).to_be_visible()
    sid = live.session_id
    await expect(page.locator("#pl-over-replay")).to_have_attribute(
        "href", f"/sessions/{sid}/replay")
    await expect(page.locator("#pl-over-debrief")).to_have_attribute(
        "href", f"/sessions/{sid}/debrief")
    # The stream ended after the end-of-session events: the hidden checks' run is shown.
    last = await live.last_seq()
    stored = await live.app[DB].read(lambda d: E.query_events(d, sid, last - 1, 1))
    assert stored[0].kind == E.CHECKS_RUN
    await expect(page.locator("#pl-last-seq")).to_have_text(str(last))
    await expect(page.locator(f'#pl-timeline li[data-seq="{last}"]')).to_have_count(1)
    assert await page.evaluate("window.__sameDocument") is True  # no reload happened

    # Nothing reconnects: EventSource would retry after 2 s, the page's own after 1 s.
    await page.wait_for_timeout(5000)
    assert len(streams) == 1, [r.url for r in streams]
    assert await page.evaluate("window.pairlabObserver.finished()") is True
    await shot(page, "observe-ended.png")
    assert browsing.csp_violations() == [] and browsing.page_errors == []

    # Opened after the end, the page is over from the start and its stream ends after the
    # backlog.
    await page.reload()
    await expect(page.locator("#pl-stream")).to_have_text("finished")
    await expect(page.locator(f'#pl-timeline li[data-seq="{last}"]')).to_have_count(1)
    await expect(page.locator("#pl-end-form")).to_be_hidden()
    await expect(page.locator("#pl-over")).to_be_visible()
    assert len(streams) == 2


HOSTILE_REASON = '<img src=x onerror="window.__pwned=1"> [Errno 13] Permission denied'
"""A reason as the workspace could word it (candidate-made names end up in such messages)."""


async def test_kernel_and_terminal_failures_show_until_one_starts(live: Live,
                                                                 browsing: Browsing) -> None:
    page = browsing.page
    await open_observer(live, page)
    problems = page.locator("#pl-problems")
    await expect(problems).to_be_hidden()

    # As the proxy's tap records a refused kernel (tests/server/recording/
    # test_failure_events.py): the workspace's own reason.
    await live.record(E.KERNEL_FAILED, "explore.ipynb", status=500,
                      request="POST /api/sessions", reason=HOSTILE_REASON + "\x1b[31m\x07")
    await expect(problems).to_be_visible()
    await expect(problems).to_contain_text(
        "A kernel could not start for explore.ipynb: " + HOSTILE_REASON)
    shown = await problems.text_content() or ""
    assert "\x1b" not in shown and "\x07" not in shown  # escapes stripped
    assert await problems.locator("img").count() == 0  # markup shown as text
    await live.record(E.TERMINAL_FAILED, status=500, request="POST /api/terminals",
                      reason="[Errno 13] Permission denied: '/bin/bash'")
    await expect(problems.locator("li")).to_have_count(2)
    await expect(problems).to_contain_text(
        "A terminal could not start: [Errno 13] Permission denied: '/bin/bash'")
    await shot(page, "observe-problems.png")

    await live.record(E.KERNEL_STARTED, "explore.ipynb", kernel_id="k1", name="python3")
    await expect(problems.locator("li")).to_have_count(1)
    await expect(problems).not_to_contain_text("kernel")
    await live.record(E.TERMINAL_COMMAND, line="ls", output="main.py\n", terminal="1")
    await expect(problems).to_be_hidden()

    await live.record(E.KERNEL_DIED, "explore.ipynb", actor=E.ACTOR_SYSTEM, kernel_id="k1")
    await expect(problems).to_have_text("The kernel for explore.ipynb died.")
    await live.record(E.KERNEL_RESTARTED, "explore.ipynb", actor=E.ACTOR_SYSTEM,
                      kernel_id="k1", automatic=True)
    await expect(problems).to_be_hidden()

    # The workspace's own state: crashed (restarting), restarted (live).
    await live.record(E.WORKSPACE_CRASHED, actor=E.ACTOR_SYSTEM, workspace_id="w")
    await expect(page.locator("#pl-health")).to_have_text("restarting")
    await live.record(E.WORKSPACE_RESTARTED, actor=E.ACTOR_SYSTEM, workspace_id="w",
                      after="crash")
    await expect(page.locator("#pl-health")).to_have_text("live")

    # A failure recorded before the page opened is shown from the backlog; a reload keeps it.
    await live.record(E.KERNEL_FAILED, status=500, request="POST /api/kernels",
                      reason="out of memory")
    await page.reload()
    await expect(page.locator("#pl-stream")).to_have_text("live")
    await expect(problems).to_have_text("A kernel could not start: out of memory")
    assert await page.evaluate("typeof window.__pwned") == "undefined"
    assert await problems.locator("img").count() == 0
    assert browsing.csp_violations() == [] and browsing.page_errors == []


async def test_a_cut_stream_says_reconnecting_then_live(live: Live, browsing: Browsing) -> None:
    page = browsing.page
    await open_observer(live, page)
    assert live.cut_streams() >= 1
    await expect(page.locator("#pl-stream")).to_have_text("reconnecting")
    seq = await live.record(E.NOTE, actor=E.ACTOR_SYSTEM, text="while away")
    await expect(page.locator("#pl-stream")).to_have_text("live", timeout=10_000)
    await expect(page.locator(f'#pl-timeline li[data-seq="{seq}"]')).to_have_count(1)
    await expect(page.locator("#pl-state")).to_have_text("live")
    await expect(page.locator("#pl-end-form")).to_be_visible()


async def test_a_double_click_sends_once_and_a_refusal_reads_as_a_sentence(
        live: Live, browsing: Browsing) -> None:
    """A double click on a hint or on Extend sends it once (the candidate saw the hint twice;
    the session would be extended twice), and a refused action shows the server's sentence
    (it showed "422 [object Object]")."""
    page = browsing.page
    await open_observer(live, page)
    await page.get_by_role("button", name="Give hint 1").dblclick()
    await expect(page.locator("#pl-note-result")).to_have_text("hint recorded")
    ends_before = datetime.fromisoformat(await session_ends_at(live))
    await page.locator("#pl-extend").dblclick()
    await expect(page.locator("#pl-action-result")).to_have_text("Extended by 10 min.")

    await page.fill("#pl-extend-form input[name=minutes]", "-10")
    await page.click("#pl-extend")
    await expect(page.locator("#pl-action-result")).to_have_text(
        "A session is extended by 1 to 120 minutes at a time.")
    await page.fill("#pl-extend-form input[name=minutes]", "abc")
    await page.click("#pl-extend")
    await expect(page.locator("#pl-action-result")).to_have_text(
        "Enter the minutes to add as a whole number, 1 to 120.")
    await page.fill("#pl-note-text", "x" * 20_001)
    await page.click("#pl-note-save")
    await expect(page.locator("#pl-note-result")).to_have_text(
        "not saved: A note or hint has 1 to 10,000 characters ('text'); this one has 20,001.")

    # what the server kept, after all of the above was answered: one hint, one extension
    assert datetime.fromisoformat(await session_ends_at(live)) - ends_before == \
        timedelta(minutes=10)
    await page.reload()
    await expect(page.locator("#pl-stream")).to_have_text("live")
    await expect(page.locator("#pl-notes li.pl-kind-hint")).to_have_count(1)
    assert browsing.page_errors == []


async def test_a_session_far_ahead_counts_whole_days(live: Live, browsing: Browsing) -> None:
    """The countdown of a session that ends months ahead reads in days (it read "2022:13:20
    left"), with the page's first words the same before its script runs."""
    far = iso(now() + timedelta(days=84, hours=1))
    await live.app[DB].write(lambda d: d.execute(
        "UPDATE interview_sessions SET ends_at = ? WHERE id = ?", [far, live.session_id]))
    page = browsing.page
    await open_observer(live, page)
    await expect(page.locator("#pl-countdown")).to_have_text("84 days left")
    html = await (await page.request.get(
        f"{live.url}/sessions/{live.session_id}/observe")).text()
    assert re.search(r'role="timer"[^>]*>84 days left</span>', html), html
