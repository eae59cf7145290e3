"""The watcher hands over the bytes it hashed (``keep_content``), so the recorder can keep the
exact file of every event without reading it again: never for deletes or links, never more
than the batch's budget, and only bytes that match the change's sha256."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

from workspaces.recording.watcher import FileChange, watch_workspace


async def test_content_comes_with_created_and_changed_files(tmp_path: Path) -> None:
    root = tmp_path / "work"
    root.mkdir()
    (root / "old.py").write_text("gone soon\n")
    stop, ready = asyncio.Event(), asyncio.Event()
    changes: list[FileChange] = []

    async def collect() -> None:
        async for batch in watch_workspace(root, stop_event=stop, ready=ready, debounce_ms=200,
                                           step_ms=20, keep_content=100):
            changes.extend(batch)

    task = asyncio.create_task(collect())
    async with asyncio.timeout(30):
        await ready.wait()

    async def seen(kind: str, path: str) -> FileChange:
        async with asyncio.timeout(30):
            while not (found := [c for c in changes if (c.kind, c.path) == (kind, path)]):
                await asyncio.sleep(0.02)
        return found[-1]

    (root / "a.py").write_text("print(1)\n")
    created = await seen("created", "a.py")
    (root / "a.py").write_text("print(2)\n")
    changed = await seen("changed", "a.py")
    (root / "big.bin").write_bytes(os.urandom(500))  # over the 100-byte budget: hash only
    big = await seen("created", "big.bin")
    (root / "old.py").unlink()
    deleted = await seen("deleted", "old.py")
    os.symlink("/etc/passwd", root / "link")
    link = await seen("created", "link")
    stop.set()
    async with asyncio.timeout(30):
        await task

    assert (created.content, changed.content) == (b"print(1)\n", b"print(2)\n")
    assert changed.sha256 == hashlib.sha256(b"print(2)\n").hexdigest()
    assert big.content is None and len(big.sha256) == 64
    assert deleted.content is None and link.content is None and link.link
    assert "content" not in created.payload()
