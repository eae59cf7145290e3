"""Who changed a file: the claims that tie a change the file watcher saw to a person.

Per session, three kinds of evidence, tried in this order for each ``file.*`` change:

1. **Collaboration** (``collab.py``): a save of a shared document whose ``state.hash`` (the
   sha256 of the bytes written) equals the watcher's ``sha256``. Its authors are the people whose
   edits reached the document since the previous save. When a room of that path has unsaved
   edits and no save matches yet, wait up to ``SAVE_WAIT_S`` for one.
2. **Contents API** (``SessionTaps.http_tap``): a 2xx ``PUT``/``POST``/``PATCH``/``DELETE`` on
   ``/api/contents/<path>`` claims that path (and a rename's old path) for its actor for
   ``CLAIM_S``. The request is known from before it is forwarded (``begin``): the watcher can
   see the file the workspace wrote before the answer is back through the proxy, so a change
   of a path with such a request under way waits up to ``REQUEST_WAIT_S`` for its answer.
3. **A process** (a cell, a command, anything else): the candidate, unless one interviewer alone
   ran a cell or a command in the last ``ACTIVE_S`` (then theirs, ``inferred``).

``attribute`` answers the event actor (the top author) and what the payload gains: ``via``
("collaboration" | "contents" | "process"), ``authors`` ({actor: {"ins", "del"}} where known),
``doc`` ({"id", "n"}: the document and its last update in that save), ``mixed`` (the save also
holds text written outside the editor, e.g. a file rewritten on disk while open, which was
recorded as its own change before) and ``inferred``.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from workspaces.recording import events as E

__all__ = [
    "ACTIVE_S", "CLAIM_S", "REQUEST_WAIT_S", "SAVE_WAIT_S", "Attribution", "ContentsRequest",
    "Save", "top_author",
]

CLAIM_S = 10.0
ACTIVE_S = 5.0
SAVE_WAIT_S = 6.0
"""The room's new hash comes from the workspace's jupyter-server, CPU-capped in its cgroup: on a
busy host it can come seconds after the watcher saw the file (2 s was too short for a journey
beside a second test run on two cores). Only a change of a path whose room has unsaved edits
and no matching save waits."""
REQUEST_WAIT_S = 6.0
"""How long a change waits for the answer of a contents-API request under way on its path (the
workspace has written the file; its answer is on the way back through the proxy)."""
SAVE_KEEP_S = 120.0
MAX_SAVES = 500
MAX_CLAIMS = 1000
MAX_UNDER_WAY = 200
"""Contents-API requests under way followed at once per session (past it, one claims nothing)."""
VIA_COLLABORATION = "collaboration"
VIA_CONTENTS = "contents"
VIA_PROCESS = "process"


@dataclass(frozen=True, slots=True)
class Save:
    """A completed save of a collaborative document (its new ``state.hash``)."""

    path: str
    sha256: str
    authors: dict[str, dict[str, int]]
    doc_id: int
    n: int
    at: float
    mixed: bool = False
    """The saved bytes also hold text the server put in the document itself since the last
    save (a file rewritten on disk and reloaded): the authors typed only their counts of it."""


@dataclass(slots=True)
class _Claim:
    actor: str
    at: float
    method: str
    began: float
    """When its request was sent: a change seen before that is not its."""


def top_author(authors: dict[str, dict[str, int]]) -> str:
    """The author with the most characters inserted and deleted (ties: the first seen)."""
    return max(authors, key=lambda a: authors[a].get("ins", 0) + authors[a].get("del", 0))


PendingSaves = Callable[[str], Iterable[asyncio.Event]]
"""path → the save events of the rooms of that path that have unsaved edits."""
SaveByContent = Callable[[str, str], bool]
"""(path, sha256) → whether a room of that path with unsaved edits holds exactly those bytes
(its save is then closed, as ``saved``)."""


@dataclass(eq=False)
class Attribution:
    """The claims of one session (see the module doc). ``clock``: monotonic seconds."""

    pending_saves: PendingSaves = field(default=lambda path: ())
    save_by_content: SaveByContent = field(default=lambda path, sha256: False)
    clock: Callable[[], float] = field(default=time.monotonic)
    _claims: dict[str, _Claim] = field(default_factory=dict)
    _saves: deque[Save] = field(default_factory=lambda: deque(maxlen=MAX_SAVES))
    _active: dict[str, float] = field(default_factory=dict)
    _under_way: dict[str, list[ContentsRequest]] = field(default_factory=dict)

    # -- evidence -----------------------------------------------------------------------------

    def begin(self, path: str, actor: str, method: str) -> ContentsRequest | None:
        """A contents-API request of ``actor`` on ``path`` is about to be forwarded; it claims
        the path once it is answered with a 2xx (``ContentsRequest.done``)."""
        if not path and method != "POST" or \
                sum(map(len, self._under_way.values())) >= MAX_UNDER_WAY:
            return None
        request = ContentsRequest(self, path, actor, method, self.clock())
        self._under_way.setdefault(path, []).append(request)
        return request

    def _ended(self, request: ContentsRequest, ok: bool) -> None:
        waiting = self._under_way.get(request.path, [])
        if request in waiting:
            waiting.remove(request)
        if not waiting:
            self._under_way.pop(request.path, None)
        if ok:  # it wrote, made, renamed or deleted its path (a POST: a file in that folder)
            if len(self._claims) >= MAX_CLAIMS:
                self._forget()
            self._claims[request.path] = _Claim(request.actor, self.clock(), request.method,
                                                request.began)
        request.ended.set()

    def saved(self, save: Save) -> None:
        self._saves.append(save)

    def active(self, actor: str) -> None:
        """``actor`` ran a cell or a command just now."""
        self._active[actor] = self.clock()

    def _forget(self) -> None:
        now = self.clock()
        for path, claim in list(self._claims.items()):
            if now - claim.at > CLAIM_S:
                del self._claims[path]

    # -- the answer -----------------------------------------------------------------------------

    async def attribute(self, path: str, sha256: str = "",
                        old_path: str = "") -> tuple[str, dict[str, Any]]:
        """The actor of a change of ``path`` (now holding ``sha256``, if known) and the payload
        fields that say why."""
        seen = self.clock()  # the windows below count from the change, not from a wait's end
        if sha256:
            save = self._save_of(path, sha256)
            if save is None and self.save_by_content(path, sha256):
                save = self._save_of(path, sha256)
            if save is None:
                waits = list(self.pending_saves(path))
                if waits:
                    await _wait(waits, SAVE_WAIT_S, first=True)
                    save = self._save_of(path, sha256)
            if save is not None:
                why: dict[str, Any] = {"via": VIA_COLLABORATION, "authors": save.authors,
                                       "doc": {"id": save.doc_id, "n": save.n}}
                if save.mixed:
                    why["mixed"] = True
                return top_author(save.authors), why
        await self._answers(path, old_path, seen)
        for candidate in (path, old_path):
            claim = self._claims.get(candidate) if candidate else None
            if claim is not None and _covers(claim, seen):
                return claim.actor, {"via": VIA_CONTENTS, "authors": {claim.actor: {}}}
        folder = self._claims.get(path.rpartition("/")[0])  # a new file made by POST
        if folder is not None and folder.method == "POST" and _covers(folder, seen):
            return folder.actor, {"via": VIA_CONTENTS, "authors": {folder.actor: {}}}
        running = {actor for actor, at in self._active.items() if seen - at <= ACTIVE_S}
        if len(running) == 1 and (only := next(iter(running))) != E.ACTOR_CANDIDATE:
            return only, {"via": VIA_PROCESS, "inferred": True}
        return E.ACTOR_CANDIDATE, {"via": VIA_PROCESS}

    async def _answers(self, path: str, old_path: str, seen: float) -> None:
        """Wait for the answers of the contents-API requests under way that could have made
        this change (sent before it was seen: on the path, on a rename's old path, or a
        ``POST`` to the path's folder), each at most until ``REQUEST_WAIT_S`` after it was
        sent: a request kept open (a body sent slowly) holds up the session's file events
        once, not once per change."""
        folder = self._under_way.get(path.rpartition("/")[0], ())
        under_way = [*self._under_way.get(path, ()),
                     *(self._under_way.get(old_path, ()) if old_path else ()),
                     *(request for request in folder if request.method == "POST")]
        now = self.clock()
        due = [r for r in under_way if r.began <= seen and r.began + REQUEST_WAIT_S > now]
        if due:
            last = max(r.began for r in due) + REQUEST_WAIT_S
            await _wait([r.ended for r in due], last - now, first=False)

    def _save_of(self, path: str, sha256: str) -> Save | None:
        """The newest recent save of ``path`` (or of a document whose path is not known yet)
        with that hash and at least one author."""
        now = self.clock()
        for save in reversed(self._saves):
            if now - save.at > SAVE_KEEP_S:
                break
            if save.sha256 == sha256 and save.authors and save.path in (path, ""):
                return save
        return None


def _covers(claim: _Claim, seen: float) -> bool:
    """Whether a claim can be what made a change seen at ``seen``."""
    return claim.began <= seen and seen - claim.at <= CLAIM_S


async def _wait(events: Iterable[asyncio.Event], within_s: float, *, first: bool) -> None:
    """Until one (``first``) or all of ``events`` are set, at most ``within_s`` seconds; the
    waiting tasks are cancelled however it ends (the watcher itself cancelled, too)."""
    if within_s <= 0:
        return
    tasks = [asyncio.ensure_future(event.wait()) for event in events]
    if not tasks:
        return
    try:
        await asyncio.wait(tasks, timeout=within_s, return_when=asyncio.FIRST_COMPLETED
                           if first else asyncio.ALL_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


@dataclass(eq=False, slots=True)
class ContentsRequest:
    """A contents-API request under way (``Attribution.begin``), told its answer by the proxy
    (``workspaces.upstream.HttpCall``)."""

    attribution: Attribution = field(repr=False)
    path: str
    actor: str
    method: str
    began: float
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    async def done(self, status: int, error: str) -> None:
        self.attribution._ended(self, 200 <= status < 300)

    def abandon(self) -> None:
        self.attribution._ended(self, False)
