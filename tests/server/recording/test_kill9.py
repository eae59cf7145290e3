"""kill -9 of a real ``pairlab serve`` while it records: the database stays intact, every
acknowledged event is there, the sequence is gap-free, and recording carries on after a restart."""

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
from tests.conftest import CliResult, create_token
from tests.fixture_tasks import SHARED_ENVS
from tests.server.cli.test_serve import free_port, start_serve, stop, wait_ready
from tests.server.recording.conftest import publish_task

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


async def post_notes(base: str, token: str, session_id: str, label: str,
                     stop_after: int | None, acked: list[str]) -> None:
    """Post notes one after another until the server goes away (or ``stop_after`` are in)."""
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        i = 0
        while stop_after is None or i < stop_after:
            text = f"{label}-{i}"
            try:
                async with http.post(f"{base}/api/v1/sessions/{session_id}/notes",
                                     json={"text": text}) as response:
                    assert response.status == 201, await response.text()
            except (aiohttp.ClientError, OSError):
                return
            acked.append(text)
            i += 1


def events_of(db: Path, session_id: str) -> list[tuple[int, str]]:
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        rows = conn.execute("SELECT seq, payload FROM events WHERE session_id = ? ORDER BY seq",
                            [session_id]).fetchall()
    finally:
        conn.close()
    return [(seq, json.loads(payload)["text"]) for seq, payload in rows]


async def test_kill_9_while_recording(run_cli: Any, cli_env: dict[str, str],
                                      tmp_path: Path) -> None:
    serve_logs = (tmp_path / "serve.out", tmp_path / "serve.err")
    # no warm pool: no environment is built, no workspace started; notes are recorded anyway
    env = {**cli_env, "PAIRLAB_WARM_POOL_SIZE": "0", "PAIRLAB_ENVIRONMENTS_DIR": str(SHARED_ENVS)}
    settings = prepare_data_dir(Settings(data_dir=Path(cli_env["PAIRLAB_DATA_DIR"])))
    publish_task(settings)
    added: CliResult = run_cli("user", "add", "lead@example.com", "--role", "interviewer")
    assert added.returncode == 0, added.stderr
    created: CliResult = run_cli("session", "create", "--task", "rec-task", "--candidate", "Ada",
                                 "--interviewer", "lead@example.com", "--json")
    assert created.returncode == 0, created.stderr
    session_id = json.loads(created.stdout)["session_id"]
    token = create_token(settings, "lead@example.com")
    port = free_port()
    args = ("--port", str(port), "--workspace-port", str(free_port()))
    base = f"http://127.0.0.1:{port}"

    proc = start_serve(env, tmp_path, serve_logs, *args)
    acked: list[str] = []
    try:
        await asyncio.to_thread(wait_ready, f"{base}/readyz", proc)
        writers = [asyncio.ensure_future(post_notes(base, token, session_id, f"w{n}", None,
                                                    acked)) for n in range(8)]
        while len(acked) < 200:  # recording is in full swing
            await asyncio.sleep(0.01)
            assert not all(w.done() for w in writers), serve_logs[1].read_text()[-2000:]
        os.killpg(proc.pid, signal.SIGKILL)
        await asyncio.gather(*writers)
        proc.wait(timeout=30)
    finally:
        stop(proc)

    before = events_of(settings.db_path, session_id)
    seqs = [seq for seq, _ in before]
    assert seqs == list(range(1, len(seqs) + 1))  # gap-free
    assert set(acked) <= {text for _, text in before}  # nothing acknowledged was lost
    print(f"kill -9 after {len(acked)} acknowledged notes; {len(before)} stored")

    proc = start_serve(env, tmp_path, serve_logs, *args)
    try:
        await asyncio.to_thread(wait_ready, f"{base}/readyz", proc)
        after: list[str] = []
        await post_notes(base, token, session_id, "after", 20, after)
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
            async with http.get(f"{base}/api/v1/sessions/{session_id}/events"
                                f"?after={len(before)}") as response:
                page = await response.json()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        stop(proc)
    assert [e["payload"]["text"] for e in page["events"]] == after
    assert [e["seq"] for e in page["events"]] == list(range(len(before) + 1, len(before) + 21))
    final = events_of(settings.db_path, session_id)
    assert [seq for seq, _ in final] == list(range(1, len(before) + 21))
    assert "Traceback" not in serve_logs[1].read_text()  # the restarted server's log
