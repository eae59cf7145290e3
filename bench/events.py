"""Event recording figures: ingest rate (persisted, nothing lost) and event → observer latency.

    .venv/bin/python bench/events.py [--events 200000] [--sessions 20] [--notes 300]

1. Ingest: ``--sessions`` producers record ``--events`` realistic events in total through one
   ``EventRecorder`` over a real SQLite file (the server's ``Database``: one writer thread,
   ``synchronous=FULL``), while one live subscriber per session reads along; the rate counts
   events that are committed, and every session is then checked gap-free and complete.
2. Latency: the real app on loopback; an observer reads ``/events/stream`` (SSE) while notes
   are posted through the API: idle, then while 5 other sessions record 1,000 and 10,000
   events/s between them (in-process, through the app's recorder).
   Latency is from the event's creation (its ``at``) to the observer having parsed it.

Prints median / p95 / p99. Figures depend on the machine: compare with the targets in
``../shared/DESIGN.md`` measured on the same one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import audit
from common.db import Database  # noqa: E402
from server.app import create_app  # noqa: E402
from server.db import migrate_database, open_migrated  # noqa: E402
from server.people import accounts as people
from server.people import credentials
from server.people.passwords import hash_password  # noqa: E402
from server.recording.keys import RECORDING  # noqa: E402
from server.settings import Settings, prepare_data_dir  # noqa: E402
from tasks import revisions  # noqa: E402
from tasks.store import TaskStore  # noqa: E402
from tasks.treerepo import commit_tree  # noqa: E402
from workspaces import sessions as S  # noqa: E402
from workspaces.recording import events as E  # noqa: E402
from workspaces.recording.events import Event, EventRecorder, query_events  # noqa: E402
from workspaces.recording.recorder import BATCH_MS  # noqa: E402

OUTPUT = "loss 0.4213 acc 0.8125\n" * 12


def percentiles(name: str, values: list[float], unit: str = "ms") -> None:
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    print(f"{name}: n={len(values)} median {statistics.median(values):.2f} {unit}, "
          f"p95 {at(0.95):.2f} {unit}, p99 {at(0.99):.2f} {unit}, max {ordered[-1]:.2f} {unit}")


def sample(session: str, i: int) -> Event:
    if i % 3 == 0:
        return Event(session, E.ACTOR_CANDIDATE, E.CELL_EXECUTED, "train.ipynb", {
            "kernel_id": "k1", "code": f"model.fit(x, y, epochs={i % 7})", "status": "ok",
            "execution_count": i, "duration_ms": 120, "output": OUTPUT, "outputs": 1})
    if i % 3 == 1:
        return Event(session, E.ACTOR_CANDIDATE, E.FILE_CHANGED, f"src/mod{i % 40}.py",
                     {"size": 1200 + i % 500, "sha256": "ab" * 32})
    return Event(session, E.ACTOR_CANDIDATE, E.TERMINAL_COMMAND, "", {
        "terminal": "1", "line": "python -m pytest -q tests", "output": "12 passed\n",
        "duration_ms": 800})


async def ingest(events: int, sessions: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="plbench-"))
    db = Database(folder / "bench.db")
    await migrate_database(db)
    recorder = EventRecorder(db.write, db.read, batch_ms=BATCH_MS)  # as the server does
    await recorder.start()
    per = events // sessions
    names = [f"s_bench{n:04d}" for n in range(sessions)]
    seen = dict.fromkeys(names, 0)

    async def observe(name: str) -> None:
        async with recorder.subscribe(name) as sub:
            async for _ in sub:
                seen[name] += 1
                if seen[name] == per:
                    return

    async def produce(name: str) -> None:
        for i in range(per):
            await recorder.record(sample(name, i))

    observers = [asyncio.ensure_future(observe(n)) for n in names]
    started = time.perf_counter()
    await asyncio.gather(*(produce(n) for n in names))
    await asyncio.gather(*observers)  # every event is stored (and seen) by now
    elapsed = time.perf_counter() - started
    await recorder.close()
    for name in names:
        stored = await db.read(partial(query_events, session_id=name, after_seq=0,
                                       limit=per + 1))
        assert [e.seq for e in stored] == list(range(1, per + 1)), name
    await db.close()
    total = per * sessions
    size = (folder / "bench.db").stat().st_size / 1e6
    shutil.rmtree(folder)
    print(f"ingest: {total} events in {sessions} sessions, persisted and observed, in "
          f"{elapsed:.2f} s = {total / elapsed:,.0f} events/s; all gap-free "
          f"(database {size:.0f} MB + WAL)")


def seed(settings: Settings) -> tuple[str, list[str]]:
    """An interviewer with an API token and six scheduled sessions of a tiny task."""
    db = open_migrated(settings.db_path)
    store = TaskStore(settings.data_dir / "tasks")
    staged = Path(tempfile.mkdtemp(dir=settings.data_dir))
    (staged / "tree").mkdir()
    (staged / "tree" / "main.py").write_text("print('hello')\n")
    commit = commit_tree(staged / "tree", "Task bench")
    for name, text in (("brief.md", "b"), ("guide.md", "g"), ("report.json", "{}"),
                       ("diff.json", "[]")):
        (staged / name).write_text(text)
    with db.atomic():
        user = people.add_user(db, audit.CLI, "bench@example.com", "interviewer",
                               hash_password("bench password 123"))
        _, token = credentials.create_api_token(db, user.actor(), "bench", "bench@example.com")
        rev = revisions.insert_revision(db, revisions.NewRevision(
            task_id="bench", title="Bench", kind="eval-script", roles=("ml-engineer",),
            duration_minutes=60, requirements=(), visible_check="python -m pytest -q",
            source_url="file:///bench", source_ref="", source_subdir="", source_commit="0" * 40,
            tree_commit=commit, blockers=(), created_by="bench"))
        store.install(staged, "bench", rev.id)
        revisions.publish(db, rev.id)
        ids = [S.create_session(db, revision_id=rev.id, task_id="bench", candidate_name="C",
                                candidate_email="", role="", duration_minutes=60,
                                starts_at=datetime.now(UTC), interviewer_ids=[user.id],
                                created_by=user.id, link_secret="bench-link-secret-" * 3,
                                )[0].id for _ in range(6)]
    db.conn.close()
    return token, ids


async def latency(notes: int) -> None:
    data = Path(tempfile.mkdtemp(prefix="plbench-", dir="/tmp"))
    settings = prepare_data_dir(Settings(data_dir=data, warm_pool_size=0, log_level="WARNING"))
    token, (watched, *others) = seed(settings)
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}/api/v1/sessions"
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with aiohttp.ClientSession(headers=headers) as http:
            for after, rate in enumerate((0, 1000, 10_000)):
                stop = asyncio.Event()
                background = [asyncio.ensure_future(flood(app, s, stop, rate / len(others)))
                              for s in others] if rate else []
                lags = await observe(http, base, watched, notes, after * notes)
                stop.set()
                counts = await asyncio.gather(*background)
                label = f"while 5 other sessions record {rate:,} events/s " \
                    f"({sum(counts):,} events)" if rate else "idle"
                percentiles(f"event -> SSE observer, {label}", lags)
    finally:
        await runner.cleanup()
        shutil.rmtree(data, ignore_errors=True)


async def flood(app: web.Application, session: str, stop: asyncio.Event, rate: float) -> int:
    """About ``rate`` events/s into ``session`` (in bursts of 20, as a busy notebook does)."""
    recorder = app[RECORDING].recorder
    count = 0
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not stop.is_set():
        for _ in range(20):
            await recorder.record(sample(session, count))
            count += 1
        await asyncio.sleep(max(0.0, started + count / rate - loop.time()))
    return count


async def observe(http: aiohttp.ClientSession, base: str, session: str, notes: int,
                  after: int) -> list[float]:
    lags: list[float] = []
    async with http.get(f"{base}/{session}/events/stream?after={after}") as stream:
        await stream.content.readline()  # "retry: ..." — the stream is open

        async def read() -> None:
            while len(lags) < notes:
                line = await stream.content.readline()
                if line.startswith(b"data: "):
                    event: dict[str, Any] = json.loads(line[6:])
                    at = datetime.fromisoformat(event["at"])
                    lags.append((datetime.now(UTC) - at).total_seconds() * 1000)

        reader = asyncio.ensure_future(read())
        for i in range(notes):
            async with http.post(f"{base}/{session}/notes", json={"text": f"n{i}"}) as r:
                assert r.status == 201, await r.text()
            await asyncio.sleep(0.005)
        await reader
    return lags


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--notes", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(ingest(args.events, args.sessions))
    asyncio.run(latency(args.notes))


if __name__ == "__main__":
    main()
