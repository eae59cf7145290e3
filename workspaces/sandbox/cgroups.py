"""Which processes belong to a workspace: its cgroup v1 ``memory``, ``pids``, ``cpu`` and
``cpuacct`` groups and, where no group exists, its sandbox's pid namespace; never the uid alone.

A uid is not a sandbox: another pairlab on the machine, or any process an operator starts with
a uid of the range, has it too. So a workspace's processes are killed through its groups
(``CgroupSet.kill``: ``cgroup.kill`` where a group has it (cgroup v2, kernel 5.14+), else every
pid listed in ``cgroup.procs``, again until none is left), and ``kill_uid`` is only the
fallback where no group exists, and then only for processes of the uid inside a sandbox's pid
namespace (the workspace's own when known), never one in pairlab's own pid namespace.

Each workspace gets ``<controller>/<pairlab's own cgroup>/pairlab/<workspace id>``: nested under
the cgroup pairlab itself runs in (as a delegated systemd service's would be), so the host's own
accounting of pairlab still covers its workspaces. The sandbox's outermost process joins them
before it execs ``bwrap`` (see ``bwrap.join_cgroups_argv``), so every process of the workspace
is inside from its first instruction. Removing a group kills whatever is still in it first.
cgroup v2 hosts are not handled here yet: there, ``available()`` is empty and ``missing()`` says
why, so workspaces and check runs refuse to start (``unsafe_no_cgroups`` is a loud development
opt-out: then only per-process rlimits apply and processes are found by the pid namespace).

The ``cpu`` group caps the workspace at ``Limits.cpus`` CPUs (CFS quota) and weighs it below
pairlab's own process (``cpu.shares``); ``cpuacct`` only counts its CPU time. Unlike memory and
pids they are not required: without memory and pids groups one sandbox can take the host down
(a fork bomb, all its memory), without a cpu group a busy kernel only slows the others through
the scheduler's ordinary per-process fairness, which degrades but keeps every interview alive;
so ``cpu_missing()`` is a warning (logged at start, ``pairlab doctor`` WARN) and never refuses.
Where ``cpu`` and ``cpuacct`` share one hierarchy (``cpu,cpuacct``, the usual mount, with
``cpu`` and ``cpuacct`` as symlinks to it) the workspace has one folder there, not two.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from workspaces.sandbox.limits import CPU_PERIOD_US, Limits

log = logging.getLogger(__name__)
CONTROLLERS = ("memory", "pids", "cpu", "cpuacct")
REQUIRED = ("memory", "pids")
"""Without these no workspace or check run starts (see the module's docstring)."""


def _own_paths(proc_cgroup: Path) -> dict[str, str]:
    """controller → this process's cgroup path, from ``/proc/self/cgroup`` (v1 lines only)."""
    paths: dict[str, str] = {}
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return paths
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3 or not parts[1]:
            continue
        for controller in parts[1].split(","):
            paths[controller] = parts[2]
    return paths


@dataclass(frozen=True)
class CgroupSet:
    """The groups of one workspace, one folder per controller."""

    dirs: tuple[Path, ...]

    @property
    def procs_files(self) -> list[Path]:
        return [d / "cgroup.procs" for d in self.dirs]

    @property
    def has_memory(self) -> bool:
        return any((d / "memory.limit_in_bytes").exists() for d in self.dirs)

    def pids(self) -> set[int]:
        found: set[int] = set()
        for procs in self.procs_files:
            try:
                found.update(int(x) for x in procs.read_text().split())
            except (OSError, ValueError):
                continue
        return found

    def _kill_member(self, pid: int) -> None:
        """SIGKILL ``pid`` if it is still in one of these groups (a pidfd guards pid reuse)."""
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            return
        try:
            lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
            suffixes = {f"/{d.parent.name}/{d.name}" for d in self.dirs}
            if any(line.endswith(tuple(suffixes)) for line in lines):
                signal.pidfd_send_signal(fd, signal.SIGKILL)
        except OSError:
            pass
        finally:
            os.close(fd)

    def cpu_stat(self) -> dict[str, int]:
        """The cpu group's ``cpu.stat`` (``nr_periods``, ``nr_throttled``, ``throttled_time``
        in ns), empty without a cpu group."""
        for d in self.dirs:
            try:
                text = (d / "cpu.stat").read_text()
            except OSError:
                continue
            return {k: int(v) for k, v in (line.split() for line in text.splitlines())}
        return {}

    def cpu_usage_ns(self) -> int | None:
        """CPU time used by everything ever in the group (``cpuacct.usage``), None if unknown."""
        for d in self.dirs:
            try:
                return int((d / "cpuacct.usage").read_text())
            except (OSError, ValueError):
                continue
        return None

    def oom_kills(self) -> int:
        """How many times the kernel's OOM killer fired in the memory group (0 if unknown)."""
        for d in self.dirs:
            try:
                for line in (d / "memory.oom_control").read_text().splitlines():
                    if line.startswith("oom_kill "):
                        return int(line.split()[1])
            except (OSError, ValueError):
                continue
        return 0

    def kill(self, timeout_s: float = 10.0) -> list[int]:
        """SIGKILL every process in the groups (``cgroup.kill`` if the kernel has it, else each
        pid of ``cgroup.procs``, again until none is left: a fork meanwhile joins the group
        too). Returns the pids still inside at the deadline."""
        deadline = time.monotonic() + timeout_s
        delay = 0.01
        for d in self.dirs:
            try:
                (d / "cgroup.kill").write_text("1")
            except OSError:  # cgroup v1 has no cgroup.kill
                pass
        while True:
            pids = self.pids()
            if not pids:
                return []
            for pid in pids:
                self._kill_member(pid)
            if time.monotonic() > deadline:
                return sorted(self.pids())
            time.sleep(delay)  # the kernel is reaping them; not a readiness wait
            delay = min(delay * 2, 0.2)

    def remove(self, timeout_s: float = 10.0) -> bool:
        """Kill what is left inside, then remove the folders. True when all are gone."""
        deadline = time.monotonic() + timeout_s
        delay = 0.01
        while True:
            self.kill(timeout_s=0)
            removed = True
            for d in self.dirs:
                try:
                    d.rmdir()
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    if exc.errno != errno.EBUSY:
                        log.warning("could not remove cgroup %s: %s", d, exc)
                    removed = False
            if removed:
                for parent in {d.parent for d in self.dirs}:
                    try:  # the shared parent goes with the last workspace
                        parent.rmdir()
                    except OSError:
                        pass
                return True
            if time.monotonic() > deadline:
                log.warning("cgroups %s still busy after %.0f s", self.dirs, timeout_s)
                return False
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


class Cgroups:
    """Makes per-workspace groups under ``<root>/<controller>/<own cgroup>/<parent_name>``."""

    def __init__(self, root: Path = Path("/sys/fs/cgroup"), parent_name: str = "pairlab",
                 proc_cgroup: Path = Path("/proc/self/cgroup")) -> None:
        self.root = root
        self.parent_name = parent_name
        self._own = _own_paths(proc_cgroup)

    def _parent(self, controller: str) -> Path | None:
        # ``cpu`` is often a symlink to the ``cpu,cpuacct`` mount: resolved, it is a mount point
        mount = Path(os.path.realpath(self.root / controller))
        own = self._own.get(controller)
        if own is None or not os.path.ismount(mount) or not (mount / "cgroup.procs").exists():
            return None
        base = mount / own.lstrip("/")
        if not os.access(base, os.W_OK):
            return None
        return base / self.parent_name

    def _parents(self) -> dict[str, Path]:
        """controller → its parent folder, for the usable controllers; a hierarchy shared by two
        controllers (``cpu,cpuacct``) is listed once, under the first."""
        found: dict[str, Path] = {}
        for controller in CONTROLLERS:
            parent = self._parent(controller)
            if parent is not None and parent not in found.values():
                found[controller] = parent
        return found

    def available(self) -> tuple[str, ...]:
        """The controllers usable here (writable cgroup v1 hierarchies, each folder once)."""
        return tuple(self._parents())

    def missing(self) -> str | None:
        """``None`` if both the memory and pids controllers are usable, else why not."""
        absent = [c for c in REQUIRED if self._parent(c) is None]
        if not absent:
            return None
        return (f"no writable {' and '.join(absent)} cgroup (cgroup v1 under {self.root}; a "
                "cgroup v2 host, or not delegated to pairlab): without the memory and pids "
                "cgroups nothing bounds the memory and processes of a sandbox together")

    def cpu_missing(self) -> str | None:
        """``None`` if the cpu controller is usable, else why not (a warning, never a refusal:
        see the module's docstring)."""
        if self._parent("cpu") is not None:
            return None
        return (f"no writable cpu cgroup (cgroup v1 under {self.root}): workspaces run without "
                "a CPU cap, so one busy kernel can slow the proxy, the recorder and the other "
                "interviews")

    def existing(self, workspace_id: str) -> CgroupSet | None:
        """The workspace's groups left from an earlier start (e.g. before pairlab was killed)."""
        dirs = [parent / workspace_id for parent in self._parents().values()
                if (parent / workspace_id).is_dir()]
        return CgroupSet(tuple(dirs)) if dirs else None

    def stale(self, prefix: str, older_than_s: float) -> list[CgroupSet]:
        """Groups named ``prefix*`` made more than ``older_than_s`` ago (left by a pairlab that
        was killed), for removal."""
        found = []
        now = time.time()
        for parent in self._parents().values():
            if not parent.is_dir():
                continue
            for group in parent.iterdir():
                try:
                    old = now - group.stat().st_mtime > older_than_s
                except OSError:
                    continue
                if group.name.startswith(prefix) and group.is_dir() and old:
                    found.append(CgroupSet((group,)))
        return found

    def create(self, workspace_id: str, limits: Limits) -> CgroupSet:
        """Make (or remake) the workspace's groups with its limits. Missing controllers are
        skipped; a failing write leaves no half-made group behind and raises ``OSError``."""
        dirs: list[Path] = []
        try:
            for controller, parent in self._parents().items():
                group = parent / workspace_id
                if group.exists():
                    CgroupSet((group,)).remove()
                for attempt in range(3):  # another workspace's removal may take the parent
                    parent.mkdir(exist_ok=True)
                    try:
                        group.mkdir()
                        break
                    except FileNotFoundError:
                        if attempt == 2:
                            raise
                dirs.append(group)
                if controller == "memory":
                    (group / "memory.limit_in_bytes").write_text(str(limits.memory_bytes))
                    memsw = group / "memory.memsw.limit_in_bytes"
                    if memsw.exists():
                        memsw.write_text(str(limits.memory_bytes))
                elif controller == "pids":
                    (group / "pids.max").write_text(str(limits.processes))
                elif controller == "cpu":
                    _write_cpu(group, limits)
        except OSError:
            CgroupSet(tuple(dirs)).remove()
            raise
        return CgroupSet(tuple(dirs))


def _write_cpu(group: Path, limits: Limits) -> None:
    """The cap (CFS quota per period) and the weight of one workspace's cpu group. The weight
    is written on the shared parent too: there it competes with pairlab's own threads (nice 0,
    1024 each), so under contention the proxy and the recorder run before all the workspaces
    together; among siblings (workspaces, check runs) equal weights share equally. Shares only
    act under contention: an idle pairlab leaves the workspaces everything up to their caps."""
    (group / "cpu.shares").write_text(str(limits.cpu_shares))
    (group.parent / "cpu.shares").write_text(str(limits.cpu_shares))
    try:
        (group / "cpu.cfs_period_us").write_text(str(CPU_PERIOD_US))
        (group / "cpu.cfs_quota_us").write_text(str(limits.cpu_quota_us))
    except OSError as exc:  # e.g. EINVAL: a cap above a capped parent's
        log.warning("the workspace's CPU cap could not be set (%s): it runs uncapped, with "
                    "its share", exc)


# ---- the process table --------------------------------------------------------------------


def _proc_uid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("Uid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def running_uids() -> set[int]:
    """The real uids of every process on the host (one pass over ``/proc``)."""
    return {uid for pid in _all_pids() if (uid := _proc_uid(pid)) is not None}


def pids_of_uid(uid: int) -> list[int]:
    """Host pids of every live process whose real uid is ``uid`` (zombies, which hold no file,
    memory or descriptor and cannot be killed, are not counted)."""
    return [pid for pid in _all_pids() if _proc_uid(pid) == uid and not _is_dead(pid)]


def _is_dead(pid: int) -> bool:
    """A zombie or dying task (``Z``/``X`` in ``/proc/<pid>/stat``), or gone already."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X", "x")


def _ppid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def top_process_of_uid(root_pid: int, uid: int) -> int | None:
    """The first process running as ``uid`` at or below ``root_pid`` (the jupyter-server)."""
    children: dict[int, list[int]] = {}
    for pid in _all_pids():
        parent = _ppid(pid)
        if parent is not None:
            children.setdefault(parent, []).append(pid)
    queue = [root_pid]
    while queue:
        pid = queue.pop(0)
        if _proc_uid(pid) == uid:
            return pid
        queue.extend(sorted(children.get(pid, [])))
    return None


def signal_if_uid(pid: int, uid: int, sig: signal.Signals) -> bool:
    """Signal ``pid`` only if it still runs as ``uid`` (a pidfd guards against pid reuse)."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return False
    try:
        if _proc_uid(pid) != uid:
            return False
        signal.pidfd_send_signal(fd, sig)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def pid_namespace(pid: int) -> int | None:
    """The inode of ``pid``'s pid namespace (``/proc/PID/ns/pid``), None if it is gone."""
    try:
        return os.stat(f"/proc/{pid}/ns/pid").st_ino
    except OSError:
        return None


def _sandboxed(pid: int, namespace: int | None) -> bool:
    """``pid`` runs in the pid namespace ``namespace``, or (None) in any but pairlab's own."""
    found = pid_namespace(pid)
    if found is None:
        return False
    if namespace is not None:
        return found == namespace
    return found != pid_namespace(os.getpid())


def sandboxed_pids_of_uid(uid: int, namespace: int | None = None) -> list[int]:
    """Host pids of the processes of ``uid`` inside a sandbox (see ``kill_uid``)."""
    return [pid for pid in pids_of_uid(uid) if _sandboxed(pid, namespace)]


def kill_uid(uid: int, timeout_s: float = 10.0, *, namespace: int | None = None) -> list[int]:
    """The fallback where a sandbox has no cgroup: SIGKILL the processes of ``uid`` inside the
    pid namespace ``namespace`` (the sandbox's, when known), or inside any pid namespace but
    pairlab's own, until none is left. A process of the uid outside every sandbox (an
    operator's, another program's) is never touched. Returns the survivors (if any)."""
    if uid < 1000:
        raise ValueError(f"refusing to kill the processes of system uid {uid}")
    if namespace is not None and namespace == pid_namespace(os.getpid()):
        raise ValueError("refusing to kill by uid in pairlab's own pid namespace")
    deadline = time.monotonic() + timeout_s
    delay = 0.01
    while True:
        pids = sandboxed_pids_of_uid(uid, namespace)
        if not pids:
            return []
        for pid in pids:
            _kill_if(pid, uid, namespace)
        if time.monotonic() > deadline:
            return sandboxed_pids_of_uid(uid, namespace)
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def _kill_if(pid: int, uid: int, namespace: int | None) -> None:
    """SIGKILL ``pid`` if it still runs as ``uid`` in a sandbox (a pidfd guards pid reuse)."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return
    try:
        if _proc_uid(pid) == uid and _sandboxed(pid, namespace):
            signal.pidfd_send_signal(fd, signal.SIGKILL)
    except OSError:
        pass
    finally:
        os.close(fd)
