"""Journeys: the product started the way its README says, used in a real browser.

``product`` runs README command 1's server step, ``pairlab demo`` (the console script that
``scripts/demo`` runs after installing), as a subprocess from a fresh temporary folder with the
default relative data dir (``./var``), the caller's own environment (as a shell would pass it)
and nothing prepared by the test: the demo imports and publishes the built-in tasks and builds
their environments itself. Only the two ports are chosen free (the defaults may be taken on a
developer's machine) and loopback git over plain HTTP is allowed for the admin's import, as an
operator with an internal git server would configure it. Its printed links and passwords are
what the journeys use, in headless Chromium driven by Playwright.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    Locator,
    Page,
    async_playwright,
    expect,
)

from tests.journeys.a11y import Audits
from tests.smtp_server import Served, smtp_server_in_a_thread

PAIRLAB = Path(sys.executable).parent / "pairlab"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]
START_TIMEOUT_S = 900.0
"""The first start builds the task environments (uv, from the package index)."""
WAIT_MS = 120_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Product:
    folder: Path
    """Where ``pairlab demo`` was started (its data dir is ``folder/var``)."""
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path
    env: dict[str, str]
    app_url: str = ""
    workspace_url: str = ""
    passwords: dict[str, str] = field(default_factory=dict)
    candidate_link: str = ""
    interviewer_page: str = ""

    @property
    def data_dir(self) -> Path:
        return self.folder / "var"

    def log(self) -> str:
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Another ``pairlab`` command in the same folder, as the operator would type it."""
        return subprocess.run([str(PAIRLAB), *args], cwd=self.folder, env=self.env,
                              capture_output=True, text=True, timeout=timeout, check=False)


def _parse(product: Product, text: str) -> None:
    for line in text.splitlines():
        if m := re.match(r"\s+(admin|interviewer)\s+(\S+)\s+(\S+@\S+)\s+password: (\S+)", line):
            product.passwords[m.group(3)] = m.group(4)
        elif m := re.match(r"\s+Log in at:\s+(\S+)/login", line):
            product.app_url = m.group(1)
        elif m := re.match(r"\s+Workspace origin:\s+(\S+)", line):
            product.workspace_url = m.group(1)
        elif m := re.match(r"\s+candidate link:\s+(\S+)", line):
            product.candidate_link = m.group(1)
        elif m := re.match(r"\s+interviewer page:\s+(\S+)", line):
            product.interviewer_page = m.group(1)


def demo_env() -> dict[str, str]:
    """The caller's environment as a shell would pass it, with no ``PAIRLAB_`` setting but a
    developer's own uid block, two free ports and loopback git over HTTP allowed."""
    env = {k: v for k, v in os.environ.items()  # a developer's own uid block is kept
           if not k.startswith("PAIRLAB_") or k == "PAIRLAB_SANDBOX_UID_BASE"}
    env.update({"PAIRLAB_PORT": str(free_port()), "PAIRLAB_WORKSPACE_PORT": str(free_port()),
                "PAIRLAB_GIT_ALLOWED_HOSTS": "127.0.0.1", "PAIRLAB_GIT_ALLOW_HTTP": "true"})
    return env


_BLOCKS = itertools.count(1)


def another_block(env: dict[str, str]) -> dict[str, str]:
    """``env`` with a block of sandbox uids of its own, for a demo that runs while ``product``
    does: two pairlabs on one host may not share uids (the second is refused at start). A demo
    takes 1064 uids; the blocks are 42000, 44000, ... (below the recording tests' 52000), or
    from ``$PAIRLAB_SANDBOX_UID_BASE`` + 12000 when a developer set it (past the recording
    tests' offsets from it)."""
    given = os.environ.get("PAIRLAB_SANDBOX_UID_BASE")
    first = int(given) + 10_000 if given else 40_000
    return {**env, "PAIRLAB_SANDBOX_UID_BASE": str(first + 2000 * next(_BLOCKS))}


def start_demo(folder: Path, env: dict[str, str] | None = None) -> Product:
    """``pairlab demo`` started in ``folder``; returns once it printed the candidate link."""
    if env is None:
        env = demo_env()
    stdout, stderr = folder / "demo.out", folder / "demo.err"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen([str(PAIRLAB), "demo"], cwd=folder, env=env, stdout=out,
                                   stderr=err, start_new_session=True)
    product = Product(folder, process, stdout, stderr, env)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while "candidate link:" not in stdout.read_text(errors="replace"):
            if process.poll() is not None:
                pytest.fail(f"pairlab demo exited with {process.returncode}:\n{product.log()}")
            if time.monotonic() > deadline:
                pytest.fail(f"pairlab demo printed no candidate link in {START_TIMEOUT_S:.0f} s:"
                            f"\n{product.log()[-4000:]}")
            time.sleep(0.5)  # a subprocess's output file: nothing to await
        time.sleep(0.5)  # the announcement is printed in one write; let it land whole
        _parse(product, stdout.read_text(errors="replace"))
    except BaseException:
        stop_demo(product)
        raise
    return product


def stop_demo(product: Product) -> int:
    """Ctrl-C, as the operator stops it; returns its exit code."""
    process = product.process
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return process.returncode


@pytest.fixture(scope="session")
def product(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Product]:
    product = start_demo(tmp_path_factory.mktemp("journey"))
    try:
        yield product
    finally:
        stop_demo(product)


@pytest.fixture(scope="session")
def smtp() -> Iterator[Served]:
    """A real SMTP server (aiosmtpd) on loopback, the second demo's mail relay."""
    with smtp_server_in_a_thread() as served:
        yield served


@pytest.fixture(scope="session")
def second_demo(product: Product, smtp: Served,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[Product]:
    """A second ``pairlab demo``, started as the first, with the settings an operator of a small
    host with a plain local mail relay would give: SMTP to ``smtp`` (no TLS on loopback), one
    cold start at a time (``PAIRLAB_MAX_PARALLEL_STARTS=1``) and no warm pool. One demo for the
    journeys that need such settings (each demo start costs a minute of CI)."""
    env = {**product.env, "PAIRLAB_PORT": str(free_port()),
           "PAIRLAB_WORKSPACE_PORT": str(free_port()), "PAIRLAB_SMTP_HOST": "127.0.0.1",
           "PAIRLAB_SMTP_PORT": str(smtp.port), "PAIRLAB_SMTP_FROM": "interviews@pairlab.example",
           "PAIRLAB_SMTP_STARTTLS": "false", "PAIRLAB_MAX_PARALLEL_STARTS": "1",
           "PAIRLAB_WARM_POOL_SIZE": "0"}
    demo = start_demo(tmp_path_factory.mktemp("journey-second"), another_block(env))
    try:
        yield demo
    finally:
        stop_demo(demo)


def db_rows(product: Product, sql: str, *args: object) -> list[sqlite3.Row]:
    """Rows of the product's own SQLite file, opened read-only with plain sqlite3 (nothing of
    pairlab in between): what the product stored, not what its pages say."""
    conn = sqlite3.connect(f"file:{product.data_dir / 'pairlab.db'}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


async def logged_in(browser: Browser, product: Product, email: str,
                    timezone_id: str | None = None) -> tuple[BrowserContext, Page]:
    """A browser context of its own (in ``timezone_id``, else the machine's zone), logged in
    through the login form with the password the demo printed."""
    context = await browser.new_context(viewport={"width": 1400, "height": 900},
                                        timezone_id=timezone_id)
    page = await context.new_page()
    await page.goto(f"{product.app_url}/login")
    await page.fill("#email", email)
    await page.fill("#password", product.passwords[email])
    await page.click("button[type=submit]")
    await expect(page.locator("header.top .who")).to_be_visible(timeout=WAIT_MS)
    return context, page


class Browsing:
    """The browser contexts one journey opens, each person in a context of their own. Every page
    it names is audited with axe-core each time it loads (``tests/journeys/a11y.py``: the
    journey fails at its end on a serious or critical violation) and screenshotted if the
    journey fails; every context is closed at the end."""

    def __init__(self, browser: Browser, product: Product, name: str) -> None:
        self.browser = browser
        self.product = product
        self.name = name
        self.contexts: list[BrowserContext] = []
        self.pages: dict[str, Page] = {}
        self.audits = Audits()

    def keep(self, name: str, page: Page) -> Page:
        self.pages[name] = page
        self.audits.watch(page)
        return page

    async def as_user(self, email: str, name: str, timezone_id: str | None = None) -> Page:
        """A person who logs in with the password the demo printed (their browser in
        ``timezone_id``, else the machine's zone)."""
        context, page = await logged_in(self.browser, self.product, email, timezone_id)
        self.contexts.append(context)
        return self.keep(name, page)

    async def anonymous(self, name: str) -> Page:
        """A person with no account (a candidate with their link)."""
        context = await self.browser.new_context(viewport={"width": 1400, "height": 900})
        self.contexts.append(context)
        return self.keep(name, await context.new_page())

    async def another_tab(self, of: Page, name: str) -> Page:
        """A second tab of the same person."""
        return self.keep(name, await of.context.new_page())


@asynccontextmanager
async def browsing(browser: Browser, product: Product, name: str) -> AsyncIterator[Browsing]:
    session = Browsing(browser, product, name)
    try:
        yield session
        await session.audits.finish()
    except BaseException:
        for page_name, page in session.pages.items():
            await shot(page, f"{name}-{page_name}")
        raise
    finally:
        for context in session.contexts:
            await context.close()


# ---- what an interviewer does on the pages ----------------------------------------------------


async def schedule_through_the_page(page: Page, product: Product, task_id: str,
                                    candidate: str, *, email: str = "",
                                    interviewers: str = "", starts_local: str = "",
                                    minutes: int | None = None) -> str:
    """Schedule a session on the Sessions page (now, or at ``starts_local``: the picker's
    ``YYYY-MM-DDTHH:MM`` in the browser's zone); returns the candidate link that the session's
    own page (where the form redirects) shows. ``#session-link`` is that page's."""
    await page.goto(f"{product.app_url}/sessions")
    await page.select_option("#task", task_id)
    await page.fill("#candidate_name", candidate)
    for selector, value in (("#candidate_email", email), ("#interviewers", interviewers),
                         ("#starts_local", starts_local),
                         ("#duration_minutes", "" if minutes is None else str(minutes))):
        if value:
            await page.fill(selector, value)
    await page.click('form[action="/sessions"] button[type=submit]')
    link = page.locator("#candidate-link")
    await expect(link).to_be_visible(timeout=WAIT_MS)
    return (await link.input_value()).strip()


async def observe_scheduled(page: Page) -> str:
    """From the page scheduling led to, the session's own page, then its observe page once the
    live stream is up; returns the session page's URL."""
    await page.click("#session-link")
    await page.wait_for_url(re.compile(r"/sessions/s_\w+$"), timeout=WAIT_MS)
    session_url = page.url
    await page.goto(f"{session_url}/observe")
    await expect(page.locator("#pl-stream")).to_have_text("live", timeout=WAIT_MS)
    return session_url


async def start_workspace(page: Page, link: str) -> str:
    """The candidate opens ``link`` and presses Start; once JupyterLab shows, its ``…/lab``
    address (on the workspace's own host)."""
    await page.goto(link)
    await page.click("#start")
    await page.wait_for_url("**/lab**", timeout=WAIT_MS, wait_until="commit")
    await expect(page.locator("#jp-main-dock-panel")).to_be_visible(timeout=WAIT_MS)
    return page.url.split("/lab", 1)[0] + "/lab"


async def timeline_has(observe: Page, kind: str, text: str) -> Locator:
    """The observe (or replay) page's timeline shows an event of ``kind`` saying ``text``."""
    item = observe.locator(f'#pl-timeline li[data-kind="{kind}"]', has_text=text).first
    await expect(item).to_be_visible(timeout=WAIT_MS)
    return item


async def submit_scorecard(card: Page, session_url: str, evidence: str, summary: str) -> None:
    """Level 3 on every dimension with the same evidence, "yes", and submit (which opens the
    debrief)."""
    await card.goto(f"{session_url}/scorecard")
    dimensions = card.locator("fieldset.dimension")
    for i in range(await dimensions.count()):
        fieldset = dimensions.nth(i)
        await fieldset.locator('input[type=radio][value="3"]').check()
        await fieldset.locator("textarea").fill(evidence)
    await card.locator('input[name=recommendation][value="yes"]').check()
    await card.fill("#summary", summary)
    await card.click("#submit-scorecard")
    await card.wait_for_url("**/debrief", timeout=WAIT_MS)


async def end_session(observe: Page) -> None:
    """End the session from the observe page, confirming the browser's dialog."""
    observe.once("dialog", lambda dialog: dialog.accept())
    await observe.click("#pl-end")
    await expect(observe.locator("#pl-state")).to_have_text("ended", timeout=WAIT_MS)


async def hidden_checks_on_the_debrief(debrief: Page, session_url: str) -> str:
    """The debrief's hidden-check line once the checks have run (they run after the end):
    reloaded every two seconds, for at most two minutes."""
    line = debrief.locator("#hidden-checks")
    for _ in range(60):
        await debrief.goto(f"{session_url}/debrief")
        text = await line.inner_text()
        if "Not run yet" not in text:
            return text
        await debrief.wait_for_timeout(2000)  # a reload's pace, not a readiness wait
    raise AssertionError(f"the hidden checks did not run within two minutes: {text}")


async def shot(page: Page, name: str) -> None:
    """A screenshot next to the failure, for whoever reads the CI log."""
    path = Path(os.environ.get("PAIRLAB_JOURNEY_SHOTS", "/tmp")) / f"pairlab-journey-{name}.png"
    try:
        await page.screenshot(path=str(path), full_page=True)
    except Exception as exc:  # the page may be gone: the failure itself is what matters
        print(f"no screenshot {path}: {exc}")
    else:
        print(f"screenshot: {path}")


DOCS_SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
WRITE_SCREENSHOTS = "PAIRLAB_WRITE_SCREENSHOTS"
"""Set to 1 to refresh the README's pictures in ``docs/screenshots`` (tracked files)."""
_SHOTS: dict[str, Path] = {}


@pytest.fixture(scope="session", autouse=True)
def screenshots_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where ``document`` writes: ``docs/screenshots`` only when asked (``WRITE_SCREENSHOTS``),
    else the run's own temporary folder, so a run never changes tracked files."""
    asked = os.environ.get(WRITE_SCREENSHOTS) == "1"
    _SHOTS["folder"] = DOCS_SHOTS if asked else tmp_path_factory.mktemp("screenshots")
    return _SHOTS["folder"]


async def document(page: Page, name: str) -> Path:
    """The README's picture of this page (``<name>.png``), taken by the journey that reaches
    it, so the pictures show the product as it is now (into ``docs/screenshots`` with
    ``PAIRLAB_WRITE_SCREENSHOTS=1``; otherwise the step still runs, into a temporary folder)."""
    folder = _SHOTS.get("folder") or Path(tempfile.mkdtemp(prefix="pairlab-screenshots-"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    await page.screenshot(path=str(path))
    assert path.stat().st_size > 0, path
    return path
