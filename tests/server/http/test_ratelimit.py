"""The login back-off, on a clock the test moves (no wall-clock waits)."""

from __future__ import annotations

import math

import pytest

from server.http.ratelimit import (
    HOLD_MAX_SECONDS,
    MAX_BACKOFF_WINDOWS,
    MAX_HOLDS,
    MAX_KEYS,
    MAX_PAIRS_PER_ADDRESS,
    LoginLimiter,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fail(limiter: LoginLimiter, account: str, address: str) -> int:
    wait = limiter.attempt(account, address)
    if not wait:
        limiter.failed(account, address)
    return wait


def test_a_pair_backs_off_doubling_after_its_allowance() -> None:
    clock = FakeClock()
    limiter = LoginLimiter(max_failures=3, window_seconds=60, clock=clock)
    for _ in range(3):
        assert fail(limiter, "a", "x") == 0
        clock.now += 1
    # Three failures, the last at t=1002; now t=1003: wait until a window after the last.
    assert limiter.attempt("a", "x") == 59
    clock.now = 1062
    assert fail(limiter, "a", "x") == 0  # the back-off passed: one more try, then twice as long
    assert limiter.attempt("a", "x") == 120
    clock.now += 120
    assert fail(limiter, "a", "x") == 0
    assert limiter.attempt("a", "x") == 240


def test_the_back_off_is_capped_and_a_quiet_pair_is_forgotten() -> None:
    clock = FakeClock()
    limiter = LoginLimiter(max_failures=1, window_seconds=10, clock=clock)
    for _ in range(12):
        fail(limiter, "a", "x")
        clock.now += limiter.attempt("a", "x")
    assert limiter.attempt("a", "x") == 0  # the wait just ended
    limiter.failed("a", "x")
    assert limiter.attempt("a", "x") == MAX_BACKOFF_WINDOWS * 10
    clock.now += MAX_BACKOFF_WINDOWS * 10 * 2
    assert fail(limiter, "a", "x") == 0
    assert limiter.attempt("a", "x") == 10  # forgotten: the first back-off again


def test_other_pairs_are_never_refused_and_success_clears_the_pair() -> None:
    clock = FakeClock()
    limiter = LoginLimiter(max_failures=2, window_seconds=60, clock=clock)
    fail(limiter, "a", "x")
    fail(limiter, "a", "x")
    assert limiter.attempt("a", "x") > 0
    assert limiter.attempt("a", "y") == 0  # the same account from elsewhere
    limiter.succeeded("a", "y")
    assert limiter.attempt("b", "x") == 0  # another account from the same address
    limiter.succeeded("b", "x")
    fail(limiter, "c", "x")
    assert limiter.attempt("c", "x") == 0
    limiter.succeeded("c", "x")
    fail(limiter, "c", "x")
    assert limiter.attempt("c", "x") == 0  # the success started the pair afresh


def test_an_account_under_attack_gives_each_failed_address_one_try() -> None:
    clock = FakeClock()
    limiter = LoginLimiter(max_failures=2, window_seconds=60, clock=clock)
    for bot in range(limiter.spread_limit):
        assert fail(limiter, "a", f"bot{bot}") == 0
    assert limiter.attempt("a", "bot0") == 60  # one failure is its allowance now
    assert fail(limiter, "a", "new") == 0
    assert limiter.attempt("a", "new") == 60
    assert limiter.attempt("a", "owner") == 0  # never failed: never refused
    clock.now += 61
    assert fail(limiter, "a", "late") == 0  # the attack left the window: allowance back to 2
    assert limiter.attempt("a", "late") == 0


@pytest.mark.slow
def test_one_address_flooding_junk_names_blocks_no_new_login() -> None:
    """Finding: 10,000 junk names from one address filled the table with pairs all backing
    off, and every new pair (the owner's at their next login) got 429."""
    clock = FakeClock()
    limiter = LoginLimiter(max_failures=1, window_seconds=60, clock=clock)
    for i in range(MAX_KEYS + 10):
        fail(limiter, f"junk{i}@example.com", "203.0.113.9")
        clock.now += 0.001
    assert limiter.attempt("ada@example.com", "198.51.100.20") == 0  # the owner, at once
    limiter.succeeded("ada@example.com", "198.51.100.20")
    assert limiter.attempt("ada@example.com", "198.51.100.20") == 0  # and at the next login
    assert limiter.attempt("bob@example.com", "198.51.100.21") == 0  # anyone new


def test_many_addresses_filling_the_table_block_no_address_that_has_not_failed() -> None:
    clock = FakeClock()
    limiter = LoginLimiter(max_failures=1, window_seconds=60, clock=clock)
    bots = MAX_KEYS // 100 + 20
    for bot in range(bots):  # more pairs than the table holds, all backing off
        for i in range(100):
            fail(limiter, f"junk{bot}-{i}@example.com", f"203.0.{bot}.9")
    clock.now += 1
    # The table is full: a late bot (which failed) gets no new pair until a back-off ends ...
    assert limiter.attempt("new@example.com", f"203.0.{bots - 1}.9") > 0
    assert limiter.attempt("ada@example.com", "198.51.100.20") == 0  # never failed: checked
    limiter.failed("ada@example.com", "198.51.100.20")  # a typo now: counted per address
    assert limiter.attempt("ada@example.com", "198.51.100.20") > 0


def test_no_try_is_held_longer_than_a_proxy_waits() -> None:
    """Finding: failures from 40 addresses put every later fresh try on a 60 s hold, and a
    reverse proxy answers 504 at 60 s. No hold is longer than HOLD_MAX_SECONDS (< 60)."""
    clock = FakeClock()
    limiter = LoginLimiter(max_failures=5, window_seconds=600, clock=clock)
    holds = []
    for bot in range(200):
        decision = limiter.admit("ada@example.com", f"203.0.113.{bot}")
        if not decision.wait:
            holds.append(decision.hold)
            limiter.failed("ada@example.com", f"203.0.113.{bot}")
        clock.now += 0.5
    assert max(holds) > 0  # the pace held some
    assert max(holds) <= HOLD_MAX_SECONDS <= 20
    owner = limiter.admit("ada@example.com", "198.51.100.20")
    assert owner.wait == 0 and owner.hold <= HOLD_MAX_SECONDS


def test_a_flood_of_fresh_addresses_holds_a_bounded_number_of_connections() -> None:
    """Finding: tries beyond the pace's queue were all held (no bound on held connections)
    and checked without a place in the pace. Now at most MAX_HOLDS are held at once across
    the server (the rest: 429 for as long as the first hold lasts), and each held check
    takes its place in the pace."""
    clock = FakeClock()
    limiter = LoginLimiter(max_failures=5, window_seconds=60, clock=clock)
    decisions = [limiter.admit(f"user{i % 3}@example.com", f"203.0.{i // 250}.{i % 250}")
                 for i in range(MAX_HOLDS * 3)]  # fired at once, each from a fresh address
    held = [d.hold for d in decisions if not d.wait and d.hold > 0]
    refused = [d.wait for d in decisions if d.wait]
    assert len(held) == MAX_HOLDS
    assert refused and all(1 <= wait <= math.ceil(HOLD_MAX_SECONDS) for wait in refused)
    # The held checks count in the pace: once they have run, the next fresh try waits.
    clock.now += max(held)
    late = limiter.admit("user0@example.com", "198.51.100.20")
    assert late.wait == 0 and late.hold > 0


def test_junk_names_from_the_guessers_own_address_do_not_reset_its_back_off() -> None:
    """The per-address cap pushes out the address's own pairs; junk names (accounts that do
    not exist) must go first, or a guesser could flood them just before its long back-off
    ends and so restart a fresh pair on the real account."""
    clock = FakeClock()
    limiter = LoginLimiter(max_failures=1, window_seconds=60, clock=clock)
    for _ in range(6):  # a guesser's real account pair, backing off long
        while wait := fail(limiter, "ada@example.com", "198.51.100.7"):
            clock.now += wait
    ends = clock.now + limiter.attempt("ada@example.com", "198.51.100.7")
    clock.now = ends - 5  # just before it ends, a flood of junk names from the same address
    for i in range(MAX_PAIRS_PER_ADDRESS * 2):
        if limiter.attempt(f"junk{i}@example.com", "198.51.100.7") == 0:
            limiter.failed(f"junk{i}@example.com", "198.51.100.7", known=False)
    assert limiter.attempt("ada@example.com", "198.51.100.7") > 0  # still backing off
    clock.now = ends
    assert fail(limiter, "ada@example.com", "198.51.100.7") == 0
    assert limiter.attempt("ada@example.com", "198.51.100.7") > 60  # the doubling goes on
