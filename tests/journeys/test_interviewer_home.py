"""Journey: the interviewer's day on the real demo, from the home page.

The demo interviewer logs in and their home page lists today's demo session and, once they
schedule them, one starting now (today) and one in three days (upcoming), each with its start
and end as ``<time>`` shown in the viewer's zone. They end the one that started now: it waits
for their scorecard on the home page. Opening its debrief first explains why it is sealed and
links the scorecard; submitting an incomplete scorecard keeps it as the draft and names the
missing dimensions by their rubric titles, never their ids. Once they submit it fully, the
home page lists its debrief as ready. The demo's own candidate link is not used (other
journeys use it).
"""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Browser, Page, expect

from tests.journeys.conftest import (
    WAIT_MS,
    Product,
    browsing,
    db_rows,
    document,
    schedule_through_the_page,
    submit_scorecard,
)

pytestmark = [pytest.mark.journey, pytest.mark.integration, pytest.mark.browser,
              pytest.mark.timeout(1500)]
INTERVIEWER = "interviewer@example.com"
TASK = "daily-features-bug"
NOW_CANDIDATE = "Hanna Homepage"
LATER_CANDIDATE = "Lior Later"
IN_THREE_DAYS = """() => {
  const d = new Date(Date.now() + 3 * 864e5);
  d.setMinutes(d.getMinutes() - d.getTimezoneOffset());
  return d.toISOString().slice(0, 16);
}"""
"""A ``datetime-local`` value three days from now in the browser's own zone."""


async def db_state(product: Product, sid: str) -> str:
    """The session's state, read from the demo's SQLite file with no pairlab code between."""
    [row] = db_rows(product, "SELECT state FROM interview_sessions WHERE id = ?", sid)
    return str(row["state"])


def session_id(url: str) -> str:
    match = re.search(r"/sessions/(s_[0-9a-f]+)", url)
    assert match, url
    return match.group(1)


async def schedule_later(page: Page, product: Product) -> str:
    await page.goto(f"{product.app_url}/sessions")
    await page.select_option("#task", TASK)
    await page.fill("#candidate_name", LATER_CANDIDATE)
    await page.fill("#starts_local", await page.evaluate(IN_THREE_DAYS))
    await page.click('form[action="/sessions"] button[type=submit]')
    await page.wait_for_url("**/sessions/s_*?scheduled=1", timeout=WAIT_MS)
    return session_id(page.url)


async def test_the_interviewers_day_from_the_home_page(product: Product,
                                                       browser: Browser) -> None:
    demo = session_id(product.interviewer_page)
    async with browsing(browser, product, "interviewer-home") as people:
        page = await people.as_user(INTERVIEWER, "interviewer")
        await schedule_through_the_page(page, product, TASK, NOW_CANDIDATE)
        now_id = session_id(page.url)
        later_id = await schedule_later(page, product)

        # Home: the session starting now is today's (and so is the demo's, unless another
        # journey of this run ended it already); the later one is upcoming.
        await page.goto(f"{product.app_url}/")
        today = page.locator("#today")
        demo_ended = await db_state(product, demo) in ("ended", "failed")
        if demo_ended:  # an ended session is never today's
            await expect(today.locator(f'tr[data-session="{demo}"]')).to_have_count(0)
        for sid in (now_id,) if demo_ended else (demo, now_id):
            row = today.locator(f'tr[data-session="{sid}"]')
            await expect(row).to_be_visible()
            await expect(row.locator(f'a[href="/sessions/{sid}"]')).to_have_text("Session page")
            assert await row.locator("time[datetime]").count() == 2  # start and end
        await expect(today.locator(f'tr[data-session="{now_id}"]')).to_contain_text(
            "Daily features")  # the task's title, not its id
        await expect(today.locator(f'tr[data-session="{later_id}"]')).to_have_count(0)
        later_row = page.locator(f'#upcoming tr[data-session="{later_id}"]')
        await expect(later_row).to_contain_text(LATER_CANDIDATE)
        await expect(later_row).to_contain_text("scheduled")
        await expect(page.locator("#home-debriefs")).to_contain_text("older debriefs")
        await document(page, "interviewer-home")

        # End the one that started now: its scorecard is waiting.
        await page.goto(f"{product.app_url}/sessions/{now_id}")
        await page.click("#end")
        await expect(page.locator("main")).to_contain_text("ended", timeout=WAIT_MS)
        await page.goto(f"{product.app_url}/")
        waiting = page.locator(f'#scorecards-waiting li[data-session="{now_id}"]')
        await expect(waiting).to_contain_text("not started")
        await expect(waiting.locator("a")).to_have_attribute(
            "href", f"/sessions/{now_id}/scorecard")

        # Its debrief before submitting: why it is sealed, and the way to the scorecard.
        response = await page.goto(f"{product.app_url}/sessions/{now_id}/debrief")
        assert response is not None and response.status == 403
        await expect(page.locator("#sealed-explanation")).to_have_text(
            "Submit your scorecard first: the debrief opens once your own scores are in, so"
            " nobody anchors on another's.")
        await page.click("#sealed-scorecard-link")
        await page.wait_for_url(f"**/sessions/{now_id}/scorecard", timeout=WAIT_MS)

        # An incomplete scorecard: kept as the draft, the missing parts named by title.
        dimensions = page.locator("fieldset.dimension")
        titles = [re.sub(r"\s*\(weight \d+\)$", "", t.strip())
                  for t in await dimensions.locator("legend").all_inner_texts()]
        ids = [await dimensions.nth(i).get_attribute("data-dimension")
               for i in range(await dimensions.count())]
        assert len(titles) >= 2 and all(ids)
        first = dimensions.first
        await first.locator('input[type=radio][value="2"]').check()
        await first.locator("textarea").fill("Read the failing test before the code.")
        await page.click("#submit-scorecard")
        problems = page.locator("#scorecard-problems")
        await expect(problems).to_be_visible(timeout=WAIT_MS)
        await expect(problems).to_contain_text("Draft saved; to submit:")
        await expect(problems).to_contain_text(
            "Give a level and evidence for: " + ", ".join(titles[1:]))
        await expect(problems).to_contain_text("Choose a recommendation (Strong no, No, Yes or"
                                               " Strong yes)")
        shown = await problems.inner_text()
        assert titles[0] not in shown
        assert not any(f"scores.{i}" in shown or f"{i}:" in shown for i in ids), shown
        assert "strong_no" not in shown and "Not saved" not in shown
        await page.goto(f"{product.app_url}/sessions/{now_id}/scorecard")  # the draft is kept
        await expect(page.locator("fieldset.dimension textarea").first).to_have_value(
            "Read the failing test before the code.")

        # Submitted in full: the debrief opens and the home page lists it as ready.
        await submit_scorecard(page, f"{product.app_url}/sessions/{now_id}",
                               "Bisected the join.", "Careful and clear.")
        await page.goto(f"{product.app_url}/")
        ready = page.locator(f'#debriefs-ready li[data-session="{now_id}"]')
        await expect(ready).to_contain_text("every scorecard is in")
        await expect(ready.locator("a")).to_have_attribute("href",
                                                           f"/sessions/{now_id}/debrief")
        await expect(page.locator(f'#scorecards-waiting li[data-session="{now_id}"]')
                     ).to_have_count(0)
        await ready.locator("a").click()
        await page.wait_for_url(f"**/sessions/{now_id}/debrief", timeout=WAIT_MS)
