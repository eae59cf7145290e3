"""The session layer's long-lived resources: provisioner, session manager, background loops."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from server.http.keys import DB, SETTINGS
from server.sessions.keys import SESSIONS
from server.sessions.service import SessionManager
from server.settings import Settings
from server.tasks.service import task_store
from workspaces.provisioner import Provisioner
from workspaces.upstream import UpstreamClients

log = logging.getLogger(__name__)
WORKSPACE_APP = web.AppKey("workspace_app", web.Application)
PROVISIONER = web.AppKey("provisioner", Provisioner)


def make_provisioner(settings: Settings) -> Provisioner:
    from workspaces.limits import Limits, MiB
    from workspaces.local import LocalProvisioner

    if settings.unsafe_no_sandbox:
        log.warning("UNSAFE: workspaces run WITHOUT the bubblewrap sandbox (--unsafe-no-sandbox)")
    if settings.unsafe_no_disk_image:
        log.warning("UNSAFE: workspaces run WITHOUT their disk image: disk use is only polled "
                    "(--unsafe-no-disk-image)")
    if settings.unsafe_no_cgroups:
        log.warning("UNSAFE: workspaces and check runs run WITHOUT the memory and pids cgroups "
                    "(--unsafe-no-cgroups)")
    limits = Limits(disk_bytes=settings.workspace_disk_mib * MiB,
                    inodes=settings.workspace_max_files)
    return LocalProvisioner(
        settings.data_dir / "workspaces", sandbox=not settings.unsafe_no_sandbox,
        limits=limits, disk_image=not settings.unsafe_no_disk_image,
        require_cgroups=not settings.unsafe_no_cgroups,
    )


async def sessions_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    manager = SessionManager(
        settings, app[DB], app.get(PROVISIONER) or make_provisioner(settings),
        task_store(settings), UpstreamClients(),
        settings.envs_root,
    )
    app[SESSIONS] = manager
    await manager.recover()
    deadlines = asyncio.create_task(manager.deadline_loop())
    warm = asyncio.create_task(manager.warm_up())
    yield
    for task in (deadlines, warm):
        task.cancel()
    await asyncio.gather(deadlines, warm, return_exceptions=True)
    await manager.close()
