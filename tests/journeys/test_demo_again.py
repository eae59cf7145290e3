"""README command 1 is safe to run again: a second ``pairlab demo`` in the same folder keeps
what the first published, prints new passwords and a new candidate link that works."""

from __future__ import annotations

import re
import sqlite3

import pytest
from playwright.async_api import Browser, expect

from tests.journeys.conftest import WAIT_MS, another_block, demo_env, start_demo, stop_demo
from workspaces.sandbox.mounts import mount_points

pytestmark = [pytest.mark.journey, pytest.mark.integration, pytest.mark.browser,
              pytest.mark.timeout(1500)]
BUILTIN = ("churn-eval-extend", "daily-features-bug", "scoring-service-validation")


async def test_the_demo_started_twice_in_one_folder(tmp_path_factory: pytest.TempPathFactory,
                                                    browser: Browser) -> None:
    folder = tmp_path_factory.mktemp("again")
    first = start_demo(folder, another_block(demo_env()))  # the journeys' demo runs beside it
    first_out = first.stdout.read_text()
    assert stop_demo(first) == 0
    for task in BUILTIN:
        assert re.search(rf"{task}: {task}-r1 \(published\)", first_out), first_out

    second = start_demo(folder, first.env)
    try:
        out = second.stdout.read_text()
        for task in BUILTIN:
            assert f"{task}: {task}-r1 (already published)" in out, out
        assert second.candidate_link and second.candidate_link != first.candidate_link
        assert second.passwords.keys() == first.passwords.keys()
        assert all(second.passwords[e] != first.passwords[e] for e in first.passwords)
        db = sqlite3.connect(folder / "var" / "pairlab.db")
        try:
            sessions = db.execute("SELECT COUNT(*) FROM interview_sessions WHERE candidate_name"
                                  " = 'Demo Candidate'").fetchone()[0]
        finally:
            db.close()
        assert sessions == 2  # the first run's session is kept, a new one is scheduled

        page = await browser.new_page()
        await page.goto(second.candidate_link)
        await expect(page.locator("#start")).to_be_visible(timeout=WAIT_MS)
        await page.click("#start")
        await page.wait_for_url("**/lab**", timeout=WAIT_MS, wait_until="commit")
        await expect(page.locator("#jp-main-dock-panel")).to_be_visible(timeout=WAIT_MS)
    except BaseException:
        stop_demo(second)
        raise
    assert stop_demo(second) == 0  # Ctrl-C stops it cleanly
    # ... and leaves no workspace disk image mounted: the folder can be removed like any other.
    left = [point for point in mount_points() if folder in point.parents]
    assert left == [], left
