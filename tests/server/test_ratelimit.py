"""The login back-off, on a clock the test moves (no wall-clock waits)."""

from __future__ import annotations

from server.ratelimit import MAX_BACKOFF_WINDOWS, LoginLimiter


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
