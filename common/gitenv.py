"""The one hardened environment and configuration every ``git`` pairlab runs gets.

``git_env`` is a complete environment (nothing is inherited from ours: no ``GIT_DIR``,
``GIT_CONFIG_PARAMETERS``, ``GIT_SSH_COMMAND`` or proxy of the server's leaks in where a caller
runs git with it alone, as ``common.processes`` does; GitPython lays it over the server's own
environment, so it also sets every variable that would point git at other objects, an index,
templates or configuration: those of the server cannot change what git does): no system or
global config, no attributes from the system, no replace objects, no prompt, no credential
helper, a fixed ``PATH`` and locale, discovery stopped above ``home``. ``git_config_args`` is
the ``-c`` options for every call: no protocol but the ones allowed, no hooks, no fsmonitor, no
credential helper, no redirects, no bundle URIs, fsck on transfer, no submodule recursion, no
automatic gc or maintenance, bare repositories only when named explicitly.

What legitimately differs between callers is an argument: the protocols a fetch may use (the
source's scheme; none for local-only work on our own repositories), the repository (``git_dir``,
``work_tree``), the identity and the fixed date of the commits we write, and settings of
their own (``extra``, e.g. how a diff is printed).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

__all__ = ["SAFE_PATH", "find_git", "git_config_args", "git_env"]

SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
_TRUE = "/bin/true" if os.path.exists("/bin/true") else "/usr/bin/true"
_HARDENING = [
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "transfer.fsckObjects=true",
    "fetch.fsckObjects=true",
    "submodule.recurse=false",
    "credential.helper=",
    "http.followRedirects=false",
    "transfer.bundleURI=false",
    "safe.bareRepository=explicit",
    "gc.auto=0",
    "maintenance.auto=false",
    "init.defaultBranch=main",
    "advice.detachedHead=false",
]


def find_git() -> str | None:
    """The git binary on ``SAFE_PATH`` (never one found on the server's own PATH)."""
    return shutil.which("git", path=SAFE_PATH)


def git_env(home: Path, protocols: Iterable[str] = (), *, git_dir: Path | None = None,
            work_tree: Path | None = None, identity: tuple[str, str] | None = None,
            date: str | None = None) -> dict[str, str]:
    """A complete, allow-listed environment for git: nothing is inherited from ours.

    ``protocols``: what a fetch may use (none: ``GIT_ALLOW_PROTOCOL=none``). ``identity``:
    ``(name, email)`` as author and committer; ``date``: as author and committer date."""
    allowed = ":".join(protocols)
    env = {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "PATH": SAFE_PATH,
        "LANG": "C",
        "LC_ALL": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_ATTR_NOSYSTEM": "1",
        "GIT_NO_REPLACE_OBJECTS": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": _TRUE,
        "SSH_ASKPASS": _TRUE,
        "GIT_PROTOCOL_FROM_USER": "0",
        "GIT_ALLOW_PROTOCOL": allowed or "none",
        "GIT_CEILING_DIRECTORIES": str(home.parent),
        "GIT_CONFIG_COUNT": "0",  # where this is laid over an environment (GitPython does),
        "GIT_CONFIG_PARAMETERS": "",  # no configuration, alternates or templates come in
        "GIT_ALTERNATE_OBJECT_DIRECTORIES": "",
        "GIT_TEMPLATE_DIR": "",
    }
    if git_dir is not None:
        env |= {"GIT_DIR": str(git_dir), "GIT_COMMON_DIR": str(git_dir),
                "GIT_OBJECT_DIRECTORY": str(git_dir / "objects"),
                "GIT_INDEX_FILE": str(git_dir / "index")}
    if work_tree is not None:
        env["GIT_WORK_TREE"] = str(work_tree)
    if identity is not None:
        name, email = identity
        env |= {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email,
                "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email}
    if date is not None:
        env |= {"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    return env


def git_config_args(protocols: Iterable[str] = (), extra: Iterable[str] = ()) -> list[str]:
    """``-c`` options for every git call: no protocol but ``protocols``, no hooks, fsck on;
    then the caller's ``extra`` settings (``name=value``)."""
    settings = ["protocol.allow=never"]
    settings += [f"protocol.{name}.allow=always" for name in protocols]
    settings += [*_HARDENING, *extra]
    return [arg for setting in settings for arg in ("-c", setting)]
