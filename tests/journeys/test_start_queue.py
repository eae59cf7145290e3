"""Journey: a burst of candidates pressing Start at once waits in the start queue, visibly.

A second ``pairlab demo`` (conftest's ``second_demo``), started as README command 1 says with the
settings an operator of a small host would give (``PAIRLAB_MAX_PARALLEL_STARTS=1``: one cold start
at a time; ``PAIRLAB_WARM_POOL_SIZE=0``: no warm workspace to claim). The demo interviewer
schedules four sessions on the Sessions page; four candidates, each in a browser of their own,
open their links and press Start at the same moment; the one furthest back in the queue opens
their landing page again in a second tab: it shows the start under way and goes on into
JupyterLab by itself once the workspace is live. The interviewer's observe page of each session,
open before Start, says "queued to start (k ahead, about N s)" for one at least, then live. A
candidate whose start waits is told "Your workspace starts in about N s (k ahead of you)." (N a
whole number of seconds), then "Preparing your workspace…" once their start runs; JupyterLab then
opens for all four, and each workspace runs its one spare kernel before any notebook is opened
(those started while others waited start it when their JupyterLab loads). Every page is audited
with axe.
"""

from __future__ import annotations

import asyncio
import re

import pytest
from playwright.async_api import Browser, Page, expect

from tests.journeys.conftest import (
    WAIT_MS,
    Product,
    browsing,
    db_rows,
    observe_scheduled,
    schedule_through_the_page,
)
from tests.workspaces.conftest import kernel_pids

pytestmark = [pytest.mark.journey, pytest.mark.integration, pytest.mark.browser,
              pytest.mark.timeout(1500)]
INTERVIEWER = "interviewer@example.com"
TASK = "daily-features-bug"
CANDIDATES = ("Ines Early", "Jon Middle", "Kemi Late", "Lou Last")
QUEUED = re.compile(
    r"^Your workspace starts in about (\d+) s \(((\d+) ahead of you|you are next)\)\.$")
PREPARING = "Preparing your workspace… JupyterLab opens in this tab in a few seconds."
RECORD_STATUS = """() => {
  const status = document.getElementById('preparing');
  new MutationObserver(() => window.plStatus(status.textContent))
    .observe(status, {childList: true, characterData: true, subtree: true});
}"""
"""Tells the test every wording the Start status takes (it lives until the page is left)."""


def ahead(text: str) -> int:
    """How many starts are ahead, as a queued wording says (0: "you are next")."""
    match = QUEUED.match(text)
    assert match is not None, text
    return int(match.group(3) or 0)


OBSERVED_QUEUED = re.compile(r"^queued to start \((\d+) ahead, about (\d+) s\)$")
RECORD_STATE = """() => {
  const state = document.getElementById('pl-state');
  window.plState(state.textContent);
  new MutationObserver(() => window.plState(state.textContent))
    .observe(state, {childList: true, characterData: true, subtree: true});
}"""


async def observe_with_state_recorded(page: Page, session_url: str) -> list[str]:
    """The session's observe page, open; returns the list of every wording its state takes."""
    said: list[str] = []

    def told(text: str) -> None:
        if not said or said[-1] != text:
            said.append(text)

    await page.expose_function("plState", told)
    await page.goto(f"{session_url}/observe")
    await expect(page.locator("#pl-stream")).to_have_text("live", timeout=WAIT_MS)
    await page.evaluate(RECORD_STATE)
    return said


async def landing_with_status_recorded(page: Page, link: str, said: list[str]) -> None:
    def told(text: str) -> None:
        said.append(text)

    await page.expose_function("plStatus", told)
    await page.goto(link)
    await expect(page.locator("#start")).to_be_enabled()
    await page.evaluate(RECORD_STATUS)


async def test_candidates_who_start_at_once_see_their_place_then_jupyterlab(
        second_demo: Product, browser: Browser) -> None:
    async with browsing(browser, second_demo, "start-queue") as people:
        interviewer = await people.as_user(INTERVIEWER, "interviewer")
        links, observed = [], []
        for i, name in enumerate(CANDIDATES):
            links.append(await schedule_through_the_page(interviewer, second_demo, TASK, name))
            session_url = await observe_scheduled(interviewer)
            observe = await people.another_tab(interviewer, f"observe-{i}")
            observed.append(await observe_with_state_recorded(observe, session_url))
        pages = [await people.anonymous(f"candidate-{i}") for i in range(len(links))]
        said: list[list[str]] = [[] for _ in pages]
        for page, link, record in zip(pages, links, said, strict=True):
            await landing_with_status_recorded(page, link, record)

        landings = [page.url for page in pages]
        # (not waiting for the navigation each starts: its answer comes once the workspace is
        # ready)
        await asyncio.gather(*(page.click("#start", no_wait_after=True) for page in pages))
        # The candidate furthest back in the queue opens their landing page again in a second
        # tab (as a reload would): it shows the start under way, and goes on into JupyterLab by
        # itself once the workspace is live.
        for _ in range(1500):  # up to 30 s
            if told := [i for i, record in enumerate(said) if record and QUEUED.match(record[-1])]:
                break
            await asyncio.sleep(0.02)
        else:
            pytest.fail(f"no candidate was told to wait: {said}")
        back = max(told, key=lambda i: ahead(said[i][-1]))  # still waiting when the tab loads
        tab = await people.another_tab(pages[back], "again")
        await tab.goto(landings[back])
        await expect(tab.locator("#preparing[data-open]")).to_have_count(1)
        await tab.wait_for_url("**/lab**", timeout=WAIT_MS, wait_until="commit")
        for page in pages:
            await page.wait_for_url("**/lab**", timeout=WAIT_MS, wait_until="commit")
            await expect(page.locator("#jp-main-dock-panel")).to_be_visible(timeout=WAIT_MS)

        print(f"what each candidate was told after Start: {said}")
        waited = [record for record in said if any(QUEUED.match(text) for text in record)]
        assert waited, f"no candidate was told of the start queue: {said}"
        for record in waited:
            first = next(QUEUED.match(text) for text in record if QUEUED.match(text))
            assert first is not None and int(first.group(1)) >= 1
            assert first.group(3) is None or int(first.group(3)) >= 1
            last_queued = max(i for i, text in enumerate(record) if QUEUED.match(text))
            assert PREPARING in record[last_queued + 1:], \
                f"the status did not go back to preparing once the start ran: {record}"
        assert all(record[0] == PREPARING for record in said), said  # at once, on Start

        # The interviewer's observe pages, open before Start, followed each start: one at least
        # said it was queued (with its place and estimate), then every one says live.
        for record in observed:
            async with asyncio.timeout(60):
                while not record or record[-1] != "live":
                    await asyncio.sleep(0.1)
        print(f"what the observe pages said: {observed}")
        assert any(OBSERVED_QUEUED.match(text) for record in observed for text in record), \
            observed

        # No notebook is open yet, and every workspace runs its one spare kernel: those started
        # while others waited started it only when their JupyterLab loaded (it asked for the
        # kernelspecs), so the starts behind them did not share the CPU with it.
        workspaces = db_rows(
            second_demo, "SELECT w.id, w.uid FROM workspaces w JOIN interview_sessions s ON "
            "s.id = w.session_id WHERE s.candidate_name IN (?, ?, ?, ?)", *CANDIDATES)
        uids = [row["uid"] for row in workspaces]
        assert len(uids) == len(CANDIDATES), uids
        configs = [(second_demo.data_dir / "workspaces" / row["id"] / "config" / "jupyter" /
                    "jupyter_server_config.py").read_text() for row in workspaces]
        assert any('"spare_kernel": "lab_load"' in text for text in configs), \
            "no workspace was told to start its spare when JupyterLab loads"
        async with asyncio.timeout(60):
            while [len(await asyncio.to_thread(kernel_pids, uid)) for uid in uids] != \
                    [1] * len(uids):
                await asyncio.sleep(0.2)
