"""LocalProvisioner with the real jupyter-server (JupyterLab + collaboration) in the real sandbox:
contents, kernel, terminal and RTC over the Unix socket, identity from the proxy's header,
readiness failures, crash and restore, stop and read-only. Plus the generated config on its own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import stat
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from tests.workspaces.conftest import (
    WorkspaceClient,
    cgroup_dirs,
    cmdline,
    free_uid,
    make_data_dir,
    remove_data_dir,
    require_sandbox,
)
from workspaces import jupyter_config
from workspaces.errors import SandboxUnavailable, WorkspaceInvalid, WorkspaceStartFailed
from workspaces.local import LocalProvisioner
from workspaces.provisioner import WorkspaceInfo, WorkspaceSpec
from workspaces.sandbox.bwrap import HostPaths
from workspaces.sandbox.cgroups import Cgroups, pids_of_uid, top_process_of_uid
from workspaces.sandbox.mounts import is_mount

module_loop = pytest.mark.asyncio(loop_scope="module")
USER = {"username": "cand-7", "name": "Ada Lovelace", "display_name": "Ada",
        "initials": "AL", "color": "#4e79a7"}


def make_task_tree(root: Path) -> Path:
    tree = root / "task-tree"
    (tree / "pkg").mkdir(parents=True)
    (tree / "mytask.py").write_text("VALUE = 41 + 1\n")
    # modules the server imports: the workspace must never be on the server's sys.path
    for shadow in ("jupyterlab.py", "jupyter_server_ydoc.py"):
        (tree / shadow).write_text("raise SystemExit('the server imported a task file')\n")
    (tree / "pkg" / "data.csv").write_text("a,b\n1,2\n")
    script = tree / "run.sh"
    script.write_text("#!/bin/sh\necho ran\n")
    script.chmod(0o755)
    return tree


class Crashes:
    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []

    def __call__(self, info: WorkspaceInfo, code: int) -> None:
        self.seen.append((info.workspace_id, code))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def workspace(env_python: Path) -> AsyncIterator[tuple[LocalProvisioner, WorkspaceInfo,
                                                              Crashes]]:
    """One started and filled workspace shared by the tests of this module."""
    require_sandbox()
    data = make_data_dir()
    crashes = Crashes()
    provisioner = LocalProvisioner(data / "workspaces", on_crash=crashes)
    info = await provisioner.start(WorkspaceSpec("wsmain", free_uid(), env_python))
    try:
        await provisioner.fill(info, make_task_tree(data))
        yield provisioner, info, crashes
    finally:
        await provisioner.stop(provisioner.live_info(info.workspace_id) or info)
        await asyncio.to_thread(remove_data_dir, data)


# ---- the generated configuration, on its own ----------------------------------------------


def test_generated_config_compiles_and_keeps_state_out_of_the_workspace() -> None:
    inside = jupyter_config.Inside(Path("/workspace"), Path("/run/pairlab"),
                                   Path("/etc/pairlab"), Path("/tmp"))
    text = jupyter_config.server_config("abc", inside)
    compile(text, "jupyter_server_config.py", "exec")
    for line in text.splitlines():
        if "db_path" in line or "_dir =" in line:
            assert "/workspace" not in line
    assert '"/w/abc/"' in text
    assert "JUPYTER_TOKEN" in text and "token=" not in text


def test_config_sets_nodelay_on_websockets_and_reads_the_identity_header(tmp_path: Path) -> None:
    """Load the generated config into a tornado app on loopback TCP (the only place TCP_NODELAY
    means anything) and look at the server-side socket of a WebSocket."""
    inside = jupyter_config.Inside(tmp_path, tmp_path, tmp_path, tmp_path)
    config = tmp_path / "jupyter_server_config.py"
    config.write_text(jupyter_config.server_config("abc", inside))
    script = textwrap.dedent(f"""
        import asyncio, ctypes, json, socket
        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # as the launcher does
        from traitlets.config import Config
        from tornado import httpserver, netutil, web, websocket
        cfg = Config()
        namespace = {{"get_config": lambda: cfg}}
        exec(compile(open({str(config)!r}).read(), "cfg", "exec"), namespace)
        exec(compile(open({str(config)!r}).read(), "cfg", "exec"), namespace)  # loaded twice
        seen = {{}}

        class Echo(websocket.WebSocketHandler):
            def open(self):
                sock = self.ws_connection.stream.socket
                seen["nodelay"] = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)

        async def main():
            app = web.Application([("/ws", Echo)])
            sockets = netutil.bind_sockets(0, "127.0.0.1")
            server = httpserver.HTTPServer(app)
            server.add_sockets(sockets)
            port = sockets[0].getsockname()[1]
            conn = await websocket.websocket_connect(f"ws://127.0.0.1:{{port}}/ws")
            for _ in range(100):
                if "nodelay" in seen:
                    break
                await asyncio.sleep(0.01)
            conn.close()
            server.stop()
            user = namespace["_user_from_header"]({json.dumps(USER)!r})
            bad = namespace["_user_from_header"]('{{"username": 5}}')
            print(json.dumps({{"nodelay": seen.get("nodelay"), "user": user.display_name,
                               "bad": bad, "token": cfg.IdentityProvider.token}}))
        asyncio.run(main())
    """)
    env = {"PATH": "/usr/bin:/bin", "JUPYTER_TOKEN": "t" * 64, "HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True,
                            env=env, timeout=120, cwd=tmp_path, check=False)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out == {"nodelay": 1, "user": "Ada", "bad": None, "token": "t" * 64}


def test_config_refuses_to_start_without_a_token(tmp_path: Path) -> None:
    inside = jupyter_config.Inside(tmp_path, tmp_path, tmp_path, tmp_path)
    config = tmp_path / "c.py"
    config.write_text(jupyter_config.server_config("abc", inside))
    script = (f"import ctypes\nctypes.CDLL(None).prctl(4, 0, 0, 0, 0)\n"
              f"from traitlets.config import Config\ncfg = Config()\n"
              f"exec(open({str(config)!r}).read(), {{'get_config': lambda: cfg}})\n")
    result = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin"}, timeout=60, check=False)
    assert result.returncode != 0
    assert "JUPYTER_TOKEN is missing" in result.stderr


# ---- fail closed --------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.asyncio
async def test_missing_bwrap_fails_closed_and_starts_nothing(env_python: Path,
                                                             tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    root = Path(f"/tmp/plfc{os.getpid()}")  # noqa: S108 - short socket path
    provisioner = LocalProvisioner(root, bwrap="/nonexistent/bwrap")
    uid = free_uid()
    with pytest.raises(SandboxUnavailable) as caught:
        await provisioner.start(WorkspaceSpec("failclosed", uid, env_python))
    assert "bubblewrap" in caught.value.message
    assert caught.value.status == 503
    assert await provisioner.check() is not None
    assert pids_of_uid(uid) == []
    assert not HostPaths.of(root, "failclosed").socket.exists()
    assert not (root / "failclosed" / "work").exists()


# ---- a real workspace ---------------------------------------------------------------------


@pytest.mark.integration
@module_loop
@pytest.mark.timeout(600)
async def test_start_is_ready_and_keeps_its_secrets(
    workspace: tuple[LocalProvisioner, WorkspaceInfo, Crashes],
) -> None:
    provisioner, info, _crashes = workspace
    assert await provisioner.status(info) == "running"
    mode = info.socket_path.lstat().st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
    assert info.socket_path.stat().st_uid == info.uid
    server_log = (info.root.parent / "server.log").read_text()
    assert "is running at" in server_log
    assert info.token not in server_log
    run = info.socket_path.parent.parent  # run/: sock, runtime, state
    for path in run.rglob("*"):
        if path.is_file():
            assert info.token.encode() not in path.read_bytes(), path
    assert not list(run.rglob("jpserver-*"))
    assert info.token not in cmdline(info.pid)


@pytest.mark.integration
@module_loop
@pytest.mark.timeout(600)
async def test_fill_copies_the_tree_as_the_uid_keeping_modes(
    workspace: tuple[LocalProvisioner, WorkspaceInfo, Crashes],
) -> None:
    _provisioner, info, _ = workspace
    script = info.root / "run.sh"
    assert (info.root / "mytask.py").read_text() == "VALUE = 41 + 1\n"
    assert (info.root / "pkg" / "data.csv").exists()
    assert stat.S_IMODE(script.stat().st_mode) == 0o755
    assert stat.S_IMODE((info.root / "mytask.py").stat().st_mode) == 0o644
    owners = {p.lstat().st_uid for p in info.root.rglob("*")}
    assert owners == {info.uid}
    assert stat.S_IMODE(info.root.stat().st_mode) == 0o700


@pytest.mark.integration
@module_loop
@pytest.mark.timeout(600)
async def test_contents_round_trip(workspace: tuple[LocalProvisioner, WorkspaceInfo, Crashes]
                                   ) -> None:
    _, info, _ = workspace
    body = {"type": "file", "format": "text", "content": "print('round trip')\n"}
    async with WorkspaceClient(info) as client:
        status, _ = await client.request("PUT", "api/contents/notes", json={"type": "directory"})
        assert status == 201
        status, saved = await client.request("PUT", "api/contents/notes/hello.py", json=body)
        assert status in (200, 201), saved
        status, got = await client.request("GET", "api/contents/notes/hello.py?content=1")
    assert status == 200
    assert got["content"] == "print('round trip')\n"
    on_disk = info.root / "notes" / "hello.py"
    assert on_disk.read_text() == "print('round trip')\n"
    assert on_disk.stat().st_uid == info.uid


@pytest.mark.integration
@module_loop
@pytest.mark.timeout(600)
async def test_kernel_runs_task_code_over_ipc(
    workspace: tuple[LocalProvisioner, WorkspaceInfo, Crashes], env_python: Path
) -> None:
    _, info, _ = workspace
    async with WorkspaceClient(info) as client:
        kernel = await client.start_kernel()
        assert (await client.execute(kernel, "1+1")).strip() == "2"
        out = await client.execute(kernel, textwrap.dedent("""
            import glob, json, os, sys
            import mytask
            conn = json.load(open(glob.glob('/run/pairlab/runtime/kernel-*.json')[0]))
            print(mytask.VALUE, conn['transport'], sys.executable, os.getcwd())
            print('JUPYTER_TOKEN' in os.environ)
        """))
    value, transport, executable, cwd = out.split("\n")[0].split()
    assert (value, transport, cwd) == ("42", "ipc", "/workspace")
    assert executable == str(env_python)
    assert out.split("\n")[1] == "False"


@pytest.mark.integration
@module_loop
@pytest.mark.timeout(600)
async def test_terminal_echoes_a_command(
    workspace: tuple[LocalProvisioner, WorkspaceInfo, Crashes], env_python: Path
) -> None:
    _, info, _ = workspace
    async with WorkspaceClient(info) as client:
        status, term = await client.request("POST", "api/terminals")
        assert status == 200, term
        seen = ""
        async with client.ws(f"terminals/websocket/{term['name']}") as ws:
            command = "echo pair$((40+2)) $(id -un) $PWD $(command -v python)\r"
            await ws.send_str(json.dumps(["stdin", command]))
            async with asyncio.timeout(60):
                async for msg in ws:
                    kind, *payload = json.loads(msg.data)
                    if kind == "stdout":
                        seen += payload[0]
                    if f"pair42 candidate /workspace {env_python}" in seen:
                        break
        await client.request("DELETE", f"api/terminals/{term['name']}")
    assert f"pair42 candidate /workspace {env_python}" in seen


@pytest.mark.integration
@module_loop
@pytest.mark.timeout(600)
async def test_rtc_room_websocket_connects(
    workspace: tuple[LocalProvisioner, WorkspaceInfo, Crashes],
) -> None:
    _, info, _ = workspace
    async with WorkspaceClient(info, USER) as client:
        status, session = await client.request(
            "PUT", "api/collaboration/session/mytask.py", json={"format": "text", "type": "file"}
        )
        assert status in (200, 201), session
        room = f"text:file:{session['fileId']}"
        async with client.ws(f"api/collaboration/room/{room}?sessionId={session['sessionId']}"
                             ) as ws:
            msg = await ws.receive(timeout=60)
    assert msg.type == aiohttp.WSMsgType.BINARY
    assert msg.data[0] == 0  # a Yjs sync message
    assert not (info.root / ".jupyter_ystore.db").exists()
    assert not (info.root / ".jupyter").exists()


@pytest.mark.integration
@module_loop
@pytest.mark.timeout(600)
async def test_identity_comes_from_the_proxy_header(
    workspace: tuple[LocalProvisioner, WorkspaceInfo, Crashes],
) -> None:
    _, info, _ = workspace
    async with WorkspaceClient(info, USER) as named, WorkspaceClient(info) as plain:
        status, me = await named.request("GET", "api/me")
        assert status == 200
        assert {k: me["identity"][k] for k in USER} == USER
        status, anonymous = await plain.request("GET", "api/me")
        assert status == 200
        assert anonymous["identity"]["name"].startswith("Anonymous")
        # the header alone (no token) is not enough
        status, _ = await named.request("GET", "api/me",
                                        headers={"Authorization": "token wrong"})
        assert status == 403


@pytest.mark.integration
@module_loop
@pytest.mark.timeout(600)
async def test_a_killed_server_is_reported_and_restored_with_its_files(
    workspace: tuple[LocalProvisioner, WorkspaceInfo, Crashes],
) -> None:
    provisioner, info, crashes = workspace
    server = top_process_of_uid(info.pid, info.uid)
    assert server is not None and server != info.pid
    os.kill(server, signal.SIGKILL)
    code = await asyncio.wait_for(provisioner.wait_exit(info), timeout=60)
    assert code != 0
    assert await provisioner.status(info) == "crashed"
    assert crashes.seen == [(info.workspace_id, code)]
    assert pids_of_uid(info.uid) == []
    assert not info.socket_path.exists()

    restored = await provisioner.restore(info)
    assert restored.token != info.token and restored.pid != info.pid
    assert await provisioner.status(restored) == "running"
    async with WorkspaceClient(restored) as client:
        status, got = await client.request("GET", "api/contents/mytask.py?content=1")
        assert status == 200 and got["content"] == "VALUE = 41 + 1\n"
        kernel = await client.start_kernel()
        assert (await client.execute(kernel, "import mytask; mytask.VALUE")).strip() == "42"
    async with WorkspaceClient(info) as stale:
        status, _ = await stale.request("GET", "api/status")
    assert status == 403


@pytest.mark.integration
@module_loop
@pytest.mark.timeout(600)
async def test_stop_leaves_no_process_and_read_only_freezes_the_folder(
    workspace: tuple[LocalProvisioner, WorkspaceInfo, Crashes],
) -> None:
    provisioner, first, _ = workspace
    info = provisioner.live_info(first.workspace_id)
    assert info is not None
    await provisioner.stop(info)
    assert await provisioner.status(info) == "stopped"
    assert await LocalProvisioner(provisioner.root).status(info) == "stopped"  # after a restart
    assert pids_of_uid(info.uid) == []
    assert not info.socket_path.exists()
    assert not (info.socket_path.parent.parent / "runtime").exists()
    assert cgroup_dirs(info.workspace_id) == []
    assert (info.root / "mytask.py").exists()
    assert not is_mount(info.root.parent)  # the final state is a plain folder now

    await provisioner.make_read_only(info)
    for path in [info.root, *info.root.rglob("*")]:
        st = path.lstat()
        assert st.st_uid == 0, path
        if not stat.S_ISLNK(st.st_mode):
            assert st.st_mode & 0o222 == 0, path
    assert stat.S_IMODE((info.root / "run.sh").stat().st_mode) == 0o555


# ---- the disk image ------------------------------------------------------------------------


def loop_devices_of(image: Path) -> list[str]:
    out = subprocess.run(["losetup", "-j", str(image)], capture_output=True, text=True,
                         check=True).stdout
    return [line.split(":", 1)[0] for line in out.splitlines() if line.strip()]


@pytest.mark.integration
@pytest.mark.asyncio
@pytest.mark.timeout(600)
async def test_the_image_survives_restarts_and_stop_leaves_a_plain_folder(
        env_python: Path) -> None:
    """Mounted before the folders are made, kept across a pairlab restart (same boot or
    after a reboot), and at stop turned into a plain folder with the same files (holes kept),
    the image and its loop device gone; ``sweep`` does that for images nobody runs."""
    require_sandbox()
    data = make_data_dir()
    root = data / "workspaces"
    uid, other = free_uid(), free_uid()
    try:
        first = LocalProvisioner(root)
        info = await first.start(WorkspaceSpec("wsimg", uid, env_python))
        base, image = root / "wsimg", first.image_path("wsimg")
        assert is_mount(base) and image.stat().st_mode & 0o777 == 0o600
        assert os.stat(info.root).st_dev == os.stat(base).st_dev != os.stat(root).st_dev
        assert os.stat(base / "run").st_dev == os.stat(base).st_dev
        (info.root / "kept.txt").write_text("kept\n")
        with (info.root / "holes.bin").open("wb") as f:
            f.truncate(1024**3)
        await first.close()  # pairlab shuts down: the image is kept, unmounted
        assert not is_mount(base) and image.exists() and loop_devices_of(image) == []

        again = LocalProvisioner(root)  # restarted: the image is mounted again
        info = await again.restore(info)
        assert is_mount(base) and (info.root / "kept.txt").read_text() == "kept\n"
        await again.close()
        rebooted = LocalProvisioner(root)
        info = await rebooted.restore(info)
        assert is_mount(base) and (info.root / "kept.txt").read_text() == "kept\n"

        await rebooted.stop(info)
        assert not is_mount(base) and not image.exists() and loop_devices_of(image) == []
        assert (info.root / "kept.txt").read_text() == "kept\n"
        holes = (info.root / "holes.bin").stat()
        assert holes.st_size == 1024**3 and holes.st_blocks * 512 < 1024**2  # still sparse
        assert await LocalProvisioner(root).status(info) == "stopped"
        await rebooted.make_read_only(info)
        assert (info.root / "kept.txt").stat().st_uid == 0

        stale = LocalProvisioner(root)
        left = await stale.start(WorkspaceSpec("wsleft", other, env_python))
        (left.root / "note.txt").write_text("left behind\n")
        await stale.close()  # and the session is gone by the next start
        assert await LocalProvisioner(root).sweep() == ["wsleft"]
        assert not is_mount(root / "wsleft") and not stale.image_path("wsleft").exists()
        assert (left.root / "note.txt").read_text() == "left behind\n"
    finally:
        await asyncio.to_thread(remove_data_dir, data)


@pytest.mark.integration
@pytest.mark.asyncio
@pytest.mark.timeout(300)
async def test_no_disk_image_no_workspace(env_python: Path) -> None:
    """Fail closed: where the image cannot be made, the workspace does not start."""
    require_sandbox()
    data = make_data_dir()
    root = data / "workspaces"
    root.mkdir(mode=0o711)
    (root / ".images").write_text("in the way")
    uid = free_uid()
    try:
        with pytest.raises(WorkspaceStartFailed) as failed:
            await LocalProvisioner(root).start(WorkspaceSpec("wsnone", uid, env_python))
        assert "disk image" in failed.value.message and "File exists" in failed.value.message
        assert pids_of_uid(uid) == [] and not is_mount(root / "wsnone")
    finally:
        await asyncio.to_thread(remove_data_dir, data)


# ---- whose processes are killed -----------------------------------------------------------


@pytest.mark.integration
@pytest.mark.asyncio
@pytest.mark.timeout(300)
@pytest.mark.parametrize("with_cgroups", [True, False], ids=["cgroups", "no-cgroups"])
async def test_a_foreign_process_with_the_uid_survives_stop(env_python: Path,
                                                            with_cgroups: bool) -> None:
    """The attack: ``kill_uid`` killed every host process of the workspace's uid, so another
    pairlab's sandbox or an operator's process in the uid range died with the workspace.
    Now the workspace's processes are found by its cgroup (or, without one, its sandbox's pid
    namespace): they die at stop, a process that merely has the uid lives."""
    require_sandbox()
    data = make_data_dir()
    cgroups = Cgroups() if with_cgroups else Cgroups(root=data / "no-cgroups")
    if with_cgroups and not cgroups.available():
        pytest.skip("no writable cgroups here")
    provisioner = LocalProvisioner(data / "workspaces", cgroups=cgroups,
                                   require_cgroups=with_cgroups)  # no-cgroups: the opt-out
    uid = free_uid()
    foreign: subprocess.Popen[bytes] | None = None
    try:
        info = await provisioner.start(WorkspaceSpec("wsown", uid, env_python))
        async with WorkspaceClient(info) as client:
            kernel = await client.start_kernel()
            await client.execute(kernel, "import subprocess\nsubprocess.Popen(['sleep', '600'],"
                                 " start_new_session=True)\nprint('started')")
        own = set(pids_of_uid(uid))
        assert len(own) >= 3  # server, kernel, its sleeper
        foreign = subprocess.Popen(["setpriv", f"--reuid={uid}", f"--regid={uid}",
                                    "--clear-groups", "--", "sleep", "600"])
        await asyncio.sleep(0.2)
        assert foreign.pid in pids_of_uid(uid)
        await provisioner.stop(info)
        assert pids_of_uid(uid) == [foreign.pid]
        assert foreign.poll() is None
        with pytest.raises(WorkspaceInvalid, match="still runs 1 processes outside"):
            await provisioner.restore(info)  # never shares the uid with it either
        assert foreign.poll() is None
    finally:
        if foreign is not None:
            foreign.kill()
            foreign.wait()
        await provisioner.close()
        await asyncio.to_thread(remove_data_dir, data)


# ---- readiness failures -------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.asyncio
@pytest.mark.timeout(300)
async def test_a_server_that_exits_early_fails_with_its_log(
    env_python: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_sandbox()
    monkeypatch.setattr(jupyter_config, "LAUNCHER",
                        "import sys\nprint('boom: config is broken', flush=True)\nsys.exit(3)\n")
    data = make_data_dir()
    try:
        provisioner = LocalProvisioner(data / "workspaces")
        uid = free_uid()
        with pytest.raises(WorkspaceStartFailed) as caught:
            await provisioner.start(WorkspaceSpec("early", uid, env_python))
        assert "boom: config is broken" in caught.value.message
        assert "exited" in caught.value.message
        assert pids_of_uid(uid) == []
    finally:
        await asyncio.to_thread(remove_data_dir, data)


@pytest.mark.integration
@pytest.mark.asyncio
@pytest.mark.timeout(300)
async def test_a_server_that_is_too_slow_is_stopped(env_python: Path) -> None:
    require_sandbox()
    data = make_data_dir()
    try:
        provisioner = LocalProvisioner(data / "workspaces", start_timeout_s=0.2)
        uid = free_uid()
        with pytest.raises(WorkspaceStartFailed) as caught:
            await provisioner.start(WorkspaceSpec("slow", uid, env_python))
        assert "did not start within" in caught.value.message
        assert pids_of_uid(uid) == []
        assert not HostPaths.of(data / "workspaces", "slow").socket.exists()
    finally:
        await asyncio.to_thread(remove_data_dir, data)


@pytest.mark.integration
@pytest.mark.asyncio
@pytest.mark.timeout(300)
async def test_unsandboxed_mode_is_loud_and_still_runs_as_the_uid(
    env_python: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``sandbox=False`` (development only) skips bwrap, never the uid: either the server runs
    as the uid, or (when that uid cannot reach the Python installation, e.g. under a 0700
    /root) it fails with the uid's "Permission denied" rather than running as root."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    data = make_data_dir()
    data.chmod(0o711)
    provisioner = LocalProvisioner(data / "workspaces", sandbox=False)
    uid = free_uid()
    try:
        try:
            info = await provisioner.start(WorkspaceSpec("devmode", uid, env_python))
        except WorkspaceStartFailed as exc:
            assert "Permission denied" in exc.message
        else:
            server = top_process_of_uid(info.pid, uid)
            assert server == info.pid  # no bwrap in between
            async with WorkspaceClient(info) as client:
                status, _ = await client.request("GET", "api/status")
            assert status == 200
            await provisioner.stop(info)
        assert any("WITHOUT the bubblewrap sandbox" in r.getMessage()
                   for r in caplog.records if r.levelno == logging.WARNING)
        assert pids_of_uid(uid) == []
    finally:
        await asyncio.to_thread(remove_data_dir, data)
