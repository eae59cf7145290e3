"""The candidate's landing page, on the demo that README command 1 starts, in Chromium.

An admin imports a task whose brief is Markdown (a heading, bold, code, a list, a link) with a
hostile part (a ``<script>``, an ``<img onerror>``, a ``javascript:`` link, an ``<iframe>``), and
publishes it; the demo interviewer schedules a session on it now. The candidate, in a browser
set to another time zone, opens the link and sees the brief rendered (no literal ``**``) with
none of the hostile part active, the interviewer's name, when the session ends in their own
time zone and the time left as the schedule says. They open the link again in a second tab,
then press Start in the first from the keyboard and see
"Preparing your workspace…" (the button disabled) while the workspace starts, then JupyterLab.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Browser, expect

from tests.journeys.conftest import WAIT_MS, Product, browsing, schedule_through_the_page
from tests.journeys.test_admin import (
    ADMIN,
    INTERVIEWER,
    click_publish,
    import_through_the_page,
    served,
    task_files,
    title_of,
    unique_id,
)

pytestmark = [pytest.mark.journey, pytest.mark.integration, pytest.mark.browser,
              pytest.mark.timeout(1500)]

INTERVIEWER_NAME = "Demo Interviewer"
"""The display name ``pairlab demo`` gives interviewer@example.com."""
DURATION_MINUTES = 30
"""The task's manifest (tests/task_repos.py)."""
TIME_ZONE = "Pacific/Auckland"
"""Far from UTC, so the page's own formatting shows."""
BRIEF = """\
# Nightly totals

The **nightly totals** look low. Run `python -m pytest -q tests` to see the failing test.

- Read `totals.py`
- Count a three-row example by hand

See [the feed's notes](https://example.org/notes) if you need them.

<script>window.pwnedByScript = true; alert("script")</script>
<img src="x" onerror="window.pwnedByImg = true; alert('img')">
<iframe srcdoc="<script>parent.pwnedByFrame = true</script>"></iframe>
<a id="evil" href="jav&#x61;script:window.pwnedByLink = true">tempting</a>
[also tempting](javascript:window.pwnedByMarkdownLink=true)
"""
OBSERVE_START = """() => {
  const form = document.getElementById('start-form');
  const start = document.getElementById('start');
  let pressed = 0;
  form.addEventListener('keydown', () => { pressed = performance.now(); }, true);
  form.addEventListener('submit', () => requestAnimationFrame(() => {
    const status = document.querySelector('[role=status]');
    const box = status ? status.getBoundingClientRect() : null;
    sessionStorage.setItem('pl-journey-start', JSON.stringify({
      path: location.pathname, status: status ? status.textContent : null,
      statusVisible: !!box && box.width > 0 && box.height > 0, disabled: start.disabled,
      busy: form.classList.contains('busy'), afterMs: performance.now() - pressed}));
  }));
}"""
"""Notes what the page paints first after Start (its listener runs after the page's own)."""
BACKDROP = "() => document.body && getComputedStyle(document.body, '::before').content"
FLAGS = ("pwnedByScript", "pwnedByImg", "pwnedByFrame", "pwnedByLink", "pwnedByMarkdownLink")


async def test_the_candidate_reads_a_rendered_brief_and_starts(product: Product,
                                                               browser: Browser,
                                                               tmp_path: Path) -> None:
    task_id = unique_id("journey-landing")
    files = task_files(task_id)
    files["BRIEF.md"] = BRIEF.encode()
    async with browsing(browser, product, "candidate-landing") as people:
        admin = await people.as_user(ADMIN, "admin")
        with served(tmp_path, {task_id: files}) as urls:
            await import_through_the_page(admin, product, urls[task_id])
        await click_publish(admin)
        await expect(admin.locator("#rev-status")).to_have_text("published", timeout=WAIT_MS)

        scheduler = await people.as_user(INTERVIEWER, "interviewer")
        scheduled_at = datetime.now().astimezone()
        link = await schedule_through_the_page(scheduler, product, task_id, "Ada Landing")

        # The candidate, in a browser of their own in another time zone.
        context = await browser.new_context(viewport={"width": 1400, "height": 900},
                                            timezone_id=TIME_ZONE)
        people.contexts.append(context)
        page = people.keep("candidate", await context.new_page())
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: dialogs.append(dialog.message))
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(link)
        await expect(page.locator("h1")).to_have_text(title_of(task_id), timeout=WAIT_MS)

        # The brief, rendered: a heading, bold, code, a list, a link; no Markdown left over.
        brief = page.locator("#brief")
        await expect(brief.locator("h2", has_text="Nightly totals")).to_be_visible()
        await expect(brief.locator("strong")).to_have_text("nightly totals")
        await expect(brief.locator("code").first).to_have_text("python -m pytest -q tests")
        await expect(brief.locator("li")).to_have_text(
            ["Read totals.py", "Count a three-row example by hand"])
        notes = brief.get_by_role("link", name="the feed's notes")
        await expect(notes).to_have_attribute("href", "https://example.org/notes")
        await expect(notes).to_have_attribute("rel", "noopener noreferrer")
        text = await brief.inner_text()
        assert "**" not in text and "`" not in text and "# " not in text, text

        # The hostile part: nothing ran, nothing loads, the links go nowhere.
        await expect(brief.locator("script, img, iframe")).to_have_count(0)
        evil = brief.get_by_text("tempting", exact=True)
        await expect(evil).to_have_count(1)
        assert await evil.get_attribute("href") is None
        await evil.click()  # the candidate follows it: still nothing runs
        await page.wait_for_load_state()
        assert await page.evaluate(f"[{', '.join(f'window.{f}' for f in FLAGS)}]") == \
            [None] * len(FLAGS)
        assert dialogs == [] and errors == [], (dialogs, errors)

        # Who and when: the interviewer's name; the end in the candidate's own time zone;
        # the time left counted from the scheduled start, not from now.
        await expect(page.locator("#interviewer")).to_have_text(INTERVIEWER_NAME)
        await expect(page.locator("#next")).to_contain_text(f"{INTERVIEWER_NAME} joins you")
        ends_attr = await page.locator("#ends-at").get_attribute("datetime")
        assert ends_attr is not None
        ends = datetime.fromisoformat(ends_attr.replace("Z", "+00:00"))
        expected_end = scheduled_at + timedelta(minutes=DURATION_MINUTES)
        assert abs(ends - expected_end) < timedelta(seconds=30), (ends, expected_end)
        local_end = ends.astimezone(ZoneInfo(TIME_ZONE))
        shown_end = await page.locator("#ends-at").inner_text()
        clock_faces = (local_end.strftime("%H:%M"), local_end.strftime("%I:%M %p"))
        assert any(face in shown_end for face in clock_faces), (shown_end, clock_faces)
        assert "UTC" not in shown_end, shown_end  # not the server's fallback
        shown_left = await page.locator("#time-left").inner_text()
        minutes_left = int((ends - datetime.now().astimezone()).total_seconds() // 60)
        assert re.fullmatch(r"\d+ minutes", shown_left), shown_left
        assert abs(int(shown_left.split()[0]) - minutes_left) <= 1, (shown_left, minutes_left)
        assert int(shown_left.split()[0]) < DURATION_MINUTES

        # The link opened again in a second tab (a double click in the e-mail): the landing
        # page there too, and the first tab's Start still works (below).
        again = await context.new_page()
        await again.goto(link)
        await expect(again.locator("#start")).to_be_visible(timeout=WAIT_MS)
        await again.close()

        # Start, from the keyboard. Until the answer replaces it, the landing page stays and
        # says what is happening: what it paints first after the press is noted by an observer
        # put on the page (Playwright itself waits for the pending navigation before reading a
        # page) into this tab's storage for this origin, read back after JupyterLab opened.
        landing = page.url
        await page.evaluate(OBSERVE_START)
        start = page.locator("#start")
        await start.focus()
        await expect(start).to_be_focused()
        pressed = time.monotonic()
        await page.keyboard.press("Enter")
        await page.wait_for_url("**/lab**", timeout=WAIT_MS, wait_until="commit")
        committed_after = time.monotonic() - pressed
        # What JupyterLab's page shows while its scripts load (a blank page before).
        shown: dict[str, float] = {}
        dock = page.locator("#jp-main-dock-panel")
        while not await dock.is_visible() and time.monotonic() - pressed < WAIT_MS / 1000:
            backdrop = str(await page.evaluate(BACKDROP))
            shown.setdefault(backdrop, round(time.monotonic() - pressed, 2))
            await page.wait_for_timeout(100)  # a sampling pace, not a readiness wait
        await expect(dock).to_be_visible(timeout=WAIT_MS)
        lab_after = time.monotonic() - pressed
        if lab_after - committed_after > 1.5:  # long enough to see it
            assert '"Opening JupyterLab…"' in shown, shown
        # While JupyterLab's scripts loaded, its page said "Opening JupyterLab…"; now gone.
        await expect(page.locator('link[href="/_pairlab/opening.css"]')).to_have_count(1)
        assert await page.evaluate(
            "() => getComputedStyle(document.body, '::before').content") == "none"
        await page.goto(landing)
        state = json.loads(await page.evaluate("sessionStorage.getItem('pl-journey-start')"))
        assert state["status"] == "Preparing your workspace… JupyterLab opens in this tab in" \
            " a few seconds.", state
        assert state["statusVisible"] and state["disabled"] and state["busy"], state
        assert state["path"] == urlsplit(landing).path, state  # the landing page, not blank
        await expect(page.locator("#open-workspace")).to_be_visible()  # now live
        print(f"after Enter: the landing page painted the preparing state in "
              f"{state['afterMs']:.0f} ms ({state}); JupyterLab's page replaced it at "
              f"{committed_after:.2f} s (showing, from s after Enter: {shown}) and its dock at "
              f"{lab_after:.2f} s")
