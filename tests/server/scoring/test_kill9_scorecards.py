"""kill -9 of a real ``pairlab serve`` right after it acknowledged scorecard submissions:
every acknowledged scorecard is in the database, whole, and the restarted server serves it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from server.settings import Settings, prepare_data_dir
from tests.conftest import create_token
from tests.fixture_tasks import SHARED_ENVS, publish_fake_task
from tests.server.cli.test_serve import free_port, start_serve, stop, wait_ready

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]
DIMS = ["navigating-code", "questions", "debugging", "data-quality", "working-solution",
        "communication"]


def card(marker: str) -> dict[str, Any]:
    return {"scores": {d: {"level": 3, "evidence": f"{marker}: {d}", "moments": []}
                       for d in DIMS},
            "recommendation": "yes", "summary": f"summary {marker}"}


async def test_kill_9_right_after_submit(run_cli: Any, cli_env: dict[str, str],
                                         tmp_path: Path) -> None:
    env = {**cli_env, "PAIRLAB_WARM_POOL_SIZE": "0", "PAIRLAB_ENVIRONMENTS_DIR": str(SHARED_ENVS)}
    settings = prepare_data_dir(Settings(data_dir=Path(cli_env["PAIRLAB_DATA_DIR"])))
    publish_fake_task(settings, "pipe-task", kind="pipeline-bug")
    for who in ("alice", "bob"):
        added = run_cli("user", "add", f"{who}@example.com", "--role", "interviewer")
        assert added.returncode == 0, added.stderr
    sessions = []
    for n in range(6):
        created = run_cli("session", "create", "--task", "pipe-task", "--candidate", f"C{n}",
                          "--interviewer", "alice@example.com",
                          "--interviewer", "bob@example.com", "--json")
        assert created.returncode == 0, created.stderr
        sessions.append(json.loads(created.stdout)["session_id"])
    tokens = {who: create_token(settings, f"{who}@example.com") for who in ("alice", "bob")}
    port = free_port()
    args = ("--port", str(port), "--workspace-port", str(free_port()))
    base = f"http://127.0.0.1:{port}"
    logs = (tmp_path / "serve.out", tmp_path / "serve.err")

    acked: list[tuple[str, str]] = []
    proc = start_serve(env, tmp_path, logs, *args)
    try:
        await asyncio.to_thread(wait_ready, f"{base}/readyz", proc)

        async def submit(who: str, sid: str) -> None:
            async with aiohttp.ClientSession(
                    headers={"Authorization": f"Bearer {tokens[who]}"}) as http, http.post(
                    f"{base}/api/v1/sessions/{sid}/scorecards/mine/submit",
                    json=card(f"{who}-{sid}")) as response:
                assert response.status == 200, await response.text()
                acked.append((who, sid))

        # both interviewers submit on every session at once; the server dies at the last 2xx
        await asyncio.gather(*(submit(who, sid) for sid in sessions for who in tokens))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        stop(proc)
    assert len(acked) == 12

    conn = sqlite3.connect(settings.db_path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        rows = conn.execute(
            "SELECT v.session_id, u.email, v.body, v.weighted_score FROM scorecard_versions v"
            " JOIN users u ON u.id = v.user_id").fetchall()
    finally:
        conn.close()
    stored = {(email.split("@")[0], sid): (json.loads(body), score)
              for sid, email, body, score in rows}
    assert set(stored) == set(acked)
    for (who, sid), (body, score) in stored.items():
        assert body == card(f"{who}-{sid}") and score == 3.0  # whole, not half-written

    proc = start_serve(env, tmp_path, logs, *args)
    try:
        await asyncio.to_thread(wait_ready, f"{base}/readyz", proc)
        async with aiohttp.ClientSession(
                headers={"Authorization": f"Bearer {tokens['alice']}"}) as http, http.get(
                f"{base}/api/v1/sessions/{sessions[-1]}/scorecards") as response:
            data = await response.json()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        stop(proc)
    assert sorted(c["summary"] for c in data["scorecards"]) == [
        f"summary alice-{sessions[-1]}", f"summary bob-{sessions[-1]}"]
