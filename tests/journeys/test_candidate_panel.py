"""pairlab's side panel in the candidate's JupyterLab, on the demo that README command 1 starts.

An interviewer schedules a session of their own and opens its observe page. The candidate, in a
browser set to another time zone, opens the link and presses Start: in JupyterLab the pairlab
panel is open, with the brief rendered (a heading and code as elements, no Markdown left over),
the time left and when the interview ends, in the candidate's own time zone. The interviewer
gives a hint on the observe page: it appears in the panel without a reload, announced politely;
the interviewer extends the session by 10 minutes: the panel's time left and end and the badge
follow without a reload; a hostile hint (``<img onerror>``, ``<script>``) is shown as text,
creating no element and running nothing; a note the interviewer writes never appears. The
interviewer ends the interview: the panel says so. The panel passes axe-core (JupyterLab's own
interface is not audited, pairlab's panel in it is).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, Page, expect

from tests.journeys.conftest import (
    WAIT_MS,
    Product,
    browsing,
    end_session,
    observe_scheduled,
    schedule_through_the_page,
    start_workspace,
)

pytestmark = [pytest.mark.journey, pytest.mark.integration, pytest.mark.browser,
              pytest.mark.timeout(900)]

INTERVIEWER = "interviewer@example.com"
TASK = "daily-features-bug"
TIME_ZONE = "Asia/Kathmandu"
"""UTC+05:45: a clock face no UTC time has."""
HINT = "Look at how events are joined to plan_history: one row per plan change."
HOSTILE_HINT = ('Try <img src=x onerror="window.pwnedByHint=true"> and '
                '<script>window.pwnedByHintScript=true</script> tags')
NOTE = "Private: the candidate skipped the notebook entirely."
PANEL = "#pairlab-panel"


async def give(observe: Page, text: str, button: str, *, double: bool = False) -> None:
    """The interviewer writes ``text`` on the observe page and saves it with ``button`` (a
    double click if ``double``: it is still given once)."""
    await observe.fill("#pl-note-text", text)
    await (observe.dblclick(button) if double else observe.click(button))
    await expect(observe.locator("#pl-notes li", has_text=text[:30]).first).to_be_visible(
        timeout=WAIT_MS)


async def test_the_candidate_sees_the_brief_the_time_and_the_hints_in_jupyterlab(
        product: Product, browser: Browser) -> None:
    async with browsing(browser, product, "candidate-panel") as people:
        observe = await people.as_user(INTERVIEWER, "observe")
        link = await schedule_through_the_page(observe, product, TASK, "Pan Elle")
        await observe_scheduled(observe)

        # The candidate, in a browser in another time zone: link, Start, JupyterLab.
        context = await browser.new_context(viewport={"width": 1400, "height": 900},
                                            timezone_id=TIME_ZONE)
        people.contexts.append(context)
        lab = people.keep("candidate", await context.new_page())
        errors: list[str] = []
        lab.on("pageerror", lambda error: errors.append(str(error)))
        dialogs: list[str] = []
        lab.on("dialog", lambda dialog: dialogs.append(dialog.message))
        await start_workspace(lab, link)

        # The panel is open from the start, in the right side area, with its tab.
        panel = lab.locator(PANEL)
        await expect(panel).to_be_visible(timeout=WAIT_MS)
        assert await lab.locator(f"#jp-right-stack {PANEL}").count() == 1
        await expect(lab.locator('.jp-SideBar.jp-mod-right [data-id="pairlab-panel"]')
                     ).to_be_visible()

        # The brief, rendered from the task's Markdown: elements, not Markdown.
        brief = panel.locator("#pairlab-brief")
        await expect(brief.locator("h2")).to_have_text("Daily features are wrong",
                                                      timeout=WAIT_MS)
        await expect(brief.locator("code", has_text="explore.ipynb")).to_have_count(1)
        await expect(brief.locator("ol > li")).to_have_count(3)
        text = await brief.inner_text()
        assert "`" not in text and "# " not in text, text

        # The time left (countdown.js's clock) and the end, in the candidate's time zone.
        left = panel.locator("#pairlab-panel-left")
        await expect(left).to_have_text(re.compile(r"^\d+:\d\d left$"), timeout=WAIT_MS)
        minutes = int((await left.inner_text()).split(":")[0])
        assert 0 < minutes <= 75, minutes
        badge = (await lab.locator("#pairlab-countdown").inner_text()).split(":")[0]
        assert abs(int(badge) - minutes) <= 1, (badge, minutes)
        ends_at = panel.locator("#pairlab-panel-ends time")
        await expect(ends_at).to_be_visible()
        iso = await ends_at.get_attribute("datetime")
        assert iso is not None
        local = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(
            ZoneInfo(TIME_ZONE))
        shown = await ends_at.inner_text()
        assert any(face in shown for face in (local.strftime("%H:%M"),
                                              local.strftime("%I:%M"))), (shown, local)
        await expect(panel.locator("#pairlab-hints")).to_contain_text("No hints yet.")
        await expect(panel.locator("#pairlab-hints")).to_have_attribute("aria-live", "polite")

        # A hint on the observe page: in the panel without a reload.
        await lab.evaluate("window.pairlabJourneyMark = 1")  # gone if the page reloads
        await give(observe, HINT, "#pl-hint-save", double=True)  # once: the count of 2 below
        hints = panel.locator("#pairlab-hints li")
        await expect(hints).to_have_count(1, timeout=WAIT_MS)
        await expect(hints.first).to_contain_text(HINT)
        assert await lab.evaluate("window.pairlabJourneyMark") == 1
        await expect(panel.get_by_text("No hints yet.")).to_be_hidden()

        # The interviewer extends the session by 10 minutes: the panel's time left and end, and
        # the badge, follow without a reload.
        before_end = await ends_at.get_attribute("datetime")
        await observe.fill('#pl-extend-form input[name="minutes"]', "10")
        await observe.dblclick("#pl-extend")  # a double click extends once

        async def minutes_left() -> int:
            return int((await left.inner_text()).split(":")[0])

        for _ in range(120):
            if await minutes_left() >= minutes + 9:
                break
            await lab.wait_for_timeout(500)
        assert await minutes_left() >= minutes + 9, (minutes, await left.inner_text())
        badge_after = (await lab.locator("#pairlab-countdown").inner_text()).split(":")[0]
        assert int(badge_after) >= minutes + 9, badge_after
        after_end = await ends_at.get_attribute("datetime")
        assert before_end and after_end and datetime.fromisoformat(
            after_end.replace("Z", "+00:00")) - datetime.fromisoformat(
            before_end.replace("Z", "+00:00")) == timedelta(minutes=10), (before_end, after_end)
        assert await lab.evaluate("window.pairlabJourneyMark") == 1

        # A note: private; and a hostile hint: text only, nothing created, nothing run.
        await give(observe, NOTE, "#pl-note-save")
        await give(observe, HOSTILE_HINT, "#pl-hint-save")
        await expect(hints).to_have_count(2, timeout=WAIT_MS)
        await expect(hints.nth(1)).to_contain_text('<img src=x onerror="window.pwnedByHint')
        await expect(hints.nth(1)).to_contain_text("<script>")
        await expect(panel.locator("#pairlab-hints img, #pairlab-hints script")).to_have_count(0)
        assert await lab.evaluate("[window.pwnedByHint, window.pwnedByHintScript]") == \
            [None, None]
        await lab.wait_for_timeout(6000)  # one more poll of the panel: the note stays out
        assert NOTE not in await panel.inner_text()
        assert "skipped the notebook" not in await lab.content()
        await people.audits.audit_part(lab, PANEL)

        # The interviewer ends: the panel says so.
        await end_session(observe)
        status = panel.locator("#pairlab-panel-status")
        await expect(status).to_have_text(re.compile("The interview has ended"),
                                          timeout=WAIT_MS)
        await expect(status).to_have_attribute("role", "status")
        await expect(left).to_have_text("Time is up")
        await people.audits.audit_part(lab, PANEL)
        assert dialogs == [] and errors == [], (dialogs, errors)
