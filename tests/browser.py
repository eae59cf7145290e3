"""Headless Chromium for the page tests (fixtures exposed from tests/conftest.py).

The real app and its workspace origin listen on loopback ports (``AppRunner`` over sockets bound
to port 0 on 127.0.0.1, so the settings know the real ports), with the fake provisioner and a
published fake task. A session is scheduled and started through the JSON API, so the recording
service (``server.recording.service``) records it as it would any session: lifecycle events, a
history repository, a watcher on the workspace folder and debounced snapshots. Tests add what the
candidate does either as real files in the workspace (the watcher and snapshots pick them up)
or as events recorded through the service (cell runs, terminal commands, test runs).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page, async_playwright

from server.app import create_app
from server.http.keys import DB
from server.recording.service import RECORDING, RecordingService
from server.sessions.wiring import WORKSPACE_APP
from server.settings import Settings
from tests.conftest import PASSWORD, MakeSettings, create_user
from tests.fake_workspace import FakeProvisioner
from tests.fixture_tasks import SHARED_ENVS, publish_fake_task
from workspaces import events as E
from workspaces import sessions as S

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
LEAD = "lead@example.com"
OTHER = "other@example.com"
WAIT_S = 15.0


def _loopback_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock


@dataclass
class Served:
    """The app serving on loopback (both origins) with its fake provisioner."""

    settings: Settings
    app: web.Application
    runner: web.AppRunner
    provisioner: FakeProvisioner


@dataclass
class Live:
    """The running app, one live session, and helpers to act as its candidate."""

    app: web.Application
    runner: web.AppRunner
    url: str
    session_id: str
    workspace: Path

    @property
    def service(self) -> RecordingService:
        return self.app[RECORDING]

    async def record(self, kind: str, path: str = "", actor: str = E.ACTOR_CANDIDATE,
                     at: datetime | None = None, **payload: Any) -> int:
        """Record one event through the recording service; returns its seq once stored."""
        stored = await self.service.record_stored(E.Event(
            self.session_id, actor, kind, path, payload, at or datetime.now(UTC)))
        return stored.seq

    async def last_seq(self) -> int:
        return await self.app[DB].read(lambda d: E.last_seq(d, self.session_id))

    async def snapshots(self) -> list[tuple[int, str]]:
        rows = await self.app[DB].read(lambda d: d.execute(
            "SELECT seq, commit_sha FROM snapshots WHERE session_id = ? ORDER BY seq",
            [self.session_id]).fetchall())
        return [(row[0], row[1]) for row in rows]

    async def wait_for_snapshot(self, after: int) -> int:
        """The seq of the first snapshot the service records after event ``after``."""
        async with asyncio.timeout(WAIT_S):
            while True:
                later = [seq for seq, _ in await self.snapshots() if seq > after]
                if later:
                    return later[0]
                await asyncio.sleep(0.05)

    async def write(self, files: dict[str, str]) -> int:
        """Write files into the workspace as the candidate would; returns the seq of the
        snapshot that holds them (the watcher and the debounced snapshot are the real ones)."""
        before = await self.last_seq()
        for name, text in files.items():
            target = self.workspace / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        return await self.wait_for_snapshot(before)

    def cut_streams(self) -> int:
        """Close every open client connection from the server side (as a restart would)."""
        server = self.runner.server
        assert server is not None
        count = 0
        for handler in list(server.connections):
            transport = handler.transport
            if transport is not None:
                transport.close()
                count += 1
        return count


async def _wait_until_recording(app: web.Application, session_id: str) -> None:
    """The session is live and its history has the task's start (snapshot at seq 0)."""
    async with asyncio.timeout(WAIT_S):
        while not await app[DB].read(lambda d: E.snapshot_at(d, session_id, 0)):
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def serving(make_settings: MakeSettings, tmp_path: Path,
                  prepare: Callable[[Settings], None]) -> AsyncIterator[Served]:
    """The real app and its workspace origin on loopback ports, with the fake provisioner.
    ``prepare(settings)`` runs before the app starts (publish tasks, create people)."""
    app_sock, ws_sock = _loopback_socket(), _loopback_socket()
    settings = make_settings(
        warm_pool_size=0, environments_dir=str(SHARED_ENVS), host="127.0.0.1",
        continuous_checks=False,
        port=app_sock.getsockname()[1], workspace_host="127.0.0.1",
        workspace_port=ws_sock.getsockname()[1],
    )
    prepare(settings)
    provisioner = FakeProvisioner(tmp_path / "fake-workspaces")
    app = create_app(settings, provisioner=provisioner)
    runner, ws_runner = web.AppRunner(app), web.AppRunner(app[WORKSPACE_APP])
    await runner.setup()
    await ws_runner.setup()
    try:
        await web.SockSite(runner, app_sock).start()
        await web.SockSite(ws_runner, ws_sock).start()
        yield Served(settings, app, runner, provisioner)
    finally:
        await ws_runner.cleanup()
        await runner.cleanup()


async def live_session(served: Served, session_id: str) -> Live:
    """Once the session is started: its workspace folder, after recording has begun."""
    session = await served.app[DB].read(lambda d: S.get_session(d, session_id))
    assert session.workspace_id is not None
    workspace = served.provisioner.running[session.workspace_id].info.root
    await _wait_until_recording(served.app, session_id)
    return Live(served.app, served.runner, served.settings.app_url, session_id, workspace)


@pytest.fixture
async def live(make_settings: MakeSettings, tmp_path: Path) -> AsyncIterator[Live]:
    def prepare(settings: Settings) -> None:
        publish_fake_task(settings)
        create_user(settings, LEAD, "interviewer")
        create_user(settings, OTHER, "interviewer")

    async with serving(make_settings, tmp_path, prepare) as served:
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(served.settings.app_url, cookie_jar=jar) as http:
            login = await http.post("/api/v1/auth/login",
                                    json={"email": LEAD, "password": PASSWORD})
            assert login.status == 200, await login.text()
            csrf = (await login.json())["csrf_token"]
            created = await http.post("/api/v1/sessions", headers={"X-CSRF-Token": csrf}, json={
                "task": "demo-task", "candidate_name": "Ada <b>Lovelace</b>"})
            assert created.status == 201, await created.text()
            session_id = (await created.json())["session_id"]
            started = await http.post(f"/api/v1/sessions/{session_id}/start",
                                      headers={"X-CSRF-Token": csrf})
            assert started.status == 200, await started.text()
        yield await live_session(served, session_id)


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
