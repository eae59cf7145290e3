"""The control plane the candidate cannot reach, each test written as the attack, from inside a
real workspace's kernel (real jupyter-server, real bubblewrap) or against the real proxy:

- the socket cannot be renamed or replaced (its folder is root's once the server has bound), and
  a listener that is not the jupyter-server (wrong pid or uid) gets nothing from the proxy;
- a lab extension planted anywhere the uid can write is never listed nor run in a browser;
- no new user namespace (seccomp), while normal work still works;
- the kernel cannot read the server's environment or memory, nor ptrace it.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.workspaces.conftest import (
    WorkspaceClient,
    free_uid,
    make_data_dir,
    remove_data_dir,
    require_sandbox,
)
from workspaces import jupyter_config
from workspaces.local import LocalProvisioner
from workspaces.provisioner import WorkspaceInfo, WorkspaceSpec
from workspaces.sandbox.bwrap import HostPaths, control_problems, userns_denied
from workspaces.sandbox.run import CheckSandbox, SandboxJob

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module"),
              pytest.mark.timeout(600)]
RUN = Path("/run/pairlab")
CHROMIUM = "/usr/bin/chromium"


@dataclass
class Ws:
    provisioner: LocalProvisioner
    data: Path
    info: WorkspaceInfo
    kernel: str

    @property
    def host_run(self) -> Path:
        return self.info.root.parent / "run"

    def inside(self, host_path: Path) -> str:
        """Where a host path of the workspace's ``run`` folder is inside the sandbox."""
        return str(RUN / host_path.relative_to(self.host_run))

    async def run(self, code: str) -> str:
        async with WorkspaceClient(self.info) as client:
            return await client.execute(self.kernel, code)

    async def run_json(self, code: str) -> dict[str, object]:
        out = await self.run(code)
        result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
        return result

    async def restart(self) -> None:
        self.info = await self.provisioner.restore(self.info)
        async with WorkspaceClient(self.info) as client:
            self.kernel = await client.start_kernel()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def ws(env_python: Path) -> AsyncIterator[Ws]:
    require_sandbox()
    data = make_data_dir()
    provisioner = LocalProvisioner(data / "workspaces")
    info = await provisioner.start(WorkspaceSpec("wcp", free_uid(), env_python))
    state = Ws(provisioner, data, info, "")
    try:
        async with WorkspaceClient(info) as client:
            state.kernel = await client.start_kernel()
        yield state
    finally:
        await provisioner.stop(provisioner.live_info(info.workspace_id) or state.info)
        await asyncio.to_thread(remove_data_dir, data)


# ---- the socket -------------------------------------------------------------------------

TAKE_OVER = """
import json, os, socket
SOCK = {sock!r}
FOLDER = os.path.dirname(SOCK)
result = {{}}
def attempt(name, action):
    try:
        action()
        result[name] = "ok"
    except OSError as exc:
        result[name] = type(exc).__name__
attempt("rename", lambda: os.rename(SOCK, SOCK + ".real"))
attempt("unlink", lambda: os.unlink(SOCK))
evil = socket.socket(socket.AF_UNIX)
attempt("listen_in_its_place", lambda: (evil.bind(SOCK), evil.listen()))
other = socket.socket(socket.AF_UNIX)
attempt("bind_beside_it", lambda: other.bind(os.path.join(FOLDER, "evil.sock")))
attempt("rename_its_folder", lambda: os.rename(FOLDER, FOLDER + ".old"))
attempt("new_folder_in_run", lambda: os.mkdir({run!r} + "/evil"))
attempt("chmod_its_folder", lambda: os.chmod(FOLDER, 0o777))
print(json.dumps(result))
"""


async def test_the_kernel_cannot_rename_the_socket_or_listen_in_its_place(ws: Ws) -> None:
    sock = ws.inside(ws.info.socket_path)
    seen = await ws.run_json(TAKE_OVER.format(sock=sock, run=str(RUN)))
    assert seen == {"rename": "PermissionError", "unlink": "PermissionError",
                    "listen_in_its_place": "OSError", "bind_beside_it": "PermissionError",
                    "rename_its_folder": "PermissionError",
                    "new_folder_in_run": "PermissionError",
                    "chmod_its_folder": "PermissionError"}, seen
    folder = ws.info.socket_path.parent.lstat()
    assert (folder.st_uid, stat.S_IMODE(folder.st_mode)) == (0, 0o755)
    assert ws.host_run.lstat().st_uid == 0
    async with WorkspaceClient(ws.info) as client:  # still the real server
        status, _ = await client.request("GET", "api/status")
    assert status == 200


# ---- the proxy checks who listens --------------------------------------------------------


def _proxy_app(upstream: object, clients: object) -> web.Application:
    from server.workspace.proxy import proxy_http, proxy_websocket
    from workspaces.upstream import Principal, Upstream, UpstreamClients

    assert isinstance(upstream, Upstream) and isinstance(clients, UpstreamClients)
    who = Principal("int-1", "Ivy Interviewer", "interviewer")

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await proxy_websocket(request, upstream, who, clients)
        return await proxy_http(request, upstream, who, clients)

    app = web.Application()
    app.router.add_route("*", "/w/{tail:.*}", handler)
    return app


class Recorder:
    """A Unix-socket listener in this process that records every byte it receives."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="plrec", dir="/tmp"))  # noqa: S108
        self.path = self.folder / "j.sock"
        self.received = b""
        self.connections = 0
        self.server: asyncio.AbstractServer | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        while chunk := await reader.read(65536):
            self.received += chunk
            if b"\r\n\r\n" in self.received:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        writer.close()

    async def __aenter__(self) -> Recorder:
        self.server = await asyncio.start_unix_server(self._serve, path=str(self.path))
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()
        self.path.unlink(missing_ok=True)
        self.folder.rmdir()


@pytest.mark.parametrize("wrong", ["pid", "uid"])
async def test_the_proxy_sends_nothing_to_a_listener_with_the_wrong_pid_or_uid(
    wrong: str, caplog: pytest.LogCaptureFixture,
) -> None:
    from workspaces.sandbox.peer import Peer
    from workspaces.upstream import Upstream, UpstreamClients

    expected = Peer(os.getpid() + 1, os.getuid()) if wrong == "pid" else \
        Peer(os.getpid(), os.getuid() + 40000)
    async with Recorder() as recorder:
        clients = UpstreamClients()
        upstream = Upstream("wfake", str(recorder.path), "secret-token-" + "x" * 40, expected)
        async with TestServer(_proxy_app(upstream, clients), host="127.0.0.1") as server, \
                aiohttp.ClientSession() as browser:
            async with browser.get(server.make_url("/w/wfake/api/status")) as resp:
                status, text = resp.status, await resp.text()
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await browser.ws_connect(server.make_url("/w/wfake/api/events/subscribe"))
        await clients.close()
        await asyncio.sleep(0.2)
    assert status == 502 and "could not be verified" in text
    assert refused.value.status == 502
    assert recorder.connections >= 2  # the proxy did connect, twice
    assert recorder.received == b""
    assert "refused the listener" in caplog.text


async def test_the_proxy_talks_to_the_listener_it_expects() -> None:
    """The check is a check: the right pid and uid get the request (and the token)."""
    from workspaces.sandbox.peer import Peer
    from workspaces.upstream import Upstream, UpstreamClients

    async with Recorder() as recorder:
        clients = UpstreamClients()
        upstream = Upstream("wfake", str(recorder.path), "secret-token-" + "x" * 40,
                            Peer(os.getpid(), os.getuid()))
        async with TestServer(_proxy_app(upstream, clients), host="127.0.0.1") as server, \
                aiohttp.ClientSession() as browser, \
                browser.get(server.make_url("/w/wfake/api/status")) as resp:
            assert resp.status == 200
        await clients.close()
    assert b"Authorization: token secret-token-" in recorder.received


# ---- user namespaces ----------------------------------------------------------------------

USERNS = r"""
import ctypes, errno, json, os, platform, subprocess, sys
CLONE_NEWUSER, SIGCHLD = 0x10000000, 17
SYS = {"x86_64": {"clone": 56, "clone3": 435}, "aarch64": {"clone": 220, "clone3": 435}}
nr = SYS[platform.machine()]
def child(code):
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return (done.stdout.strip() or done.stderr.strip()[-200:])
PRELUDE = "import ctypes, errno, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
result = {}
cmd = subprocess.run(["unshare", "-U", "-r", "id", "-u"], capture_output=True, text=True)
result["unshare_cmd"] = [cmd.returncode, cmd.stdout.strip()]
result["unshare"] = child(PRELUDE + "r = libc.unshare(%d)\n"
                          "print(r, errno.errorcode.get(ctypes.get_errno()))" % CLONE_NEWUSER)
result["clone"] = child(PRELUDE + "r = libc.syscall(%d, %d, 0, 0, 0, 0)\n"
                        "os._exit(0) if r == 0 else None\n"
                        "print(r, errno.errorcode.get(ctypes.get_errno()))"
                        % (nr["clone"], CLONE_NEWUSER | SIGCHLD))
result["clone3"] = child(PRELUDE + "r = libc.syscall(%d, None, 0)\n"
                         "print(r, errno.errorcode.get(ctypes.get_errno()))" % nr["clone3"])
print(json.dumps(result))
"""


async def test_no_new_user_namespace_inside_the_sandbox(ws: Ws) -> None:
    seen = await ws.run_json(USERNS)
    assert seen["unshare_cmd"][0] != 0 and seen["unshare_cmd"][1] != "0", seen
    assert seen["unshare"] == "-1 EPERM", seen
    assert seen["clone"] == "-1 EPERM", seen
    assert seen["clone3"] == "-1 ENOSYS", seen


async def test_the_probe_sees_the_filter_hold() -> None:
    """What ``pairlab doctor`` runs: ``unshare -U -r`` refused in a minimal sandbox."""
    require_sandbox()
    assert await asyncio.to_thread(userns_denied) is None


NORMAL_WORK = r"""
import json, multiprocessing, os, subprocess, sys, threading
def run(*argv, cwd="/tmp"):
    done = subprocess.run(argv, capture_output=True, text=True, cwd=cwd)
    return [done.returncode, (done.stdout + done.stderr)[-300:]]
result = {}
result["pip"] = run(sys.executable, "-m", "pip", "list")[0]
os.makedirs("/tmp/proj/tests", exist_ok=True)
with open("/tmp/proj/tests/test_ok.py", "w") as f:
    f.write("def test_ok():\n    assert 6 * 7 == 42\n")
result["pytest"] = run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests",
                       cwd="/tmp/proj")[0]
result["git"] = run("sh", "-c", "git init -q g && git -C g -c user.email=c@x -c user.name=c "
                    "commit -q --allow-empty -m one && git -C g log --oneline | wc -l")
box = []
t = threading.Thread(target=lambda: box.append(6 * 7))
t.start(); t.join()
result["thread"] = box
with multiprocessing.get_context("fork").Pool(2) as pool:
    result["fork_pool"] = pool.map(abs, [-1, -2])
print(json.dumps(result))
"""


async def test_normal_work_still_works_under_the_filter(ws: Ws) -> None:
    seen = await ws.run_json(NORMAL_WORK)
    assert seen == {"pip": 0, "pytest": 0, "git": [0, "1\n"], "thread": [42],
                    "fork_pool": [1, 2]}, seen
    notebook = {"cells": [{"cell_type": "code", "source": "print(42)", "metadata": {},
                           "outputs": [], "execution_count": None}],
                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    async with WorkspaceClient(ws.info) as client:  # the notary signs what is saved, in memory
        status, saved = await client.request("PUT", "api/contents/saved.ipynb", json={
            "type": "notebook", "format": "json", "content": notebook})
        assert status in (200, 201), saved
        status, read = await client.request("GET", "api/contents/saved.ipynb?content=1")
        assert status == 200 and read["content"]["cells"][0]["source"] == "print(42)", read
    async with WorkspaceClient(ws.info) as client:
        status, term = await client.request("POST", "api/terminals")
        assert status == 200, term
        out = ""
        async with client.ws(f"terminals/websocket/{term['name']}") as term_ws:
            await term_ws.send_str(json.dumps(["stdin", "echo term$((40+2)) $(id -un)\r"]))
            async with asyncio.timeout(60):
                async for msg in term_ws:
                    kind, *payload = json.loads(msg.data)
                    out += payload[0] if kind == "stdout" else ""
                    if "term42 candidate" in out:
                        break
        await client.request("DELETE", f"api/terminals/{term['name']}")
    assert "term42 candidate" in out


# ---- the server's memory and environment ----------------------------------------------------

PEEK = r"""
import ctypes, errno, json, os
server = os.getppid()
libc = ctypes.CDLL(None, use_errno=True)
result = {"server_is_jupyter": "jupyterlab" in open(f"/proc/{server}/cmdline").read()}
for name in ("environ", "mem", "maps"):
    try:
        with open(f"/proc/{server}/{name}", "rb") as f:
            f.read(4096)
        result[name] = "ok"
    except OSError as exc:
        result[name] = type(exc).__name__
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
r = libc.ptrace(16, server, None, None)  # PTRACE_ATTACH
result["ptrace_attach"] = [r, errno.errorcode.get(ctypes.get_errno())]
if r == 0:
    libc.ptrace(17, server, None, None)  # PTRACE_DETACH
result["token_in_my_env"] = any("JUPYTER_TOKEN" in k for k in os.environ)
print(json.dumps(result))
"""


async def test_the_kernel_cannot_read_or_trace_the_server(ws: Ws) -> None:
    seen = await ws.run_json(PEEK)
    assert seen == {"server_is_jupyter": True, "environ": "PermissionError",
                    "mem": "PermissionError", "maps": "PermissionError",
                    "ptrace_attach": [-1, "EPERM"], "token_in_my_env": False}, seen


async def test_a_check_run_cannot_make_a_user_namespace_either(env_python: Path) -> None:
    """Check runs (the import's checks, continuous and hidden checks) get the same filter."""
    require_sandbox()
    data = Path(tempfile.mkdtemp(prefix="plcr-", dir="/tmp"))  # noqa: S108 - short paths
    data.chmod(0o700)
    try:
        work = data / "tree"
        work.mkdir()
        base = int(os.environ.get("PAIRLAB_SANDBOX_UID_BASE", "300000"))
        sandbox = CheckSandbox(base, data, data / "checks")
        job = SandboxJob(("sh", "-c", "unshare -U -r id -u; echo exit=$?"), env_python, work, 60)
        output = await asyncio.to_thread(_run_once, sandbox, job)
    finally:
        shutil.rmtree(data, ignore_errors=True)
    assert "exit=1" in output and "Operation not permitted" in output, output


def _run_once(sandbox: CheckSandbox, job: SandboxJob) -> str:
    with sandbox.run(job) as run:
        assert run.exit_code == 0, run.output
        return run.output


# ---- lab extensions -----------------------------------------------------------------------

EXTENSION_PLACES = [
    "/workspace/labextensions", "/workspace/.local/share/jupyter/labextensions",
    "/workspace/share/jupyter/labextensions", "/tmp/.local/share/jupyter/labextensions",
    "/run/pairlab/data/labextensions", "/run/pairlab/state/labextensions",
    "/run/pairlab/runtime/labextensions", "/run/pairlab/labextensions",
]
CONFIG_PLACES = ["/workspace", "/workspace/.jupyter", "/tmp/.config/jupyter",
                 "/run/pairlab/data", "/run/pairlab/state", "/run/pairlab/runtime"]
PLANT = f"PLACES = {EXTENSION_PLACES!r}\nCONFIG_PLACES = {CONFIG_PLACES!r}\n" + r"""
import json, os
planted = {}
def attempt(place, action):
    try:
        action()
        planted[place] = "ok"
    except OSError as exc:
        planted[place] = type(exc).__name__
def extension(place, name):
    os.makedirs(os.path.join(place, name, "static"), exist_ok=True)
    with open(os.path.join(place, name, "package.json"), "w") as f:
        json.dump({"name": name, "version": "1.0.0", "jupyterlab": {
            "_build": {"load": "static/remoteEntry.js", "extension": "./extension"}}}, f)
    with open(os.path.join(place, name, "static", "remoteEntry.js"), "w") as f:
        f.write("window.PWNED = 1;\n")
CONFIG = ("c.LabApp.extra_labextensions_path = ['/workspace/labextensions']\n"
          "open('/workspace/config-ran', 'a').write('x')\n")
def config(place):
    os.makedirs(place, exist_ok=True)
    for name in ("jupyter_server_config.py", "jupyter_lab_config.py"):
        with open(os.path.join(place, name), "w") as f:
            f.write(CONFIG)
for i, place in enumerate(PLACES):
    attempt(place, lambda: extension(place, f"pwned-ext-{i}"))
for place in CONFIG_PLACES:
    attempt("config " + place, lambda: config(place))
print(json.dumps(planted))
"""


async def plant(ws: Ws) -> dict[str, object]:
    planted = await ws.run_json(PLANT)
    for place in ("/workspace/labextensions", "/tmp/.local/share/jupyter/labextensions",
                  "/run/pairlab/state/labextensions", "config /workspace"):
        assert planted[place] == "ok", planted  # the candidate can write there
    return planted


async def listed_extensions(ws: Ws) -> list[str]:
    async with WorkspaceClient(ws.info) as client:
        status, found = await client.request("GET", "lab/api/extensions")
    assert status == 200, found
    items = found[0] if found and isinstance(found[0], list) else found
    return [item["name"] for item in items]


async def test_a_planted_lab_extension_is_never_listed(ws: Ws) -> None:
    await plant(ws)
    before = await listed_extensions(ws)
    await ws.restart()  # config files planted for the next start
    after = await listed_extensions(ws)
    for names in (before, after):
        assert "@jupyter/collaboration-extension" in names, names  # the real ones still load
        assert not [name for name in names if name.startswith("pwned")], names
    assert not (ws.info.root / "config-ran").exists()


async def test_a_planted_lab_extension_never_runs_in_the_interviewers_browser(ws: Ws) -> None:
    from playwright.async_api import async_playwright

    from workspaces.upstream import Upstream, UpstreamClients

    await plant(ws)
    clients = UpstreamClients()
    upstream = Upstream(ws.info.workspace_id, str(ws.info.socket_path), ws.info.token,
                        ws.info.server)
    async with TestServer(_proxy_app(upstream, clients), host="127.0.0.1") as server, \
            async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM,
                                          args=["--no-sandbox", "--disable-gpu"])
        try:
            page = await browser.new_page()
            await page.goto(str(server.make_url(f"/w/{ws.info.workspace_id}/lab")))
            await page.wait_for_selector("#jp-main-dock-panel", timeout=120_000)
            await page.wait_for_load_state("networkidle", timeout=60_000)
            await page.wait_for_timeout(2000)
            pwned = await page.evaluate("window.PWNED")
            loaded = await page.evaluate(
                "JSON.parse(document.getElementById('jupyter-config-data').textContent)"
                ".federated_extensions.map(e => e.name)")
        finally:
            await browser.close()
    await clients.close()
    server_log = (ws.info.root.parent / "server.log").read_text()
    assert "Read-only file system" not in server_log  # nothing it writes is in the locked folders
    assert pwned is None
    assert "@jupyter/collaboration-extension" in loaded, loaded
    assert not [name for name in loaded if name.startswith("pwned")], loaded


async def test_the_config_refuses_to_read_the_token_in_a_dumpable_process(tmp_path: Path
                                                                        ) -> None:
    """The launcher makes the server non-dumpable first; a server started any other way (still
    dumpable, its token readable by the uid) stops before it takes the token."""
    inside = jupyter_config.Inside(tmp_path, tmp_path, tmp_path, tmp_path)
    config = tmp_path / "c.py"
    config.write_text(jupyter_config.server_config("abc", inside))
    script = (f"from traitlets.config import Config\ncfg = Config()\n"
              f"exec(open({str(config)!r}).read(), {{'get_config': lambda: cfg}})\n")
    result = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-I", "-c", script], capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "JUPYTER_TOKEN": "t" * 64}, timeout=60, check=False)
    assert result.returncode != 0
    assert "the server is dumpable; refusing to read the token" in result.stderr


# ---- last: with the lock removed, a listener in the kernel gets nothing --------------------

LISTEN_IN_ITS_PLACE = r"""
import json, os, socket, threading
SOCK = {sock!r}
os.rename(SOCK, SOCK + ".real")
evil = socket.socket(socket.AF_UNIX)
evil.bind(SOCK)
evil.listen(8)
seen = {{"connections": 0, "received": ""}}
def serve():
    while True:
        conn, _ = evil.accept()
        seen["connections"] += 1
        conn.settimeout(5)
        try:
            while chunk := conn.recv(65536):
                seen["received"] += chunk.decode("latin-1")
        except OSError:
            pass
        conn.close()
        with open("/workspace/captured.json", "w") as f:
            json.dump(seen, f)
threading.Thread(target=serve, daemon=True).start()
print("listening")
"""


async def test_with_the_lock_removed_a_listener_in_the_kernel_gets_nothing(
    ws: Ws, caplog: pytest.LogCaptureFixture,
) -> None:
    """Breaks this module's workspace (its socket is taken over): keep it the last test."""
    from workspaces.upstream import Upstream, UpstreamClients

    host = HostPaths.of(ws.info.root.parent.parent, ws.info.workspace_id)
    assert control_problems(host) == []
    os.chown(ws.info.socket_path.parent, ws.info.uid, ws.info.uid)  # the lock, removed
    assert control_problems(host) == [f"{host.socket_dir} is owned by uid {ws.info.uid}, "
                                      "mode 755"]  # what the doctor would say
    out = await ws.run(LISTEN_IN_ITS_PLACE.format(sock=ws.inside(ws.info.socket_path)))
    assert out.strip() == "listening"
    clients = UpstreamClients()
    upstream = Upstream(ws.info.workspace_id, str(ws.info.socket_path), ws.info.token,
                        ws.info.server)
    base = f"/w/{ws.info.workspace_id}"
    async with TestServer(_proxy_app(upstream, clients), host="127.0.0.1") as server, \
            aiohttp.ClientSession() as browser:
        async with browser.get(server.make_url(f"{base}/api/status")) as resp:
            status, text = resp.status, await resp.text()
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await browser.ws_connect(server.make_url(f"{base}/api/kernels/{ws.kernel}/channels"))
    await clients.close()
    captured = ws.info.root / "captured.json"
    for _ in range(50):
        if captured.exists() and json.loads(captured.read_text())["connections"] >= 2:
            break
        await asyncio.sleep(0.1)
    seen = json.loads(captured.read_text())
    assert status == 502 and "could not be verified" in text
    assert refused.value.status == 502
    assert seen == {"connections": 2, "received": ""}
    assert "refused the listener" in caplog.text
