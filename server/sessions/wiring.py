"""The session layer's long-lived resources: provisioner, recorder, session manager, background
loops; every engine is built here with what it needs (nothing is attached afterwards)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from functools import partial
from typing import Any

from aiohttp import web

from scoring import session_scoring
from server.http.keys import DB, SETTINGS
from server.people import accounts as people
from server.recording.keys import RECORDING
from server.sessions import scheduling
from server.sessions.keys import SESSIONS
from server.settings import Settings
from server.tasks.service import sandbox_for, task_store
from workspaces.admission import AdmissionGate
from workspaces.grading.hidden import check_session, visible_tests
from workspaces.lifecycle import SessionManager
from workspaces.provisioner import Provisioner
from workspaces.recording.recorder import RecordingService
from workspaces.upstream import LiveUpstreams, UpstreamClients

log = logging.getLogger(__name__)
WORKSPACE_APP = web.AppKey("workspace_app", web.Application)
PROVISIONER = web.AppKey("provisioner", Provisioner)
CHECKS_STOP_WAIT_S = 60.0
"""At shutdown, how long session check runs cancelled by the recorder's close get to end and
release their folders (their threads go on; the event loop's executor waits for them at exit
anyway). Task imports' runs use a sandbox of their own and are not waited for here."""


def make_provisioner(settings: Settings) -> Provisioner:
    from workspaces.local import LocalProvisioner
    from workspaces.sandbox.limits import Limits, MiB

    if settings.unsafe_no_sandbox:
        log.warning("UNSAFE: workspaces run WITHOUT the bubblewrap sandbox (--unsafe-no-sandbox)")
    if settings.unsafe_no_disk_image:
        log.warning("UNSAFE: workspaces run WITHOUT their disk image: disk use is only polled "
                    "(--unsafe-no-disk-image)")
    if settings.unsafe_no_cgroups:
        log.warning("UNSAFE: workspaces and check runs run WITHOUT the memory and pids cgroups "
                    "(--unsafe-no-cgroups)")
    limits = Limits(disk_bytes=settings.workspace_disk_mib * MiB,
                    inodes=settings.workspace_max_files, cpus=settings.workspace_cpus)
    return LocalProvisioner(
        settings.data_dir / "workspaces", sandbox=not settings.unsafe_no_sandbox,
        limits=limits, disk_image=not settings.unsafe_no_disk_image,
        require_cgroups=not settings.unsafe_no_cgroups,
    )


def admission_gate(settings: Settings, provisioner: Provisioner) -> AdmissionGate:
    """Cold starts: ``max_parallel_starts`` at once, each needing room for a workspace at the
    memory limit its sandbox sets (a provisioner without limits: the default ones)."""
    from workspaces.sandbox.limits import Limits

    limits = getattr(provisioner, "limits", None)
    memory = limits.memory_bytes if isinstance(limits, Limits) else Limits().memory_bytes
    return AdmissionGate(settings.max_parallel_starts, memory_per_start=memory,
                         max_wait_s=settings.start_queue_timeout_seconds)


def _user_id_of(d: Any, email: str) -> int:
    return people.find_user(d, email).id


async def sessions_ctx(app: web.Application) -> AsyncIterator[None]:
    """The recorder, then the session manager built with the recorder's lifecycle hook (the
    proxy takes the recorder's taps from ``RECORDING``); both share the table of live
    upstreams and their clients. Start-up: the manager recovers (unrecorded: the recorder is
    not started yet), then the recorder starts (its reconcile picks up what recovery restored
    or ended), then the deadline loop and the warm pool run; at shutdown the recorder closes
    before the manager."""
    settings, db = app[SETTINGS], app[DB]
    store = task_store(settings)
    sandbox = sandbox_for(settings)
    upstreams: LiveUpstreams = {}
    clients = UpstreamClients()
    recorder = RecordingService(
        db, store, settings.data_dir, upstreams=upstreams, clients=clients,
        user_id_of=_user_id_of,
        hidden_checks=partial(check_session, timeout_s=settings.check_timeout_seconds, store=store,
                              envs_root=settings.envs_root, sandbox=sandbox),
        visible_tests=partial(visible_tests, timeout_s=settings.check_timeout_seconds, store=store,
                              envs_root=settings.envs_root, sandbox=sandbox),
        continuous_checks=settings.continuous_checks,
    )
    provisioner = app.get(PROVISIONER) or make_provisioner(settings)
    manager = SessionManager(
        db, provisioner, store, settings.envs_root,
        uid_base=settings.sandbox_uid_base, warm_pool_size=settings.warm_pool_size,
        workspace_url=settings.workspace_url, end=scheduling.end,
        on_start=session_scoring.repin_at_start, upstreams=upstreams,
        clients=clients, hooks=[recorder.on_lifecycle], first_cell=recorder.first_cell,
        gate=admission_gate(settings, provisioner),
    )
    app[RECORDING] = recorder
    app[SESSIONS] = manager
    await manager.recover()
    await recorder.start()
    deadlines = asyncio.create_task(manager.deadline_loop())
    warm = asyncio.create_task(manager.warm_up())
    yield
    await recorder.close()
    for task in (deadlines, warm):
        task.cancel()
    await asyncio.gather(deadlines, warm, return_exceptions=True)
    await manager.close()
    # A check run the recorder's close cancelled goes on in its thread until its folder is
    # released: waited for, so that nothing is left in the data dir once this returns.
    if not await asyncio.to_thread(sandbox.wait_idle, CHECKS_STOP_WAIT_S):
        log.warning("a check run still runs after %.0f s; its folder is released when it ends, "
                    "or by the next start's sweep", CHECKS_STOP_WAIT_S)
