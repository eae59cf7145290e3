"""Isolation, tried from inside candidate A's kernel (real jupyter-server, real sandbox): A cannot
read B or pairlab's data, sees no host process, reaches no network, writes nowhere but its own
folders; a fork bomb, a memory bomb, a huge file and a full disk in A are contained while B's
kernel still answers; after A stops nothing of it is left."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from tests.workspaces.conftest import (
    KernelError,
    WorkspaceClient,
    cgroup_dirs,
    free_uid,
    make_data_dir,
    remove_data_dir,
    require_sandbox,
)
from workspaces.local import LocalProvisioner
from workspaces.provisioner import WorkspaceInfo, WorkspaceSpec
from workspaces.sandbox.cgroups import pids_of_uid
from workspaces.sandbox.limits import Limits, MiB
from workspaces.sandbox.mounts import is_mount

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module"),
              pytest.mark.timeout(600)]
LIMITS = Limits(processes=128, memory_bytes=640 * MiB, file_size_bytes=150 * MiB,
                disk_bytes=200 * MiB, inodes=3000)


@dataclass
class Pair:
    provisioner: LocalProvisioner
    data: Path
    a: WorkspaceInfo
    b: WorkspaceInfo
    kernel_a: str
    kernel_b: str
    b_marker: str


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pair(env_python: Path) -> AsyncIterator[Pair]:
    require_sandbox()
    data = make_data_dir()
    (data / "pairlab.toml").write_text("secret_key = 'settings-secret'\n")
    provisioner = LocalProvisioner(data / "workspaces", limits=LIMITS)
    started: list[WorkspaceInfo] = []
    try:
        for name in ("wsa", "wsb"):
            started.append(await provisioner.start(WorkspaceSpec(name, free_uid(), env_python)))
        a, b = started
        marker = f"b-secret-{secrets.token_hex(4)}.txt"
        (b.root / marker).write_text("B's private work")
        async with WorkspaceClient(a) as client_a, WorkspaceClient(b) as client_b:
            kernel_a, kernel_b = await asyncio.gather(client_a.start_kernel(),
                                                      client_b.start_kernel())
        yield Pair(provisioner, data, a, b, kernel_a, kernel_b, marker)
    finally:
        for info in started:
            await provisioner.stop(info)
        await asyncio.to_thread(remove_data_dir, data)


async def run_in(info: WorkspaceInfo, kernel: str, code: str, limit_s: float = 120.0) -> str:
    async with WorkspaceClient(info) as client:
        return await client.execute(kernel, code, limit_s)


async def run_json(info: WorkspaceInfo, kernel: str, code: str) -> dict[str, object]:
    out = await run_in(info, kernel, code)
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return result


async def answers(info: WorkspaceInfo, kernel: str, limit_s: float = 120.0) -> bool:
    """True once the kernel computes 1+1 (a kernel killed meanwhile is restarted by Jupyter)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    delay = 0.1
    while True:
        try:
            if (await run_in(info, kernel, "1+1", limit_s=15)).strip() == "2":
                return True
        except (TimeoutError, KernelError, aiohttp.ClientError):
            pass
        if loop.time() > deadline:
            return False
        await asyncio.sleep(delay)
        delay = min(delay * 2, 2.0)


def oom_kill_count(workspace_id: str) -> int | None:
    for group in cgroup_dirs(workspace_id):
        control = group / "memory.oom_control"
        if control.exists():
            return int(dict(line.split() for line in control.read_text().splitlines())["oom_kill"])
    return None


PROBE_FILES = """
import json, os
def attempt(path):
    try:
        with open(path, "rb") as f:
            f.read(1)
        return "read"
    except OSError as exc:
        return type(exc).__name__
found = []
for top in sorted(set(os.listdir("/")) - {"proc", "sys", "dev", "usr"}):
    for root, dirs, files in os.walk("/" + top):
        found += [os.path.join(root, f) for f in files if f in NAMES]
print(json.dumps({"tried": {p: attempt(p) for p in PATHS}, "found": found}))
"""


async def test_a_cannot_read_b_or_pairlabs_data(pair: Pair) -> None:
    paths = [str(pair.b.root / pair.b_marker), str(pair.b.socket_path),
             str(pair.data / "pairlab.db"), str(pair.data / "pairlab.toml"),
             str(pair.data / "tasks" / "t1" / "checks" / "hidden_check.py"),
             str(pair.a.root.parent / "server.log"), "/etc/shadow",
             f"/workspace/../{pair.b.workspace_id}/work/{pair.b_marker}"]
    names = [pair.b_marker, "pairlab.db", "pairlab.toml", "hidden_check.py", "server.log"]
    code = f"PATHS = {paths!r}\nNAMES = {set(names)!r}\n" + PROBE_FILES
    seen = await run_json(pair.a, pair.kernel_a, code)
    assert seen["found"] == []
    tried = seen["tried"]
    assert isinstance(tried, dict)
    assert set(tried.values()) <= {"FileNotFoundError", "PermissionError"}, tried


PROBE_PROC = """
import json, os
pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
seen = {}
for pid in pids:
    entry = {}
    try:
        status = open(f"/proc/{pid}/status").read()
        entry["uid"] = int(status.split("Uid:")[1].split()[0])
        entry["cmd"] = open(f"/proc/{pid}/cmdline").read().replace("\\0", " ")
    except OSError as exc:
        entry["cmd"] = type(exc).__name__
    try:
        entry["environ"] = open(f"/proc/{pid}/environ").read()
    except OSError as exc:
        entry["environ"] = type(exc).__name__
    seen[pid] = entry
print(json.dumps({"self": os.getpid(), "pids": seen}))
"""


async def test_a_sees_only_its_own_processes_and_no_environment_with_secrets(
    pair: Pair,
) -> None:
    seen = await run_json(pair.a, pair.kernel_a, PROBE_PROC)
    pids = seen["pids"]
    assert isinstance(pids, dict)
    assert len(pids) < 20
    assert {entry["uid"] for entry in pids.values()} <= {0, pair.a.uid}
    assert pids["1"]["environ"] == "PermissionError"  # bwrap's init, root
    assert pids["1"]["cmd"].split()[1:4] == ["--args", pids["1"]["cmd"].split()[2], "--"]
    for pid, entry in pids.items():
        assert str(pair.data) not in entry["cmd"]  # no host path, no pairlab process
        assert pair.a.token not in entry["cmd"] and pair.a.token not in entry["environ"]
        assert pair.b.token not in entry["environ"]
        assert "JUPYTER_TOKEN" not in entry["environ"], pid
        if "jupyterlab" in entry["cmd"]:  # the server made itself non-dumpable
            assert entry["environ"] == "PermissionError"


PROBE_NET = """
import errno, json, socket
def attempt(family, address):
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(address)
        return "connected"
    except OSError as exc:
        return errno.errorcode.get(exc.errno, type(exc).__name__)
def resolve(name):
    try:
        socket.getaddrinfo(name, 80)
        return "resolved"
    except OSError as exc:
        return type(exc).__name__
print(json.dumps({
    "loopback": attempt(socket.AF_INET, ("127.0.0.1", PORT)),
    "abstract": attempt(socket.AF_UNIX, ABSTRACT),
    "other": attempt(socket.AF_INET, ("10.0.0.1", 80)),
    "v6": attempt(socket.AF_INET6, ("2001:db8::1", 80)),
    "dns": resolve("example.com"),
}))
"""


async def test_a_reaches_no_network_not_even_the_hosts_loopback(pair: Pair) -> None:
    connections = 0

    async def count(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        writer.close()

    tcp = await asyncio.start_server(count, "127.0.0.1", 0)
    port = tcp.sockets[0].getsockname()[1]
    abstract = f"\0pairlab-test-{secrets.token_hex(4)}"
    unix = await asyncio.start_unix_server(count, path=abstract)
    try:
        code = f"PORT = {port}\nABSTRACT = {abstract!r}\n" + PROBE_NET
        seen = await run_json(pair.a, pair.kernel_a, code)
    finally:
        tcp.close()
        unix.close()
        await tcp.wait_closed()
        await unix.wait_closed()
    assert seen["loopback"] == "ECONNREFUSED"
    assert seen["abstract"] == "ECONNREFUSED"
    assert seen["other"] == "ENETUNREACH"
    assert seen["v6"] in ("ENETUNREACH", "EADDRNOTAVAIL", "EAFNOSUPPORT")
    assert seen["dns"] == "gaierror"
    assert connections == 0


PROBE_WRITE = """
import json, os
def attempt(path):
    try:
        with open(path, "w") as f:
            f.write("x")
        os.unlink(path)
        return "ok"
    except OSError as exc:
        return type(exc).__name__
result = {p: attempt(p) for p in PATHS}
try:
    os.setuid(0)
    result["setuid"] = "ok"
except OSError as exc:
    result["setuid"] = type(exc).__name__
result["uid"] = [os.getuid(), os.geteuid(), os.getgroups()]
print(json.dumps(result))
"""


async def test_a_writes_only_its_workspace_and_tmp(pair: Pair) -> None:
    paths = ["/workspace/w.txt", "/tmp/w.txt", "/usr/w.txt", "/etc/passwd", "/w.txt",
             "/etc/pairlab/jupyter/jupyter_server_config.py", "/run/pairlab/../config/w.txt",
             "/run/w.txt", "/proc/w.txt", str(pair.a.env_python.parent / "w.txt")]
    seen = await run_json(pair.a, pair.kernel_a, f"PATHS = {paths!r}\n" + PROBE_WRITE)
    assert seen.pop("uid") == [pair.a.uid, pair.a.uid, []]
    assert seen.pop("setuid") == "PermissionError"
    assert seen.pop("/workspace/w.txt") == "ok" and seen.pop("/tmp/w.txt") == "ok"
    assert set(seen.values()) <= {"PermissionError", "OSError", "FileNotFoundError"}, seen


FORK_BOMB = """
import os, signal, subprocess, sys, time
BOMB = "import os\\nwhile True:\\n    try:\\n        os.fork()\\n    except OSError:\\n        pass"
bomb = subprocess.Popen([sys.executable, "-c", BOMB], start_new_session=True)
time.sleep(4)
os.killpg(bomb.pid, signal.SIGKILL)
bomb.wait()
for _ in range(400):  # the rest of the group: killed, then reaped by the sandbox's init
    try:
        os.killpg(bomb.pid, signal.SIGKILL)
    except ProcessLookupError:
        break
    time.sleep(0.05)
else:
    print("the bomb's group is still alive")
print("contained", bomb.returncode)
"""


async def test_a_fork_bomb_is_capped_and_b_still_answers(pair: Pair) -> None:
    peak = 0
    bombing = True

    async def watch() -> None:
        nonlocal peak
        while bombing:
            peak = max(peak, len(await asyncio.to_thread(pids_of_uid, pair.a.uid)))
            await asyncio.sleep(0.05)

    watcher = asyncio.create_task(watch())
    try:
        bomb, b_answer = await asyncio.gather(
            run_in(pair.a, pair.kernel_a, FORK_BOMB), run_in(pair.b, pair.kernel_b, "1+1"))
    finally:
        bombing = False
        await watcher
    assert bomb.strip() == "contained -9"
    assert b_answer.strip() == "2"
    assert 50 < peak <= LIMITS.processes
    assert await answers(pair.a, pair.kernel_a)
    assert await answers(pair.b, pair.kernel_b)


MEMORY_BOMB = """
import subprocess, sys
r = subprocess.run([sys.executable, "-c",
    "chunks = []\\nwhile True:\\n    chunks.append(bytearray(b'x' * (16 << 20)))\\n"],
    capture_output=True, text=True)
print(r.returncode, "MemoryError" in r.stderr)
"""


async def test_a_memory_bomb_is_killed_and_b_still_answers(pair: Pair) -> None:
    bomb, b_answer = await asyncio.gather(
        run_in(pair.a, pair.kernel_a, MEMORY_BOMB), run_in(pair.b, pair.kernel_b, "1+1"))
    assert bomb.strip() in ("-9 False", "1 True")
    assert b_answer.strip() == "2"
    assert await answers(pair.a, pair.kernel_a)
    oom_kills = oom_kill_count(pair.a.workspace_id)
    if oom_kills is not None:  # the cgroup's OOM killer did it
        assert oom_kills >= 1


async def test_a_file_past_the_size_limit_cannot_be_written(pair: Pair) -> None:
    code = (
        "import errno, os\n"
        "try:\n"
        "    with open('/workspace/huge.bin', 'wb') as f:\n"
        "        for _ in range(200):\n"
        "            f.write(b'x' * (1 << 20))\n"
        "    print('wrote all')\n"
        "except OSError as exc:\n"
        "    print(errno.errorcode[exc.errno], os.path.getsize('/workspace/huge.bin'))\n"
        "os.unlink('/workspace/huge.bin')\n"
    )
    out = (await run_in(pair.a, pair.kernel_a, code)).split()
    assert out == ["EFBIG", str(LIMITS.file_size_bytes)]


DISK_ATTACK = """
import errno, json, os, subprocess
LIMIT = %d
found = {}
done = [subprocess.run(["fallocate", "-l", str(140 << 20), f"/workspace/fa-{i}.bin"],
                       capture_output=True, text=True) for i in range(3)]
found["fallocate"] = [d.returncode for d in done]
found["fallocate_error"] = done[-1].stderr.strip()
def fill():
    for i in range(20):  # dense writes into sparse files, each under the file-size limit
        with open(f"/workspace/tw-{i}.bin", "wb") as f:
            f.truncate(100 << 20)
            for _ in range(100):
                f.write(b"x" * (1 << 20))
    return "wrote everything"
try:
    found["writes"] = fill()
except OSError as exc:
    found["writes"] = errno.errorcode[exc.errno]
for name in os.listdir("/workspace"):
    if name.startswith(("fa-", "tw-")):
        os.unlink("/workspace/" + name)
os.mkdir("/workspace/many")
made = 0
try:
    for made in range(LIMIT + 1000):
        open(f"/workspace/many/{made}", "w").close()
    found["files"] = "made all"
except OSError as exc:
    found["files"] = errno.errorcode[exc.errno]
found["made"] = made
for name in os.listdir("/workspace/many"):
    os.unlink("/workspace/many/" + name)
os.rmdir("/workspace/many")
print(json.dumps(found))
"""


def host_free(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


async def test_a_full_disk_and_too_many_files_fail_at_once_inside(pair: Pair) -> None:
    """The attack: ``fallocate`` took 7.8 GiB in 0.01 s against a 4 GiB limit (the limit was a
    poll), sparse files made dense cost nothing until measured, and file counts were
    unlimited. Now every write past the image's size and every file past its inodes fails
    with ENOSPC inside, and the host loses at most the limit."""
    image = pair.provisioner.image_path(pair.a.workspace_id)
    free_before = await asyncio.to_thread(host_free, pair.data)
    baseline = image.stat().st_blocks * 512
    found = await run_json(pair.a, pair.kernel_a, DISK_ATTACK % LIMITS.inodes)
    assert found["fallocate"][0] == 0 and found["fallocate"][1:] != [0, 0], found
    assert "No space left on device" in str(found["fallocate_error"]), found
    assert found["writes"] == "ENOSPC", found
    assert found["files"] == "ENOSPC" and int(str(found["made"])) < LIMITS.inodes, found
    # the host paid at most the limit (other work on this machine moves its free space a bit)
    assert image.stat().st_blocks * 512 <= LIMITS.disk_bytes
    assert free_before - await asyncio.to_thread(host_free, pair.data) < LIMITS.disk_bytes
    # what was deleted inside is given back to the host (discard), and A still works
    assert image.stat().st_blocks * 512 < baseline + 32 * MiB
    assert await answers(pair.a, pair.kernel_a)
    assert (await run_in(pair.b, pair.kernel_b, "1+1")).strip() == "2"


async def test_after_stop_nothing_of_a_is_left_and_b_still_answers(pair: Pair) -> None:
    await pair.provisioner.stop(pair.a)
    assert pids_of_uid(pair.a.uid) == []
    assert not pair.a.socket_path.exists()
    assert cgroup_dirs(pair.a.workspace_id) == []
    assert await pair.provisioner.status(pair.a) == "stopped"
    assert (await run_in(pair.b, pair.kernel_b, "1+1")).strip() == "2"



async def test_close_stops_everything_but_leaves_it_restorable(pair: Pair) -> None:
    await pair.provisioner.close()
    assert pids_of_uid(pair.b.uid) == []
    assert not pair.b.socket_path.exists()
    assert cgroup_dirs(pair.b.workspace_id) == []
    # after a pairlab restart the session layer sees "crashed" and restores it
    assert await LocalProvisioner(pair.provisioner.root).status(pair.b) == "crashed"
    # its disk image is kept, unmounted (nothing of pairlab's outlives it); restore mounts it
    assert not is_mount(pair.b.root.parent) and pair.provisioner.image_path(
        pair.b.workspace_id).exists()
    restored = LocalProvisioner(pair.provisioner.root)
    info = await restored.restore(pair.b)
    try:
        assert (info.root / pair.b_marker).read_text() == "B's private work"
    finally:
        await restored.stop(info)
