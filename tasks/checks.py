"""Run a task's check command (visible tests, hidden checks) in a subprocess with a time limit.

The child gets an allow-listed environment (never ours), a fresh process group, and is stopped
by escalation (SIGTERM, then SIGKILL) on timeout; its output is kept as a bounded excerpt.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

EXCERPT_CHARS = 4000


@dataclass(frozen=True)
class CheckResult:
    command: str
    passed: bool
    exit_code: int | None
    timed_out: bool
    output: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[... {len(text) - limit} characters cut ...]\n{text[-half:]}"


def run_check(command: str, cwd: Path, python: Path, timeout_s: float) -> CheckResult:
    """Run ``command`` in ``cwd``; a leading ``python`` means the task environment's Python."""
    argv = shlex.split(command)
    if not argv:
        return CheckResult(command, False, None, False, "empty check command")
    if argv[0] in ("python", "python3"):
        argv[0] = str(python)
    env = {
        "PATH": f"{python.parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(cwd),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        "PYTEST_ADDOPTS": "-p no:cacheprovider",
    }
    try:
        proc = subprocess.Popen(  # noqa: S603 - argv from an admin's manifest, no shell
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        return CheckResult(command, False, None, False, f"cannot start: {exc.strerror}")
    timed_out = False
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        for sig, wait in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                out, _ = proc.communicate(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        else:
            out = b""
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # nothing of the check outlives it
        except (ProcessLookupError, PermissionError):
            pass
    text = excerpt((out or b"").decode("utf-8", "replace"))
    if timed_out:
        text += f"\n[timed out after {timeout_s:.0f} s]"
    passed = not timed_out and proc.returncode == 0
    return CheckResult(command, passed, proc.returncode, timed_out, text)
