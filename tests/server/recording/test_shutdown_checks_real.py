"""A server stopped while a session's hidden checks run leaves nothing of them in its data
dir: the recorder's close cancels the run's coroutine, its thread goes on until the check
folder is released, and the app's shutdown waits for that thread (``sessions_ctx`` calls
``CheckSandbox.wait_idle``). Through the real app, sandbox and session end, as a server
stopped right after an interview ends. Without the wait the folder was still there (and its
tmpfs mounted) once shutdown returned; real-recording test runs used to leave such folders."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import pytest

from tests.server.recording.conftest import UID_BASE
from tests.server.recording.real_app import app_over, real_settings, uid_base
from workspaces.sandbox import mounts

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]
BASE = uid_base(3400, UID_BASE + 9400)
"""Sandbox uids of this file: its workspaces' and (1000 above) its check runs', apart from
every other file's (the CLI tests' block starts at UID_BASE + 8000)."""
RUN_SEEN_S = 60.0
"""How long the session's check run may take to begin after the session ends."""


def check_folders(checks: Path) -> list[Path]:
    """The runs' folders under the data dir's ``checks`` (the uid leases' locks aside)."""
    if not checks.is_dir():
        return []
    return [p for p in checks.iterdir() if not p.name.startswith(".uid-")]


async def test_a_server_stopped_during_hidden_checks_leaves_no_check_folder() -> None:
    async with real_settings("plsd-", BASE) as settings:
        checks = settings.data_dir / "checks"
        try:
            async with app_over(settings) as rec:  # its exit is the app's shutdown
                session_id, _ = await rec.start()
                await rec.api("POST", f"/api/v1/sessions/{session_id}/end")
                deadline = time.monotonic() + RUN_SEEN_S
                while not check_folders(checks):  # the hidden checks' folder, mounted
                    assert time.monotonic() < deadline, "the hidden checks never began"
                    await asyncio.sleep(0.01)
                running = check_folders(checks)
                # still under way as the server stops (else this would prove nothing)
                assert any(mounts.is_mount(p) for p in running), running
            left = check_folders(checks)
        finally:
            for folder in check_folders(checks):  # a failure's leftovers: never a tmpfs left
                if mounts.is_mount(folder):
                    with contextlib.suppress(OSError):
                        mounts.unmount(folder)
        assert left == [], f"check folders left once the server stopped: {left}"
