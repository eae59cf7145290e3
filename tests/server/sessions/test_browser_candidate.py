"""A real headless Chromium opens the candidate link, starts the session, lands in JupyterLab
(served by a real sandboxed jupyter-server through pairlab's proxy), opens the task's
notebook, runs a cell and sees its output."""

from __future__ import annotations

import random
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from playwright.async_api import async_playwright, expect

from server.app import create_app
from server.http.accesslog import ScrubbedAccessLogger
from server.sessions.wiring import WORKSPACE_APP
from server.settings import Settings, prepare_data_dir
from tests.conftest import PASSWORD, create_user
from tests.fixture_tasks import SHARED_ENVS, publish_fake_task

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.timeout(300)]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-quic"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def served() -> AsyncIterator[Settings]:
    data = Path(tempfile.mkdtemp(prefix="plbr-", dir="/tmp"))
    settings = prepare_data_dir(Settings(
        data_dir=data, port=free_port(), workspace_port=free_port(), warm_pool_size=0,
        environments_dir=str(SHARED_ENVS),
        sandbox_uid_base=random.randrange(100_000, 4_000_000, 1000),
    ))
    publish_fake_task(settings)
    create_user(settings, "lead@example.com", "interviewer")
    app = create_app(settings)
    runners = []
    try:
        for one, port in ((app, settings.port), (app[WORKSPACE_APP], settings.workspace_port)):
            runner = web.AppRunner(one, access_log_class=ScrubbedAccessLogger)
            await runner.setup()
            runners.append(runner)
            await web.TCPSite(runner, "127.0.0.1", port).start()
        yield settings
    finally:
        for runner in reversed(runners):
            await runner.cleanup()
        shutil.rmtree(data, ignore_errors=True)


async def test_candidate_runs_a_cell_in_jupyterlab(served: Settings) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as api:
        login = await api.post(f"{served.app_url}/api/v1/auth/login",
                               json={"email": "lead@example.com", "password": PASSWORD})
        csrf = (await login.json())["csrf_token"]
        created = await (await api.post(
            f"{served.app_url}/api/v1/sessions",
            json={"task": "demo-task", "candidate_name": "Ada Lovelace"},
            headers={"X-CSRF-Token": csrf, "Origin": served.app_url},
        )).json()
    link = created["candidate_link"]
    assert link.startswith(served.workspace_url)

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium",
                                          args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            await page.goto(link)
            assert "/c/" not in page.url  # the token left the address bar
            await expect(page.locator("#recorded")).to_be_visible()
            await page.click("#start")
            await page.wait_for_url("**/lab**", timeout=120_000, wait_until="commit")
            assert page.url.startswith("http://w-")  # on the workspace's own host
            await expect(page.locator("#jp-main-dock-panel")).to_be_visible(timeout=120_000)
            await expect(page.locator("#pairlab-countdown")).to_contain_text("left",
                                                                            timeout=30_000)
            workspace_lab = page.url.split("/lab", 1)[0] + "/lab"
            await page.goto(workspace_lab + "/tree/explore.ipynb")
            cell = page.locator(".jp-Notebook .jp-Cell").first
            await expect(cell).to_be_visible(timeout=120_000)
            # Run only once the notebook's kernel is connected and idle (a cell run earlier is
            # dropped by JupyterLab, as a person would see).
            await expect(page.get_by_text("Python 3 (task) | Idle")).to_be_visible(
                timeout=120_000)
            await cell.locator(".jp-InputArea-editor").click()
            await page.keyboard.press("Shift+Enter")
            output = page.locator(".jp-OutputArea-output").first
            try:
                await expect(output).to_contain_text("answer 42", timeout=60_000)
            except AssertionError:
                await page.screenshot(path="/tmp/pairlab-browser-failure.png")
                raise
            html = await page.content()
            assert "/c/" not in page.url and "token=" not in html.lower()
        finally:
            await browser.close()
