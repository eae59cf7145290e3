"""The scoring engines' refusals, as domain errors (``common.errors.DomainError``): the status,
code and message the web layer answered with before they moved down, so every HTTP answer stays
the same."""

from __future__ import annotations

from common.errors import DomainError


class NotOnPanel(DomainError):
    """Only the session's interviewers fill in scorecards (403 ``forbidden``)."""

    status = 403
    code = "forbidden"


class RevealRefused(DomainError):
    """A blind session's candidate cannot be revealed yet (409 ``conflict``)."""

    status = 409
    code = "conflict"
