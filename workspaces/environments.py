"""Python environments for tasks: one per distinct requirements set, built once, then read-only.

A task's requirements (plus what every workspace has: ipykernel and pytest) are hashed into a
key; the environment is built in a temporary folder and renamed into place when complete, so a
half-built environment is never used. Sessions and checks of the same requirements share it.
Once built it is published read-only to every uid (``permissions.publish_read_only``): the
sandboxes run it as their own unprivileged uids, whatever umask it was built under. Packages are
installed from wheels only, so no package's build script ever runs as root.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from common.processes import DeadlineExceeded, run_bounded
from workspaces.sandbox.permissions import (
    is_published,
    publish_read_only,
    remove_tree,
    writable_by_others,
)

log = logging.getLogger(__name__)
BASE_REQUIREMENTS = ("ipykernel>=6.29,<8", "pytest>=8,<10")
PIP_OUTPUT_BYTES = 16 * 1024 * 1024
"""What is kept of pip's stdout and of its stderr (the error shown is their last lines)."""
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


class EnvironmentBuildFailed(Exception):
    status = 502
    code = "environment_build_failed"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def environment_key(requirements: Sequence[str]) -> str:
    wanted = sorted({r.strip() for r in (*requirements, *BASE_REQUIREMENTS)})
    digest = hashlib.sha256(json.dumps(wanted).encode()).hexdigest()[:16]
    return f"py{sys.version_info.major}{sys.version_info.minor}-{digest}"


def _lock_for(key: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


def _pip_env(home: Path) -> dict[str, str]:
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8"}
    for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_CONFIG_FILE",
                 "PIP_CACHE_DIR", "XDG_CACHE_HOME", "http_proxy", "https_proxy", "no_proxy",
                 "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"):
        if name in os.environ:  # the operator's package-index configuration only
            env[name] = os.environ[name]
    if "PIP_CACHE_DIR" not in env and "XDG_CACHE_HOME" not in env:
        env["PIP_CACHE_DIR"] = str(Path.home() / ".cache" / "pip")
    return env


def ensure_environment(
    envs_root: Path, requirements: Sequence[str], timeout_s: float = 900.0
) -> Path:
    """Return the Python executable of the environment for ``requirements``, building it once."""
    key = environment_key(requirements)
    final = envs_root / key
    python = final / "bin" / "python"
    loose = writable_by_others(envs_root)
    if loose is not None:  # root runs pip in it: nobody else may be able to swap its files
        raise EnvironmentBuildFailed(
            f"the environments folder {envs_root} is not safe: {loose} can be changed by "
            "another user (make it and its parents writable by root only)")
    with _lock_for(key):
        if python.exists():
            if not is_published(final):  # built owner-only by an older pairlab
                log.warning("environment %s was not readable by the sandboxes; fixing its modes",
                            key)
                publish_read_only(final)
            return python
        building = envs_root / f".{key}.building"
        try:
            envs_root.mkdir(parents=True, exist_ok=True)
            remove_tree(building)
        except OSError as exc:
            raise EnvironmentBuildFailed(
                f"the environments folder {envs_root} cannot be used: {exc.strerror}") from None
        wanted = sorted({r.strip() for r in (*requirements, *BASE_REQUIREMENTS)})
        log.info("building environment %s for %s", key, ", ".join(wanted))
        try:
            venv = [sys.executable, "-m", "venv", str(building)]
            made = run_bounded(venv, timeout_s=120, env=None, cwd=None)
            if made.returncode != 0:
                raise subprocess.CalledProcessError(made.returncode, venv)
            result = run_bounded(  # requirements validated by the manifest
                [str(building / "bin" / "python"), "-m", "pip", "install", "-q",
                 "--disable-pip-version-check", "--no-input", "--only-binary=:all:", "--",
                 *wanted],
                timeout_s=timeout_s, env=_pip_env(envs_root), cwd=None,
                max_output=PIP_OUTPUT_BYTES,
            )
            if result.returncode != 0:
                tail = (result.err or result.out)[-800:]
                raise EnvironmentBuildFailed(
                    f"installing {', '.join(wanted)} failed: {tail.strip()}"
                )
            (building / "pairlab-requirements.json").write_text(json.dumps(wanted))
            publish_read_only(building)  # before it is visible under its final name
            os.rename(building, final)
        except DeadlineExceeded:
            raise EnvironmentBuildFailed(
                f"building the environment took longer than {timeout_s:.0f} s"
            ) from None
        except subprocess.CalledProcessError as exc:
            raise EnvironmentBuildFailed(f"creating a virtual environment failed: {exc}") from None
        except OSError as exc:
            raise EnvironmentBuildFailed(
                f"the environments folder {envs_root} cannot be used: {exc.strerror}") from None
        finally:
            remove_tree(building)
        return python
