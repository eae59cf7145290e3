"""The casts API: who may read a session's terminal recordings, what it answers for a cast that
is not there, and the CLI export's ``casts/`` folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from tests.conftest import CliResult, login
from tests.server.recording.conftest import RecFactory
from workspaces.recording import events as E


async def test_casts_are_listed_served_and_exported_to_interviewers_only(
        make_rec: RecFactory, aiohttp_client: Any, run_cli: Any, tmp_path: Path) -> None:
    rec = await make_rec()
    sid = (await rec.schedule())["session_id"]
    store = rec.service.taps.casts
    assert store is not None
    cast = await store.open(sid, "1", E.ACTOR_CANDIDATE)
    cast.feed("in", json.dumps(["set_size", 24, 80]))
    cast.feed("out", json.dumps(["stdout", "<script>alert(1)</script>\r\n$ "]))
    await store.flush()  # still open: listed, its file readable so far
    base = f"/api/v1/sessions/{sid}/casts"
    [row] = (await rec.api("GET", base))["casts"]
    assert (row["id"], row["ended_at"], row["url"]) == ("1.1", None, f"{base}/1.1")
    await store.close(cast)

    listing = await rec.api("GET", base)
    [row] = listing["casts"]
    assert row["ended_at"] and row["bytes"] == len("<script>alert(1)</script>\r\n$ ")
    assert row["size"] == cast.path.stat().st_size
    served = await rec.client.get(row["url"])
    assert served.status == 200 and served.headers["X-Content-Type-Options"] == "nosniff"
    assert served.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert await served.read() == cast.path.read_bytes()
    typed = await rec.client.get(row["url"] + "?type=asciicast")
    assert typed.headers["Content-Type"] == "application/x-asciicast"
    for bad in ("1.2", "..%2F1.1", "1.1.cast", "x" * 80 + ".1"):
        missing = await rec.client.get(f"{base}/{bad}")
        assert missing.status == 404, bad
    assert (await rec.client.get("/api/v1/sessions/s_0000000000000000/casts")).status == 404

    anonymous: TestClient[Any, Any] = await aiohttp_client(rec.client.server)
    other: TestClient[Any, Any] = await aiohttp_client(rec.client.server)
    await login(other, "other@example.com")
    for tail in ("", "/1.1"):
        assert (await anonymous.get(base + tail)).status == 401
        assert (await other.get(base + tail)).status == 403

    cli: CliResult = run_cli("session", "export", sid, str(tmp_path / "out"),
                             env={"PAIRLAB_DATA_DIR": str(rec.settings.data_dir)})
    assert cli.returncode == 0, cli.stderr
    index = json.loads((tmp_path / "out" / "casts" / "index.json").read_text())
    assert [(c["id"], c["file"]) for c in index["casts"]] == [("1.1", "1.1.cast")]
    assert (tmp_path / "out" / "casts" / "1.1.cast").read_bytes() == cast.path.read_bytes()
