"""Predictive validity: does the interview score track what happened after the hire?

Pure functions over plain numbers (no database, no web): Pearson's r with a Fisher-z 95%
interval, and the six-month retention rate among hired candidates with a Wilson 95% interval,
compared with a baseline the admin enters. Below a minimum sample they say so instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# Pearson's r needs three points to be more than a line through two.
MIN_CORRELATION_N = 3


@dataclass(frozen=True)
class Correlation:
    """Pearson's r over ``n`` pairs; None (with a ``reason``) when not enough or undefined."""

    r: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    needed: int
    enough: bool
    reason: str


@dataclass(frozen=True)
class Retention:
    """Share of ``n`` hired candidates still employed at six months (``retained`` of them)."""

    rate: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    retained: int
    needed: int
    baseline: float | None
    difference: float | None
    enough: bool
    reason: str


def _not_enough(n: int, needed: int, what: str) -> str:
    return f"not enough data: {n} {what}, {needed} needed"


def correlation(xs: Sequence[float], ys: Sequence[float], *, min_n: int) -> Correlation:
    """Pearson's r of paired ``xs`` and ``ys`` with its 95% interval (Fisher z, se 1/sqrt(n-3))."""
    if len(xs) != len(ys):
        raise ValueError(f"{len(xs)} x values but {len(ys)} y values")
    n = len(xs)
    needed = max(min_n, MIN_CORRELATION_N)
    if n < needed:
        return Correlation(None, None, None, n, needed, False, _not_enough(n, needed, "pairs"))
    if len(set(xs)) < 2 or len(set(ys)) < 2:
        return Correlation(
            None, None, None, n, needed, True,
            "correlation undefined: one of the two values does not vary",
        )
    from scipy import stats  # ~75 MiB: loaded only when a validity figure is computed

    result = stats.pearsonr(xs, ys)
    interval = result.confidence_interval(0.95)
    return Correlation(
        float(result.statistic), float(interval.low), float(interval.high), n, needed, True, ""
    )


def retention(outcomes: Sequence[bool], baseline: float | None, *, min_n: int) -> Retention:
    """Rate of ``True`` (still employed at six months) among hired candidates' ``outcomes``."""
    n = len(outcomes)
    retained = sum(1 for kept in outcomes if kept)
    needed = max(min_n, 1)
    if n < needed:
        return Retention(
            None, None, None, n, retained, needed, baseline, None, False,
            _not_enough(n, needed, "hired candidates with a six-month outcome"),
        )
    from scipy import stats  # ~75 MiB: loaded only when a validity figure is computed

    rate = retained / n
    interval = stats.binomtest(retained, n).proportion_ci(method="wilson")
    difference = None if baseline is None else rate - baseline
    reason = "" if baseline is not None else "no retention baseline entered"
    return Retention(
        rate, float(interval.low), float(interval.high), n, retained, needed, baseline,
        difference, True, reason,
    )
