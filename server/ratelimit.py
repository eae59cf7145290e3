"""Failed-login limiter: per account and per address, within a sliding window.

Kept in memory (one control-plane process); after ``max_failures`` failures inside the window
the next attempt is refused with a Retry-After until the oldest failure leaves the window.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Callable

MAX_KEYS = 10_000


class LoginLimiter:
    def __init__(
        self,
        max_failures: int,
        window_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window = window_seconds
        self._clock = clock
        self._failures: dict[str, deque[float]] = defaultdict(deque)

    def _prune(self, key: str, now: float) -> deque[float]:
        q = self._failures[key]
        while q and q[0] <= now - self.window:
            q.popleft()
        if not q:
            del self._failures[key]
            return deque()
        return q

    def retry_after(self, *keys: str) -> int:
        """Seconds to wait before another attempt is allowed (0 when allowed)."""
        now = self._clock()
        wait = 0.0
        for key in keys:
            q = self._prune(key, now)
            if len(q) >= self.max_failures:
                wait = max(wait, q[-self.max_failures] + self.window - now)
        return max(1, int(wait + 0.999)) if wait > 0 else 0

    def failed(self, *keys: str) -> None:
        now = self._clock()
        for key in keys:
            self._failures[key].append(now)
        if len(self._failures) > MAX_KEYS:  # many distinct keys: forget the expired ones
            for key in list(self._failures):
                self._prune(key, now)

    def succeeded(self, account_key: str) -> None:
        self._failures.pop(account_key, None)
