"""``LocalProvisioner``: one sandboxed jupyter-server per workspace on this machine.

Each workspace lives in ``root/<id>/``: ``work`` (the candidate's folder, ``/workspace``), ``run``
(root-owned, ``/run/pairlab``: the socket's folder, locked once the server has bound, kernel IPC
and runtime files, server state), ``config`` (root-owned,
read-only inside) and ``server.log`` (host-only, written by pairlab from the server's output with
the token scrubbed). See ``sandbox/bwrap.py`` for what the sandbox enforces and
``sandbox/limits.py`` for the resource limits. Starting fails closed: no sandbox, no server
(``sandbox=False`` is a loud development mode that still drops to the workspace's uid).

While a workspace can run, ``root/<id>`` is the mount point of its own ext4 image
(``root/.images/<id>.ext4``, ``sandbox/mounts.py``): its disk and inode limit, enforced by the
kernel. It is mounted before the folders are made (so ``work``, ``run`` and everything the uid can
write are on it) and stays mounted across a crash and a pairlab restart (``close``; ``restore``
mounts it again if the machine rebooted). ``stop`` ends it: the folder's files are copied out
(sparse files stay sparse) onto a plain folder that takes the mount point's place, the image is
unmounted (which frees its loop device) and deleted. So a finished workspace's final state
(snapshots, hidden checks, export, the read-only freeze) is an ordinary folder at the same path.
``sweep`` does the same at start-up for every image no running workspace uses. Root copies out only
while no process of the workspace's uid runs (else the image stays mounted, its files readable in
place, until a later sweep). A move into a new image that did not finish (pairlab killed during it)
is rolled back from ``.settling-<id>-in``, the whole copy, by the next mount and by the sweep. No
image, no start (``disk_image=False`` is a loud development mode: disk use is then polled).
"""

from __future__ import annotations

import asyncio
import logging
import os
import pwd
import re
import secrets
import shutil
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from workspaces import jupyter_config as jc
from workspaces.errors import (
    SandboxUnavailable,
    WorkspaceError,
    WorkspaceInvalid,
    WorkspaceNotFound,
    WorkspaceStartFailed,
)
from workspaces.provisioner import Status, WorkspaceInfo, WorkspaceSpec
from workspaces.sandbox import mounts
from workspaces.sandbox.bwrap import (
    CONFIG,
    RUN,
    TMP,
    WORKSPACE,
    HostPaths,
    OptionsPipe,
    Tools,
    copy_in_as,
    find_tools,
    freeze,
    lock_socket_dir,
    prepare_host,
    probe_tools,
    workspace_command,
)
from workspaces.sandbox.cgroups import (
    Cgroups,
    CgroupSet,
    kill_uid,
    pid_namespace,
    pids_of_uid,
    sandboxed_pids_of_uid,
    signal_if_uid,
    top_process_of_uid,
)
from workspaces.sandbox.limits import Limits, watch_disk
from workspaces.sandbox.peer import Peer
from workspaces.sandbox.permissions import remove_tree

log = logging.getLogger(__name__)
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
SOCKET_PATH_MAX = 107
STOPPED_MARKER = "stopped"
IMAGES = ".images"
SETTLING = ".settling-"
COPY_TIMEOUT_S = 600.0
READY_POLL_S = 0.005
"""How often a starting server is checked (socket there? ``/api/status`` 200?): each check is a
``stat`` or one request over the socket, so ~200 a second cost little CPU."""
CrashHandler = Callable[[WorkspaceInfo, int], None]


@dataclass
class _Live:
    spec: WorkspaceSpec
    info: WorkspaceInfo
    host: HostPaths
    process: asyncio.subprocess.Process
    log: jc.ServerLog
    cgroups: CgroupSet | None
    pidns: int | None = None
    """The sandbox's pid namespace (known once its server runs; None without the sandbox)."""
    exited: asyncio.Event = field(default_factory=asyncio.Event)
    returncode: int | None = None
    stopping: bool = False
    stopped: bool = False
    monitor: asyncio.Task[None] | None = None


class LocalProvisioner:
    """Start, watch, stop and restore sandboxed jupyter-servers (see the module docstring).

    ``start_timeout_s`` bounds the time until the server has bound its socket (sandbox built,
    Python and the extensions loaded); ``ready_timeout_s`` the time after that until
    ``/api/status`` answers. ``on_crash(info, returncode)`` is called when a server exits
    without ``stop``; ``wait_exit(info)`` is the awaitable form.
    """

    def __init__(
        self,
        root: Path,
        *,
        sandbox: bool = True,
        limits: Limits | None = None,
        start_timeout_s: float = 90.0,
        ready_timeout_s: float = 30.0,
        stop_timeout_s: float = 3.0,
        bwrap: str = "bwrap",
        cgroups: Cgroups | None = None,
        on_crash: CrashHandler | None = None,
        disk_image: bool = True,
        require_cgroups: bool = True,
    ) -> None:
        self.root = Path(os.path.abspath(root))
        self.sandbox = sandbox
        self.limits = limits or Limits()
        self.start_timeout_s = start_timeout_s
        self.ready_timeout_s = ready_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.bwrap = bwrap
        self.cgroups = cgroups or Cgroups()
        self.on_crash = on_crash
        self.disk_image = disk_image
        self.require_cgroups = require_cgroups
        self._live: dict[str, _Live] = {}
        self._tools: Tools | str | None = None
        self._probe_lock = asyncio.Lock()

    # ---- the sandbox probe ------------------------------------------------------------

    def _probe(self) -> Tools | str:
        if self.require_cgroups and (missing := self.cgroups.missing()) is not None:
            return f"{missing} (the memory and pids cgroups are required; unsafe_no_cgroups " \
                   "is the development opt-out)"
        if (no_cpu := self.cgroups.cpu_missing()) is not None:  # a warning: see cgroups.py
            log.warning("%s", no_cpu)
        if self.sandbox:
            return probe_tools(self.bwrap)
        if os.geteuid() != 0:
            return "pairlab must run as root to start workspaces as their own uid"
        return find_tools(None)

    async def check(self) -> str | None:
        """``None`` if workspaces can be started here, else why not (probed once)."""
        async with self._probe_lock:
            if self._tools is None:
                self._tools = await asyncio.to_thread(self._probe)
        return self._tools if isinstance(self._tools, str) else None

    async def _require_tools(self) -> Tools:
        reason = await self.check()
        if reason is not None or not isinstance(self._tools, Tools):
            raise SandboxUnavailable(f"workspaces cannot be started safely: {reason}")
        return self._tools

    # ---- start / restore --------------------------------------------------------------

    def _validate(self, spec: WorkspaceSpec) -> None:
        if not ID_PATTERN.fullmatch(spec.workspace_id):
            raise WorkspaceInvalid(f"invalid workspace id {spec.workspace_id!r}")
        if spec.uid < 1000 or spec.uid >= 2**31:
            raise WorkspaceInvalid(f"uid {spec.uid} is not an unprivileged uid (1000 or more)")
        try:
            owner = pwd.getpwuid(spec.uid).pw_name
        except KeyError:
            owner = None
        if owner is not None:
            raise WorkspaceInvalid(f"uid {spec.uid} belongs to the host user {owner!r}")
        if not Path(spec.env_python).is_absolute() or not Path(spec.env_python).exists():
            raise WorkspaceInvalid(f"the task environment's Python {spec.env_python} is missing")
        socket = HostPaths.of(self.root, spec.workspace_id).socket
        if len(str(socket).encode()) > SOCKET_PATH_MAX:
            raise WorkspaceInvalid(
                f"the socket path {socket} is longer than {SOCKET_PATH_MAX} bytes; "
                "use a shorter data folder"
            )
        for other in self._live.values():
            if other.spec.workspace_id != spec.workspace_id and other.spec.uid == spec.uid \
                    and other.returncode is None:
                raise WorkspaceInvalid(f"uid {spec.uid} is already used by another workspace")

    async def start(self, spec: WorkspaceSpec) -> WorkspaceInfo:
        self._validate(spec)
        tools = await self._require_tools()
        current = self._live.get(spec.workspace_id)
        if current is not None and current.returncode is None:
            raise WorkspaceInvalid(f"workspace {spec.workspace_id} is already running")
        busy = await asyncio.to_thread(pids_of_uid, spec.uid)
        if busy:
            raise WorkspaceInvalid(f"uid {spec.uid} still runs {len(busy)} processes")
        return await self._launch(spec, tools)

    async def restore(self, info: WorkspaceInfo) -> WorkspaceInfo:
        """Start the workspace again on its folders (new token); stale processes die first."""
        current = self._live.get(info.workspace_id)
        spec = current.spec if current is not None else WorkspaceSpec(
            info.workspace_id, info.uid, info.env_python)
        self._validate(spec)
        tools = await self._require_tools()
        if current is not None and current.returncode is None:
            await self._terminate(current)
        groups = current.cgroups if current is not None else None
        groups = groups or await asyncio.to_thread(self.cgroups.existing, spec.workspace_id)
        survivors = await asyncio.to_thread(
            _kill_workspace, spec.uid, groups, current.pidns if current is not None else None)
        if survivors:
            raise WorkspaceError(f"stale processes of workspace {spec.workspace_id} could not "
                                 "be killed")
        busy = await asyncio.to_thread(pids_of_uid, spec.uid)
        if busy:  # not the workspace's (those are gone): never killed, never shared
            raise WorkspaceInvalid(f"uid {spec.uid} still runs {len(busy)} processes outside "
                                   f"workspace {spec.workspace_id}")
        return await self._launch(spec, tools)

    def _inside(self, host: HostPaths) -> jc.Inside:
        if self.sandbox:
            return jc.Inside(WORKSPACE, RUN, CONFIG, TMP)
        return jc.Inside(host.work, host.run, host.config, host.run / "tmp")

    # ---- the disk image -------------------------------------------------------------------

    def image_path(self, workspace_id: str) -> Path:
        return self.root / IMAGES / f"{workspace_id}.ext4"

    def _mount(self, workspace_id: str) -> None:
        """Mount the workspace's image at ``root/<id>`` (made on first use). A plain folder
        already there (the final state of an earlier run, or an older pairlab's) is moved into
        the new image, so the workspace never runs outside it."""
        base = self.root / workspace_id
        self._recover_move_in(workspace_id)
        if mounts.is_mount(base):
            return  # still mounted: a crash, or pairlab restarted on the same boot
        image = self.image_path(workspace_id)
        self.root.mkdir(mode=0o711, parents=True, exist_ok=True)
        old: Path | None = None
        if not image.exists():
            if base.is_dir() and not base.is_symlink() and any(base.iterdir()):
                old = self.root / f"{SETTLING}{workspace_id}-in"
                remove_tree(old)
                base.rename(old)
            mounts.make_image(image, self.limits.disk_bytes, self.limits.inodes,
                              mounts.ROOT_RESERVE_BYTES)
        base.mkdir(mode=0o711, exist_ok=True)
        mounts.mount_image(image, base)
        if old is not None:
            try:
                _copy_all(old, base)
            except OSError:
                self._recover_move_in(workspace_id)
                raise
            moved = self.root / f"{SETTLING}{workspace_id}-moved"
            old.rename(moved)  # the image is whole from here on: a crash only leaves garbage
            remove_tree(moved)

    def _recover_move_in(self, workspace_id: str) -> None:
        """Undo a move into a new image that did not finish (a failed copy, or pairlab killed
        during it): ``.settling-<id>-in`` is then the only whole copy, so the image (mounted
        or not) goes and that folder is put back; ``.settling-<id>-moved`` (copied, being
        removed) is only removed."""
        remove_tree(self.root / f"{SETTLING}{workspace_id}-moved")
        old = self.root / f"{SETTLING}{workspace_id}-in"
        if not old.is_dir() or old.is_symlink():
            return
        base = self.root / workspace_id
        if mounts.is_mount(base):
            mounts.unmount(base)
        self.image_path(workspace_id).unlink(missing_ok=True)
        if base.is_dir() and not base.is_symlink():
            base.rmdir()  # the empty mount point; OSError if anything else is there
        old.rename(base)
        log.warning("workspace %s: an unfinished move into its disk image was rolled back",
                    workspace_id)

    def _settle(self, workspace_id: str) -> None:
        """Make ``root/<id>`` a plain folder with the image's files, then unmount and delete the
        image (its loop device goes with the unmount). Nothing of the workspace may run."""
        base = self.root / workspace_id
        image = self.image_path(workspace_id)
        self._recover_move_in(workspace_id)
        if not image.exists():
            if mounts.is_mount(base):
                mounts.unmount(base)
            return
        mounted_here = not mounts.is_mount(base)
        if mounted_here:
            base.mkdir(mode=0o711, parents=True, exist_ok=True)
            mounts.mount_image(image, base, read_only=True)
        owner = _work_owner(base)
        if owner is not None and (running := _still_running(owner)):
            if mounted_here:  # read-only: a later start must mount it writable
                mounts.unmount(base)
            raise OSError(f"{len(running)} processes of its uid {owner} still run, and root "
                          "copies nothing they could change under it")
        out = self.root / f"{SETTLING}{workspace_id}"
        remove_tree(out)
        try:
            _copy_all(base, out)
            mounts.unmount(base)
        except OSError:
            remove_tree(out)  # the files stay readable where they are, on the image
            raise
        os.rename(out, base)  # over the now empty mount point
        image.unlink()

    async def _settle_or_log(self, workspace_id: str) -> None:
        """``_settle``; if that fails (the host's disk is full, say) the image stays mounted,
        so its files are still read where they are, and ``sweep`` tries again at start-up."""
        try:
            await asyncio.to_thread(self._settle, workspace_id)
        except OSError as exc:
            log.error("workspace %s: its disk image stays mounted, the copy-out failed: %s",
                      workspace_id, exc)

    def _settle_all(self, keep: set[str]) -> list[str]:
        settled = []
        images = self.root / IMAGES
        ids = {p.name.removesuffix(".ext4") for p in images.glob("*.ext4")} if \
            images.is_dir() else set()
        ids |= {p.name for p in mounts.mount_points() if p.parent == self.root}
        ids |= {p.name.removeprefix(SETTLING).removesuffix("-in")
                for p in self.root.glob(f"{SETTLING}*-in")} if self.root.is_dir() else set()
        for workspace_id in sorted(ids - keep):
            try:
                self._settle(workspace_id)
                settled.append(workspace_id)
            except OSError as exc:
                log.error("workspace %s: its disk image could not be released: %s",
                          workspace_id, exc)
        return settled

    async def sweep(self) -> list[str]:
        """At start-up, after the live workspaces were restored: release every image (and
        mount) no workspace running here uses, keeping its files as a plain folder."""
        keep = {w for w, live in self._live.items() if live.returncode is None}
        settled = await asyncio.to_thread(self._settle_all, keep)
        if settled:
            log.info("released the disk images of %d stale workspaces: %s", len(settled),
                     ", ".join(settled))
        return settled

    async def _mount_or_fail(self, spec: WorkspaceSpec) -> None:
        if not self.disk_image:
            log.warning("UNSAFE: workspace %s has no disk image: its disk use is only polled "
                        "every %.0f s and its files are not limited (development mode)",
                        spec.workspace_id, self.limits.disk_check_interval_s)
            return
        try:
            await asyncio.to_thread(self._mount, spec.workspace_id)
        except OSError as exc:
            raise WorkspaceStartFailed(
                f"workspace {spec.workspace_id}: its disk image (the disk and file limit) "
                f"could not be made or mounted: {exc}") from None

    def _prepare(self, spec: WorkspaceSpec, host: HostPaths, inside: jc.Inside) -> None:
        (host.base / STOPPED_MARKER).unlink(missing_ok=True)
        prepare_host(host, spec.uid, scratch=not self.sandbox)
        jc.write_config_dir(host.config, spec.workspace_id, spec.uid,
                            _absolute(spec.env_python), spec.display_name, inside,
                            spare_kernel=spec.spare_kernel)

    def _argv(self, tools: Tools, spec: WorkspaceSpec, host: HostPaths, inside: jc.Inside,
              groups: CgroupSet | None, pipe: OptionsPipe) -> tuple[list[str], bytes]:
        memory_rlimit = groups is None or not groups.has_memory
        if memory_rlimit:
            log.warning("UNSAFE: no memory and pids cgroups for workspace %s: only RLIMIT_AS "
                        "per process (unsafe_no_cgroups, development mode)", spec.workspace_id)
        return workspace_command(
            tools, sandboxed=self.sandbox, host=host, env_python=_absolute(spec.env_python),
            limits=self.limits, protected=self.root, uid=spec.uid,
            procs_files=groups.procs_files if groups else [], memory_rlimit=memory_rlimit,
            server=jc.server_argv(sys.executable, spec.workspace_id, inside),
            args_fd=pipe.read_fd, seccomp_fd=pipe.seccomp_fd)

    async def _launch(self, spec: WorkspaceSpec, tools: Tools) -> WorkspaceInfo:
        if not self.sandbox:
            log.warning("UNSAFE: workspace %s starts WITHOUT the bubblewrap sandbox "
                        "(development mode)", spec.workspace_id)
        host = HostPaths.of(self.root, spec.workspace_id)
        inside = self._inside(host)
        await self._mount_or_fail(spec)
        try:
            return await self._launch_mounted(spec, tools, host, inside)
        except BaseException:
            if self.disk_image:  # nothing runs: keep the files, free the loop device
                await self._settle_or_log(spec.workspace_id)
            raise

    async def _launch_mounted(self, spec: WorkspaceSpec, tools: Tools, host: HostPaths,
                              inside: jc.Inside) -> WorkspaceInfo:
        await asyncio.to_thread(self._prepare, spec, host, inside)
        groups = await asyncio.to_thread(self.cgroups.create, spec.workspace_id, self.limits) \
            if self.cgroups.available() else None
        token = secrets.token_hex(32)
        env_python = _absolute(spec.env_python)
        server_log = jc.ServerLog(host.log, token)
        pipe = OptionsPipe()
        try:
            argv, options = self._argv(tools, spec, host, inside, groups, pipe)
            pipe.send(options)
            process = await asyncio.create_subprocess_exec(
                *argv, env=jc.server_env(token, env_python, inside),
                cwd="/", stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT, start_new_session=True,
                pass_fds=pipe.fds,
            )
        except BaseException:
            server_log.close()
            if groups is not None:
                await asyncio.to_thread(groups.remove)
            raise
        finally:
            pipe.close()
        info = WorkspaceInfo(spec.workspace_id, spec.uid, spec.env_python, host.work,
                             host.socket, token, process.pid)
        live = _Live(spec, info, host, process, server_log, groups)
        self._live[spec.workspace_id] = live
        live.monitor = asyncio.create_task(self._monitor(live))
        try:
            await self._wait_ready(live)
        except BaseException:
            live.stopping = True
            await self._terminate(live)
            await self._cleanup(live.spec.uid, live.host, live.cgroups, live.pidns)
            self._live.pop(spec.workspace_id, None)
            raise
        if self.sandbox and live.info.server is not None:
            # The server found once the socket was bound, whose socket then answered (checked
            # with SO_PEERCRED): no second walk of /proc before the start returns.
            live.pidns = pid_namespace(live.info.server.pid)
        log.info("workspace %s is ready (uid %d, pid %d)", spec.workspace_id, spec.uid,
                 process.pid)
        return live.info

    async def _wait_exit_or(self, live: _Live, delay: float) -> bool:
        """Wait up to ``delay`` seconds; True if the server exited meanwhile."""
        try:
            await asyncio.wait_for(live.exited.wait(), timeout=delay)
        except TimeoutError:
            return False
        return True

    def _failed(self, live: _Live, what: str) -> WorkspaceStartFailed:
        tail = live.log.excerpt(live.spec.workspace_id)
        return WorkspaceStartFailed(
            f"workspace {live.spec.workspace_id}: {what}; last lines of its log:\n{tail}"
        )

    async def _wait_ready(self, live: _Live) -> None:
        """First the socket (started; its folder is then locked and the server's pid noted in
        ``live.info.server``), then ``/api/status`` answering 200 (ready) from that server.

        Both are polled at a short fixed interval (``READY_POLL_S``), not with back-off, so a
        ready server is noticed within a few milliseconds: the socket check is one ``stat``, and
        jupyter-server binds its socket just before it starts serving, so the status request
        made once it is there usually waits in the socket's backlog and is answered by the
        server's first turn of its loop."""
        socket, token, uid = live.info.socket_path, live.info.token, live.spec.uid

        async def bound() -> str | None:
            return await asyncio.to_thread(lock_socket_dir, live.host, uid)

        async def answers() -> str | None:
            return await jc.api_status(socket, live.spec.workspace_id, token, live.info.server)

        await self._poll(live, self.start_timeout_s, "start", bound)
        server = await asyncio.to_thread(top_process_of_uid, live.process.pid, uid)
        if server is None:
            raise self._failed(live, "the server's process could not be found")
        live.info = replace(live.info, server=Peer(server, uid))
        await self._poll(live, self.ready_timeout_s, "answer", answers)

    async def _poll(self, live: _Live, limit_s: float, what: str,
                    check: Callable[[], Awaitable[str | None]]) -> None:
        """Until ``check()`` returns None: every ``READY_POLL_S``, with a deadline and an eye on
        the process."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit_s
        while (problem := await check()) is not None:
            if live.exited.is_set():
                raise self._failed(live, f"the server exited (code {live.returncode}) before "
                                         f"it could {what}")
            if loop.time() > deadline:
                raise self._failed(live, f"the server did not {what} within {limit_s:.0f} s "
                                         f"({problem})")
            await self._wait_exit_or(live, READY_POLL_S)

    # ---- watching a running server ----------------------------------------------------

    def _over_disk_limit(self, live: _Live, used: int) -> None:
        """Kill every process of the workspace except the jupyter-server itself."""
        uid = live.spec.uid
        server = top_process_of_uid(live.process.pid, uid)
        members = live.cgroups.pids() if live.cgroups is not None else set(
            sandboxed_pids_of_uid(uid, live.pidns))
        killed = sum(signal_if_uid(pid, uid, signal.SIGKILL)
                     for pid in members if pid != server and pid != live.process.pid)
        log.warning("workspace %s uses %d bytes of disk (limit %d): killed %d processes",
                    live.spec.workspace_id, used, self.limits.disk_bytes, killed)

    async def _monitor(self, live: _Live) -> None:
        assert live.process.stdout is not None  # noqa: S101 - started with stdout=PIPE
        pump = asyncio.create_task(jc.read_output(live.process.stdout, live.log))
        watchdog = None if self.disk_image else asyncio.create_task(watch_disk(
            [live.host.work, live.host.run], self.limits,
            lambda used: self._over_disk_limit(live, used)))
        code = -1
        try:
            try:
                code = await live.process.wait()
            finally:
                if watchdog is not None:
                    watchdog.cancel()
            try:
                await asyncio.wait_for(pump, timeout=5)
            except TimeoutError:
                pass
            except Exception:
                log.exception("workspace %s: reading the server's output failed",
                              live.spec.workspace_id)
            live.log.close()
            live.returncode = code
            if not live.stopping:
                log.warning("workspace %s: jupyter-server exited unexpectedly (code %s); last "
                            "lines:\n%s", live.spec.workspace_id, code,
                            live.log.excerpt(live.spec.workspace_id, 5))
                await self._cleanup(live.spec.uid, live.host, live.cgroups, live.pidns)
                if self.on_crash is not None:
                    self.on_crash(live.info, code)
        except Exception:
            log.exception("handling the exit of workspace %s failed", live.spec.workspace_id)
        finally:  # whatever failed above, the server is gone: stop and restore must see it
            if live.returncode is None:
                live.returncode = code
            live.exited.set()

    async def wait_exit(self, info: WorkspaceInfo) -> int:
        """Return the server's exit code once it has exited (for any reason)."""
        live = self._live.get(info.workspace_id)
        if live is None:
            raise WorkspaceNotFound(f"workspace {info.workspace_id} is not started here")
        await live.exited.wait()
        assert live.returncode is not None  # noqa: S101 - set before exited
        return live.returncode

    async def status(self, info: WorkspaceInfo) -> Status:
        live = self._live.get(info.workspace_id)
        if live is not None:
            if live.returncode is None:
                return "running"
            return "stopped" if live.stopped else "crashed"
        base = self.root / info.workspace_id
        if (base / STOPPED_MARKER).exists():
            return "stopped"
        return "crashed" if base.is_dir() else "unknown"

    # ---- stop and after ---------------------------------------------------------------

    async def _terminate(self, live: _Live) -> None:
        """SIGINT → SIGTERM → SIGKILL with a wait between (as JupyterHub stops servers).

        Not ``common.processes.stop_group``, on purpose: this child is an asyncio process (the
        event loop's child watcher reaps it and ``_wait_exit_or`` awaits it, the loop never
        blocks), it has no deadline (it runs until stopped), the polite signals go to the
        jupyter-server inside the sandbox (found by uid, a pidfd guarding pid reuse), not to
        bwrap's group, SIGINT comes first so the server shuts its kernels down, and what
        survives is swept by cgroup and uid in ``_cleanup``."""
        live.stopping = True
        if live.returncode is not None:
            return
        uid = live.spec.uid
        server = await asyncio.to_thread(top_process_of_uid, live.process.pid, uid)
        for sig in (signal.SIGINT, signal.SIGTERM):
            if server is not None and signal_if_uid(server, uid, sig):
                if await self._wait_exit_or(live, self.stop_timeout_s):
                    return
        try:
            os.killpg(live.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if server is not None:
            signal_if_uid(server, uid, signal.SIGKILL)
        if not await self._wait_exit_or(live, 10.0):
            log.error("workspace %s: pid %d survived SIGKILL", live.spec.workspace_id,
                      live.process.pid)

    async def _cleanup(self, uid: int, host: HostPaths, groups: CgroupSet | None,
                       pidns: int | None) -> None:
        survivors = await asyncio.to_thread(_kill_workspace, uid, groups, pidns)
        if survivors:
            log.error("workspace %s still has processes %s after cleanup", host.base.name,
                      survivors)
        if groups is not None:
            await asyncio.to_thread(groups.remove)
        host.socket.unlink(missing_ok=True)
        await asyncio.to_thread(shutil.rmtree, host.run / "runtime", True)
        await asyncio.to_thread(shutil.rmtree, host.run / "tmp", True)

    async def stop(self, info: WorkspaceInfo) -> None:
        """Stop every process of the workspace; keep its folders (the final state)."""
        live = self._live.get(info.workspace_id)
        host = HostPaths.of(self.root, info.workspace_id)
        groups = live.cgroups if live is not None else await asyncio.to_thread(
            self.cgroups.existing, info.workspace_id)
        pidns = live.pidns if live is not None else None
        if live is not None:
            await self._terminate(live)
            live.stopped = True
            if live.monitor is not None:
                await live.monitor
        await self._cleanup(info.uid, host, groups, pidns)
        await self._settle_or_log(info.workspace_id)
        if host.base.is_dir():
            (host.base / STOPPED_MARKER).touch()
        log.info("workspace %s stopped", info.workspace_id)

    async def fill(self, info: WorkspaceInfo, tree: Path) -> None:
        """Copy ``tree`` into the empty work folder as the workspace's uid (``copy_in_as``)."""
        tools = await self._require_tools()
        await copy_in_as(tools, tree, HostPaths.of(self.root, info.workspace_id).work, info.uid)

    async def make_read_only(self, info: WorkspaceInfo) -> None:
        """Hand the work folder to root and drop every write bit (stops the workspace first if
        it still runs: a file it holds open would stay writable otherwise)."""
        live = self._live.get(info.workspace_id)
        if live is not None and live.returncode is None:
            await self.stop(info)
        await asyncio.to_thread(freeze, HostPaths.of(self.root, info.workspace_id).work)

    async def close(self) -> None:
        """Stop the servers started here without marking them stopped (pairlab is shutting
        down: after a restart their status is "crashed" and ``restore`` brings them back)."""
        running = [live for live in self._live.values() if live.returncode is None]
        for live in running:
            live.stopping = True
        await asyncio.gather(*(self._terminate(live) for live in running))
        for live in running:
            if live.monitor is not None:
                await live.monitor
            await self._cleanup(live.spec.uid, live.host, live.cgroups, live.pidns)
        if self.disk_image:  # the running ones and any that crashed and were not restarted
            for workspace_id in list(self._live):
                await asyncio.to_thread(self._detach, workspace_id)

    def _detach(self, workspace_id: str) -> None:
        """Unmount a stopped workspace's image and keep it (``restore`` mounts it again), so a
        pairlab that shut down leaves no mount or loop device behind: its data folder can be
        moved or removed like any other."""
        base = self.root / workspace_id
        try:
            if mounts.is_mount(base):
                mounts.unmount(base)
        except OSError as exc:
            log.error("workspace %s: its disk image could not be unmounted at shutdown: %s",
                      workspace_id, exc)

    def live_info(self, workspace_id: str) -> WorkspaceInfo | None:
        """The current info of a workspace started here (after a restore it has a new token)."""
        live = self._live.get(workspace_id)
        return replace(live.info) if live is not None else None


def _still_running(uid: int, wait_s: float = 2.0) -> list[int]:
    """The uid's live processes, waited for up to ``wait_s`` (a workspace just killed by its
    cgroup can have tasks still exiting for a moment)."""
    deadline = time.monotonic() + wait_s
    while (running := pids_of_uid(uid)) and time.monotonic() < deadline:
        time.sleep(0.1)  # tasks exiting after SIGKILL: nothing to be notified by
    return running


def _kill_workspace(uid: int, groups: CgroupSet | None, pidns: int | None) -> list[int]:
    """Kill every process of the workspace: by its cgroups, or where it has none, the uid's
    processes inside its sandbox (its pid namespace when known), never the uid's elsewhere.
    Returns the survivors."""
    if groups is not None:
        return groups.kill()
    return kill_uid(uid, namespace=pidns)


def _work_owner(base: Path) -> int | None:
    """The uid owning ``base/work`` (the workspace's), None if there is none (or root's,
    after the read-only freeze)."""
    try:
        owner = os.lstat(base / "work").st_uid
    except OSError:
        return None
    return owner if owner != 0 else None


def _copy_all(src: Path, dest: Path) -> None:
    """Copy the tree ``src`` into the new folder ``dest`` with owners, modes, times and links
    as they are (links never followed, ``--no-dereference``), holes kept: ``cp -a
    --sparse=always`` (coreutils), since ``shutil.copytree`` fills holes in. Only used while
    no process of the workspace's uid runs (``_settle`` checks), so nothing swaps a folder for
    a link while root copies; ``dest`` is made here, in root's own folder."""
    dest.mkdir(mode=0o711, exist_ok=True)
    mounts.run_tool(["cp", "-a", "--no-dereference", "--sparse=always",
                     "--no-target-directory", str(src), str(dest)], timeout_s=COPY_TIMEOUT_S)
    lost = dest / "lost+found"  # ext4's own, empty
    if lost.is_dir() and not lost.is_symlink() and lost.stat().st_uid == 0:
        remove_tree(lost)


def _absolute(path: Path) -> Path:
    """Absolute without resolving symlinks (the kernelspec and the mounts use this path)."""
    return Path(os.path.abspath(path))


