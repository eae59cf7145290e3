"""The bubblewrap sandbox one workspace's jupyter-server runs in.

pairlab (root) starts ``bwrap`` without a user namespace: it gets its own PID, network, IPC and
UTS namespaces (so it sees only its own processes and has no network at all, only a private
loopback), ``--die-with-parent`` and ``--new-session``. Its filesystem is built from nothing: the
host's ``/usr`` and the Python trees it needs (pairlab's venv and the task environment, with their
base installations) read-only, a curated few ``/etc`` entries read-only, a synthetic
``/etc/passwd``/``group``/``hosts`` naming the workspace's uid ``candidate``, the workspace's
generated config read-only at ``/etc/pairlab``, private ``/tmp`` and ``/dev/shm`` tmpfs, and
read-write only the workspace's own folders: ``work`` at ``/workspace`` and, inside the root-owned
``run`` at ``/run/pairlab``, ``runtime`` (kernel IPC files) and ``state`` (what the server
writes); the socket's folder ``run/sock`` is the uid's only until the server has bound (then
root's: ``lock_socket_dir``). The root is remounted read-only, and the seccomp filter of
``seccomp.py`` forbids new user namespaces. Inside,
``setpriv`` drops to the workspace's own real unprivileged uid (no groups, no capabilities, empty
bounding set, no_new_privs) and ``prlimit`` sets the rlimits (processes, file size, open files, no
core dumps) before the server runs; memory and process counts are also capped by the cgroup the
outermost process joined before exec (``cgroups.py``). Nothing else of the host is mounted:
not pairlab's data dir, other workspaces, the database, hidden checks or ``/home``. bwrap's own
options reach it through a pipe (``--args``), so not even the sandbox's init command line names
a host path.
"""

from __future__ import annotations

import asyncio
import configparser
import logging
import os
import shutil
import stat
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from common.processes import Completed, DeadlineExceeded, run_bounded
from workspaces.errors import SandboxUnavailable, WorkspaceError
from workspaces.sandbox import seccomp
from workspaces.sandbox.cgroups import kill_uid as kill_uid  # the process table, re-exported
from workspaces.sandbox.cgroups import pids_of_uid as pids_of_uid
from workspaces.sandbox.cgroups import signal_if_uid as signal_if_uid
from workspaces.sandbox.cgroups import top_process_of_uid as top_process_of_uid
from workspaces.sandbox.limits import Limits

log = logging.getLogger(__name__)

WORKSPACE = Path("/workspace")
RUN = Path("/run/pairlab")
CONFIG = Path("/etc/pairlab")
TMP = Path("/tmp")  # noqa: S108 - the sandbox's own private tmpfs
SHM = Path("/dev/shm")  # noqa: S108 - the sandbox's own private tmpfs
SYSTEM_PATH = "/usr/bin:/bin:/usr/sbin:/sbin"
TOP_LINKS = ("bin", "sbin", "lib", "lib64", "lib32", "libx32")
ETC_ENTRIES = (
    "ssl", "ca-certificates", "alternatives", "localtime", "mime.types", "bash.bashrc",
    "inputrc", "terminfo", "ld.so.cache", "profile",
)
GENERATED_ETC = ("passwd", "group", "hosts", "nsswitch.conf")
SHM_BYTES = 256 * 1024 * 1024
WORKSPACE_UIDS = 1000
"""Workspaces run as ``sandbox_uid_base`` to ``+999``, one uid per live workspace; check runs use
the uids right after (``sandbox.run``)."""


@dataclass(frozen=True)
class Tools:
    """Absolute host paths of the programs the sandbox is built with."""

    sh: str
    setpriv: str
    prlimit: str
    bwrap: str | None


def find_tools(bwrap: str | None) -> Tools | str:
    """The tools, or a sentence saying which one is missing."""
    found: dict[str, str] = {}
    for name in ("sh", "setpriv", "prlimit"):
        path = shutil.which(name, path=SYSTEM_PATH)
        if path is None:
            return f"{name} is not installed (it is part of util-linux / the base system)"
        found[name] = os.path.realpath(path)
        if name != "sh" and not found[name].startswith("/usr/"):
            return f"{name} must live under /usr to be usable inside the sandbox (found {path})"
    bwrap_path: str | None = None
    if bwrap is not None:
        bwrap_path = shutil.which(bwrap, path=SYSTEM_PATH)
        if bwrap_path is None:
            return f"bubblewrap was not found at {bwrap!r}; install the bubblewrap package"
    return Tools(found["sh"], found["setpriv"], found["prlimit"], bwrap_path)


def _namespace_flags() -> list[str]:
    return ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
            "--unshare-cgroup-try", "--die-with-parent", "--new-session"]


def _system_mounts() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for name in TOP_LINKS:
        host = Path("/") / name
        if host.is_symlink():
            args += ["--symlink", os.readlink(host), str(host)]
        elif host.is_dir():
            args += ["--ro-bind", str(host), str(host)]
    return args


def check_sandbox(bwrap: str = "bwrap", timeout_s: float = 30.0) -> str | None:
    """Probe once whether a sandbox can be built here: ``None`` if it can, else the reason."""
    if os.geteuid() != 0:
        return ("pairlab must run as root to start each workspace as its own unprivileged uid "
                "(rlimits do not bind root)")
    tools = find_tools(bwrap)
    if isinstance(tools, str):
        return tools
    assert tools.bwrap is not None  # noqa: S101 - find_tools returns it when asked
    result = _probe_run(tools, ["/usr/bin/true"], timeout_s)
    if isinstance(result, str):
        return result
    if result.returncode != 0:
        detail = (result.err or result.out).strip().splitlines()[-1:] or ["no output"]
        return f"bubblewrap cannot build a sandbox here: {detail[0]}"
    return None


def _probe_run(tools: Tools, command: list[str], timeout_s: float) -> Completed | str:
    """``command`` as nobody in a minimal sandbox under the seccomp filter, or why it could not
    be run."""
    assert tools.bwrap is not None  # noqa: S101 - find_tools returns it when asked
    reason = seccomp.unavailable()
    if reason is not None:
        return reason
    filter_fd = seccomp.filter_fd()
    argv = [tools.bwrap, *_namespace_flags(), *_system_mounts(), "--proc", "/proc", "--dev",
            "/dev", "--tmpfs", str(TMP), "--remount-ro", "/", "--seccomp", str(filter_fd), "--",
            tools.setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--no-new-privs",
            "--", *command]
    try:
        return run_bounded(argv, timeout_s=timeout_s, env={"PATH": SYSTEM_PATH},
                           pass_fds=(filter_fd,))
    except (OSError, DeadlineExceeded) as exc:
        return f"bubblewrap could not be run: {exc}"
    finally:
        os.close(filter_fd)


def userns_denied(bwrap: str = "bwrap", timeout_s: float = 30.0) -> str | None:
    """``None`` if ``unshare -U -r`` is refused in a sandbox here (the seccomp filter loads and
    holds), else why not."""
    tools = find_tools(bwrap)
    if isinstance(tools, str):
        return tools
    result = _probe_run(tools, ["/usr/bin/unshare", "-U", "-r", "/usr/bin/true"], timeout_s)
    if isinstance(result, str):
        return result
    if result.returncode == 0:
        return "a sandbox could still create a user namespace (the seccomp filter did not hold)"
    if "Operation not permitted" not in result.err:
        return f"unshare failed for another reason: {result.err.strip()[-200:]}"
    return None


def probe_tools(bwrap: str = "bwrap") -> Tools | str:
    """The tools, once bubblewrap has been seen to build a sandbox here; else the reason."""
    reason = check_sandbox(bwrap)
    return reason if reason is not None else find_tools(bwrap)


# ---- what to mount ------------------------------------------------------------------------


def _venv_base(venv: Path) -> Path | None:
    """The base installation a virtualenv points at (``home`` in its ``pyvenv.cfg``)."""
    cfg = venv / "pyvenv.cfg"
    if not cfg.is_file():
        return None
    parser = configparser.ConfigParser()
    try:
        parser.read_string("[venv]\n" + cfg.read_text())
    except (configparser.Error, OSError, UnicodeDecodeError):
        return None
    home = parser.get("venv", "home", fallback="").strip()
    if not home:
        return None
    real = Path(os.path.realpath(home))
    return real.parent if real.name == "bin" else real


def python_trees(env_python: Path) -> list[tuple[Path, Path]]:
    """``(host source, sandbox path)`` pairs, read-only, for pairlab's and the task's Python.

    Derived from ``sys.prefix``, ``sys.base_prefix``, the running executable and the task
    environment's ``pyvenv.cfg`` (symlinks resolved), so a fresh clone anywhere works.
    """
    env_venv = Path(os.path.abspath(env_python)).parent.parent
    wanted: list[Path] = [Path(sys.prefix), Path(sys.base_prefix),
                          Path(os.path.realpath(sys.executable)).parent.parent,
                          env_venv, Path(os.path.realpath(env_python)).parent.parent]
    for venv in (Path(sys.prefix), env_venv):
        base = _venv_base(venv)
        if base is not None:
            wanted.append(base)
    pairs: list[tuple[Path, Path]] = []
    for path in wanted:
        dest = Path(os.path.abspath(path))
        src = Path(os.path.realpath(dest))
        pairs.append((src, dest))
        if src != dest:
            pairs.append((src, src))
    pairs.sort(key=lambda pair: len(pair[1].parts))
    kept: list[tuple[Path, Path]] = []
    for src, dest in pairs:
        if dest.is_relative_to("/usr") and src.is_relative_to("/usr"):
            continue
        if any(dest.is_relative_to(d) for _, d in kept):
            continue
        kept.append((src, dest))
    return kept


def _refuse_exposing(binds: Iterable[tuple[Path, Path]], protected: Path) -> None:
    for src, _dest in binds:
        if len(src.parts) < 3 and not src.is_relative_to("/usr"):
            raise SandboxUnavailable(
                f"refusing to expose {src} inside the sandbox: install Python under a "
                "dedicated folder (e.g. /opt/python or a pyenv version)"
            )
        if protected.is_relative_to(src):
            raise SandboxUnavailable(
                f"refusing to expose {src} inside the sandbox: it contains pairlab's data "
                f"folder {protected}; keep the data dir outside the Python installation"
            )


class _Plan:
    """Accumulates bwrap arguments, creating each parent folder once with mode 0755."""

    def __init__(self) -> None:
        self.args: list[str] = []
        self.made: set[Path] = {Path("/")}

    def parents(self, dest: Path) -> None:
        for parent in reversed(dest.parents):
            if parent not in self.made:
                self.args += ["--perms", "0755", "--dir", str(parent)]
                self.made.add(parent)

    def mount(self, kind: str, src: Path, dest: Path) -> None:
        self.parents(dest)
        self.args += [kind, str(src), str(dest)]
        self.made.add(dest)


@dataclass(frozen=True)
class HostPaths:
    """The host side of one workspace: ``root/<id>/{work,run,config}`` and its server log."""

    base: Path
    work: Path
    run: Path
    config: Path
    log: Path

    @classmethod
    def of(cls, root: Path, workspace_id: str) -> HostPaths:
        base = root / workspace_id
        return cls(base, base / "work", base / "run", base / "config", base / "server.log")

    @property
    def socket_dir(self) -> Path:
        """``run/sock``: the server binds here, then root locks it (``lock_socket_dir``)."""
        return self.run / "sock"

    @property
    def socket(self) -> Path:
        return self.socket_dir / "jupyter.sock"


def bwrap_argv(bwrap: str, host: HostPaths, env_python: Path, limits: Limits,
               protected: Path, chdir: Path = Path("/")) -> list[str]:
    """The full ``bwrap ... --`` prefix for one workspace (the command follows it)."""
    trees = python_trees(env_python)
    _refuse_exposing(trees, protected)
    plan = _Plan()
    plan.args += [bwrap, *_namespace_flags(), "--hostname", "pairlab", *_system_mounts()]
    plan.made.update(Path("/") / name for name in ("usr", *TOP_LINKS))
    plan.args += ["--proc", "/proc", "--dev", "/dev",
                  "--perms", "1777", "--size", str(SHM_BYTES), "--tmpfs", str(SHM),
                  "--perms", "1777", "--size", str(limits.tmp_bytes), "--tmpfs", str(TMP)]
    plan.made.update({Path("/proc"), Path("/dev"), TMP})
    for name in ETC_ENTRIES:
        entry = Path("/etc") / name
        if entry.exists():
            plan.mount("--ro-bind", Path(os.path.realpath(entry)), entry)
    for name in GENERATED_ETC:
        plan.mount("--ro-bind", host.config / "etc" / name, Path("/etc") / name)
    plan.mount("--ro-bind", host.config, CONFIG)
    plan.mount("--bind", host.run, RUN)
    plan.mount("--bind", host.work, WORKSPACE)
    for src, dest in trees:
        plan.mount("--ro-bind", src, dest)
    plan.args += ["--remount-ro", "/", "--chdir", str(chdir), "--"]
    return plan.args


def drop_privileges_argv(tools: Tools, uid: int, limits: Limits, *, memory_rlimit: bool
                         ) -> list[str]:
    """``setpriv`` to the uid (no groups, caps or new privileges), then ``prlimit``."""
    return [tools.setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
            "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all", "--pdeathsig=KILL",
            "--", tools.prlimit, *prlimit_args(limits, memory_rlimit=memory_rlimit), "--"]


def prlimit_args(limits: Limits, *, memory_rlimit: bool) -> list[str]:
    """``prlimit`` options (soft = hard) for the sandbox's processes."""
    args = [f"--nproc={limits.processes}", f"--fsize={limits.file_size_bytes}",
            f"--nofile={limits.open_files}", "--core=0"]
    if memory_rlimit:
        args.append(f"--as={limits.memory_bytes}")
    return args


def join_cgroups_argv(tools: Tools, procs_files: list[Path]) -> list[str]:
    """A tiny ``sh`` prefix that moves itself into the cgroups, then execs the rest."""
    script = ('n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; '
              'n=$((n-1)); done; exec "$@"')
    return [tools.sh, "-c", script, "pairlab-join", str(len(procs_files)),
            *(str(p) for p in procs_files)]


class OptionsPipe:
    """Where bwrap reads its options (``--args FD``): a pipe made before the command line (which
    names the descriptor), filled once the options are known, closed by the caller after the
    process started. A pipe holds 64 KiB; a longer mount list is refused, not deadlocked on.
    Beside it, ``seccomp_fd`` holds the seccomp filter (``--seccomp FD``); pass ``fds`` to the
    process."""

    MAX_BYTES = 60_000

    def __init__(self) -> None:
        self.seccomp_fd = seccomp.filter_fd()
        self.read_fd, self._write_fd = os.pipe()

    @property
    def fds(self) -> tuple[int, int]:
        return (self.read_fd, self.seccomp_fd)

    def send(self, options: bytes) -> None:
        if len(options) > self.MAX_BYTES:
            raise WorkspaceError("the sandbox's mount list is too long")
        os.write(self._write_fd, options)
        os.close(self._write_fd)
        self._write_fd = -1

    def close(self) -> None:
        for fd in (self.read_fd, self._write_fd, self.seccomp_fd):
            if fd >= 0:
                os.close(fd)
        self.read_fd = self._write_fd = self.seccomp_fd = -1


def workspace_command(tools: Tools, *, sandboxed: bool, host: HostPaths, env_python: Path,
                      limits: Limits, protected: Path, uid: int, procs_files: list[Path],
                      memory_rlimit: bool, server: list[str], args_fd: int, seccomp_fd: int,
                      chdir: Path = Path("/")) -> tuple[list[str], bytes]:
    """The whole command line: join the cgroups, bwrap (its options go NUL-separated through
    ``args_fd``, so the sandbox, which can read its init's command line, sees no host path; the
    seccomp filter of ``seccomp.py`` comes from ``seccomp_fd``), setpriv + prlimit, then
    ``server``. Returns the argv and the bytes to send to ``args_fd``. Every sandbox pairlab
    starts (workspaces and check runs) is built here."""
    argv = join_cgroups_argv(tools, procs_files)
    options: list[str] = []
    if sandboxed:
        assert tools.bwrap is not None  # noqa: S101 - the probe found it
        bwrap, *options = bwrap_argv(tools.bwrap, host, env_python, limits, protected, chdir)
        options.pop()  # the trailing "--" stays on the command line
        options += ["--seccomp", str(seccomp_fd)]
        argv += [bwrap, "--args", str(args_fd), "--"]
    argv += drop_privileges_argv(tools, uid, limits, memory_rlimit=memory_rlimit)
    return argv + server, b"".join(option.encode() + b"\0" for option in options)


# ---- the host side: folders and who owns them ------------------------------------------


def prepare_host(host: HostPaths, uid: int, *, scratch: bool) -> None:
    """The workspace's folders: ``root`` and ``root/<id>`` root-owned 0711; ``work`` owned by
    ``uid``, 0700; ``run`` (``/run/pairlab``, the control folder) root-owned 0755, holding, owned
    by ``uid`` 0700, an empty ``sock`` (locked by ``lock_socket_dir`` once the server has bound),
    ``runtime`` (kernel connection files), ``state`` (lab settings and workspaces, RTC store, file
    ids: written by the server, never loaded as code or extensions) and with ``scratch`` ``tmp``;
    and an empty root-owned ``config``. Call it while no process of the uid runs (no races)."""
    for folder in (host.base.parent, host.base):
        folder.mkdir(mode=0o711, parents=True, exist_ok=True)
        folder.chmod(0o711)
    own_dir(host.work, uid, fresh=False)
    own_dir(host.run, 0, fresh=False, mode=0o755)
    (host.run / "jupyter.sock").unlink(missing_ok=True)  # where an older pairlab bound it
    own_dir(host.socket_dir, uid, fresh=True)
    own_dir(host.run / "runtime", uid, fresh=True)
    old_state, state = host.run / "data", host.run / "state"
    if not state.exists() and old_state.is_dir() and not old_state.is_symlink():
        old_state.rename(state)  # an older pairlab kept the server's state in run/data
    own_dir(state, uid, fresh=False)
    if scratch:
        own_dir(host.run / "tmp", uid, fresh=True)
    shutil.rmtree(host.config, ignore_errors=True)


def lock_socket_dir(host: HostPaths, uid: int) -> str | None:
    """Once the server has bound ``run/sock/jupyter.sock``: hand ``run/sock`` to root (0755), so
    the uid can no longer rename, replace or add anything in it. ``None`` when locked, else why
    not yet (no socket, or not a socket of ``uid``: nothing of the uid but the server runs yet)."""
    fd = os.open(host.socket_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        try:
            found = os.stat(host.socket.name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return "no socket yet"
        if not stat.S_ISSOCK(found.st_mode) or found.st_uid != uid:
            return f"{host.socket} is not a socket of uid {uid}"
        os.fchown(fd, 0, 0)
        os.fchmod(fd, 0o755)
    finally:
        os.close(fd)
    return None


def control_problems(host: HostPaths) -> list[str]:
    """What of a running workspace's control plane its uid could change: ``run`` and the locked
    ``run/sock`` and every entry of ``config`` (server config, kernelspec, the only
    ``JUPYTER_PATH``/``JUPYTER_DATA_DIR``) must be root's and writable by no one else. Empty when
    all is well (for the doctor and the tests)."""
    entries = [host.run, host.socket_dir, host.config]
    for dirpath, dirnames, filenames in os.walk(host.config):
        entries += [Path(dirpath) / name for name in (*dirnames, *filenames)]
    problems = []
    for path in entries:
        try:
            found = path.lstat()
        except OSError as exc:
            problems.append(f"{path}: {exc.strerror}")
            continue
        if found.st_uid != 0 or (not stat.S_ISLNK(found.st_mode) and found.st_mode & 0o022):
            problems.append(f"{path} is owned by uid {found.st_uid}, mode "
                            f"{stat.S_IMODE(found.st_mode):o}")
    return problems


def open_empty_dir(work: Path) -> int:
    fd = os.open(work, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    if os.listdir(fd):
        os.close(fd)
        raise WorkspaceError(f"{work} is not empty; refusing to fill it")
    return fd


def own_dir(path: Path, uid: int, *, fresh: bool, mode: int = 0o700) -> None:
    """A real folder (never a symlink the uid planted) owned by ``uid``, ``mode`` 0700."""
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        path.unlink()
    elif fresh and path.is_dir():
        shutil.rmtree(path)
    path.mkdir(mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        os.fchown(fd, uid, uid)
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def own_tree(tree: Path, uid: int) -> None:
    """Hand a throwaway copy (a check run's tree) to ``uid``, never following a link, each
    entry writable by its owner."""
    for _dirpath, dirnames, filenames, dirfd in os.fwalk(tree, follow_symlinks=False):
        for name in (*dirnames, *filenames):
            os.chown(name, uid, uid, dir_fd=dirfd, follow_symlinks=False)
            mode = os.stat(name, dir_fd=dirfd, follow_symlinks=False).st_mode
            if not stat.S_ISLNK(mode):
                os.chmod(name, stat.S_IMODE(mode) | 0o200, dir_fd=dirfd)
    os.chown(tree, uid, uid, follow_symlinks=False)
    os.chmod(tree, 0o700)


def freeze(work: Path) -> None:
    """chown -R root and chmod a-w, never following a symlink (dir fds guard against races)."""
    for _dirpath, dirnames, filenames, dirfd in os.fwalk(work, follow_symlinks=False):
        for name in (*dirnames, *filenames):
            os.chown(name, 0, 0, dir_fd=dirfd, follow_symlinks=False)
            mode = os.stat(name, dir_fd=dirfd, follow_symlinks=False).st_mode
            if not stat.S_ISLNK(mode):
                os.chmod(name, mode & 0o555, dir_fd=dirfd)
    os.chown(work, 0, 0, follow_symlinks=False)
    work.chmod(work.stat().st_mode & 0o555)


async def copy_in_as(tools: Tools, tree: Path, work: Path, uid: int) -> None:
    """Copy ``tree`` into the empty folder ``work`` as ``uid``, modes kept but made writable by
    their owner (task revisions are stored read-only; the candidate must be able to edit).

    pairlab's ``tar`` reads the tree; a second ``tar`` running as the uid writes it, so root never
    writes inside a folder the candidate controls. The writer reaches the folder through an
    inherited descriptor, whatever the permissions of its parents.
    """
    dir_fd = await asyncio.to_thread(open_empty_dir, work)
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    read_fd, write_fd = os.pipe()
    try:
        reader = await asyncio.create_subprocess_exec(
            "tar", "-C", str(tree), "--mode=u+w", "-cf", "-", ".", stdout=write_fd, cwd="/",
            env=env,
            stderr=asyncio.subprocess.PIPE)
        writer = await asyncio.create_subprocess_exec(
            tools.setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
            "--no-new-privs", "--", "tar", "-C", f"/proc/self/fd/{dir_fd}", "-xpf", "-",
            "--no-same-owner", "--no-overwrite-dir", stdin=read_fd, cwd="/", env=env,
            pass_fds=(dir_fd,), stderr=asyncio.subprocess.PIPE)
    finally:
        for fd in (read_fd, write_fd, dir_fd):
            os.close(fd)
    (_, read_err), (_, write_err) = await asyncio.gather(reader.communicate(),
                                                         writer.communicate())
    if reader.returncode or writer.returncode:
        detail = (read_err + write_err).decode("utf-8", "replace").strip()[-500:]
        raise WorkspaceError(f"copying the task into {work} failed: {detail}")
