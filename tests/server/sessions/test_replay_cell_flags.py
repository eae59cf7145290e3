"""Cells whose recorded code may not be what the kernel ran are marked on the replay page and
on the observe page (flags set by workspaces/recording/kernel_messages.py), in real Chromium."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.browser import Browsing, login_in_browser
from tests.harness import Live
from tests.server.sessions.test_replay_page import open_replay
from workspaces.recording import events as E

pytestmark = [pytest.mark.browser, pytest.mark.integration]


async def record_cells(live: Live) -> tuple[int, int, int]:
    nb = "explore.ipynb"
    await live.record(E.CELL_EXECUTED, nb, code="x = 1", execution_count=1, status="ok",
                      kernel_id="k1", output="")
    swapped = await live.record(
        E.CELL_EXECUTED, nb, code="print('<b>ORIGINAL</b>')", code_ran="print('HACKED')\n",
        execution_count=2, status="ok", kernel_id="k1", output="HACKED\n",
        flags=["transformed"])
    outside = await live.record(E.CELL_EXECUTED, nb, code="steal()", execution_count=3,
                                status="ok", kernel_id="k1", output="",
                                origin="outside pairlab")
    echoed = await live.record(E.CELL_EXECUTED, nb, code="a()", code_echoed="b()",
                               execution_count=4, status="ok", kernel_id="k1", output="",
                               flags=["echo_differs"])
    return swapped, outside, echoed


async def test_flagged_cells_are_marked_in_the_replay(live: Live, browsing: Browsing) -> None:
    swapped, outside, echoed = await record_cells(live)
    page = browsing.page
    await open_replay(live, page)
    flagged = page.locator("#pl-events li.pl-flagged")
    found = await flagged.evaluate_all("items => items.map(li => Number(li.dataset.seq))")
    assert found == [swapped, outside, echoed]
    await expect(flagged.nth(0).locator(".pl-flags")).to_have_text("⚠ ran transformed code")
    await expect(flagged.nth(1).locator(".pl-flags")).to_have_text("⚠ run outside pairlab")
    await expect(flagged.nth(2).locator(".pl-flags")).to_have_text("⚠ kernel echoed other code")
    markers = await page.locator("#pl-markers button[data-kind=code-flag]").evaluate_all(
        "buttons => buttons.map(b => Number(b.dataset.seq))")
    assert markers == [swapped, outside, echoed]
    await expect(page.locator("#pl-track .pl-flag.pl-code-flag")).to_have_count(3)
    item = flagged.nth(0)
    await item.locator("summary").click()
    await expect(item.locator(".pl-code_ran pre")).to_have_text("print('HACKED')\n")
    await expect(item.locator(".pl-code pre")).to_have_text("print('<b>ORIGINAL</b>')")
    assert await page.locator("#pl-events b").count() == 0  # the code is text, never markup
    assert browsing.csp_violations() == [] and browsing.page_errors == []


async def test_flagged_cells_are_marked_on_the_observe_page(live: Live,
                                                            browsing: Browsing) -> None:
    swapped, _, _ = await record_cells(live)
    page = browsing.page
    await login_in_browser(page, live.url, f"/sessions/{live.session_id}/observe")
    card = page.locator(f"#pl-cells article[data-seq='{swapped}']")
    await expect(card.locator(".pl-flags")).to_have_text("⚠ ran transformed code")
    await expect(card.locator("pre.pl-code-ran")).to_have_text("print('HACKED')\n")
    await expect(page.locator("#pl-cells .pl-flags")).to_have_count(3)
    assert browsing.csp_violations() == [] and browsing.page_errors == []
