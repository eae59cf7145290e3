"""What the import's checks report, and the shape of what runs them.

The import never runs a repository's code itself: its visible tests and hidden checks run
through a ``CheckRunner`` the caller hands in (the server's is the same sandbox every workspace
and every end-of-session check runs in, ``workspaces.sandbox.run``), on an environment an
``EnvironmentFor`` has built and seen the sandbox run before any check starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class CheckResult:
    command: str
    passed: bool
    exit_code: int | None
    timed_out: bool
    output: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class CheckRunner(Protocol):
    def __call__(self, command: str, tree: Path, python: Path, timeout_s: float, *,
                 revision: Path, hidden: Path | None = None) -> CheckResult:
        """Run ``command`` (a leading ``python`` is the environment's) on a throwaway copy
        ``tree`` of the revision's tree ``revision``, sandboxed, within ``timeout_s``; the
        ``hidden`` checks go at the path the command runs (prepared as sessions prepare
        theirs)."""


class EnvironmentFor(Protocol):
    def __call__(self, requirements: Sequence[str]) -> Path | str:
        """The Python of the environment for ``requirements``, built once and runnable by the
        sandbox (with what every workspace imports); or, as a sentence, why not."""
