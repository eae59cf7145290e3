"""The sandbox's pieces on their own: what bwrap mounts, the probe, a real sandboxed command
(no jupyter), limits, disk use, cgroups and the process-table helpers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.workspaces.conftest import free_uid, require_sandbox
from workspaces import jupyter_config
from workspaces.errors import SandboxUnavailable
from workspaces.sandbox.bwrap import (
    CONFIG,
    ETC_ENTRIES,
    GENERATED_ETC,
    RUN,
    TMP,
    WORKSPACE,
    HostPaths,
    Tools,
    bwrap_argv,
    check_sandbox,
    drop_privileges_argv,
    find_tools,
    join_cgroups_argv,
    prlimit_args,
    python_trees,
)
from workspaces.sandbox.cgroups import (
    Cgroups,
    kill_uid,
    pid_namespace,
    pids_of_uid,
    top_process_of_uid,
)
from workspaces.sandbox.limits import GiB, Limits, MiB, disk_usage


def mounts(argv: list[str]) -> list[tuple[str, str, str]]:
    """``(kind, source, dest)`` of every bind in a bwrap argv."""
    found = []
    for i, arg in enumerate(argv):
        if arg in ("--bind", "--ro-bind"):
            found.append((arg, argv[i + 1], argv[i + 2]))
    return found


def host_paths(root: Path) -> HostPaths:
    return HostPaths.of(root, "wsx")


def test_python_trees_come_from_the_running_python_and_the_task_venv(tmp_path: Path) -> None:
    venv = tmp_path / "envs" / "py311-abc"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text(f"home = {Path(sys.base_prefix) / 'bin'}\n")
    (venv / "bin" / "python").symlink_to(Path(sys.base_prefix) / "bin" / "python3")
    trees = python_trees(venv / "bin" / "python")
    dests = {dest for _, dest in trees}
    assert venv in dests
    assert Path(os.path.realpath(sys.prefix)) in dests or Path(sys.prefix) in dests
    base = Path(os.path.realpath(sys.base_prefix))
    assert base.is_relative_to("/usr") or any(base.is_relative_to(d) for d in dests)
    assert not any(d.is_relative_to("/usr") for d in dests)
    for src, dest in trees:
        assert src == Path(os.path.realpath(dest))
        assert not any(dest != other and dest.is_relative_to(other) for other in dests)


def test_bwrap_mounts_only_the_listed_things(tmp_path: Path) -> None:
    host = host_paths(tmp_path / "workspaces")
    argv = bwrap_argv("/usr/bin/bwrap", host, Path(sys.executable), Limits(), tmp_path)
    for flag in ("--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
                 "--die-with-parent", "--new-session"):
        assert flag in argv
    assert argv[-5:] == ["--remount-ro", "/", "--chdir", "/", "--"]
    binds = mounts(argv)
    rw = {(src, dest) for kind, src, dest in binds if kind == "--bind"}
    assert rw == {(str(host.work), str(WORKSPACE)), (str(host.run), str(RUN))}
    etc = {dest for _, _, dest in binds if dest.startswith("/etc/") and dest != str(CONFIG)}
    assert "/etc" not in {dest for _, _, dest in binds}
    assert etc <= {f"/etc/{name}" for name in (*ETC_ENTRIES, *GENERATED_ETC)}
    assert {f"/etc/{name}" for name in GENERATED_ETC} <= etc
    for name in GENERATED_ETC:
        assert (("--ro-bind", str(host.config / "etc" / name), f"/etc/{name}") in binds)
    assert ("--ro-bind", str(host.config), str(CONFIG)) in binds
    for _, src, _dest in binds:
        assert not tmp_path.is_relative_to(src)
    # every folder on the way to a mount point is made 0755 first (bwrap's default is 0700)
    made = {argv[i + 3] for i, a in enumerate(argv) if a == "--perms" and argv[i + 2] == "--dir"}
    for _, _, dest in binds:
        for parent in Path(dest).parents:
            if parent != Path("/") and not parent.is_relative_to("/usr"):
                assert str(parent) in made or str(parent) in ("/proc", "/dev", str(TMP)), parent


def test_refuses_to_expose_the_data_dir_through_a_python_tree(tmp_path: Path) -> None:
    host = host_paths(tmp_path)
    inside_venv = Path(os.path.realpath(sys.prefix)) / "var"
    with pytest.raises(SandboxUnavailable) as caught:
        bwrap_argv("/usr/bin/bwrap", host, Path(sys.executable), Limits(), inside_venv)
    assert "data folder" in caught.value.message


def test_probe_names_a_missing_bwrap() -> None:
    reason = check_sandbox("/nonexistent/bwrap")
    assert reason is not None
    assert "bubblewrap" in reason or "root" in reason


def test_probe_passes_on_this_machine() -> None:
    require_sandbox()
    assert check_sandbox() is None


def _tools() -> Tools:
    tools = find_tools("bwrap")
    assert isinstance(tools, Tools), tools
    return tools


SANDBOX_SCRIPT = textwrap.dedent("""
    import errno, json, os, resource, socket
    def attempt(fn):
        try:
            fn()
            return "ok"
        except OSError as exc:
            return errno.errorcode.get(exc.errno, str(exc))
    def write(path):
        with open(path, "w") as f:
            f.write("x")
    def connect(address):
        with socket.socket() as s:
            s.settimeout(5)
            s.connect(address)
    status = dict(line.split(":", 1) for line in open("/proc/self/status"))
    print(json.dumps({
        "ids": [os.getuid(), os.geteuid(), os.getgid(), os.getgroups()],
        "hostname": socket.gethostname(),
        "capeff": status["CapEff"].strip(), "capbnd": status["CapBnd"].strip(),
        "nonewprivs": status["NoNewPrivs"].strip(),
        "passwd": open("/etc/passwd").read(),
        "shadow": os.path.exists("/etc/shadow"),
        "root": sorted(os.listdir("/")),
        "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
        "write": {p: attempt(lambda p=p: write(p)) for p in (
            "/workspace/ok.txt", "/tmp/ok.txt", "/dev/shm/ok", "/x", "/usr/x", "/etc/x",
            "/etc/pairlab/x", "/run/pairlab/../x")},
        "net": attempt(lambda: connect(("10.0.0.1", 80))),
        "interfaces": [name for _, name in socket.if_nameindex()],
        "limits": [resource.getrlimit(r) for r in (resource.RLIMIT_NPROC, resource.RLIMIT_FSIZE,
                                                    resource.RLIMIT_CORE, resource.RLIMIT_NOFILE)],
    }))
""")


def test_a_command_in_the_sandbox_sees_only_its_own_world(tmp_path: Path) -> None:
    require_sandbox()
    uid = free_uid()
    host = host_paths(Path(f"/tmp/plsb{os.getpid()}"))  # noqa: S108 - short paths
    try:
        for folder in (host.work, host.run):
            folder.mkdir(parents=True, mode=0o700)
            os.chown(folder, uid, uid)
        inside = jupyter_config.Inside(WORKSPACE, RUN, CONFIG, TMP)
        jupyter_config.write_config_dir(host.config, "wsx", uid, Path(sys.executable), "Py",
                                        inside)
        limits = Limits(processes=100, file_size_bytes=10 * MiB, open_files=256)
        tools = _tools()
        assert tools.bwrap is not None
        argv = [*bwrap_argv(tools.bwrap, host, Path(sys.executable), limits, host.base.parent),
                *drop_privileges_argv(tools, uid, limits, memory_rlimit=False),
                sys.executable, "-I", "-c", SANDBOX_SCRIPT]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120,
                                env={"PATH": "/usr/bin:/bin"}, cwd="/", check=False)
        assert result.returncode == 0, result.stderr
        seen = json.loads(result.stdout)
    finally:
        subprocess.run(["rm", "-rf", str(host.base.parent)], check=False)
    assert seen["ids"] == [uid, uid, uid, []]
    assert seen["hostname"] == "pairlab"
    assert int(seen["capeff"], 16) == 0 and int(seen["capbnd"], 16) == 0
    assert seen["nonewprivs"] == "1"
    assert f"candidate:x:{uid}:{uid}:" in seen["passwd"]
    assert len(seen["passwd"].splitlines()) == 3
    assert seen["shadow"] is False
    assert "home" not in seen["root"] and "var" not in seen["root"]
    assert len(seen["pids"]) <= 3  # bwrap's init and this process: no host process is visible
    writes = seen["write"]
    assert writes["/workspace/ok.txt"] == "ok" and writes["/tmp/ok.txt"] == "ok"
    assert writes["/dev/shm/ok"] == "ok"
    for path in ("/x", "/usr/x", "/etc/x", "/etc/pairlab/x", "/run/pairlab/../x"):
        assert writes[path] in ("EROFS", "EACCES", "ENOENT", "EPERM"), (path, writes[path])
    assert seen["net"] == "ENETUNREACH"
    assert seen["interfaces"] == ["lo"]
    assert seen["limits"] == [[100, 100], [10 * MiB, 10 * MiB], [0, 0], [256, 256]]


def test_limits_are_validated_and_become_prlimit_options() -> None:
    with pytest.raises(ValueError, match="processes"):
        Limits(processes=10)
    with pytest.raises(ValueError, match="memory"):
        Limits(memory_bytes=MiB)
    limits = Limits(processes=200, memory_bytes=GiB, file_size_bytes=5 * MiB, open_files=99)
    assert prlimit_args(limits, memory_rlimit=False) == [
        "--nproc=200", f"--fsize={5 * MiB}", "--nofile=99", "--core=0"]
    assert prlimit_args(limits, memory_rlimit=True)[-1] == f"--as={GiB}"


def test_disk_usage_counts_each_inode_once_and_follows_no_symlink(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    big = tmp_path / "a" / "big.bin"
    big.write_bytes(os.urandom(1024 * 1024))
    os.link(big, tmp_path / "hardlink.bin")
    (tmp_path / "outside").symlink_to("/usr")
    used = disk_usage([tmp_path])
    assert 1024 * 1024 <= used < 1024 * 1024 + 64 * 1024


def _sleeper(uid: int) -> subprocess.Popen[bytes]:
    tools = _tools()
    return subprocess.Popen(
        ["/bin/sh", "-c", f"{tools.setpriv} --reuid={uid} --regid={uid} --clear-groups "
                          "-- sleep 60; true"], start_new_session=True)


def _wait_for(predicate: Callable[[], object], limit_s: float = 30.0) -> None:
    deadline = time.monotonic() + limit_s
    delay = 0.01
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def _sandboxed_sleeper(uid: int) -> subprocess.Popen[bytes]:
    """``sleep`` as ``uid`` in a pid namespace of its own (as every sandbox has)."""
    tools = _tools()
    return subprocess.Popen(
        ["unshare", "--pid", "--fork", "--kill-child", "--", tools.setpriv, f"--reuid={uid}",
         f"--regid={uid}", "--clear-groups", "--", "sleep", "60"], start_new_session=True)


def test_kill_uid_kills_only_sandboxed_processes_of_the_uid() -> None:
    """The attack: a process that merely has a workspace's uid (another pairlab's, an
    operator's) was killed with the workspace. Now only processes of the uid inside a
    sandbox's pid namespace are, and with a namespace given only those in it."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    uid = free_uid()
    foreign = _sleeper(uid)
    inside = _sandboxed_sleeper(uid)
    other = _sandboxed_sleeper(uid)
    host_sleeper = None
    try:
        _wait_for(lambda: len(pids_of_uid(uid)) == 3)
        host_sleeper = top_process_of_uid(foreign.pid, uid)
        sandboxed = top_process_of_uid(inside.pid, uid)
        spared = top_process_of_uid(other.pid, uid)
        assert host_sleeper and sandboxed and spared
        namespace = pid_namespace(sandboxed)
        assert namespace is not None and namespace != pid_namespace(os.getpid())
        assert kill_uid(uid, namespace=namespace) == []
        assert sorted(pids_of_uid(uid)) == sorted([host_sleeper, spared])
        assert kill_uid(uid) == []  # any sandbox's, never the host's
        assert pids_of_uid(uid) == [host_sleeper]
        assert inside.wait(timeout=30) != 0 and other.wait(timeout=30) != 0
        assert foreign.poll() is None
    finally:
        if host_sleeper:
            os.kill(host_sleeper, signal.SIGKILL)  # the one this test started, by its pid
        for proc in (foreign, inside, other):
            proc.kill()
            proc.wait()
    with pytest.raises(ValueError):
        kill_uid(0)
    with pytest.raises(ValueError):
        kill_uid(uid, namespace=pid_namespace(os.getpid()))


def test_cgroups_hold_limits_and_kill_what_is_left_on_removal() -> None:
    cgroups = Cgroups(parent_name=f"pairlab-test-{os.getpid()}")
    if not {"memory", "pids"} <= set(cgroups.available()):
        pytest.skip("no writable cgroup v1 memory and pids controllers here")
    group = cgroups.create("ws1", Limits(memory_bytes=256 * MiB, processes=100))
    try:
        assert [d.name for d in group.dirs] == ["ws1"] * len(cgroups.available())
        assert cgroups.existing("ws1") == group
        memory = next(d for d in group.dirs if (d / "memory.limit_in_bytes").exists())
        pids = next(d for d in group.dirs if (d / "pids.max").exists())
        assert int((memory / "memory.limit_in_bytes").read_text()) == 256 * MiB
        assert (pids / "pids.max").read_text().strip() == "100"
        tools = _tools()
        proc = subprocess.Popen([*join_cgroups_argv(tools, group.procs_files), "sleep", "60"])
        _wait_for(lambda: proc.pid in group.pids())
    finally:
        assert group.remove()
    assert proc.wait(timeout=30) == -9
    assert not any(d.exists() for d in group.dirs)
    assert not any(d.parent.exists() for d in group.dirs)  # the shared parent went too
    assert cgroups.existing("ws1") is None
