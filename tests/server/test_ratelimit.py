"""The failed-login limiter, on a clock the test moves (no wall-clock waits)."""

from __future__ import annotations

from server.ratelimit import LoginLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_limits_after_max_failures_until_the_window_passes() -> None:
    clock = FakeClock()
    limiter = LoginLimiter(max_failures=5, window_seconds=60, clock=clock)
    for _ in range(5):
        assert limiter.retry_after("account:a", "address:1") == 0
        limiter.failed("account:a", "address:1")
        clock.now += 1
    # Five failures at t=1000..1004; now t=1005: wait until the first leaves the window.
    assert limiter.retry_after("account:a") == 55
    assert limiter.retry_after("address:1") == 55
    assert limiter.retry_after("account:b") == 0
    clock.now = 1059.5
    assert limiter.retry_after("account:a") == 1
    clock.now = 1060.0
    assert limiter.retry_after("account:a") == 0  # the oldest failure has left the window
    limiter.failed("account:a")
    assert limiter.retry_after("account:a") == 1  # five inside the window again


def test_success_clears_the_account_but_not_the_address() -> None:
    clock = FakeClock()
    limiter = LoginLimiter(max_failures=2, window_seconds=60, clock=clock)
    limiter.failed("account:a", "address:1")
    limiter.failed("account:a", "address:1")
    limiter.succeeded("account:a")
    assert limiter.retry_after("account:a") == 0
    assert limiter.retry_after("address:1") > 0


def test_old_failures_are_forgotten() -> None:
    clock = FakeClock()
    limiter = LoginLimiter(max_failures=1, window_seconds=10, clock=clock)
    limiter.failed("account:a")
    clock.now += 10
    assert limiter.retry_after("account:a") == 0
    assert "account:a" not in limiter._failures
