"""The workspace watcher on real files: create, modify, delete, rename, folders, ignored paths,
and symbolic links that must never be followed."""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from workspaces.recording import events
from workspaces.recording.watcher import FileChange, is_ignored, walk, watch_workspace


class Watch:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.stop = asyncio.Event()
        self.ready = asyncio.Event()
        self.batches: list[list[FileChange]] = []
        self.task: asyncio.Task[None] | None = None

    async def _collect(self) -> None:
        async for batch in watch_workspace(self.root, stop_event=self.stop, ready=self.ready,
                                           debounce_ms=200, step_ms=20):
            self.batches.append(batch)

    @property
    def changes(self) -> list[FileChange]:
        return [c for batch in self.batches for c in batch]

    async def wait_for(self, check: Callable[[list[FileChange]], bool]) -> list[FileChange]:
        """Wait (with a generous deadline, never asserted on) until ``check`` holds."""
        async with asyncio.timeout(30):
            while not check(self.changes):
                await asyncio.sleep(0.02)
        return self.changes

    async def settle(self) -> list[FileChange]:
        """Let any pending batch arrive: two debounce windows without a new batch."""
        count = -1
        while count != len(self.batches):
            count = len(self.batches)
            await asyncio.sleep(0.5)
        return self.changes

    def take(self) -> list[FileChange]:
        changes = self.changes
        self.batches.clear()
        return changes


@pytest.fixture
async def watch(tmp_path: Path) -> AsyncIterator[Watch]:
    root = tmp_path / "work"
    root.mkdir()
    (root / "existing.py").write_text("x = 1\n")
    w = Watch(root)
    w.task = asyncio.create_task(w._collect())
    async with asyncio.timeout(30):
        await w.ready.wait()
    yield w
    w.stop.set()
    async with asyncio.timeout(30):
        await w.task


def place(path: Path, text: str) -> None:
    """Create a file with its whole content at once (written in the temp folder, outside the
    watched one, then renamed in), so a loaded machine cannot split it into "created empty"
    and "changed" batches."""
    fd, staging = tempfile.mkstemp()
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(staging, path)


def kinds(changes: list[FileChange]) -> list[tuple[str, str]]:
    return sorted((c.kind, c.path) for c in changes)


async def test_create_modify_delete(watch: Watch) -> None:
    root = watch.root
    place(root / "model.py", "def f():\n    return 1\n")
    found = await watch.wait_for(lambda cs: ("created", "model.py") in kinds(cs))
    created = next(c for c in found if c.path == "model.py")
    assert created.size == 22
    assert created.sha256 == hashlib.sha256(b"def f():\n    return 1\n").hexdigest()
    assert created.event_kind == events.FILE_CREATED
    watch.take()

    (root / "model.py").write_text("def f():\n    return 2\n")
    await watch.wait_for(lambda cs: ("changed", "model.py") in kinds(cs))
    watch.take()
    (root / "existing.py").unlink()
    found = await watch.wait_for(lambda cs: ("deleted", "existing.py") in kinds(cs))
    assert found[0].payload() == {}
    assert kinds(await watch.settle()) == [("deleted", "existing.py")]


async def test_rename_is_one_change(watch: Watch) -> None:
    os.rename(watch.root / "existing.py", watch.root / "renamed.py")
    found = await watch.wait_for(lambda cs: any(c.kind == "renamed" for c in cs))
    assert [(c.kind, c.old_path, c.path) for c in found] == [
        ("renamed", "existing.py", "renamed.py")]
    assert found[0].payload()["old_path"] == "existing.py"
    assert kinds(await watch.settle()) == [("renamed", "renamed.py")]


async def test_rewriting_the_same_content_is_not_a_change(watch: Watch) -> None:
    # the same bytes written over the file without truncating it first, so that no moment
    # exists at which its content differs (write_text() would empty it for an instant)
    fd = os.open(watch.root / "existing.py", os.O_WRONLY)
    try:
        os.write(fd, b"x = 1\n")
    finally:
        os.close(fd)
    place(watch.root / "marker.txt", "m")
    await watch.wait_for(lambda cs: ("created", "marker.txt") in kinds(cs))
    assert kinds(await watch.settle()) == [("created", "marker.txt")]


async def test_new_folders_are_watched_and_temp_files_vanish(watch: Watch) -> None:
    root = watch.root
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "src" / "pkg" / "a.py").write_text("a")
    await watch.wait_for(lambda cs: ("created", "src/pkg/a.py") in kinds(cs))
    # write_text() creates the file empty and then fills it; under load the two can land in
    # separate batches (created, then changed), so each step lets the watcher settle.
    await watch.settle()
    watch.take()
    (root / "src" / "pkg" / "b.py").write_text("b")  # in a folder made after the start
    await watch.wait_for(lambda cs: ("created", "src/pkg/b.py") in kinds(cs))
    await watch.settle()
    watch.take()
    temp = root / "src" / "pkg" / "tmp123.txt"
    temp.write_text("t")
    temp.unlink()
    (root / "src" / "pkg" / "c.py").write_text("c")
    await watch.wait_for(lambda cs: ("created", "src/pkg/c.py") in kinds(cs))
    seen = kinds(await watch.settle())
    # the temp file left no trace; c.py was created (and maybe filled in a second batch)
    assert ("created", "src/pkg/c.py") in seen
    assert set(seen) <= {("created", "src/pkg/c.py"), ("changed", "src/pkg/c.py")}
    watch.take()
    os.rename(root / "src", root / "lib")
    found = await watch.wait_for(lambda cs: len([c for c in cs if c.kind == "renamed"]) == 3)
    assert sorted((c.old_path, c.path) for c in found if c.kind == "renamed") == [
        ("src/pkg/a.py", "lib/pkg/a.py"), ("src/pkg/b.py", "lib/pkg/b.py"),
        ("src/pkg/c.py", "lib/pkg/c.py")]
    watch.take()
    for name in ("a.py", "b.py", "c.py"):
        (root / "lib" / "pkg" / name).unlink()
    (root / "lib" / "pkg").rmdir()
    (root / "lib").rmdir()
    await watch.wait_for(lambda cs: len(cs) == 3)
    assert kinds(await watch.settle()) == [
        ("deleted", "lib/pkg/a.py"), ("deleted", "lib/pkg/b.py"), ("deleted", "lib/pkg/c.py")]


async def test_ignored_paths_are_not_reported(watch: Watch) -> None:
    root = watch.root
    for folder in (".git", "__pycache__", ".ipynb_checkpoints", ".jupyter_ystore", "deep/.git"):
        (root / folder).mkdir(parents=True)
        (root / folder / "x").write_text("x")
    (root / "mod.pyc").write_bytes(b"\0")
    place(root / "deep" / "kept.txt", "k")
    await watch.wait_for(lambda cs: ("created", "deep/kept.txt") in kinds(cs))
    (root / ".git" / "y").write_text("y")
    place(root / "last.txt", "l")
    await watch.wait_for(lambda cs: ("created", "last.txt") in kinds(cs))
    assert kinds(await watch.settle()) == [("created", "deep/kept.txt"), ("created", "last.txt")]


async def test_symbolic_links_are_reported_never_followed(watch: Watch, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("s")
    os.symlink(outside, watch.root / "link")
    found = await watch.wait_for(lambda cs: ("created", "link") in kinds(cs))
    link = next(c for c in found if c.path == "link")
    assert link.link and link.size == len(str(outside))
    # A folder moved in with a link inside (watchfiles' recursive mode would follow it).
    staged = tmp_path / "staged"
    staged.mkdir()
    os.symlink(outside, staged / "inner")
    os.rename(staged, watch.root / "moved")
    await watch.wait_for(lambda cs: ("created", "moved/inner") in kinds(cs))
    watch.take()
    (outside / "secret.txt").write_text("changed")
    (outside / "new.txt").write_text("n")
    place(watch.root / "marker.txt", "m")
    await watch.wait_for(lambda cs: ("created", "marker.txt") in kinds(cs))
    assert kinds(await watch.settle()) == [("created", "marker.txt")]


async def test_the_generator_alone_and_its_stop_event(tmp_path: Path) -> None:
    root = tmp_path / "w"
    (root / "d").mkdir(parents=True)
    stop = asyncio.Event()
    gen = watch_workspace(root, stop_event=stop, debounce_ms=100, step_ms=20)
    first_batch = asyncio.ensure_future(anext(gen))
    async with asyncio.timeout(30):
        n = 0
        while not first_batch.done():  # the watch starts at some point: keep changing the file
            n += 1
            (root / "d" / "f.txt").write_text(str(n))
            await asyncio.sleep(0.05)
        batch = await first_batch
    assert [c.path for c in batch] == ["d/f.txt"]
    assert batch[0].kind in ("created", "changed")
    stop.set()
    with pytest.raises(StopAsyncIteration):
        async with asyncio.timeout(30):
            await anext(gen)


def test_walk_and_ignore_rules(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "f.py").write_text("f")
    (tmp_path / "a" / "__pycache__").mkdir()
    (tmp_path / "a" / "__pycache__" / "f.pyc").write_text("c")
    os.mkfifo(tmp_path / "a" / "pipe")
    os.symlink("/etc", tmp_path / "etc")
    files, dirs = walk(tmp_path)
    assert sorted(files) == ["a/b/f.py", "etc"]
    assert files["etc"].kind == "link"
    assert dirs == {"a", "a/b"}
    assert is_ignored(".git", True) and is_ignored("x/.git/config", False)
    assert is_ignored(".jupyter_ystore.db", False) is False
    assert is_ignored(".jupyter", True) and is_ignored("a/.~nb.ipynb", False)
    assert not is_ignored("src/model.py", False) and not is_ignored("data", True)
    # what would configure IPython or other tools from the candidate's home is in the record
    assert not is_ignored(".ipython/profile_default/startup/x.py", False)
    assert not is_ignored(".config/ipython", True)
