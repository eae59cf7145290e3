"""Input refused with every problem listed at once: the base of the scoring area's validation
errors (rubrics, scorecards, webhook subscriptions).

The server's error middleware answers these with 422, ``message`` (one sentence naming every
problem) and a ``problems`` list beside it, so handlers just let them through.
"""

from __future__ import annotations

from common.errors import DomainError


class Problems(DomainError, ValueError):
    status = 422
    code = "invalid"  # as the server's own 422s
    verdict = "The input is not valid"

    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"{self.verdict}: {'; '.join(problems)}.",
                         extra={"problems": problems})
        self.problems = problems

    def __str__(self) -> str:
        return "; ".join(self.problems)  # the bare list, as before; ``message`` has the verdict
