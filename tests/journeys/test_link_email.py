"""Journey: the interviewer emails the candidate link from the session's page.

- On the demo as README command 1 starts it (no SMTP settings), the session's page says how to
  enable email, naming the settings, and has no send button.
- On a second ``pairlab demo`` (conftest's ``second_demo``) started the same way but with the
  ``PAIRLAB_SMTP_*`` settings pointing at a real SMTP server (aiosmtpd) on loopback, the
  interviewer schedules a session on the page with the candidate's email and a second interviewer,
  and presses "Send the link by email": the page says "Sent to <address> at <time>", the SMTP
  server received one message, to the candidate alone, holding the link the page shows; opened in
  Chromium as the candidate, the emailed link reaches the landing page. The second interviewer's
  page shows no link and their re-issue and email posts get 403 (the attack). The interviewer
  re-issues the link: the emailed link then shows the "replaced" page (410).
"""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect

from tests.journeys.conftest import (
    WAIT_MS,
    Product,
    browsing,
    schedule_through_the_page,
)
from tests.smtp_server import Served

pytestmark = [pytest.mark.journey, pytest.mark.integration, pytest.mark.browser,
              pytest.mark.timeout(1500)]
INTERVIEWER = "interviewer@example.com"
SECOND = "interviewer2@example.com"
TASK = "daily-features-bug"
CANDIDATE = "Noor Mailed"
CANDIDATE_EMAIL = "noor@candidates.example"


async def test_without_smtp_the_page_says_how_to_enable_email(
        product: Product, browser: Browser) -> None:
    async with browsing(browser, product, "link-email-off") as people:
        page = await people.as_user(INTERVIEWER, "interviewer")
        await schedule_through_the_page(page, product, TASK, "Sam Unmailed")
        how = page.locator("#email-not-configured")
        await expect(how).to_contain_text("PAIRLAB_SMTP_HOST")
        await expect(how).to_contain_text("PAIRLAB_SMTP_FROM")
        await expect(page.locator("#email-link")).to_have_count(0)


async def schedule_with_email(page: Page, demo: Product) -> str:
    await schedule_through_the_page(page, demo, TASK, CANDIDATE, email=CANDIDATE_EMAIL,
                                    interviewers=f"{INTERVIEWER}, {SECOND}")
    return page.url.split("?")[0]


async def test_send_the_link_by_email_open_it_reissue_it(
        second_demo: Product, smtp: Served, browser: Browser) -> None:
    async with browsing(browser, second_demo, "link-email") as people:
        page = await people.as_user(INTERVIEWER, "interviewer")
        session_url = await schedule_with_email(page, second_demo)
        link = await page.locator("#candidate-link").input_value()
        await expect(page.locator("#mail-to")).to_have_value(CANDIDATE_EMAIL)
        before = len(smtp.inbox.received)

        await page.click("#email-link")
        await page.wait_for_url("**?mailed=1*", timeout=WAIT_MS)
        await expect(page.locator("#mailed-notice")).to_contain_text(
            f"Sent to {CANDIDATE_EMAIL} at")
        await expect(page.locator("#mailed-notice time")).to_be_visible()
        assert await page.locator("#candidate-link").input_value() == link  # not re-issued

        assert len(smtp.inbox.received) == before + 1
        got = smtp.inbox.received[-1]
        assert got.rcpt_tos == [CANDIDATE_EMAIL]
        assert got.mail_from == "interviews@pairlab.example"
        assert got.message["Reply-To"] == INTERVIEWER
        emailed = [line.strip() for line in got.text.splitlines() if "/c/" in line]
        assert emailed == [link]
        assert f"Hello {CANDIDATE}," in got.text and "Demo Interviewer" in got.text

        candidate = await people.anonymous("candidate")
        await candidate.goto(emailed[0])
        await expect(candidate.locator("main")).to_contain_text(f"Hello {CANDIDATE}",
                                                                timeout=WAIT_MS)
        await expect(candidate.locator("#start")).to_be_visible()

        # The attack: the second interviewer of the session, who did not schedule it.
        second = await people.as_user(SECOND, "second-interviewer")
        await second.goto(session_url)
        await expect(second.locator("#link-held-by")).to_contain_text("who scheduled the session")
        assert await second.locator("#candidate-link, #email-link, #reissue-link").count() == 0
        assert emailed[0].rsplit("/", 1)[1] not in await second.content()
        csrf = await second.locator('input[name="csrf_token"]').first.input_value()
        for action in ("link", "link/email"):
            response = await second.request.post(
                f"{session_url}/{action}", form={"csrf_token": csrf, "to": "me@evil.example"},
                max_redirects=0)
            assert response.status == 403, action
        assert len(smtp.inbox.received) == before + 1

        # The scheduler re-issues: the emailed link now says it was replaced.
        page.once("dialog", lambda dialog: dialog.accept())
        await page.click("#reissue-link")
        await page.wait_for_url("**?link=new*", timeout=WAIT_MS)
        assert await page.locator("#candidate-link").input_value() != link
        late = await people.anonymous("late-candidate")
        response = await late.goto(emailed[0])
        assert response is not None and response.status == 410
        await expect(late.locator("h1")).to_have_text("This link was replaced")
