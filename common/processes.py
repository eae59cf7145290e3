"""Run a child process with a deadline and stop it by escalation: the one way pairlab does it.

Every child starts in a session (and so a process group) of its own. Stopping it means: SIGTERM
to the whole group, ``grace_s`` to exit, then SIGKILL to the group, then reap. Once the leader
has exited, what is left of its group (a grandchild that kept running) is SIGKILLed too; the
leader is only reaped after that, so its pid (the group's id) cannot be reused meanwhile.

- ``run_bounded``: run to completion and collect the output (each stream capped), or raise
  ``DeadlineExceeded`` when the deadline passes (the group is stopped first).
- ``Bounded``: a context manager for callers that stream (write to its stdin, read its stdout as
  it comes): a watchdog thread stops the group at the deadline, or as soon as ``check`` returns
  an exception; leaving the block always stops and reaps it, and raises why it was stopped.
- ``stop_group``: the escalation itself, for callers that run their own reading loop.

Blocking by design; async callers use ``asyncio.to_thread``.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

__all__ = [
    "KILL_GRACE_S",
    "MAX_OUTPUT_BYTES",
    "Bounded",
    "Completed",
    "DeadlineExceeded",
    "exited",
    "exited_by",
    "run_bounded",
    "signal_group",
    "stop_group",
    "wait_exited",
]

KILL_GRACE_S = 2.0
"""Time between SIGTERM and SIGKILL."""
MAX_OUTPUT_BYTES = 1 << 20
"""What ``run_bounded`` keeps of each of stdout and stderr by default; more is read and dropped."""

Stream = int | IO[bytes] | IO[str] | None


class DeadlineExceeded(subprocess.TimeoutExpired):
    """The child did not finish within its time limit; its process group was stopped.

    A ``subprocess.TimeoutExpired`` (same message: "Command ... timed out after N seconds")."""

    def __init__(self, argv: Sequence[str], timeout_s: float) -> None:
        super().__init__(list(argv), timeout_s)
        self.argv = list(argv)
        self.timeout_s = timeout_s


@dataclass(frozen=True)
class Completed:
    """A child that ran to its end: exit code (negative: killed by that signal) and output."""

    argv: list[str]
    returncode: int
    stdout: bytes
    stderr: bytes
    truncated: bool = False
    """True when a stream printed more than ``max_output`` bytes (the rest was dropped)."""

    @property
    def out(self) -> str:
        return self.stdout.decode("utf-8", "replace")

    @property
    def err(self) -> str:
        return self.stderr.decode("utf-8", "replace")


def signal_group(pid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to the process group led by ``pid``; nothing if it is gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def exited(pid: int) -> bool:
    """True once the group leader has exited; it is NOT reaped, so its pgid stays ours."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def wait_exited(pid: int) -> int:
    """Block until the leader exits (without reaping it); its exit code, 128+N for signal N."""
    result = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
    assert result is not None  # noqa: S101 - a blocking waitid always returns a result
    return result.si_status if result.si_code == os.CLD_EXITED else 128 + result.si_status


def stop_group(proc: subprocess.Popen[bytes], grace_s: float = KILL_GRACE_S) -> None:
    """SIGTERM → ``grace_s`` → SIGKILL the leader's group, kill stragglers, reap the leader.

    ``grace_s=0`` sends SIGKILL at once. Safe to call on a leader that has already exited (it
    then only kills what is left of its group and reaps it); closes the pipes we hold. A leader
    that ``Popen`` has already reaped (``poll``/``wait``) is not signalled: its pid, and so the
    group id, may belong to another process by now (wait with ``exited``/``exited_by``)."""
    if proc.returncode is not None:
        proc.wait()
    elif grace_s > 0 and not exited(proc.pid):
        signal_group(proc.pid, signal.SIGTERM)
        end = time.monotonic() + grace_s
        while not exited(proc.pid) and time.monotonic() < end:
            time.sleep(0.02)
    if proc.returncode is None:
        signal_group(proc.pid, signal.SIGKILL)
        proc.wait()
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            with contextlib.suppress(OSError):
                pipe.close()


def _spawn(argv: Sequence[str], *, env: Mapping[str, str] | None, cwd: str | Path | None,
           stdin: Stream, stdout: Stream, stderr: Stream,
           pass_fds: Iterable[int]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603 - callers pass an argv list, never a shell line
        list(argv), stdin=stdin, stdout=stdout, stderr=stderr,
        env=dict(env) if env is not None else None, cwd=cwd, start_new_session=True,
        pass_fds=tuple(pass_fds))


def run_bounded(argv: Sequence[str], *, timeout_s: float, env: Mapping[str, str] | None = None,
                cwd: str | Path | None = "/", input: bytes | None = None,
                stdin: IO[bytes] | None = None, pass_fds: Iterable[int] = (),
                max_output: int = MAX_OUTPUT_BYTES,
                grace_s: float = KILL_GRACE_S) -> Completed:
    """Run ``argv`` to completion in its own session and return its exit code and output.

    ``env`` and ``cwd`` (default ``/``) are inherited from ours when None.
    ``input`` (bytes) or ``stdin`` (a file the child reads itself) feed it, else /dev/null.
    stdout and stderr are kept up to ``max_output`` bytes each. When ``timeout_s`` passes
    before the child has exited and closed its output, its group is stopped (``stop_group``)
    and ``DeadlineExceeded`` is raised. ``OSError`` if it cannot be started (e.g. not found).
    """
    deadline = time.monotonic() + timeout_s
    with contextlib.ExitStack() as stack:
        source: Stream = subprocess.DEVNULL
        if input is not None:
            feed = stack.enter_context(tempfile.TemporaryFile())
            feed.write(input)
            feed.seek(0)
            source = feed
        elif stdin is not None:
            source = stdin
        proc = _spawn(argv, env=env, cwd=cwd, stdin=source, stdout=subprocess.PIPE,
                      stderr=subprocess.PIPE, pass_fds=pass_fds)
        grace = grace_s
        try:
            output = _read_all(proc, deadline, max_output)
            if output is None or not exited_by(proc.pid, deadline):
                raise DeadlineExceeded(argv, timeout_s)
            grace = 0.0  # the leader has exited: only stragglers are left, SIGKILL them
        finally:
            stop_group(proc, grace)
    (out, err), truncated = output
    return Completed(list(argv), proc.returncode, out, err, truncated)


def _read_all(proc: subprocess.Popen[bytes], deadline: float, cap: int
              ) -> tuple[tuple[bytes, bytes], bool] | None:
    """stdout and stderr until both are closed, or None at the deadline."""
    assert proc.stdout is not None and proc.stderr is not None  # noqa: S101 - asked for pipes
    kept = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray()}
    truncated = False
    with selectors.DefaultSelector() as selector:
        for fd in kept:
            selector.register(fd, selectors.EVENT_READ)
        while selector.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            for key, _ in selector.select(timeout=left):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fd)
                    continue
                buffer = kept[key.fd]
                room = cap - len(buffer)
                if len(chunk) > room:
                    truncated = True
                buffer += chunk[:max(room, 0)]
    out, err = kept.values()
    return (bytes(out), bytes(err)), truncated


def exited_by(pid: int, deadline: float) -> bool:
    """Wait (without reaping) for the leader to exit until ``deadline``."""
    pause = 0.001
    while not exited(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(pause)
        pause = min(pause * 2, 0.05)
    return True


class Bounded:
    """A streaming child with a deadline: ``with Bounded(argv, ...) as proc: ...``.

    A watchdog thread checks every ``poll_s``: once ``deadline`` (a ``time.monotonic()`` value)
    has passed, or ``check()`` returns an exception, it sends SIGTERM to the group and SIGKILL
    ``grace_s`` later, so a blocked read in the body returns. Leaving the block stops the group
    (``stop_group``) and reaps the leader; if the watchdog stopped it, the block then raises
    ``DeadlineExceeded`` or the exception ``check`` returned. Use ``wait_exited(proc.pid)`` for
    the exit code (``proc.wait()`` would reap the leader and free its pgid too early).
    """

    def __init__(self, argv: Sequence[str], *, deadline: float, timeout_s: float,
                 env: Mapping[str, str] | None = None, cwd: str | Path | None = "/",
                 stdin: Stream = subprocess.DEVNULL, stdout: Stream = subprocess.PIPE,
                 stderr: Stream = subprocess.PIPE, pass_fds: Iterable[int] = (),
                 grace_s: float = KILL_GRACE_S,
                 check: Callable[[], BaseException | None] | None = None,
                 poll_s: float = 0.1) -> None:
        self.argv, self.deadline, self.timeout_s = list(argv), deadline, timeout_s
        self.env, self.cwd, self.pass_fds = env, cwd, tuple(pass_fds)
        self.stdin, self.stdout, self.stderr = stdin, stdout, stderr
        self.grace_s, self.check, self.poll_s = grace_s, check, poll_s
        self.stopped: BaseException | None = None
        """Why the watchdog stopped the child, once it has."""
        self._proc: subprocess.Popen[bytes] | None = None
        self._done = threading.Event()
        self._dog: threading.Thread | None = None

    def __enter__(self) -> subprocess.Popen[bytes]:
        self._proc = _spawn(self.argv, env=self.env, cwd=self.cwd, stdin=self.stdin,
                            stdout=self.stdout, stderr=self.stderr, pass_fds=self.pass_fds)
        self._dog = threading.Thread(target=self._watch, args=(self._proc.pid,), daemon=True)
        self._dog.start()
        return self._proc

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        assert self._proc is not None and self._dog is not None  # noqa: S101 - entered
        self._done.set()
        self._dog.join()
        stop_group(self._proc, self.grace_s)
        if self.stopped is not None:
            raise self.stopped

    def _watch(self, pid: int) -> None:
        kill_at: float | None = None
        while not self._done.wait(self.poll_s):
            now = time.monotonic()
            if kill_at is None:
                if now > self.deadline:
                    self.stopped = DeadlineExceeded(self.argv, self.timeout_s)
                elif self.check is not None:
                    self.stopped = self.check()
                if self.stopped is not None:
                    signal_group(pid, signal.SIGTERM)
                    kill_at = now + self.grace_s
            elif now > kill_at:
                signal_group(pid, signal.SIGKILL)
                kill_at = now + 3600.0
