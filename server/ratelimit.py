"""Failed-login back-off that slows guessing without handing anyone a lockout.

The policy, in memory (one control-plane process):

- **Per (account, address) pair.** Each pair gets ``max_failures`` tries; after that it must
  wait ``window`` seconds after its last failure, doubling with each further failure (60 s,
  2 min, 4 min ... at most 16 windows with the defaults). A refused try is answered 429 with
  ``Retry-After`` before any password is checked, so it tells the guesser nothing. Every try is
  counted the moment it starts (and uncounted by a success), so firing many tries at once does
  not get more than the allowance checked. A success clears the pair; a pair is forgotten
  after 16 windows without a try once its back-off has ended (waiting that long is the only
  way to a fresh allowance, so a patient guesser gets about 5 guesses per 17 minutes).
- **Per account and per address, looser.** When an account collects ``SPREAD_FACTOR`` times
  ``max_failures`` failures within the window from any addresses (guessing from many
  addresses), or an address collects as many across accounts (spraying), the allowance of
  every pair of that account or address drops to one try: each guessing address gets one
  guess and then the doubling back-off.

What this never does: refuse a try from a pair that has not failed. So however many wrong
passwords arrive from address X (or from a thousand addresses), the right password from an
address Y that has not failed is checked and logs in; and the right password from X itself
works once X's back-off has passed. The price: while an account is under attack, its owner's
own typo costs them a window's wait.

Addresses are what ``server.client_address`` says (``X-Forwarded-For`` only from trusted
proxies), so people behind one proxy are told apart when the proxy is configured, and share
nothing but the looser per-address count when it is not.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")
MAX_KEYS = 10_000
"""Pairs, accounts and addresses remembered at most; the oldest are forgotten first."""
SPREAD_FACTOR = 4
"""Failures per account or per address (times ``max_failures``) that mean an attack."""
MAX_BACKOFF_WINDOWS = 16
"""The longest back-off, in windows."""


@dataclass
class _Pair:
    tries: int = 0  # counted tries since the pair was last cleared or forgotten
    last: float = 0.0  # when the latest of them started


class LoginLimiter:
    def __init__(
        self,
        max_failures: int,
        window_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window = window_seconds
        self.spread_limit = SPREAD_FACTOR * max_failures
        self._clock = clock
        self._pairs: dict[tuple[str, str], _Pair] = {}
        # Recent failure times per account / per address; only the last spread_limit matter.
        self._accounts: dict[str, deque[float]] = {}
        self._addresses: dict[str, deque[float]] = {}

    def _backoff(self, tries: int, allowance: int) -> float:
        if tries < allowance:
            return 0.0
        return float(min(self.window * 2 ** min(tries - allowance, 30),
                         MAX_BACKOFF_WINDOWS * self.window))

    def _under_attack(self, recent: dict[str, deque[float]], key: str, now: float) -> bool:
        times = recent.get(key)
        return times is not None and len(times) >= self.spread_limit and (
            times[0] > now - self.window
        )

    def _allowance(self, account: str, address: str, now: float) -> int:
        if self._under_attack(self._accounts, account, now) or self._under_attack(
            self._addresses, address, now
        ):
            return 1
        return self.max_failures

    def attempt(self, account: str, address: str) -> int:
        """Start a try of ``account`` from ``address``: 0 if it may go ahead (it is counted
        until ``succeeded``), else the whole seconds to wait (the try is not counted)."""
        now = self._clock()
        pair = self._pairs.get((account, address))
        if pair is not None:
            until = pair.last + self._backoff(pair.tries, self._allowance(account, address, now))
            if now < until:
                return max(1, math.ceil(until - now))
            if now >= until + MAX_BACKOFF_WINDOWS * self.window:
                pair = None  # quiet for long after its back-off: forgotten
        if pair is None:
            pair = _Pair()
        self._pairs.pop((account, address), None)
        self._pairs[(account, address)] = pair  # newest last: the oldest are evicted first
        pair.tries += 1
        pair.last = now
        self._evict()
        return 0

    def failed(self, account: str, address: str) -> None:
        """The try started by ``attempt`` failed: count it for the account and the address."""
        now = self._clock()
        for recent, key in ((self._accounts, account), (self._addresses, address)):
            times = recent.pop(key, None) or deque(maxlen=self.spread_limit)
            times.append(now)
            recent[key] = times
        self._evict()

    def succeeded(self, account: str, address: str) -> None:
        """The try started by ``attempt`` succeeded: the pair starts afresh."""
        self._pairs.pop((account, address), None)

    def _evict(self) -> None:
        _evict_oldest(self._pairs)
        _evict_oldest(self._accounts)
        _evict_oldest(self._addresses)


def _evict_oldest(table: dict[K, V]) -> None:
    """Keep at most ``MAX_KEYS`` entries (dicts keep insertion order: the first is oldest)."""
    while len(table) > MAX_KEYS:
        del table[next(iter(table))]
