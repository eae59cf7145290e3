"""axe-core on every page the journeys load: no serious or critical violation.

Each page a journey opens through :class:`tests.journeys.conftest.Browsing` is audited with
axe-core (the copy bundled by ``axe-playwright-python``) each time it finishes loading; the
journey fails at its end, listing the page, the rule and the elements, if any audit found a
violation of impact "serious" or "critical" (minor and moderate ones are printed, not failed).

Not audited: JupyterLab's own interface inside a workspace (it is JupyterLab's markup, not
pairlab's; recognised by its ``jupyter-config-data`` script), and a page that navigated away or
closed while its audit ran (the next load of a page is audited again). pairlab's own markup
inside JupyterLab (its side panel, which appears after the page's load) is audited by the
journey that shows it, with :meth:`Audits.audit_part`.
"""

from __future__ import annotations

import asyncio
import re
import weakref
from dataclasses import dataclass
from typing import Any

from axe_playwright_python.async_playwright import Axe  # type: ignore[import-untyped]
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page

FAILING = frozenset({"serious", "critical"})
_AXE = Axe()
# One audit at a time per page: axe refuses to run while it runs ("Axe is already running").
_LOCKS: weakref.WeakKeyDictionary[Page, asyncio.Lock] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Violation:
    url: str
    rule: str
    impact: str
    help: str
    targets: tuple[str, ...]

    def __str__(self) -> str:
        shown = ", ".join(self.targets[:5]) + (" …" if len(self.targets) > 5 else "")
        return f"{self.url}: {self.rule} ({self.impact}) {self.help} [{shown}]"


def violations_of(url: str, response: dict[str, Any]) -> list[Violation]:
    return [Violation(url, v["id"], str(v.get("impact")), v["help"],
                      tuple(" ".join(map(str, n["target"])) for n in v["nodes"]))
            for v in response["violations"]]


async def audit(page: Page) -> list[Violation] | None:
    """Every axe violation on ``page`` now; ``None`` when it is JupyterLab's own interface or
    the page went away during the audit."""
    lock = _LOCKS.setdefault(page, asyncio.Lock())
    try:
        async with lock:
            if await page.locator("script#jupyter-config-data").count():
                return None
            url = page.url
            result = await _AXE.run(page)
    except PlaywrightError:
        return None  # navigated away or closed during the audit
    return violations_of(url, result.response)


async def audit_part(page: Page, selector: str) -> list[Violation]:
    """Every axe violation inside the elements ``selector`` matches (axe's ``include``)."""
    lock = _LOCKS.setdefault(page, asyncio.Lock())
    async with lock:
        url = page.url
        result = await _AXE.run(page, context={"include": [[selector]]})
    return violations_of(f"{url} {selector}", result.response)


def luminance(css: str) -> float:
    """Relative luminance (WCAG) of a computed colour, ``rgb(r, g, b)``: under 0.05 is dark."""
    values = [int(v) / 255 for v in re.findall(r"\d+", css)[:3]]
    linear = [v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4 for v in values]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


async def assert_accessible(page: Page, what: str, scheme: str | None = None) -> None:
    """Audit ``page`` now and fail on a serious or critical violation (naming ``what``); with
    ``scheme`` (``"dark"``, ``"light"``), first that the page is seen in that colour scheme."""
    if scheme is not None:
        matches = await page.evaluate(f"matchMedia('(prefers-color-scheme: {scheme})').matches")
        assert matches, f"{what}: the page is not in the {scheme} colour scheme"
        what = f"{what} ({scheme} scheme)"
    found = await audit(page)
    assert found is not None, f"{what}: the page could not be audited ({page.url})"
    failing = [str(v) for v in found if v.impact in FAILING]
    assert not failing, f"{what}:\n  " + "\n  ".join(failing)


class Audits:
    """The audits of every page of one journey."""

    def __init__(self) -> None:
        self.pending: set[asyncio.Task[None]] = set()
        self.found: list[Violation] = []
        self.audited: list[str] = []

    def watch(self, page: Page) -> None:
        page.on("load", self._loaded)

    def _loaded(self, page: Page) -> None:
        task = asyncio.get_running_loop().create_task(self._audit(page))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def _audit(self, page: Page) -> None:
        found = await audit(page)
        if found is not None:
            self.audited.append(page.url)
            self.found.extend(found)

    async def audit_part(self, page: Page, selector: str) -> None:
        """Audit one part of a page now (pairlab's markup inside JupyterLab); its violations
        count at :meth:`finish` like a whole page's."""
        found = await audit_part(page, selector)
        self.audited.append(f"{page.url} {selector}")
        self.found.extend(found)

    async def finish(self) -> None:
        """Wait for the audits under way; fail on a serious or critical violation."""
        while self.pending:
            await asyncio.gather(*self.pending, return_exceptions=True)
        print(f"axe: {len(self.audited)} page loads audited")
        for minor in (v for v in self.found if v.impact not in FAILING):
            print(f"axe (not failing): {minor}")
        failing = sorted({str(v) for v in self.found if v.impact in FAILING})
        assert not failing, ("axe-core found serious or critical violations:\n  "
                             + "\n  ".join(failing))
