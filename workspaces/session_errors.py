"""Errors of interview sessions (scheduling, links, lifecycle), each with an HTTP status."""

from __future__ import annotations

from common.errors import DomainError


class SessionError(DomainError):
    status: int = 422
    code: str = "invalid_session"


class SessionNotFound(SessionError):
    status = 404
    code = "session_not_found"


class SessionConflict(SessionError):
    status = 409
    code = "session_conflict"


class RoleMismatch(SessionError):
    """The task kind does not fit the role; the interviewer may confirm and go on."""

    status = 409
    code = "role_mismatch"


class LinkClosed(SessionError):
    status = 403
    code = "link_closed"


class LinkReplaced(SessionError):
    """A candidate link that was re-issued: the new one is the only one that works."""

    status = 410
    code = "link_replaced"


class LinkNotValid(SessionError):
    """A capability link that names no session (mistyped, cut short, or made up)."""

    status = 404
    code = "link_not_valid"


ENDED_HEADER = "X-Pairlab-Session"


class SessionEnded(SessionError):
    """The interview is over: its workspace is closed for good (the candidate's thank-you).

    Its answers carry ``X-Pairlab-Session: ended``, by which the candidate's open JupyterLab
    (``server/static/workspace/countdown.js``) tells the end from any other refusal."""

    status = 410
    code = "session_ended"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={ENDED_HEADER: "ended"})


class SessionEndedForInterviewer(SessionEnded):
    """The same end, told to an interviewer who paired in the workspace: not the candidate's
    thank-you, but where the interview is now."""

    code = "interview_ended"


class WorkspaceUnavailable(SessionError):
    """The workspace could not be started or restored; the message says why."""

    status = 503
    code = "workspace_unavailable"


class EntryUsed(SessionError):
    """A one-time link or entry code that was already used or has expired."""

    status = 410
    code = "link_used"
