"""Input refused with every problem listed at once: the base of the scoring area's validation
errors (rubrics, scorecards, webhook subscriptions).

The server's error middleware answers these with 422, ``message`` (one sentence naming every
problem) and a ``problems`` list beside it, so handlers just let them through.
"""

from __future__ import annotations

from typing import Any


class Problems(ValueError):
    status = 422
    code = "invalid"  # as the server's own 422s
    verdict = "The input is not valid"

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems

    @property
    def message(self) -> str:
        return f"{self.verdict}: {'; '.join(self.problems)}."

    @property
    def extra(self) -> dict[str, Any]:
        return {"problems": self.problems}
