"""The warm pool: workspaces started ahead of time, per task environment, so that a session
starts by claiming one (a database claim, then the task's files are copied in) instead of
waiting for a jupyter-server to boot. The session lifecycle (``workspaces/lifecycle.py``) owns
one and tells it when to refill; warm workspaces are ``warm`` rows in the workspace records.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path

from common.db import Database
from workspaces import records
from workspaces.provisioner import Provisioner, WorkspaceInfo

log = logging.getLogger(__name__)
StartWorkspace = Callable[[Path, str | None], Awaitable[WorkspaceInfo]]
"""Starts a fresh workspace on an environment's Python (a sandbox uid of its own), for a
session (its id) or for the pool (None): the lifecycle's admission gate puts refills last."""


def env_key(env_python: Path) -> str:
    """The environment a workspace runs on, as its record names it (the environment folder)."""
    return env_python.parent.parent.name


class WarmPool:
    """Up to ``size`` ready workspaces per environment (none when ``size`` < 1)."""

    def __init__(self, db: Database, provisioner: Provisioner, size: int,
                 start: StartWorkspace) -> None:
        self.db = db
        self.provisioner = provisioner
        self.size = size
        self._start = start
        self._warm: dict[str, list[WorkspaceInfo]] = {}
        self._filling: dict[str, asyncio.Task[None]] = {}
        self._background: set[asyncio.Task[None]] = set()

    def ready(self) -> int:
        """Warm workspaces ready now, over all environments."""
        return sum(len(infos) for infos in self._warm.values())

    async def _fill(self, env_python: Path) -> None:
        key = str(env_python)
        pool = self._warm.setdefault(key, [])
        while len(pool) < self.size:
            try:
                info = await self._start(env_python, None)
            except Exception:
                log.exception("could not start a warm workspace for %s", env_python)
                return
            await self.db.write(
                partial(records.insert, info=info, env_key=env_key(env_python), state="warm")
            )
            pool.append(info)

    def refill(self, env_python: Path) -> None:
        """Fill the environment's pool in the background (unless a fill is running)."""
        key = str(env_python)
        running = self._filling.get(key)
        if self.size < 1 or (running is not None and not running.done()):
            return
        task = asyncio.create_task(self._fill(env_python))
        self._filling[key] = task
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def claim(self, env_python: Path, session_id: str) -> WorkspaceInfo:
        """A warm workspace for the session, else a freshly started one (a ``live`` row)."""
        pool = self._warm.get(str(env_python), [])
        while pool:
            info = pool.pop(0)
            claimed = await self.db.write(
                partial(records.claim, workspace_id=info.workspace_id, session_id=session_id)
            )
            if claimed:
                return info
        info = await self._start(env_python, session_id)
        await self.db.write(
            lambda d: records.insert(d, info, env_key(env_python), "live", session_id)
        )
        return info

    async def cancel_fills(self) -> None:
        """Stop the fills under way (a workspace being started is not added)."""
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)

    async def close(self) -> None:
        """Stop every warm workspace and remove its folder (after ``cancel_fills``)."""
        for infos in self._warm.values():
            for info in infos:
                await self.discard(info)
        self._warm.clear()

    async def recover(self) -> None:
        """After a restart: the warm workspaces of the last run are removed (never handed out)."""
        for row in await self.db.read(lambda d: records.in_state(d, "warm")):
            await self.discard(records.info_from_row(row))

    async def discard(self, info: WorkspaceInfo) -> None:
        """Stop a warm workspace, remove its folder and mark it stopped."""
        try:
            await self.provisioner.stop(info)
        except Exception:
            log.exception("could not stop warm workspace %s", info.workspace_id)
        shutil.rmtree(info.root, ignore_errors=True)
        await self.db.write(
            partial(records.set_state, workspace_id=info.workspace_id, state="stopped"))
