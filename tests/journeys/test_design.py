"""Journey: the pages' design on the real demo.

The admin imports a task through the page (a repository served over loopback git whose rules
keep one word, replace another, and leave a company name in a log, so every part of the review
has something to say). Its revision page opens with a summary whose links jump to their
sections, and each file's diff is folded away, so the page is short. The pages pass axe-core in
the dark colour scheme too; at 700 px wide (a laptop's split screen) the Sessions page and the
revision page scroll only down, never sideways; an unknown address gives the styled "Page not
found" page whose link leads elsewhere (to log in for a visitor, home for a logged-in person).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from tests.journeys.a11y import assert_accessible, luminance
from tests.journeys.conftest import WAIT_MS, Product, browsing
from tests.journeys.test_admin import ADMIN, import_with_rules, served, unique_id
from tests.journeys.test_review_exceptions import RULES, review_files

pytestmark = [pytest.mark.journey, pytest.mark.integration, pytest.mark.browser,
              pytest.mark.timeout(1500)]

MAX_REVISION_HEIGHT_PX = 3000
"""This task's revision page was 3,612 px tall (1400 px wide) before the summary and the folded
diffs, 2,720 px after: its sections are many and its diffs small."""
BUILTIN_REVISION = "churn-eval-extend-r1"
MAX_BUILTIN_HEIGHT_PX = 2600
"""The demo's built-in churn task's revision page: 5,829 px tall before, 2,013 px after."""
SUMMARY_LINKS = ("#can-publish", "#post-scan", "#flagged-files", "#possible-identifiers",
                 "#kept-words", "#replacements-title", "#diff-title", "#checks-title")


async def height(page: Page) -> int:
    value: int = await page.evaluate("document.documentElement.scrollHeight")
    return value


async def sideways_overflow(page: Page) -> int:
    """How many CSS pixels the page scrolls sideways (0: it does not)."""
    value: int = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth")
    return value


async def too_wide(page: Page) -> list[str]:
    """The innermost elements that reach past the window's right edge (for the failure)."""
    found: list[str] = await page.evaluate("""() => [...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > document.documentElement.clientWidth
                     && ![...e.children].some(c => c.getBoundingClientRect().right
                                                   > document.documentElement.clientWidth))
        .slice(0, 8).map(e => e.tagName + '.' + e.className + ' ' + e.textContent.slice(0, 40))""")
    return found


async def test_the_review_starts_with_a_summary_and_pages_hold_in_dark_and_narrow(
        product: Product, browser: Browser, tmp_path: Path) -> None:
    task_id = unique_id("design-summary")
    async with browsing(browser, product, "design") as people:
        admin = await people.as_user(ADMIN, "admin")
        with served(tmp_path, {task_id: review_files(task_id)}) as urls:
            rev_id = await import_with_rules(admin, product, urls[task_id], RULES)
        revision_url = f"{product.app_url}/admin/tasks/revisions/{rev_id}"

        # The summary comes first, before any section, and says what each section holds.
        summary = admin.locator("#summary")
        await expect(summary).to_be_in_viewport()
        first_h2 = await admin.locator("main h2").first.get_attribute("id")
        assert first_h2 == "summary-title", first_h2
        await expect(admin.locator("#summary-publishable")).to_contain_text("No: ")
        await expect(admin.locator("#summary-findings")).to_have_text(
            re.compile(r"^0 accepted, [1-9]\d* left$"))
        await expect(admin.locator("#summary-flags")).to_have_text(
            re.compile(r"^[1-9]\d*, not acknowledged$"))
        await expect(admin.locator("#summary-kept")).to_have_text("1 (1 stops a rewrite)")
        await expect(admin.locator("#summary-identifiers")).to_have_text(re.compile(r"^[1-9]"))
        await expect(admin.locator("#summary-replacements")).to_have_text(
            re.compile(r"^[1-9]\d* in [1-9]\d* files?$"))
        await expect(admin.locator("#summary-checks")).to_contain_text("visible: passed")
        # Its counts agree with the sections they summarise.
        left = await admin.locator("#findings tr.finding").count()
        await expect(admin.locator("#summary-findings")).to_have_text(f"0 accepted, {left} left")

        # Every link jumps to its section: the address names it and it is on screen.
        for anchor in SUMMARY_LINKS:
            await admin.locator(f'#summary a[href="{anchor}"]').click()
            await expect(admin).to_have_url(re.compile(re.escape(anchor) + "$"))
            await expect(admin.locator(anchor)).to_be_in_viewport()
            await admin.evaluate("window.scrollTo(0, 0)")
        await admin.locator('#summary a[href="#check-visible"]').click()
        await expect(admin.locator("#check-visible")).to_be_in_viewport()

        # Short: each file's diff is folded away until opened.
        tall = await height(admin)
        print(f"revision page: {tall} px tall at 1400 px wide")
        assert tall <= MAX_REVISION_HEIGHT_PX, tall
        method = admin.locator('.difffile[data-path="docs/method.md"]')
        await expect(method.locator("table.sxs")).to_be_hidden()
        await method.locator("summary").click()
        await expect(method.locator("table.sxs")).to_be_visible()
        await expect(method.locator("table.sxs")).to_contain_text("Northwind's own order numbers")

        # The demo's own task, whose diffs are long, is short too.
        builtin_url = f"{product.app_url}/admin/tasks/revisions/{BUILTIN_REVISION}"
        await admin.goto(builtin_url)
        await expect(admin.locator("#summary-publishable")).to_have_text("Yes")
        tall = await height(admin)
        print(f"{BUILTIN_REVISION}: {tall} px tall at 1400 px wide")
        assert tall <= MAX_BUILTIN_HEIGHT_PX, tall

        # A laptop's split screen: the page scrolls down, never sideways.
        await admin.set_viewport_size({"width": 700, "height": 900})
        for url in (revision_url, builtin_url, f"{product.app_url}/sessions",
                    f"{product.app_url}/admin/webhooks"):
            await admin.goto(url)
            assert await sideways_overflow(admin) == 0, (url, await too_wide(admin))
        nav = admin.locator("header.top nav")
        nav_box = await nav.bounding_box()
        assert nav_box is not None and nav_box["x"] + nav_box["width"] <= 700, nav_box
        await admin.set_viewport_size({"width": 1400, "height": 900})

        # Dark: the same pages pass axe with the system's dark scheme.
        await admin.emulate_media(color_scheme="dark")
        for path in ("/", "/sessions", "/admin/tasks", f"/admin/tasks/revisions/{rev_id}",
                     "/rubrics", "/admin/users", "/no/such/page"):
            await admin.goto(f"{product.app_url}{path}")
            await assert_accessible(admin, path, scheme="dark")
        background = await admin.evaluate("getComputedStyle(document.body).backgroundColor")
        assert luminance(background) < 0.05, background  # dark, not merely not the light one
        await admin.emulate_media(color_scheme="light")

        # An unknown address: the styled page, a sentence, and a way out that is not here.
        response = await admin.goto(f"{product.app_url}/admin/nothing-here")
        assert response is not None and response.status == 404
        await expect(admin.locator("h1")).to_have_text("Page not found")
        await expect(admin.locator("p.error")).to_contain_text("nothing at this address")
        await expect(admin.locator("header.top .brand")).to_be_visible()
        forward = admin.locator("#way-forward")
        await expect(forward).to_have_text("Go to your home page")
        await forward.click()
        await admin.wait_for_url(f"{product.app_url}/", timeout=WAIT_MS)
        await expect(admin.locator("header.top .who")).to_be_visible()

        visitor = await people.anonymous("visitor")
        await visitor.emulate_media(color_scheme="dark")
        response = await visitor.goto(f"{product.app_url}/no/such/page")
        assert response is not None and response.status == 404
        await expect(visitor.locator("h1")).to_have_text("Page not found")
        await visitor.locator("#way-forward").click()
        await visitor.wait_for_url(re.compile(r"/login$"), timeout=WAIT_MS)
        await expect(visitor.locator("#email")).to_be_visible()
