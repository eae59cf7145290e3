"""Headless Chromium for the page tests (the ``browsing`` fixture is exposed from
tests/conftest.py): a browser, its console and page errors, logging in through the form, and
hostile candidate content with the check that a page shows it inert. The app it visits is
tests/harness.py's ``live`` (the real app on loopback ports, one live recording session)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page, async_playwright

from tests.conftest import PASSWORD
from tests.harness import LEAD, Live
from workspaces.recording import events as E

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


# ---- the browser ----------------------------------------------------------------------------


@dataclass
class Browsing:
    browser: Browser
    context: BrowserContext
    page: Page
    console: list[str]
    page_errors: list[str]

    def csp_violations(self) -> list[str]:
        return [m for m in self.console if "Content Security Policy" in m]


@pytest.fixture
async def browsing() -> AsyncIterator[Browsing]:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = await browser.new_context(viewport={"width": 1366, "height": 900})
        page = await context.new_page()
        console: list[str] = []
        errors: list[str] = []

        def on_console(message: ConsoleMessage) -> None:
            console.append(f"{message.type}: {message.text}")

        page.on("console", on_console)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            yield Browsing(browser, context, page, console, errors)
        finally:
            await context.close()
            await browser.close()


async def login_in_browser(page: Page, base: str, target: str, email: str = LEAD) -> None:
    """Log in through the login form and land on ``target``."""
    await page.goto(f"{base}/login?next={target}")
    await page.fill("#email", email)
    await page.fill("#password", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}{target}")


# ---- hostile candidate content ----------------------------------------------------------------

HOSTILE_NAME = '"><img src=x onerror="window.__pwned=1">.py'
HOSTILE_HTML = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
ANSI = ("\x1b[31mred\x1b[0m \x1b]0;evil title\x07\x1b]8;;https://evil.invalid\x07click"
        "\x1b]8;;\x07 \x1bP+q\x1b\\done\r\n")


async def record_hostile(live: Live) -> int:
    """Events and a snapshot full of markup and terminal escapes, as a candidate could make."""
    await live.write({HOSTILE_NAME: HOSTILE_HTML + "\n" + ANSI,
                      "x<script>window.__pwned=3</script>.py": HOSTILE_HTML})
    await live.record(E.CELL_EXECUTED, "<b>nb</b>.ipynb", code=HOSTILE_HTML, execution_count=1,
                      status="error", output=HOSTILE_HTML + "\n" + ANSI,
                      mimetypes=["text/html", "text/plain"], kernel_id="k1",
                      error={"ename": "<b>Err</b>", "evalue": ANSI, "traceback": ANSI})
    await live.record(E.TERMINAL_COMMAND, line="echo " + ANSI, output=ANSI + HOSTILE_HTML)
    await live.record(E.TESTS_RUN, passed=0, failed=1, summary=HOSTILE_HTML)
    await live.record(E.CHECKS_RUN, actor=E.ACTOR_SYSTEM, status="failed", passed=0, failed=1,
                      checks=[{"name": HOSTILE_HTML, "status": "failed",
                               "output": ANSI + HOSTILE_HTML}])
    return await live.record(E.FILE_RENAMED, HOSTILE_NAME + ".bak", old_path=HOSTILE_HTML)


async def assert_inert(page: Page, browsing: Browsing, root: str) -> None:
    """Nothing in ``root`` was built from candidate markup; it shows as text, escapes removed."""
    found = await page.evaluate(
        """root => ({
          made: document.querySelectorAll(
            `${root} img, ${root} script, ${root} iframe, ${root} object, ${root} embed,
             ${root} svg, ${root} a[href*="evil"], ${root} b`).length,
          inlineScripts: [...document.scripts].filter(
            s => !s.src && s.type !== "application/json").length,
          pwned: typeof window.__pwned,
          text: document.querySelector(root).textContent,
          title: document.title,
        })""", root)
    assert found["made"] == 0
    assert found["inlineScripts"] == 0
    assert found["pwned"] == "undefined"
    text = found["text"]
    assert HOSTILE_HTML in text
    assert HOSTILE_NAME in text
    assert "<b>Err</b>" in text
    assert "red" in text and "click" in text and "done" in text
    assert "\x1b" not in text and "\x07" not in text and "\r" not in text
    assert "evil title" not in text and "evil.invalid" not in text and "+q" not in text
    assert found["title"].endswith("· pairlab")
    assert browsing.csp_violations() == []
    assert browsing.page_errors == []
