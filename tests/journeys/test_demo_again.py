"""README command 1 is safe to run again: a second ``pairlab demo`` in the same folder keeps
what the first published, prints new passwords and a new candidate link that works."""

from __future__ import annotations

import re
import sqlite3
import subprocess

import pytest
from playwright.async_api import Browser, expect

from tests.journeys.conftest import (
    PAIRLAB,
    WAIT_MS,
    Product,
    another_block,
    demo_env,
    free_port,
    start_demo,
    stop_demo,
)
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


async def test_a_second_demo_on_the_same_uids_is_refused_and_the_first_runs_on(
        product: Product, browser: Browser,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """README command 1 run again in another folder while the first demo runs, with the same
    (default) sandbox uids: it would kill the first one's sandboxes as its own. It stops at
    once with one line naming the running one and a base to use; the first one serves on."""
    folder = tmp_path_factory.mktemp("same-uids")
    env = {**product.env, "PAIRLAB_PORT": str(free_port()),
           "PAIRLAB_WORKSPACE_PORT": str(free_port())}
    second = subprocess.run([str(PAIRLAB), "demo"], cwd=folder, env=env, capture_output=True,
                            text=True, timeout=300, check=False)
    assert second.returncode == 1, second.stderr
    (line,) = [x for x in second.stderr.splitlines() if x.startswith("pairlab: ")]
    assert re.search(r"^pairlab: sandbox uids (\d+)-(\d+) overlap the uids \1-\2 of another "
                     rf"pairlab running on this host \(pid {product.process.pid}, data dir "
                     r"\S*var\); give each its own block, for "
                     r"example sandbox_uid_base = \d+ \(PAIRLAB_SANDBOX_UID_BASE=\d+\)$",
                     line), line
    assert "Traceback" not in second.stderr
    assert not (folder / "var" / "pairlab.db").exists()  # refused before anything was made
    page = await browser.new_page()
    await page.goto(f"{product.app_url}/login")
    await expect(page.locator("#email")).to_be_visible(timeout=WAIT_MS)
    assert product.process.poll() is None
