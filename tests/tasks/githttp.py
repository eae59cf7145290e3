"""A small loopback smart-HTTP git server for tests: ``git http-backend`` run as CGI.

``serve_git(root)`` starts this file as its own process (``python -I githttp.py ROOT MODE``) on
127.0.0.1 with a free port and yields the base URL; the bare repositories in ``root`` are served
as ``{base}/NAME.git``. Running it in a separate process keeps its ``git http-backend`` children
out of the test process's tree, so tests can assert that no git process of theirs outlives a fetch.

Modes: ``normal``; ``hang`` (every request is accepted and never answered, for timeouts).
In every mode ``/moved/...`` answers a 301 to ``/...`` (to show redirects are not followed).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

BACKEND_TIMEOUT_S = 60.0


def _backend() -> str:
    exec_path = subprocess.run(
        ["git", "--exec-path"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return os.path.join(exec_path, "git-http-backend")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path, mode: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = root
        self.mode = mode
        self.backend = _backend()
        self.home = root  # git reads no config from it: GIT_CONFIG_GLOBAL is /dev/null


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return

    def do_GET(self) -> None:  # noqa: N802
        self._serve()

    def do_POST(self) -> None:  # noqa: N802
        self._serve()

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _serve(self) -> None:
        if self.server.mode == "hang":
            threading.Event().wait()
            return
        path, _, query = self.path.partition("?")
        if path.startswith("/moved/"):
            self.send_response(301)
            self.send_header("Location", path[len("/moved") :] + (f"?{query}" if query else ""))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = self._body()
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(self.server.home),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_PROJECT_ROOT": str(self.server.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": self.client_address[0],
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
            "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
        }
        done = subprocess.run(
            [self.server.backend],
            input=body,
            env=env,
            capture_output=True,
            timeout=BACKEND_TIMEOUT_S,
            check=False,
        )
        raw = done.stdout
        crlf, lf = raw.find(b"\r\n\r\n"), raw.find(b"\n\n")
        if crlf >= 0 and (lf < 0 or crlf < lf):
            head, payload = raw[:crlf], raw[crlf + 4 :]
        else:
            head, payload = raw[:lf], raw[lf + 2 :]
        status = 200 if done.returncode == 0 else 500
        headers: list[tuple[str, str]] = []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@contextmanager
def serve_git(root: Path, *, mode: str = "normal", ready_timeout_s: float = 15.0) -> Iterator[
    tuple[str, int]
]:
    """Serve the bare repos in ``root``; yield ``(base_url, server_pid)``."""
    proc = subprocess.Popen(
        [sys.executable, "-I", str(Path(__file__).resolve()), str(root), mode],
        stdout=subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin", "LANG": "C"},
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + ready_timeout_s
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or proc.poll() is not None:
                raise RuntimeError("the test git server did not start")
            ready, _, _ = select.select([proc.stdout], [], [], min(left, 0.5))
            if ready:
                line += os.read(proc.stdout.fileno(), 64)
        yield f"http://127.0.0.1:{int(line)}", proc.pid
    finally:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=5)
                break
            except subprocess.TimeoutExpired:
                continue
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def main() -> None:
    root, mode = Path(sys.argv[1]), sys.argv[2]
    server = _Server(root, mode)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
