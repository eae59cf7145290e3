"""The task catalogue's error vocabulary.

Every exception carries an HTTP status and a stable ``code`` so that the server's one error
middleware can render it (JSON for the API, a page for browsers) and the CLI can print one line.
This module never imports aiohttp: the domain layer stays independent of the web layer.
"""

from __future__ import annotations

from common.errors import DomainError


class TaskError(DomainError):
    """Base class: a human sentence in ``message``; ``status``/``code`` for the boundary."""

    status: int = 400
    code: str = "task_error"


class InvalidSource(TaskError):
    """The URL, ref or subdir was refused by our own allow-list before git saw it."""

    code = "invalid_source"


class ManifestInvalid(TaskError):
    """``pairlab-task.toml`` (or a ``--rules`` file) failed schema validation.

    ``problems`` lists every problem at once as ``(file, key, reason)``.
    """

    status = 422
    code = "manifest_invalid"

    def __init__(self, problems: list[tuple[str, str, str]]) -> None:
        self.problems = problems
        lines = "; ".join(f"{f}: {k}: {r}" for f, k, r in problems)
        super().__init__(f"the task manifest is invalid: {lines}")


class FetchFailed(TaskError):
    """git could not fetch the source (unreachable, unknown ref, timed out, fsck failure)."""

    status = 502
    code = "fetch_failed"


class TreeRefused(TaskError):
    """The fetched tree broke a limit (size, entry count, blob size) or held hostile names."""

    status = 422
    code = "tree_refused"


class ChecksFailed(TaskError):
    """Visible tests failed on the anonymised tree, or hidden checks failed on the solution."""

    status = 422
    code = "checks_failed"


class RevisionNotFound(TaskError):
    status = 404
    code = "revision_not_found"


class TaskNotFound(TaskError):
    status = 404
    code = "task_not_found"


class NotPublishable(TaskError):
    """Publishing was refused: post-scan findings, unacknowledged flags, or failed checks."""

    status = 409
    code = "not_publishable"


class RulesTextInvalid(TaskError):
    """An import's rules text is not a rules file (bad TOML, no ``[anonymise]`` table)."""

    status = 422
    code = "invalid_rules"
