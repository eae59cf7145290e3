"""The ``Provisioner`` interface: how pairlab gets a running Jupyter workspace.

The local backend (``workspaces/local.py``) starts one jupyter-server (JupyterLab + real-time
collaboration) per workspace inside a bubblewrap sandbox, listening on a Unix socket. Another
backend (for example one pod per workspace on Kubernetes, as JupyterHub's KubeSpawner does) can
replace it behind this interface without the server noticing.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from workspaces.sandbox.peer import Peer

Status = Literal["running", "stopped", "crashed", "unknown"]


def new_workspace_id() -> str:
    """A fresh workspace id: ``w`` and 12 hex digits (its socket path's length is fixed)."""
    return "w" + secrets.token_hex(6)


SpareKernel = Literal["now", "lab_load", "off"]
"""When a workspace server starts its spare kernel (handed to the first kernel asked for):
with the server, when JupyterLab first loads (it asks for the kernelspecs), or never."""


@dataclass(frozen=True)
class WorkspaceSpec:
    """What to start."""

    workspace_id: str
    """URL-safe random id; the server's base URL is ``/w/<workspace_id>/``."""
    uid: int
    """The real unprivileged uid the sandbox runs as (one per live workspace)."""
    env_python: Path
    """Python of the task environment: the kernel and the terminal's ``python`` use it."""
    display_name: str = "Python 3 (task)"
    spare_kernel: SpareKernel = "now"
    """When its server starts the spare kernel (``SpareKernel``)."""


@dataclass(frozen=True)
class WorkspaceInfo:
    """A started and ready workspace. ``token`` never reaches a browser: the proxy adds it."""

    workspace_id: str
    uid: int
    env_python: Path
    root: Path
    """Host path of the workspace folder (``/workspace`` inside the sandbox)."""
    socket_path: Path
    """Host path of the jupyter-server's Unix socket."""
    token: str
    pid: int
    """Host pid of the sandbox's outermost process."""
    server: Peer | None = None
    """Host pid and uid of the jupyter-server, which every connection to ``socket_path`` checks
    (``SO_PEERCRED``) before sending the token; ``None`` (not known): nothing is sent."""


class Provisioner(Protocol):
    async def start(self, spec: WorkspaceSpec) -> WorkspaceInfo:
        """Start a workspace and return once it answers (raises WorkspaceError on failure)."""
        ...

    async def fill(self, info: WorkspaceInfo, tree: Path) -> None:
        """Copy a task tree (with its one-commit git repo) into an empty, started workspace."""
        ...

    async def status(self, info: WorkspaceInfo) -> Status:
        ...

    async def stop(self, info: WorkspaceInfo) -> None:
        """Stop every process of the workspace; keep its folder (the final state)."""
        ...

    async def restore(self, info: WorkspaceInfo) -> WorkspaceInfo:
        """Bring a workspace back after a crash or a pairlab restart, files intact."""
        ...

    async def make_read_only(self, info: WorkspaceInfo) -> None:
        """After the session: the folder can no longer be changed by the candidate's uid."""
        ...
