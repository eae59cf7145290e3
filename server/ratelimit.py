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
- **Per account, a pace.** At most ``PACE_FACTOR`` times ``max_failures`` passwords of one
  account are checked per window, from all addresses together: a try beyond that is held
  (the server waits before checking it, at most ``HOLD_MAX_SECONDS``) until the check that
  many checks earlier is a window old. A guesser with many addresses who waits for answers
  gets no more than that per window. A try whose hold would be longer is refused if its pair
  has failed before; a pair that has not failed is held the longest hold and then checked,
  so a flood of fresh addresses fired at once is held, not capped (refusing it would refuse
  the owner too).
- **Memory.** At most ``MAX_KEYS`` pairs; the oldest pair that is not backing off is forgotten
  first, never one that is; when every pair is backing off, a new pair waits (429) until the
  first back-off ends, so junk account names cannot push a guesser's pair out.

What this never does: refuse a try from a pair that has not failed, but for one case: when
``MAX_KEYS`` pairs are all backing off at once, a new pair waits until the first back-off ends.
So however many wrong passwords arrive from address X (or from a thousand addresses), the
right password from an address Y that has not failed is checked (held at most
``HOLD_MAX_SECONDS`` for the pace) and logs in; and the right password from X itself works once
X's back-off has passed. The price: while an account is under attack, its owner's own typo
costs them a window's wait.

Addresses are what ``server.client_address.limiter_key`` says (``X-Forwarded-For`` only from
trusted proxies; an IPv6 address by its /64), so people behind one proxy are told apart when
the proxy is configured, and share nothing but the looser per-address count when it is not.
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
PACE_FACTOR = 8
"""Passwords checked per account per window, at most (times ``max_failures``)."""
HOLD_MAX_SECONDS = 60.0
"""The longest a try is held for the account's pace (at most a window): a delay, not a
refusal, for someone who has not failed."""


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
        self.pace_limit = PACE_FACTOR * max_failures
        self._clock = clock
        self._pairs: dict[tuple[str, str], _Pair] = {}
        # Recent failure times per account / per address; only the last spread_limit matter.
        self._accounts: dict[str, deque[float]] = {}
        self._addresses: dict[str, deque[float]] = {}
        # When each of an account's latest pace_limit checks is (or was) due to run.
        self._checks: dict[str, deque[float]] = {}
        self._full_until = 0.0  # every pair was backing off: new pairs wait until then

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
        """``admit`` without the hold (for callers that do not wait): the refusal alone."""
        return self.admit(account, address)[0]

    def admit(self, account: str, address: str) -> tuple[int, float]:
        """Start a try of ``account`` from ``address``: ``(0, hold)`` if it may go ahead after
        waiting ``hold`` seconds (it is counted until ``succeeded``), else ``(seconds, 0)``,
        the whole seconds to wait (the try is not counted)."""
        now = self._clock()
        pair = self._pairs.get((account, address))
        if pair is not None:
            until = pair.last + self._backoff(pair.tries, self._allowance(account, address, now))
            if now < until:
                return max(1, math.ceil(until - now)), 0.0
            if now >= until + MAX_BACKOFF_WINDOWS * self.window:
                pair = None  # quiet for long after its back-off: forgotten
        fresh = pair is None
        if (account, address) not in self._pairs and not self._make_room(now):
            return max(1, math.ceil(self._full_until - now)), 0.0
        hold = self._hold(account, now, fresh)
        if hold < 0:
            return max(1, math.ceil(-hold)), 0.0
        if pair is None:
            pair = _Pair()
        self._pairs.pop((account, address), None)
        self._pairs[(account, address)] = pair  # newest last: the oldest are evicted first
        pair.tries += 1
        pair.last = now
        return 0, hold

    def _hold(self, account: str, now: float, fresh: bool) -> float:
        """Seconds before this try's check keeps the account's pace (taking its place), or
        minus the seconds to wait when the queue is too long for a pair that has failed."""
        checks = self._checks.pop(account, None) or deque(maxlen=self.pace_limit)
        self._checks[account] = checks  # newest last
        due = checks[0] + self.window if len(checks) == self.pace_limit else now
        hold = max(0.0, due - now)
        longest = min(float(self.window), HOLD_MAX_SECONDS)
        if hold > longest:
            if not fresh:
                return -(hold - longest)
            return longest  # held as long as any, checked without a place in the pace
        checks.append(now + hold)
        _trim(self._checks, lambda times: times[-1] <= now - self.window)
        return hold

    def _backing_off(self, key: tuple[str, str], pair: _Pair, now: float) -> float:
        """When the pair's back-off ends (at or before ``now`` if it is not backing off)."""
        return pair.last + self._backoff(pair.tries, self._allowance(*key, now))

    def _make_room(self, now: float) -> bool:
        """Room for one more pair: forget the oldest one not backing off, if need be."""
        if len(self._pairs) < MAX_KEYS:
            return True
        if now < self._full_until:
            return False
        first_end = math.inf
        for key, pair in self._pairs.items():  # oldest first
            ends = self._backing_off(key, pair, now)
            if ends <= now:
                del self._pairs[key]
                return True
            first_end = min(first_end, ends)
        self._full_until = first_end
        return False

    def failed(self, account: str, address: str) -> None:
        """The try started by ``attempt`` failed: count it for the account and the address."""
        now = self._clock()
        for recent, key in ((self._accounts, account), (self._addresses, address)):
            times = recent.pop(key, None) or deque(maxlen=self.spread_limit)
            times.append(now)
            recent[key] = times
        self._evict(now)

    def succeeded(self, account: str, address: str) -> None:
        """The try started by ``attempt`` succeeded: the pair starts afresh."""
        self._pairs.pop((account, address), None)

    def _evict(self, now: float) -> None:
        """The spread counts: forget the oldest quiet one (no failure for a window) first."""
        def quiet(times: deque[float]) -> bool:
            return times[-1] <= now - self.window

        _trim(self._accounts, quiet)
        _trim(self._addresses, quiet)


def _trim(table: dict[K, V], idle: Callable[[V], bool]) -> None:
    """Keep at most ``MAX_KEYS`` entries (dicts keep insertion order: the first is oldest):
    the oldest idle one goes first, else the oldest."""
    while len(table) > MAX_KEYS:
        victim = next((key for key, value in table.items() if idle(value)), next(iter(table)))
        del table[victim]
