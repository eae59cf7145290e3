"""Every pairlab page passes axe-core and works by keyboard, on the demo README command 1 starts.

The other journeys audit each page they load (``tests/journeys/a11y.py`` through
``browsing``); this one makes sure no page is missed: it walks every page of the app as the
demo's admin and interviewer see it with the demo's data (the 24 past interviews give the
session, observe, replay, scorecard and debrief pages something to show), the candidate's
landing page, the login page and the error pages, and audits each explicitly. Then it uses the
product by keyboard alone: logging in, moving through the top navigation with Tab (each link
showing where the focus is), and scheduling an interview from the Sessions form.
"""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Browser, Page, expect

from tests.journeys.a11y import assert_accessible
from tests.journeys.conftest import WAIT_MS, Product, browsing
from tests.journeys.test_admin import ADMIN, INTERVIEWER

pytestmark = [pytest.mark.journey, pytest.mark.integration, pytest.mark.browser,
              pytest.mark.timeout(900)]

ADMIN_PAGES = ("/", "/sessions", "/rubrics", "/outcomes", "/calibration", "/reports/validity",
               "/admin/tasks", "/admin/users", "/admin/tokens", "/admin/webhooks",
               "/admin/doctor")
SESSION_PAGES = ("", "/observe", "/replay", "/scorecard", "/debrief")


async def first_href(page: Page, selector: str) -> str:
    link = page.locator(selector).first
    await expect(link).to_be_attached(timeout=WAIT_MS)
    href = await link.get_attribute("href")
    assert href, selector
    return href


async def test_every_page_passes_axe(product: Product, browser: Browser) -> None:
    async with browsing(browser, product, "axe-pages") as people:
        admin = await people.as_user(ADMIN, "admin")
        for path in ADMIN_PAGES:
            await admin.goto(f"{product.app_url}{path}")
            await assert_accessible(admin, path)
        await admin.goto(f"{product.app_url}/rubrics")
        rubric = await first_href(admin, "a[href^='/rubrics/']")
        await admin.goto(f"{product.app_url}{rubric}")
        await assert_accessible(admin, "a rubric")
        await admin.goto(f"{product.app_url}/admin/tasks")
        revision = await first_href(admin, "a[href^='/admin/tasks/revisions/']")
        await admin.goto(f"{product.app_url}{revision}")
        await assert_accessible(admin, "a task revision")
        await admin.goto(f"{product.app_url}{revision}/reimport")
        await assert_accessible(admin, "the import form of a revision")

        # A past interview of the demo's, as the interviewer who ran it sees it.
        interviewer = await people.as_user(INTERVIEWER, "interviewer")
        await interviewer.goto(f"{product.app_url}/sessions")
        session = await first_href(
            interviewer, "tr:has(td:text-is('ended')) a[href^='/sessions/s_']")
        for suffix in SESSION_PAGES:
            await interviewer.goto(f"{product.app_url}{session}{suffix}")
            await assert_accessible(interviewer, f"a past session{suffix or ''}")

        visitor = await people.anonymous("visitor")
        await visitor.goto(f"{product.app_url}/login")
        await assert_accessible(visitor, "the login page")
        await visitor.goto(f"{product.app_url}/no-such-page")
        await assert_accessible(visitor, "the app's 404 page")
        await visitor.goto(product.candidate_link)
        await expect(visitor.locator("h1")).to_be_visible(timeout=WAIT_MS)
        await assert_accessible(visitor, "the candidate's landing page")
        await visitor.goto(f"{product.workspace_url}/c/not-a-real-link")
        await assert_accessible(visitor, "an invalid candidate link")


async def focused(page: Page) -> tuple[str, str]:
    """The focused element's text (or name) and whether its focus is drawn: its outline or box
    shadow as computed."""
    name, drawn = await page.evaluate("""() => {
        const el = document.activeElement;
        const style = getComputedStyle(el);
        const drawn = (style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0)
            || style.boxShadow !== 'none';
        const name = (el.innerText || el.name || el.id || el.tagName).trim();
        return [name, drawn ? 'drawn' : 'hidden'];
    }""")
    return str(name), str(drawn)


async def tab_to(page: Page, selector: str, limit: int = 40) -> None:
    """Press Tab until ``selector`` has the focus, as a keyboard user would."""
    target = page.locator(selector)
    for _ in range(limit):
        await page.keyboard.press("Tab")
        if await target.evaluate("el => el === document.activeElement"):
            return
    raise AssertionError(f"{selector} is not reachable by Tab within {limit} presses")


async def test_an_interviewer_works_by_keyboard_alone(product: Product,
                                                      browser: Browser) -> None:
    async with browsing(browser, product, "keyboard") as people:
        page = await people.anonymous("interviewer")
        await page.goto(f"{product.app_url}/login")
        await tab_to(page, "#email")
        await page.keyboard.type(INTERVIEWER)
        await tab_to(page, "#password")
        await page.keyboard.type(product.passwords[INTERVIEWER])
        await page.keyboard.press("Enter")
        await expect(page.locator("header.top .who")).to_be_visible(timeout=WAIT_MS)

        # The top navigation, link by link, each with its focus drawn.
        names = [n.strip() for n in await page.locator("header.top nav a").all_inner_texts()]
        assert "Sessions" in names, names
        seen: list[tuple[str, str]] = []
        await page.locator("body").focus()
        for _ in range(len(names) + 3):
            await page.keyboard.press("Tab")
            seen.append(await focused(page))
        for name in names:
            assert (name, "drawn") in seen, (name, seen)

        # Schedule an interview from the Sessions form without the mouse.
        await page.goto(f"{product.app_url}/sessions")
        await tab_to(page, "#task")
        await page.keyboard.press("ArrowDown")
        await tab_to(page, "#candidate_name")
        await page.keyboard.type("Kay Board")
        await page.keyboard.press("Enter")
        await expect(page.locator("#candidate-link")).to_be_visible(timeout=WAIT_MS)
        assert re.match(r"https?://", (await page.locator("#candidate-link").input_value()).strip())
