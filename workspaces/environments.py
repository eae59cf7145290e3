"""Python environments for tasks: one per distinct requirements set, built once, then read-only.

A task's requirements (plus what every workspace needs, ipykernel and pytest, unless the task
already names them) are hashed into a key; the environment is built in a temporary folder and
renamed into place when complete, so a half-built environment is never used. Sessions and checks
of the same requirements share it. Once built it is published read-only to every uid
(``permissions.publish_read_only``): the sandboxes run it as their own unprivileged uids,
whatever umask it was built under. Packages are installed from wheels only (``--no-build``), so
no package's build script ever runs as root.

The packages are installed by uv (``uv pip install``) from one cache shared by every environment,
``<environments folder>/.uv-cache``: two sets that differ by one package download and unpack only
that package. From the cache the files are *copied* into the environment (``--link-mode copy``),
not hardlinked: a file's mode belongs to its inode, so with hardlinks a ``chmod`` on one
environment (an operator's, or any tool's) changed the same file in every environment and in the
cache; an environment made unreadable that way broke every other one in the sandbox (``_zmq``'s
shared object: Permission denied). uv's ``clone`` mode is not used either: where the file system
cannot reflink (ext4) uv falls back to hardlinks, silently.

Where the packages come from is what pip is configured with on this host, translated for uv
(``package_sources``), so a host where ``pip install`` works builds environments too.
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

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from common.file_locks import flock, flock_within
from common.processes import DeadlineExceeded, run_bounded
from workspaces.package_sources import UvSources, pip_configuration, uv_sources
from workspaces.sandbox.permissions import (
    is_published,
    publish_read_only,
    remove_tree,
    writable_by_others,
)

log = logging.getLogger(__name__)
BASE_REQUIREMENTS = ("ipykernel>=6.29,<8", "pytest>=8,<10")
"""What every environment has, unless the task's own requirements name the package (a task may
pin ``pytest<8`` for nose-style tests: its pin is kept and this one is not added)."""
UV_CACHE = ".uv-cache"
"""The folder, under the environments folder, of uv's cache shared by every environment."""
INSTALL_OUTPUT_BYTES = 16 * 1024 * 1024
"""What is kept of uv's stdout and of its stderr (the error shown is their last lines)."""
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


class EnvironmentBuildFailed(Exception):
    status = 502
    code = "environment_build_failed"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _names(requirement: str) -> str | None:
    """The canonical name of the package ``requirement`` installs here, or None (not PEP 508,
    or a marker false on this Python: the build then says what is wrong, or installs nothing)."""
    try:
        parsed = Requirement(requirement)
    except InvalidRequirement:
        return None
    if parsed.marker is not None and not parsed.marker.evaluate():
        return None
    return canonicalize_name(parsed.name)


def wanted_requirements(requirements: Sequence[str]) -> list[str]:
    """The task's requirements plus each of ``BASE_REQUIREMENTS`` whose package they do not
    name, sorted and without duplicates: what is installed, and what the key is made of (for a
    set naming neither, exactly what it was before: their environments are not rebuilt)."""
    given = {r.strip() for r in requirements}
    named = {_names(r) for r in given}
    base = {b for b in BASE_REQUIREMENTS if _names(b) not in named}
    return sorted(given | base)


def _installed(wanted: Sequence[str]) -> list[str]:
    """``wanted`` and pip, unless it is named (environments made by ``venv`` always had pip, and
    candidates use ``pip list``; from the shared cache it is a copy of a few MB). Not part of
    the key: like any unpinned dependency, its version is whatever the index has."""
    return [*wanted, *([] if "pip" in {_names(r) for r in wanted} else ["pip"])]


def environment_key(requirements: Sequence[str]) -> str:
    wanted = wanted_requirements(requirements)
    digest = hashlib.sha256(json.dumps(wanted).encode()).hexdigest()[:16]
    return f"py{sys.version_info.major}{sys.version_info.minor}-{digest}"


def _lock_for(key: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(key, threading.Lock())


def uv_binary() -> str:
    """The uv that came with pairlab (the ``uv`` package's own binary)."""
    try:
        from uv import find_uv_bin  # imported here: only a build needs it

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError):
        raise EnvironmentBuildFailed(
            "uv is not installed in pairlab's virtual environment (run scripts/setup again)"
        ) from None


_PASSED_ON = frozenset({
    "UV_DEFAULT_INDEX", "UV_EXTRA_INDEX_URL", "UV_FIND_LINKS", "UV_NO_INDEX", "UV_OFFLINE",
    "UV_KEYRING_PROVIDER", "UV_NATIVE_TLS", "UV_HTTP_TIMEOUT", "UV_CONCURRENT_DOWNLOADS",
    "UV_CONSTRAINT", "UV_INSECURE_HOST", "UV_CONFIG_FILE",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY",
    "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY"})
"""Variables of pairlab's environment uv sees, besides ``UV_INDEX*`` (index URLs, strategy and
named indexes' credentials): where packages come from and which versions are allowed, and the
operator's own uv configuration file; those that ``package_sources`` turned into options
(``UvSources.replaces``) are not passed twice."""


def _uv_env(home: Path, sources: UvSources) -> dict[str, str]:
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
           "UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"}
    for name, value in os.environ.items():  # the operator's package-index configuration only
        if (name.startswith("UV_INDEX") or name in _PASSED_ON) and name not in sources.replaces:
            env[name] = value
    return {**env, **sources.env}


def install_command(envs_root: Path, python: Path, wanted: Sequence[str],
                    sources: UvSources) -> list[str]:
    """``uv pip install`` of ``wanted`` into the environment of ``python``: wheels only, from
    the shared cache, copied (see the module's docstring), bytecode compiled (the sandboxes
    cannot write ``__pycache__``), from pip's package sources; no ``uv.toml`` or
    ``pyproject.toml`` is discovered (the build does not depend on the folder it runs in; an
    operator's ``UV_CONFIG_FILE`` is read)."""
    return [uv_binary(), "pip", "install", "--no-config", "--python", str(python),
            "--cache-dir", str(envs_root / UV_CACHE), "--link-mode", "copy", "--no-build",
            "--compile-bytecode", "--no-progress", *sources.options, "--", *wanted]


def ensure_environment(
    envs_root: Path, requirements: Sequence[str], timeout_s: float = 900.0
) -> Path:
    """Return the Python executable of the environment for ``requirements``, building it once."""
    key = environment_key(requirements)
    final = envs_root / key
    python = final / "bin" / "python"
    loose = writable_by_others(envs_root)
    if loose is not None:  # root runs uv in it: nobody else may be able to swap its files
        raise EnvironmentBuildFailed(
            f"the environments folder {envs_root} is not safe: {loose} can be changed by "
            "another user (make it and its parents writable by root only)")
    with _lock_for(key):
        if python.exists():
            return _published(final, python)
        try:
            envs_root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EnvironmentBuildFailed(
                f"the environments folder {envs_root} cannot be used: {exc.strerror}") from None
        # another process may build the same key in this folder (a second pairlab, `pairlab
        # task import` beside `pairlab serve`): this one waits (at most timeout_s), then finds
        # the environment built (without the lock, one removed the other's half-built folder)
        fd = _build_lock(envs_root, key, timeout_s)
        try:
            if python.exists():
                return _published(final, python)
            return _build(envs_root, key, requirements, final, timeout_s)
        finally:
            os.close(fd)


def _build_lock(envs_root: Path, key: str, timeout_s: float) -> int:
    """The fd holding ``key``'s build lock, once no other process holds it (said in the log
    while it waits: a build takes minutes), waiting at most ``timeout_s``, the time this
    process would have given its own build."""
    path = envs_root / f".{key}.lock"
    try:
        fd = flock(path)
        if fd is None:
            log.info("environment %s: waiting for another process building it", key)
            fd = flock_within(path, timeout_s)
    except OSError as exc:
        raise EnvironmentBuildFailed(
            f"the environments folder {envs_root} cannot be used: {exc.strerror}") from None
    if fd is None:
        raise EnvironmentBuildFailed(
            f"another process has been building this environment for more than "
            f"{timeout_s:g} s (its lock {path}); try again once it has finished")
    return fd


def _published(final: Path, python: Path) -> Path:
    """``python`` of the built environment ``final``, made readable to the sandboxes if an
    older pairlab built it owner-only."""
    if not is_published(final):  # built owner-only by an older pairlab
        log.warning("environment %s was not readable by the sandboxes; fixing its modes",
                    final.name)
        publish_read_only(final)
    return python


def _build(envs_root: Path, key: str, requirements: Sequence[str], final: Path,
           timeout_s: float) -> Path:
    """Build the environment in a temporary folder and rename it to ``final`` when complete
    (the caller holds its build lock)."""
    python = final / "bin" / "python"
    building = envs_root / f".{key}.building"
    try:
        cache = envs_root / UV_CACHE
        cache.mkdir(mode=0o700, exist_ok=True)
        # root's alone whatever the umask: uv makes its lock file in it writable by all
        os.chmod(cache, 0o700, follow_symlinks=False)
        remove_tree(building)
    except OSError as exc:
        raise EnvironmentBuildFailed(
            f"the environments folder {envs_root} cannot be used: {exc.strerror}") from None
    wanted = wanted_requirements(requirements)
    log.info("building environment %s for %s", key, ", ".join(wanted))
    try:
        # the same Python as pairlab's (the base interpreter of its venv), as before uv:
        # jupyter-server runs on it and starts this environment's ipykernel
        venv = [sys.executable, "-m", "venv", "--without-pip", str(building)]
        made = run_bounded(venv, timeout_s=120, env=None, cwd=None)
        if made.returncode != 0:
            raise subprocess.CalledProcessError(made.returncode, venv)
        sources = uv_sources(os.environ, pip_configuration(os.environ))
        log.info("environment %s: package sources %s", key,
                 " ".join(sources.options) or "uv's defaults")
        result = run_bounded(  # requirements validated by the manifest
            install_command(envs_root, building / "bin" / "python", _installed(wanted),
                            sources),
            timeout_s=timeout_s, env=_uv_env(envs_root, sources), cwd=str(envs_root),
            max_output=INSTALL_OUTPUT_BYTES,
        )
        if result.returncode != 0:
            tail = (result.err or result.out)[-800:]
            raise EnvironmentBuildFailed(
                f"installing {', '.join(wanted)} failed: {tail.strip()}"
            )
        log.info("environment %s: %s", key, " / ".join(
            line.strip() for line in result.err.splitlines()
            if line.startswith(("Resolved", "Prepared", "Installed"))))
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
