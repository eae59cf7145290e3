"""One snapshot's ``git fast-import`` stream and the room its new blobs may take.

New blobs are written to an unnamed temporary file as they are read, so that a snapshot holds
one file in memory whatever the workspace holds. With a room (``History._room``), a changed
file is read only if its size fits what is left of it; one that does not is skipped, never
read, and the walk goes on with the others. When something was skipped, ``choose`` picks the
files to store smallest first (the candidate's sources before a dataset) and the snapshot walks
again storing those (``admits``) unless it already stored exactly them.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import BinaryIO

__all__ = ["Spool"]

_HEADER = b"feature done\n"


class Spool:
    """The stream (``finish``), the room (None: no limit), and the changed files seen."""

    def __init__(self, folder: Path, room: int | None) -> None:
        self.file = tempfile.TemporaryFile(dir=folder)  # noqa: SIM115 - closed by __exit__
        self.room = room
        self.chosen: set[str] | None = None
        """The files the walk may read and store; None: any that fits (the first walk)."""
        self.seen: dict[str, int] = {}
        """Changed files that would take room, by size (those skipped included)."""
        self.tried: set[str] = set()
        """Of those, the ones read to be stored."""
        self.skipped = False
        self.sizes: dict[str, int] = {}
        self.bytes = 0
        self.reset()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *_: object) -> None:
        self.file.close()

    def reset(self) -> None:
        """Drop every blob written, for another walk."""
        self.file.seek(0)
        self.file.truncate()
        self.file.write(_HEADER)
        self.sizes, self.bytes = {}, 0
        self.seen, self.tried, self.skipped = {}, set(), False

    def admits(self, path: str, size: int) -> bool:
        """Whether to read the changed file ``path`` of ``size`` bytes to store it; False: it
        is listed unread, and the spool remembers it was skipped."""
        self.seen[path] = size
        if self.chosen is not None:
            ok = path in self.chosen
        else:
            ok = self.room is None or self.bytes + size <= self.room
        if ok:
            self.tried.add(path)
        else:
            self.skipped = True
        return ok

    def choose(self) -> set[str] | None:
        """After a first walk that skipped files: the files to store instead, smallest first
        while they fit the room; None when that is what the walk stored already."""
        if not self.skipped or self.room is None:
            return None
        chosen, used = set(), 0
        for size, path in sorted((size, path) for path, size in self.seen.items()):
            if used + size > self.room:
                break
            chosen.add(path)
            used += size
        return None if chosen == self.tried else chosen

    def add(self, sha: str, content: bytes, *, room: bool = True) -> bool:
        """Write the blob once; False if it does not fit the room."""
        if sha in self.sizes:
            return True
        if room and self.room is not None and self.bytes + len(content) > self.room:
            self.skipped = True
            return False
        self.file.write(b"blob\ndata %d\n" % len(content))
        self.file.write(content)
        self.file.write(b"\n")
        self.sizes[sha] = len(content)
        self.bytes += len(content)
        return True

    def finish(self, commit: bytes) -> BinaryIO:
        """The whole stream, from its start: the blobs, then ``commit``."""
        self.file.write(commit)
        self.file.flush()
        self.file.seek(0)
        return self.file
