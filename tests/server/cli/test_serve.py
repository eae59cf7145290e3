"""``pairlab serve`` as a real process: ready, usable over HTTP, clean exit on SIGTERM."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PASSWORD, assert_no_traceback

# slow: every test starts a real ``pairlab serve``
pytestmark = pytest.mark.slow

# Loopback only, and never through a proxy from the environment.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def request(url: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, str], Any]:
    data = json.dumps(body).encode() if body is not None else None
    assert url.startswith("http://127.0.0.1:")
    req = urllib.request.Request(  # noqa: S310 - a loopback http URL the test built
        url, data=data, headers={"Content-Type": "application/json"} if data else {}
    )
    try:
        with OPENER.open(req, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


def status_of(url: str) -> int:
    assert url.startswith("http://127.0.0.1:")
    try:
        with OPENER.open(url, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code


def wait_ready(url: str, proc: subprocess.Popen[bytes], deadline_seconds: float = 60) -> None:
    """Poll ``url`` with exponential backoff until it answers 200, the process dies, or time
    runs out."""
    deadline = time.monotonic() + deadline_seconds
    delay = 0.05
    while True:
        if proc.poll() is not None:
            raise AssertionError(f"pairlab serve exited early with {proc.returncode}")
        with contextlib.suppress(OSError, ValueError):
            status, _, _ = request(url)
            if status == 200:
                return
        if time.monotonic() + delay > deadline:
            raise AssertionError(f"{url} was not ready within {deadline_seconds}s")
        time.sleep(delay)
        delay = min(delay * 2, 1.0)


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def serve_logs(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    yield tmp_path / "serve.out", tmp_path / "serve.err"


def start_serve(
    cli_env: dict[str, str], cwd: Path, logs: tuple[Path, Path], *args: str
) -> subprocess.Popen[bytes]:
    out, err = logs
    with out.open("wb") as stdout, err.open("wb") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "server.cli.main", "serve", *args],
            stdout=stdout,
            stderr=stderr,
            env=cli_env,
            cwd=cwd,
            start_new_session=True,
        )


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Last resort for a failed test: kill the whole process group."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def test_serve_until_sigterm(
    run_cli: Any, cli_env: dict[str, str], tmp_path: Path, serve_logs: tuple[Path, Path]
) -> None:
    added = run_cli(
        "user", "add", "ada@example.com", "--role", "admin", "--password-stdin",
        input=PASSWORD + "\n",
    )
    assert added.returncode == 0, added
    port, workspace_port = free_port(), free_port()
    proc = start_serve(
        cli_env, tmp_path, serve_logs, "--port", str(port), "--workspace-port", str(workspace_port)
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(f"{base}/readyz", proc)
        assert request(f"{base}/healthz")[0] == 200
        assert request(f"http://127.0.0.1:{workspace_port}/healthz")[0] == 200

        status, headers, body = request(
            f"{base}/api/v1/auth/login", {"email": "ada@example.com", "password": PASSWORD}
        )
        assert status == 200, body
        assert body["user"]["email"] == "ada@example.com"
        assert "pairlab_session=" in headers["Set-Cookie"]
        status, _, body = request(
            f"{base}/api/v1/auth/login", {"email": "ada@example.com", "password": "wrong one"}
        )
        assert status == 401

        # Capability tokens in paths and query strings never reach the access log.
        assert status_of(f"{base}/healthz?token=query-secret-123") == 200
        assert status_of(f"{base}/c/path-secret-456/lab") == 404

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        stop(proc)
    assert not group_alive(proc.pid), "pairlab serve left processes behind"
    stderr = serve_logs[1].read_text()
    assert_no_traceback(stderr)
    assert PASSWORD not in stderr
    assert "GET /healthz 200" in stderr  # the access log is on ...
    assert "/c/[token]/lab" in stderr
    assert "query-secret-123" not in stderr  # ... and scrubbed
    assert "path-secret-456" not in stderr
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


@pytest.mark.parametrize("setting", ["port", "workspace_port"])
def test_serve_on_a_busy_port_fails_with_one_line(
    cli_env: dict[str, str], tmp_path: Path, serve_logs: tuple[Path, Path], setting: str
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        busy_port = busy.getsockname()[1]
        ports = {"port": free_port(), "workspace_port": free_port(), setting: busy_port}
        proc = start_serve(
            cli_env, tmp_path, serve_logs,
            "--port", str(ports["port"]), "--workspace-port", str(ports["workspace_port"]),
        )
        try:
            code = proc.wait(timeout=60)
        finally:
            stop(proc)
    assert code == 2
    stderr = serve_logs[1].read_text()
    assert_no_traceback(stderr)
    lines = [line for line in stderr.splitlines() if line.startswith("pairlab: ")]
    assert len(lines) == 1, stderr
    assert f"{setting}: cannot listen on 127.0.0.1:{busy_port}" in lines[0]
    assert not group_alive(proc.pid)


def test_a_second_pairlab_on_an_overlapping_uid_block_is_refused(
    cli_env: dict[str, str], tmp_path: Path, serve_logs: tuple[Path, Path]
) -> None:
    """The attack: a second pairlab (its own data dir) started on sandbox uids a running one
    uses would kill the first one's sandboxes as its own when they end. It is refused at
    start, naming the running one; a block apart from it is not."""
    port = free_port()
    proc = start_serve(cli_env, tmp_path, serve_logs, "--port", str(port),
                       "--workspace-port", str(free_port()))
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", proc)
        base = int(cli_env["PAIRLAB_SANDBOX_UID_BASE"])
        other = tmp_path / "other"
        other.mkdir()
        for overlapping in (base, base + 1050):  # the same block; one over its check uids
            second = subprocess.run(
                [sys.executable, "-m", "server.cli.main", "serve", "--port", str(free_port()),
                 "--workspace-port", str(free_port()), "--data-dir", str(other / "var"),
                 "--sandbox-uid-base", str(overlapping)],
                env=cli_env, cwd=other, capture_output=True, text=True, timeout=120,
                check=False)
            assert second.returncode == 1, second.stderr
            assert_no_traceback(second.stderr)
            (line,) = [x for x in second.stderr.splitlines() if x.startswith("pairlab: ")]
            assert line.startswith(f"pairlab: sandbox uids {overlapping}-{overlapping + 1063} "
                                   f"overlap the uids {base}-{base + 1063} of another pairlab "
                                   f"running on this host (pid {proc.pid}, data dir "
                                   f"{cli_env['PAIRLAB_DATA_DIR']})"), line
            assert "PAIRLAB_SANDBOX_UID_BASE=" in line
            assert not (other / "var" / "pairlab.db").exists()  # refused before anything
        assert proc.poll() is None  # the first one runs on
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        stop(proc)
