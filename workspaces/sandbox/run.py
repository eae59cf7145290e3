"""Run one command to completion in a fresh sandbox: the only way pairlab runs task code that is
not a workspace's own jupyter-server.

Used by the import's checks (visible tests on the anonymised tree, hidden checks on the starter
and the solution), the continuous visible-test runs and the end-of-session hidden checks. Each
run is built by ``bwrap.workspace_command``, exactly as a candidate's workspace is: bubblewrap
with its own PID, network (none), IPC and UTS namespaces, the system, the task environment and
the Python it runs on read-only, a synthetic ``/etc/passwd``, private ``/tmp``, ``setpriv`` to an
unprivileged uid with no capabilities, ``prlimit`` and the cgroup memory/pids limits. Only the
tree under test (a throwaway copy, ``/workspace``) and the private ``/tmp`` (bwrap ``--size``)
are writable; ``/run/pairlab`` is root's, and what a job asks for (``config_files``, e.g. a
harness) is put read-only under ``/etc/pairlab``. Nothing of pairlab's data dir is mounted.

A copy to run on comes from ``scratch``: a folder with a tmpfs of its own mounted on it (size
and inode count fixed, ``mode=0700``), so the kernel stops a run's writes at the limit
(ENOSPC inside) before the host's disk notices; ``release`` unmounts it. A job may ask for a
``report`` pipe: its write end is inherited by the sandboxed command (its number in
``PAIRLAB_REPORT_FD``), and what arrives on it is the run's ``report``. Nothing the sandbox can
write after the fact (a file in a folder its uid owns) is ever read back as a result.

Each run leases one of ``CHECK_UIDS`` uids just past the workspaces' 1000 for itself (so
per-uid limits are per run, and every process left of that uid at the end is the run's own and
is killed), and is stopped at its deadline: bwrap is killed, ``--die-with-parent`` takes the
sandbox's init and with it the whole PID namespace, then the uid and the cgroup are swept.

Blocking by design (a subprocess and a pipe); async callers use ``asyncio.to_thread``.
"""

from __future__ import annotations

import codecs
import logging
import os
import pwd
import secrets
import selectors
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from common.processes import exited, exited_by, stop_group
from workspaces.errors import SandboxUnavailable
from workspaces.excerpt import HeadTail
from workspaces.jupyter_config import synthetic_etc
from workspaces.sandbox import mounts
from workspaces.sandbox.bwrap import (
    WORKSPACE,
    WORKSPACE_UIDS,
    HostPaths,
    OptionsPipe,
    Tools,
    own_tree,
    probe_tools,
    workspace_command,
)
from workspaces.sandbox.cgroups import Cgroups, CgroupSet, kill_uid, pids_of_uid
from workspaces.sandbox.limits import GiB, Limits, MiB, disk_usage
from workspaces.sandbox.permissions import remove_tree
from workspaces.sandbox.uid_locks import try_uid

log = logging.getLogger(__name__)
T = TypeVar("T")

CHECK_UID_OFFSET = WORKSPACE_UIDS
"""Check runs use ``sandbox_uid_base + 1000`` and up, just past the workspaces' uids."""
CHECK_UIDS = 64
CHECK_LIMITS = Limits(processes=256, memory_bytes=2 * GiB, file_size_bytes=256 * MiB,
                      open_files=1024, disk_bytes=2 * GiB, tmp_bytes=256 * MiB,
                      disk_check_interval_s=2.0)
OUTPUT_CHARS = 4000
CGROUP_PREFIX = "check-"
PYTHON_NAMES = ("python", "python3")
SCRATCH_INODES = 65_536
"""Files and folders a run's scratch copy may hold (its tmpfs's ``nr_inodes``)."""
REPORT_MAX_BYTES = 8 * MiB
"""What is kept of a run's report pipe; more is read and dropped."""
SCRATCH_NAME = "pairlab-check"


def sandbox_uids(base: int) -> range:
    """Every uid of a pairlab whose ``sandbox_uid_base`` is ``base``: its workspaces', then its
    check runs'."""
    return range(base, base + CHECK_UID_OFFSET + CHECK_UIDS)


@dataclass(frozen=True)
class SandboxJob:
    argv: Sequence[str]
    """The command; a first word ``python``/``python3`` means the environment's Python."""
    env_python: Path
    tree: Path
    """A throwaway folder mounted read-write at ``/workspace`` (handed to the run's uid)."""
    timeout_s: float
    limits: Limits = CHECK_LIMITS
    env: Mapping[str, str] = field(default_factory=dict)
    """Extra environment variables (the base is allow-listed, never pairlab's own)."""
    config_files: Mapping[str, bytes] = field(default_factory=dict)
    """Files (relative paths) put read-only, root-owned, under ``/etc/pairlab`` for the run."""
    report: bool = False
    """Give the command a pipe (``PAIRLAB_REPORT_FD``); its bytes are ``SandboxRun.report``."""


TIME_LIMIT = "time limit"
DISK_LIMIT = "disk limit"


@dataclass(frozen=True)
class SandboxRun:
    exit_code: int | None
    """None when it was stopped."""
    stopped: str | None
    """Why pairlab stopped it (``TIME_LIMIT``, ``DISK_LIMIT``), or None if it ended itself."""
    output: str
    """Standard output and error together, head and tail kept."""
    duration_ms: int
    out: Path
    """The run's ``/run/pairlab`` on the host; it lives until the ``run`` context ends."""
    report: bytes = b""
    """What the command wrote to its report pipe (at most ``REPORT_MAX_BYTES``)."""

    @property
    def timed_out(self) -> bool:
        return self.stopped == TIME_LIMIT


class CheckSandbox:
    """Starts check runs for one pairlab process. ``protected`` (the data dir) may never be
    mounted; ``work_root`` (under it) holds each run's host-side folders while it runs."""

    def __init__(self, uid_base: int, protected: Path, work_root: Path, *,
                 bwrap: str = "bwrap", cgroups: Cgroups | None = None,
                 require_cgroups: bool = True) -> None:
        self.uid_base = uid_base
        self.protected = Path(os.path.abspath(protected))
        self.work_root = Path(os.path.abspath(work_root))
        self.bwrap = bwrap
        self.cgroups = cgroups or Cgroups()
        self.require_cgroups = require_cgroups
        self._tools: Tools | str | None = None
        self._lock = threading.Lock()
        self._busy = 0
        self._idle = threading.Condition()

    # ---- what is needed -------------------------------------------------------------------

    def check(self) -> str | None:
        """``None`` if runs can be sandboxed here, else why not (probed once)."""
        with self._lock:
            if self._tools is None:
                missing = self.cgroups.missing() if self.require_cgroups else None
                if missing is None and (no_cpu := self.cgroups.cpu_missing()) is not None:
                    log.warning("check runs: %s", no_cpu)  # a warning: see cgroups.py
                self._tools = probe_tools(self.bwrap) if missing is None else (
                    f"{missing} (the memory and pids cgroups are required; unsafe_no_cgroups "
                    "is the development opt-out)")
        return self._tools if isinstance(self._tools, str) else None

    def _require_tools(self) -> Tools:
        reason = self.check()
        if reason is not None or not isinstance(self._tools, Tools):
            raise SandboxUnavailable(f"task code only runs in the sandbox, and it cannot be "
                                     f"built here: {reason}")
        return self._tools

    def uids(self) -> range:
        start = self.uid_base + CHECK_UID_OFFSET
        return range(start, start + CHECK_UIDS)

    @contextmanager
    def lease(self) -> Iterator[int]:
        """One check uid for this run alone: a host-wide lock per uid (``uid_locks``: held
        across threads, processes and data dirs: another ``pairlab`` command, another pairlab),
        and no process of it running (a run of a pairlab from before the lock)."""
        self.work_root.mkdir(mode=0o700, parents=True, exist_ok=True)
        for uid in self.uids():
            if _host_user(uid) is not None:
                continue
            fd = try_uid(uid)
            if fd is None:
                continue
            if pids_of_uid(uid):
                os.close(fd)
                continue
            try:
                yield uid
            finally:
                survivors = kill_uid(uid)
                if survivors:
                    log.error("check uid %d still runs %s after its run", uid, survivors)
                os.close(fd)
            return
        raise SandboxUnavailable(f"all {CHECK_UIDS} check uids are busy; try again later")

    def sweep(self, older_than_s: float) -> int:
        """Remove what runs of a pairlab that was killed left (their folders, copies and
        cgroups), older than ``older_than_s``; returns how many. The ``.uid-*`` lock files
        of earlier pairlab versions (their locks are host-wide now) are left alone."""
        removed = 0
        if self.work_root.is_dir():
            now = time.time()
            for entry in self.work_root.iterdir():
                try:
                    old = now - entry.lstat().st_mtime > older_than_s
                except OSError:
                    continue
                if old and not entry.name.startswith(".uid-"):
                    self.release(entry)
                    removed += 1
        for groups in self.cgroups.stale(CGROUP_PREFIX, older_than_s):
            groups.remove()
            removed += 1
        return removed

    def scratch(self, prefix: str, limits: Limits = CHECK_LIMITS) -> Path:
        """A new private folder under ``work_root`` with a tmpfs of its own on it, of
        ``limits.disk_bytes`` and ``SCRATCH_INODES`` (a copy to run on; ``release`` it)."""
        self.work_root.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f"{prefix}-", dir=self.work_root))
        try:
            mounts.mount_tmpfs(folder, limits.disk_bytes, SCRATCH_INODES, name=SCRATCH_NAME)
        except OSError as exc:
            folder.rmdir()
            raise SandboxUnavailable(f"a size-limited tmpfs could not be mounted on {folder}: "
                                     f"{exc}") from exc
        return folder

    def in_scratch(self, prefix: str, run: Callable[[Path], T]) -> T:
        """``run(folder)`` on a new ``scratch`` folder, released however it ends. Called in a
        thread (``asyncio.to_thread``) that does all three: a coroutine cancelled while the
        folder's tmpfs was being mounted (pairlab shutting down) left it mounted when the mount
        and the release were two calls, since the release waited for a folder the coroutine
        never got. The thread goes on after such a cancel: ``wait_idle`` waits for it."""
        with self._idle:
            self._busy += 1
        try:
            work = self.scratch(prefix)
            try:
                return run(work)
            finally:
                try:
                    self.release(work)
                except Exception:
                    log.exception("the check folder %s could not be released; the next "
                                  "start's sweep removes it", work)
        finally:
            with self._idle:
                self._busy -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait (blocking) until no ``in_scratch`` run is under way, at most ``timeout_s``;
        False if one still is. Runs are counted from inside their thread (a run whose thread
        has not begun is not counted, nor are imports' runs: they do not use ``in_scratch``)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout_s)

    def release(self, folder: Path) -> None:
        """Unmount a ``scratch`` folder (its files go with the tmpfs) and remove it."""
        if mounts.is_mount(folder):
            try:
                mounts.unmount(folder)
            except OSError as exc:
                raise SandboxUnavailable(f"{folder} could not be unmounted: {exc}") from exc
        remove_tree(folder)

    # ---- running ----------------------------------------------------------------------------

    @contextmanager
    def run(self, job: SandboxJob) -> Iterator[SandboxRun]:
        """Run ``job`` to completion (or its deadline); the result's ``out`` folder is readable
        inside the context, and every host folder of the run is removed after it."""
        tools = self._require_tools()
        with self.lease() as uid:
            base = self.work_root / f"run-{secrets.token_hex(6)}"
            host = HostPaths(base, job.tree, base / "run", base / "config", base / "run.log")
            groups: CgroupSet | None = None
            try:
                _prepare(host, uid, job.config_files)
                if self.cgroups.available():
                    groups = self.cgroups.create(CGROUP_PREFIX + base.name, job.limits)
                else:  # only with require_cgroups=False (check() refused otherwise)
                    log.warning("UNSAFE: check run %s without the memory and pids cgroups "
                                "(unsafe_no_cgroups, development mode)", base.name)
                result = self._execute(tools, job, host, uid, groups)
                yield result
            finally:
                if groups is not None:
                    groups.remove()
                kill_uid(uid)  # nothing of the run may change its folders while they go
                remove_tree(base)

    def _execute(self, tools: Tools, job: SandboxJob, host: HostPaths, uid: int,
                 groups: CgroupSet | None) -> SandboxRun:
        env_python = Path(os.path.abspath(job.env_python))
        argv = list(job.argv)
        if not argv:
            raise ValueError("an empty command")
        if argv[0] in PYTHON_NAMES:
            argv[0] = str(env_python)
        memory_rlimit = groups is None or not groups.has_memory
        report_read = report_write = -1
        pipe = OptionsPipe()
        try:
            command, options = workspace_command(
                tools, sandboxed=True, host=host, env_python=env_python, limits=job.limits,
                protected=self.protected, uid=uid,
                procs_files=groups.procs_files if groups else [], memory_rlimit=memory_rlimit,
                server=argv, args_fd=pipe.read_fd, seccomp_fd=pipe.seccomp_fd, chdir=WORKSPACE)
            pipe.send(options)
            env = _base_env(env_python, job.env)
            if job.report:
                report_read, report_write = os.pipe()
                env["PAIRLAB_REPORT_FD"] = str(report_write)
            started = time.monotonic()
            proc = subprocess.Popen(  # noqa: S603 - built by workspace_command, no shell
                command, env=env, cwd="/",
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                start_new_session=True,
                pass_fds=(*pipe.fds, report_write) if job.report else pipe.fds)
        finally:
            pipe.close()
            if report_write >= 0:
                os.close(report_write)  # the run holds the only write end now
        try:
            output, report, stopped = _collect(proc, job, [host.work, host.run], report_read)
        finally:
            if report_read >= 0:
                os.close(report_read)
        duration = round((time.monotonic() - started) * 1000)
        text = output.render()
        if stopped == TIME_LIMIT:
            text += f"\n[timed out after {job.timeout_s:.0f} s]"
        elif stopped == DISK_LIMIT:
            text += (f"\n[stopped: the run's files took more than "
                     f"{job.limits.disk_bytes // MiB} MiB of disk]")
        return SandboxRun(None if stopped else proc.returncode, stopped, text, duration,
                          host.run, report)

    def probe_python(self, env_python: Path, imports: Sequence[str] = ("ipykernel", "pytest"),
                     timeout_s: float = 60.0) -> ProbeFailure | None:
        """``None`` if a sandbox uid can start ``env_python`` and import ``imports``, else the
        reason in one line (the last line of what it printed)."""
        work = self.scratch("probe")
        code = "import " + ", ".join(imports) if imports else "pass"
        try:
            with self.run(SandboxJob(("python", "-I", "-c", code), env_python, work,
                                     timeout_s)) as run:
                if run.exit_code == 0:
                    return None
                lines = [line for line in run.output.splitlines() if line.strip()]
                status = run.exit_code
                killed = not lines and status is not None and status > 128  # bwrap's status
                if lines:
                    detail = lines[-1].strip()
                elif killed and status is not None:
                    detail = (f"it was killed by signal {status - 128} (its cgroup's memory "
                              "limit, or another process killing the sandbox uid's processes)")
                else:
                    detail = f"exit code {status}"
                return ProbeFailure(f"{env_python} cannot run as a sandbox uid: {detail}"[:500],
                                    killed=killed)
        finally:
            self.release(work)


class ProbeFailure(str):
    """Why ``probe_python`` failed, in one line (a sentence to show as it is); ``killed``: its
    process was killed by a signal without a word (worth trying again)."""

    killed: bool

    def __new__(cls, text: str, *, killed: bool = False) -> ProbeFailure:
        made = super().__new__(cls, text)
        made.killed = killed
        return made


def _host_user(uid: int) -> str | None:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def _base_env(env_python: Path, extra: Mapping[str, str]) -> dict[str, str]:
    return {"PATH": f"{env_python.parent}:/usr/bin:/bin", "HOME": "/tmp",  # noqa: S108 - inside
            "USER": "candidate", "LOGNAME": "candidate", "LANG": "C.UTF-8", "TMPDIR": "/tmp",  # noqa: S108
            "PYTHONDONTWRITEBYTECODE": "1", "PYTHONHASHSEED": "0", **extra}


def _prepare(host: HostPaths, uid: int, config_files: Mapping[str, bytes]) -> None:
    """``base`` root-only but searchable; the tree the uid's; ``run`` root's (read-only to the
    run); the root-owned ``config`` the sandbox's synthetic ``/etc`` files and the job's
    ``config_files``, all read-only to the run."""
    host.base.mkdir(mode=0o711)
    host.base.chmod(0o711)
    own_tree(host.work, uid)
    host.run.mkdir(mode=0o755)  # root's: nothing the run writes there outlives it or is read
    host.run.chmod(0o755)
    etc = host.config / "etc"
    etc.mkdir(parents=True)
    for folder in (host.config, etc):
        folder.chmod(0o755)
    for name, text in synthetic_etc(uid, WORKSPACE).items():
        (etc / name).write_text(text)
        (etc / name).chmod(0o644)
    for rel, data in config_files.items():
        target = host.config / rel
        if target.is_relative_to(etc) or ".." in Path(rel).parts or Path(rel).is_absolute():
            raise ValueError(f"not a config file a run may get: {rel}")
        target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        target.write_bytes(data)
        target.chmod(0o444)
        for parent in target.relative_to(host.config).parents:
            (host.config / parent).chmod(0o755)


def _collect(proc: subprocess.Popen[bytes], job: SandboxJob, folders: list[Path],
             report_fd: int = -1) -> tuple[HeadTail, bytes, str | None]:
    """Read the run's output (and its report pipe, if ``report_fd`` >= 0) until it has exited
    (None), or kill it at its deadline (``TIME_LIMIT``) or when its folders take more than
    ``job.limits.disk_bytes`` (``DISK_LIMIT``, measured every ``disk_check_interval_s``: a
    tree not on a ``scratch`` tmpfs is on the host's disk)."""
    output = HeadTail(OUTPUT_CHARS)
    report = bytearray()
    assert proc.stdout is not None  # noqa: S101 - asked for a pipe
    now = time.monotonic()
    deadline = now + job.timeout_s
    next_disk_check = now + job.limits.disk_check_interval_s
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    stopped: str | None = None
    out_fd = proc.stdout.fileno()
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(out_fd, selectors.EVENT_READ)
            if report_fd >= 0:
                selector.register(report_fd, selectors.EVENT_READ)
            while selector.get_map() or not exited(proc.pid):
                now = time.monotonic()
                if now >= deadline:
                    stopped = TIME_LIMIT
                    break
                if now >= next_disk_check:
                    next_disk_check = now + job.limits.disk_check_interval_s
                    if disk_usage(folders) > job.limits.disk_bytes:
                        stopped = DISK_LIMIT
                        break
                wait = min(deadline, next_disk_check) - now
                if not selector.get_map():  # output closed, the process has not exited yet
                    exited_by(proc.pid, now + min(wait, 0.5))  # not reaped: its group stays ours
                    continue
                for key, _ in selector.select(timeout=min(wait, 1.0)):
                    chunk = os.read(key.fd, 65536)
                    if not chunk:
                        selector.unregister(key.fd)
                    elif key.fd == out_fd:
                        output.add(decoder.decode(chunk))
                    elif len(report) < REPORT_MAX_BYTES:
                        report += chunk[:REPORT_MAX_BYTES - len(report)]
            output.add(decoder.decode(b"", final=True))
    finally:
        # SIGKILL at once (no grace: nothing of a stopped run is worth waiting for): bwrap dies
        # and ``--die-with-parent`` takes its init and so the whole PID namespace; then reap it.
        stop_group(proc, grace_s=0)
    return output, bytes(report), stopped
