"""``pairlab doctor``: what a deployment needs, checked, with how to fix each miss.

One line per check. The fast part (no workspace is started; about a second) runs at every
``pairlab serve``/``demo`` start, which refuses to start when workspaces could not work; the
full report adds a throwaway sandboxed workspace that starts, runs a cell and a terminal
command, and is what ``pairlab doctor`` and the admin page show. A check that passes says what
it saw; one that fails says why and how to fix it; a warning works but weaker.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import secrets
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from common.processes import DeadlineExceeded, run_bounded
from server.db import open_migrated
from server.settings import COOKIE_SECRET_FILE, Settings, shared_site_warning
from server.tasks.service import sandbox_for
from tasks import revisions
from workspaces.environments import EnvironmentBuildFailed, ensure_environment, environment_key
from workspaces.errors import SandboxUnavailable
from workspaces.local import IMAGES, SOCKET_PATH_MAX
from workspaces.provisioner import new_workspace_id
from workspaces.sandbox import mounts
from workspaces.sandbox.bwrap import (
    WORKSPACE_UIDS,
    HostPaths,
    find_tools,
    python_trees,
    userns_denied,
)
from workspaces.sandbox.bwrap import check_sandbox as probe_bubblewrap
from workspaces.sandbox.cgroups import REQUIRED, Cgroups, running_uids
from workspaces.sandbox.permissions import is_published, owner_only, unreadable, writable_by_others
from workspaces.sandbox.run import CHECK_UIDS, CheckSandbox, sandbox_uids
from workspaces.smoke import smoke_workspace

Status = Literal["ok", "warn", "fail", "skip"]
JUPYTER_IMPORTS = ("jupyter_server", "jupyterlab", "jupyter_server_ydoc", "ipykernel")
TASK_IMPORTS = ("ipykernel", "pytest")
LOW_DISK_BYTES = 2 * 1024**3
DOCTOR_IMAGE_BYTES = 16 * 1024**2


@dataclass(frozen=True)
class Finding:
    name: str
    status: Status
    detail: str
    fix: str = ""
    critical: bool = False
    """A failure here means no workspace could work: ``serve`` and ``demo`` refuse to start."""

    def line(self) -> str:
        mark = {"ok": "ok  ", "warn": "warn", "fail": "FAIL", "skip": "skip"}[self.status]
        text = f"{mark} {self.name}: {self.detail}"
        return f"{text} -- fix: {self.fix}" if self.fix and self.status != "ok" else text

    def public(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Report:
    findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        return not any(f.status == "fail" for f in self.findings)

    def text(self) -> str:
        return "\n".join(f.line() for f in self.findings)

    def blocking(self) -> list[Finding]:
        return [f for f in self.findings if f.status == "fail" and f.critical]

    def public(self) -> dict[str, Any]:
        return {"ok": self.ok, "findings": [f.public() for f in self.findings]}


# ---- the host -----------------------------------------------------------------------------


def check_root() -> Finding:
    if os.geteuid() == 0:
        return Finding("root", "ok", "running as root; every workspace and check drops to an "
                       "unprivileged uid of its own", critical=True)
    return Finding("root", "fail", f"running as uid {os.geteuid()}",
                   "run pairlab as root: it starts each workspace as its own unprivileged uid "
                   "(resource limits do not bind root)", critical=True)


def check_tools(settings: Settings) -> Finding:
    tools = find_tools("bwrap")
    if isinstance(tools, str):
        fix = ("apt-get install bubblewrap" if "bubblewrap" in tools else
               "install util-linux from the distribution (its setpriv and prlimit live in "
               "/usr/bin)")
        # Without bubblewrap, the unsafe development mode still starts workspaces; task checks
        # (and so imports and publishing) need it in every mode.
        return Finding("tools", "fail", tools, fix, critical=not settings.unsafe_no_sandbox)
    return Finding("tools", "ok", f"bwrap {tools.bwrap}, setpriv {tools.setpriv}, prlimit "
                   f"{tools.prlimit}", critical=True)


def check_bubblewrap(settings: Settings) -> Finding:
    reason = probe_bubblewrap("bwrap")
    if reason is None:
        version = _version(["bwrap", "--version"])
        return Finding("bubblewrap", "ok", f"{version} builds a sandbox here (own PID and "
                       "network namespaces, read-only root, an unprivileged uid)", critical=True)
    fix = ("install the bubblewrap package, and let root create namespaces "
           "(kernel.unprivileged_userns_clone is not needed as root; a container needs "
           "CAP_SYS_ADMIN and an unconfined seccomp profile)")
    if settings.unsafe_no_sandbox:
        return Finding("bubblewrap", "warn", f"{reason}; workspaces run unsandboxed "
                       "(unsafe_no_sandbox), and task checks cannot run at all", fix)
    return Finding("bubblewrap", "fail", reason, fix, critical=True)


def check_seccomp() -> Finding:
    """The sandboxes' seccomp filter loads and holds: ``unshare -U -r`` fails inside one."""
    reason = userns_denied("bwrap")
    if reason is None:
        return Finding("seccomp", "ok", "the sandboxes' filter loads: no new user namespaces "
                       "(unshare/clone with CLONE_NEWUSER: EPERM, clone3: ENOSYS)", critical=True)
    return Finding("seccomp", "fail", reason, "install the libseccomp2 package (pairlab builds "
                   "its filter with it) and a bubblewrap that supports --seccomp", critical=True)


def _version(argv: list[str]) -> str:
    try:
        done = run_bounded(argv, timeout_s=10, env={"PATH": "/usr/bin:/bin"})
    except (OSError, DeadlineExceeded):
        return argv[0]
    return (done.out or done.err).strip().splitlines()[0] if done.out or done.err else argv[0]


def check_uids(settings: Settings) -> Finding:
    uids = sandbox_uids(settings.sandbox_uid_base)
    taken = sorted((p.pw_uid, p.pw_name) for p in pwd.getpwall() if p.pw_uid in uids)
    span = f"uids {uids.start}-{uids.stop - 1}"
    if taken:
        uid, name = taken[0]
        more = f" and {len(taken) - 1} more" if len(taken) > 1 else ""
        return Finding("sandbox uids", "fail", f"{span}: uid {uid} belongs to the host account "
                       f"{name!r}{more}", f"set sandbox_uid_base to the first of "
                       f"{len(uids)} unused uids (for example 100000)", critical=True)
    busy = len(running_uids() & set(uids))
    note = f"; {busy} of them run processes now (live workspaces or checks)" if busy else ""
    return Finding("sandbox uids", "ok", f"{span} belong to no host account "
                   f"({WORKSPACE_UIDS} for workspaces, {CHECK_UIDS} for checks){note}",
                   critical=True)


def check_cgroups(settings: Settings, cgroups: Cgroups | None = None) -> Finding:
    cgroups = cgroups or Cgroups()
    missing = cgroups.missing()
    if missing is None:
        return Finding("cgroups", "ok", f"{' and '.join(REQUIRED)} controllers (cgroup v1) "
                       "cap each workspace's and each check's memory and processes")
    fix = ("run pairlab where the cgroup v1 memory and pids controllers are mounted and "
           "writable by root")
    if settings.unsafe_no_cgroups:
        return Finding("cgroups", "warn", f"UNSAFE: unsafe_no_cgroups is set: {missing}; "
                       "memory is capped per process (RLIMIT_AS) and processes per uid "
                       "(RLIMIT_NPROC) only", fix)
    return Finding("cgroups", "fail", f"{missing}: workspaces and check runs refuse to start",
                   fix, critical=True)


def check_cpu_share(settings: Settings, cgroups: Cgroups | None = None) -> Finding:
    """The cpu cgroup is wanted, not required (see workspaces/sandbox/cgroups.py): WARN."""
    cgroups = cgroups or Cgroups()
    missing = cgroups.cpu_missing()
    if missing is None:
        return Finding("cpu share", "ok", f"each workspace is capped at "
                       f"{settings.workspace_cpus:g} CPUs (cgroup v1 cpu quota) and weighs less "
                       "than pairlab's own process")
    return Finding("cpu share", "warn", missing,
                   "mount the cgroup v1 cpu controller, writable by root")


def check_data_dir(settings: Settings) -> Finding:
    data = settings.data_dir
    if not data.is_dir():
        return Finding("data dir", "fail", f"{data} does not exist", f"mkdir -m 700 {data}",
                       critical=True)
    problems = []
    if data.stat().st_uid != os.geteuid():
        problems.append(f"{data} belongs to uid {data.stat().st_uid}, not {os.geteuid()}")
    for path in (data, settings.db_path, data / COOKIE_SECRET_FILE):
        if path.exists() and not owner_only(path):
            problems.append(f"{path} is readable by others (mode "
                            f"{path.stat().st_mode & 0o777:o})")
    socket = HostPaths.of(data / "workspaces", new_workspace_id()).socket
    too_long = len(str(socket).encode()) - SOCKET_PATH_MAX
    if too_long > 0:
        return Finding("data dir", "fail", f"workspace sockets under {data} would be "
                       f"{too_long} bytes longer than a Unix socket path may be",
                       f"set data_dir to a path at least {too_long} characters shorter",
                       critical=True)
    if problems:
        return Finding("data dir", "fail", "; ".join(problems),
                       f"chown root {data}; chmod 700 {data}; chmod 600 {settings.db_path} "
                       f"{data / COOKIE_SECRET_FILE}", critical=True)
    free = shutil.disk_usage(data).free
    detail = f"{data} is owner-only, with the database and cookie secret; " \
             f"{free / 1024**3:.1f} GiB free"
    if free < LOW_DISK_BYTES:
        return Finding("data dir", "warn", detail, "free some disk: workspaces, histories and "
                       "environments live here")
    return Finding("data dir", "ok", detail, critical=True)


def check_disk_limit(settings: Settings) -> Finding:
    """A workspace's disk and file limit is its own loop-mounted ext4 image: one is made and
    mounted where the real ones are (``DATA_DIR/workspaces/.images``), then removed."""
    fix = ("run pairlab as root on a kernel with loop devices and ext4 (modprobe loop), with "
           "mkfs.ext4 (e2fsprogs) and mount (util-linux) installed")
    workspaces = settings.data_dir / "workspaces"
    probe = f"doctor-{secrets.token_hex(4)}"
    image = workspaces / IMAGES / f"{probe}.ext4"
    target = workspaces / f".{probe}"
    try:
        workspaces.mkdir(mode=0o711, exist_ok=True)
        target.mkdir(mode=0o700)
        try:
            mounts.make_image(image, DOCTOR_IMAGE_BYTES, 1024)
            mounts.mount_image(image, target)
            mounts.unmount(target)
        finally:
            image.unlink(missing_ok=True)
            target.rmdir()
    except OSError as exc:
        if settings.unsafe_no_disk_image:
            return Finding("disk limit", "warn", f"workspaces run without a disk image "
                           f"(unsafe_no_disk_image): {exc}", fix)
        return Finding("disk limit", "fail", f"a workspace's disk image cannot be made or "
                       f"mounted here, so no workspace can start: {exc}", fix, critical=True)
    if settings.unsafe_no_disk_image:
        return Finding("disk limit", "warn", "UNSAFE: unsafe_no_disk_image is set: workspaces' "
                       "disk use is only polled and their file count is unlimited",
                       "remove unsafe_no_disk_image (disk images work here)")
    return Finding("disk limit", "ok", f"each workspace is its own ext4 image of "
                   f"{settings.workspace_disk_mib} MiB with {settings.workspace_max_files} "
                   "inodes, loop-mounted: the kernel refuses writes past either", critical=True)


# ---- Python, as a sandbox uid sees it ---------------------------------------------------


def _mounted_pythons() -> list[Path]:
    """The Python trees every sandbox mounts for pairlab's own Python (pairlab's virtual
    environment and the installation it points at; ``/usr`` is mounted anyway and is the
    distribution's, so it is neither walked nor ever suggested for a chmod)."""
    return sorted({src for src, _dest in python_trees(Path(sys.executable))
                   if not src.is_relative_to("/usr")})


def check_python(sandbox: CheckSandbox, *, thorough: bool) -> Finding:
    """pairlab's own Python (jupyter-server runs on it inside every sandbox)."""
    trees = _mounted_pythons()
    fix = ("make it readable by other users: chmod -R a+rX " + " ".join(map(str, trees))
           if trees else "reinstall Python from the distribution's packages")
    if thorough:
        for tree in trees:
            bad = unreadable(tree, limit=3)
            if bad:
                return Finding("python", "fail", f"a sandbox uid cannot read "
                               f"{', '.join(map(str, bad))}", fix, critical=True)
    try:
        problem = sandbox.probe_python(Path(sys.executable), JUPYTER_IMPORTS)
    except SandboxUnavailable as exc:
        return Finding("python", "skip", f"not checked: {exc.message}")
    if problem is not None:
        if problem.killed:
            fix = "run `pairlab doctor` again; if it is killed again, see the kernel log (dmesg)"
        return Finding("python", "fail", problem, fix, critical=True)
    shown = ", ".join(map(str, trees)) or "/usr"
    return Finding("python", "ok", f"a sandbox uid runs {sys.executable} and imports "
                   f"{', '.join(JUPYTER_IMPORTS)} (from {shown})", critical=True)


def _env_users(settings: Settings) -> dict[str, list[str]]:
    """Environment key → the published tasks that use it."""
    users: dict[str, list[str]] = {}
    db = open_migrated(settings.db_path)
    try:
        for rev in revisions.list_revisions(db):
            if rev.is_current:
                users.setdefault(environment_key(rev.requirements), []).append(rev.task_id)
    finally:
        db.conn.close()
    return users


def check_environments(settings: Settings, sandbox: CheckSandbox, *,
                       thorough: bool) -> list[Finding]:
    """Each environment a published task uses (``thorough``: every one built) must be runnable
    by a sandbox uid; the folder they live in must be root's alone."""
    root = settings.envs_root
    loose = writable_by_others(root)
    if loose is not None:
        return [Finding("environments", "fail", f"{loose} can be changed by a user other than "
                        f"root, and pairlab (root) builds environments under {root}",
                        f"chown root {loose}; chmod go-w {loose}", critical=True)]
    users = _env_users(settings)
    built = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) \
        if root.is_dir() else []
    findings = []
    for key in sorted((set(built) if thorough else set()) | set(users)):
        name = f"environment {key}"
        tasks = users.get(key, [])
        used = f" (tasks: {', '.join(tasks)})" if tasks else " (no published task uses it)"
        folder = root / key
        if key not in built:
            findings.append(Finding(name, "warn", f"not built yet{used}; pairlab builds it "
                                    "at the next start or first use",
                                    "start pairlab, or publish the task again"))
            continue
        if not is_published(folder):
            findings.append(Finding(name, "warn", f"owner-only, as an older pairlab built it"
                                    f"{used}; pairlab makes it readable at its next use",
                                    f"chmod -R a+rX {folder}, or just start pairlab"))
            continue
        try:
            problem = sandbox.probe_python(folder / "bin" / "python", TASK_IMPORTS)
        except SandboxUnavailable as exc:
            findings.append(Finding(name, "skip", f"not checked: {exc.message}"))
            continue
        if problem is None:
            findings.append(Finding(name, "ok", f"a sandbox uid runs its Python and imports "
                                    f"{', '.join(TASK_IMPORTS)}{used}"))
        else:
            findings.append(Finding(name, "fail", f"{problem}{used}",
                                    f"rebuild it: rm -rf {folder} (pairlab builds it again on "
                                    f"first use), or chmod -R a+rX {folder}"))
    if not findings:
        what = "none built yet" if not built else f"{len(built)} built, none in use by a task"
        findings.append(Finding("environments", "ok", f"{what} under {root}"))
    return findings


# ---- the whole thing -----------------------------------------------------------------------


def check_domains(settings: Settings) -> Finding:
    """Warn when the app and the workspaces share a registrable domain (cookies planted)."""
    problem = shared_site_warning(settings)
    if problem is None:
        return Finding("domains", "ok", "the app and the workspaces are on different sites")
    return Finding("domains", "warn", problem,
                   "set workspace_domain and workspace_public_url to a domain not under the"
                   " app's (see README, Deployment)")


def _sandbox_checks_possible(findings: list[Finding]) -> str | None:
    for f in findings:
        if f.status == "fail" and f.name in ("root", "tools", "bubblewrap", "sandbox uids",
                                             "cgroups"):
            return f"needs {f.name}"
    return None


def _host_findings(settings: Settings) -> list[Finding]:
    root = check_root()
    if root.status == "fail":  # bwrap's probe and the tools' paths mean nothing as non-root
        skipped = [Finding(name, "skip", "not checked: needs root")
                   for name in ("tools", "bubblewrap")]
        return [root, *skipped, check_uids(settings), check_cgroups(settings),
                check_cpu_share(settings), check_data_dir(settings),
                Finding("disk limit", "skip", "not checked: needs root"), check_domains(settings)]
    tools = check_tools(settings)
    bubblewrap = check_bubblewrap(settings) if tools.status == "ok" else Finding(
        "bubblewrap", "skip", "not checked: needs the tools above")
    filtered = check_seccomp() if bubblewrap.status == "ok" else Finding(
        "seccomp", "skip", "not checked: needs bubblewrap")
    data_dir = check_data_dir(settings)
    disk = check_disk_limit(settings) if data_dir.status != "fail" else Finding(
        "disk limit", "skip", "not checked: needs the data dir")
    return [root, tools, bubblewrap, filtered, check_uids(settings), check_cgroups(settings),
            check_cpu_share(settings), data_dir, disk, check_domains(settings)]


def fast_findings(settings: Settings, *, thorough: bool = False) -> list[Finding]:
    """Every check but the throwaway workspace (blocking). Fast: pairlab's Python and the
    environments of published tasks are started once each in a sandbox (about a second);
    ``thorough`` also walks the Python trees and probes every environment built."""
    findings = _host_findings(settings)
    blocked = _sandbox_checks_possible(findings)
    if blocked is not None:
        findings.append(Finding("python", "skip", f"not checked: {blocked}"))
        findings.append(Finding("environments", "skip", f"not checked: {blocked}"))
        return findings
    sandbox = sandbox_for(settings)
    findings.append(check_python(sandbox, thorough=thorough))
    findings.extend(check_environments(settings, sandbox, thorough=thorough))
    return findings


def fast_report(settings: Settings) -> Report:
    return Report(tuple(fast_findings(settings)))


async def check_workspace(settings: Settings) -> Finding:
    """A throwaway sandboxed workspace, where and as real ones are (``DATA_DIR/workspaces``,
    an id of their shape, so a socket path too long for them is too long here), started on
    the base environment: it must start, run a cell and a terminal command."""
    sandbox = sandbox_for(settings)
    try:
        env_python = await asyncio.to_thread(ensure_environment, settings.envs_root, ())
    except EnvironmentBuildFailed as exc:
        return Finding("workspace", "fail", f"the base environment could not be built: "
                       f"{exc.message}"[:500], "check that `pip install` works on this host (the "
                       "build uses pip's configured sources: `pip config list`), and the "
                       "environments folder", critical=True)
    lease = sandbox.lease()  # a check uid: never one a live workspace of the server has
    try:
        uid = await asyncio.to_thread(lease.__enter__)
    except SandboxUnavailable as exc:
        return Finding("workspace", "skip", f"not checked: {exc.message}")
    try:
        result = await smoke_workspace(settings.data_dir / "workspaces",
                                       new_workspace_id(), uid, env_python)
    finally:
        await asyncio.to_thread(lease.__exit__, None, None, None)
    if result.problem is None:
        return Finding("workspace", "ok", f"a throwaway sandboxed workspace started, ran a cell "
                       f"and a terminal command in {result.seconds:.1f} s", critical=True)
    fixes = {"start": "see the problem: it ends with the last lines of the workspace's log",
             "kernel": "the environment's Python must run as a sandbox uid (see 'environment')",
             "cell": "the kernel started but did not run code: see the problem",
             "control": "the workspace's control folders must be root's: check that nothing "
                        "else changes the data dir's workspaces folder",
             "terminal": "the terminal must find the environment's python on its PATH"}
    return Finding("workspace", "fail", f"at the {result.step} step: {result.problem}",
                   fixes.get(result.step, ""), critical=True)


async def full_report(settings: Settings) -> Report:
    findings = await asyncio.to_thread(fast_findings, settings, thorough=True)
    blocked = _sandbox_checks_possible(findings)
    workspace = await check_workspace(settings) if blocked is None else Finding(
        "workspace", "skip", f"not checked: {blocked}")
    return Report((*findings, workspace))
