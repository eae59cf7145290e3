"""The workspace backend's error vocabulary.

Every exception carries an HTTP status, a stable ``code`` and a human sentence in ``message``, so
the server's one error middleware can render it and the CLI can print one line. This module never
imports aiohttp: the domain layer stays independent of the web layer.
"""

from __future__ import annotations

from common.errors import DomainError


class WorkspaceError(DomainError):
    """Base class: something went wrong with a workspace (its sandbox, process or folders)."""

    status: int = 500
    code: str = "workspace_error"


class SandboxUnavailable(WorkspaceError):
    """The sandbox cannot be built here, so nothing was started (pairlab fails closed)."""

    status = 503
    code = "sandbox_unavailable"


class WorkspaceStartFailed(WorkspaceError):
    """The jupyter-server exited, or did not answer, before it was ready."""

    status = 502
    code = "workspace_start_failed"


class WorkspaceNotFound(WorkspaceError):
    status = 404
    code = "workspace_not_found"


class WorkspaceInvalid(WorkspaceError):
    """The spec was refused before anything ran (bad id, privileged uid, path too long...)."""

    status = 422
    code = "workspace_invalid"
