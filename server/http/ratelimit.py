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
  account are checked per window, from all addresses together, kept over a span of
  ``HOLD_MAX_SECONDS`` (or the window, if shorter) with the number scaled down to match: a
  try beyond that is held (the server waits before checking it, at most the span, so a
  reverse proxy's usual 60 s read timeout never fires first) until the check that many
  checks earlier is a span old. A guesser with many addresses who waits for answers gets no
  more than that. A try whose hold would be longer is refused if its pair has failed before;
  a pair that has not failed is held the longest hold and then checked, taking its place in
  the pace (later tries wait behind it).
- **Held connections.** At most ``MAX_HOLDS`` tries are held at once across the server; a try
  that would be held beyond that is refused (429, ``Retry-After`` until the first hold ends),
  so a flood of fresh addresses is bounded in connections and in checks (``MAX_HOLDS`` per
  span beyond the pace).
- **Memory.** At most ``MAX_PAIRS_PER_ADDRESS`` pairs per address: a new one pushes out one
  of that address's own pairs (one not backing off, else one whose account does not exist,
  else the one whose back-off ends first), so one address's junk account names only ever
  push out its own pairs, and never its pair on a real account while it has junk ones. At
  most ``MAX_KEYS`` pairs in all; the oldest pair that is not backing off is forgotten
  first, never one that is. When every pair is backing off (many addresses at once), a new
  pair is not stored: an address that has not failed is still admitted, counted per address
  (its allowance of unstored tries), and only an address that has failed waits (429) until
  the first back-off ends.

What this never does: refuse a try from an address that has not failed, but when ``MAX_HOLDS``
tries are already held. So however many wrong passwords arrive from address X (or from a
thousand addresses), the right password from an address Y that has not failed is checked
(held at most ``HOLD_MAX_SECONDS`` for the pace) and logs in; and the right password from X
itself works once X's back-off has passed. The price: while an account is under attack, its
owner's own typo costs them a window's wait.

Addresses are what ``server.http.client_address.limiter_key`` says (``X-Forwarded-For`` only from
trusted proxies; an IPv6 address by its /64), so people behind one proxy are told apart when
the proxy is configured, and share nothing but the looser per-address count when it is not.
"""

from __future__ import annotations

import heapq
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, TypeVar

K = TypeVar("K")
V = TypeVar("V")
MAX_KEYS = 10_000
"""Pairs, accounts and addresses remembered at most; the oldest are forgotten first."""
MAX_PAIRS_PER_ADDRESS = 100
"""Pairs remembered per address at most: one address cannot fill the table."""
SPREAD_FACTOR = 4
"""Failures per account or per address (times ``max_failures``) that mean an attack."""
MAX_BACKOFF_WINDOWS = 16
"""The longest back-off, in windows."""
PACE_FACTOR = 8
"""Passwords checked per account per window, at most (times ``max_failures``)."""
HOLD_MAX_SECONDS = 15.0
"""The longest a try is held for the account's pace (at most a window): a delay, not a
refusal, for someone who has not failed; well under a reverse proxy's 60 s read timeout."""
MAX_HOLDS = 100
"""Tries held at once across the server, at most; beyond that a try is refused (429)."""


@dataclass
class _Pair:
    tries: int = 0  # counted tries since the pair was last cleared or forgotten
    last: float = 0.0  # when the latest of them started
    known: bool = True  # False once a try failed because the account does not exist


class Admission(NamedTuple):
    wait: int  # whole seconds to wait before trying again (refused), else 0
    hold: float  # seconds to wait before checking the password (admitted)
    busy: bool = False  # refused because MAX_HOLDS tries are already held, not for failures


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
        # The pace: PACE_FACTOR * max_failures per window, kept over a span no longer than
        # the longest hold (a longer span would need longer holds).
        self.pace_span = min(float(window_seconds), HOLD_MAX_SECONDS)
        self.pace_limit = max(1, int(PACE_FACTOR * max_failures * self.pace_span / self.window))
        self._clock = clock
        self._pairs: dict[tuple[str, str], _Pair] = {}
        self._by_address: dict[str, dict[str, None]] = {}  # the accounts of each address's pairs
        # Recent failure times per account / per address; only the last spread_limit matter.
        self._accounts: dict[str, deque[float]] = {}
        self._addresses: dict[str, deque[float]] = {}
        # When each of an account's latest pace_limit checks is (or was) due to run.
        self._checks: dict[str, deque[float]] = {}
        self._holds: list[float] = []  # a heap: when each held try's hold ends
        self._full_until = 0.0  # every pair was backing off: new pairs are not stored until then
        self._unstored: dict[str, int] = {}  # tries admitted without a pair, per address

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
        return self.admit(account, address).wait

    def admit(self, account: str, address: str) -> Admission:
        """Start a try of ``account`` from ``address``: ``wait`` 0 and ``hold`` if it may go
        ahead after waiting ``hold`` seconds (it is counted until ``succeeded``), else
        ``wait``, the whole seconds to wait (the try is not counted)."""
        now = self._clock()
        key = (account, address)
        pair = self._pairs.get(key)
        if pair is not None:
            until = self._backing_off(key, pair, now)
            if now < until:
                return Admission(max(1, math.ceil(until - now)), 0.0)
            if now >= until + MAX_BACKOFF_WINDOWS * self.window:
                pair = None  # quiet for long after its back-off: forgotten
        hold = self._pace_hold(account, now, fresh=pair is None)
        if hold < 0:
            return Admission(max(1, math.ceil(-hold)), 0.0)
        if hold > 0:
            while self._holds and self._holds[0] <= now:
                heapq.heappop(self._holds)
            if len(self._holds) >= MAX_HOLDS:
                return Admission(max(1, math.ceil(self._holds[0] - now)), 0.0, busy=True)
        stored = key in self._pairs or self._make_room(address, now)
        if not stored:  # every pair is backing off: count the try per address instead
            if self._has_failed(address, now) or self._unstored.get(address, 0) >= (
                self._allowance(account, address, now)
            ):
                return Admission(max(1, math.ceil(self._full_until - now)), 0.0)
            self._unstored[address] = self._unstored.get(address, 0) + 1
            _trim(self._unstored, lambda tries: tries == 0)
        self._count_check(account, now + hold, now)
        if hold > 0:
            heapq.heappush(self._holds, now + hold)
        if stored:
            pair = pair or _Pair()
            self._put(key, pair)
            pair.tries += 1
            pair.last = now
        return Admission(0, hold)

    def _pace_hold(self, account: str, now: float, fresh: bool) -> float:
        """Seconds before this try's check keeps the account's pace, or minus the seconds to
        wait when the queue is too long for a pair that has failed."""
        checks = self._checks.get(account)
        due = now
        if checks is not None and len(checks) == self.pace_limit:
            due = checks[0] + self.pace_span
        hold = max(0.0, due - now)
        if hold > self.pace_span:
            if not fresh:
                return -(hold - self.pace_span)
            return self.pace_span  # held as long as any, and counted in the pace
        return hold

    def _count_check(self, account: str, at: float, now: float) -> None:
        checks = self._checks.pop(account, None) or deque(maxlen=self.pace_limit)
        checks.append(at)
        self._checks[account] = checks  # newest last
        _trim(self._checks, lambda times: times[-1] <= now - self.pace_span)

    def _backing_off(self, key: tuple[str, str], pair: _Pair, now: float) -> float:
        """When the pair's back-off ends (at or before ``now`` if it is not backing off)."""
        return pair.last + self._backoff(pair.tries, self._allowance(*key, now))

    def _has_failed(self, address: str, now: float) -> bool:
        times = self._addresses.get(address)
        return times is not None and times[-1] > now - MAX_BACKOFF_WINDOWS * self.window

    def _put(self, key: tuple[str, str], pair: _Pair) -> None:
        self._pairs.pop(key, None)
        self._pairs[key] = pair  # newest last: the oldest are evicted first
        self._by_address.setdefault(key[1], {})[key[0]] = None

    def _drop(self, key: tuple[str, str]) -> None:
        self._pairs.pop(key, None)
        mine = self._by_address.get(key[1])
        if mine is not None:
            mine.pop(key[0], None)
            if not mine:
                del self._by_address[key[1]]

    def _make_room(self, address: str, now: float) -> bool:
        """Room for one more pair of ``address``: push out one of its own if it has
        ``MAX_PAIRS_PER_ADDRESS`` (one not backing off, else a junk name's, else the one whose
        back-off ends first), else the oldest pair not backing off if
        the table is full; False if every pair is backing off."""
        mine = self._by_address.get(address, {})
        if len(mine) >= MAX_PAIRS_PER_ADDRESS:
            def order(account: str) -> tuple[bool, bool, float]:
                pair = self._pairs[(account, address)]
                ends = self._backing_off((account, address), pair, now)
                return ends > now, pair.known, ends  # idle, then junk names, then ending first

            self._drop((min(mine, key=order), address))
            return True
        if len(self._pairs) < MAX_KEYS:
            self._unstored.clear()  # counted only while the table is full
            return True
        if now < self._full_until:
            return False
        first_end = math.inf
        for key, pair in self._pairs.items():  # oldest first
            ends = self._backing_off(key, pair, now)
            if ends <= now:
                self._drop(key)
                return True
            first_end = min(first_end, ends)
        self._full_until = first_end
        return False

    def failed(self, account: str, address: str, known: bool = True) -> None:
        """The try started by ``attempt`` failed: count it for the account and the address
        (``known``: the account exists)."""
        now = self._clock()
        pair = self._pairs.get((account, address))
        if pair is not None and not known:
            pair.known = False  # a junk name: the first of its address's pairs to go
        for recent, key in ((self._accounts, account), (self._addresses, address)):
            times = recent.pop(key, None) or deque(maxlen=self.spread_limit)
            times.append(now)
            recent[key] = times
        self._evict(now)

    def succeeded(self, account: str, address: str) -> None:
        """The try started by ``attempt`` succeeded: the pair starts afresh."""
        if (account, address) in self._pairs:
            self._drop((account, address))
        elif self._unstored.get(address, 0) > 0:
            self._unstored[address] -= 1

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
