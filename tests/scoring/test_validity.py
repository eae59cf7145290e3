"""Pearson's r with a Fisher-z interval and retention with a Wilson interval, by hand."""

from __future__ import annotations

import math

import pytest

from scoring.validity import correlation, retention

Z = 1.959964  # the 97.5th percentile of the standard normal


def test_pearson_r_and_fisher_interval_by_hand() -> None:
    xs = [1.0, 2.0, 3.0, 4.0, 5.0]
    ys = [2.0, 1.0, 4.0, 3.0, 5.0]
    # means 3 and 3; dx = -2,-1,0,1,2; dy = -1,-2,1,0,2
    # Sxy = 2 + 2 + 0 + 0 + 4 = 8; Sxx = 10; Syy = 1 + 4 + 1 + 0 + 4 = 10  ->  r = 8/10
    r = 8 / math.sqrt(10 * 10)
    z, se = math.atanh(r), 1 / math.sqrt(5 - 3)
    result = correlation(xs, ys, min_n=5)
    assert result.enough
    assert result.n == 5
    assert result.r == pytest.approx(0.8, abs=1e-12)
    assert result.ci_low == pytest.approx(math.tanh(z - Z * se), abs=1e-6)
    assert result.ci_high == pytest.approx(math.tanh(z + Z * se), abs=1e-6)


def test_a_negative_correlation() -> None:
    # Sxy = -(2 + 2 + 0 + 0 + 4) = -8 with ys reversed  ->  r = -0.8
    result = correlation([1, 2, 3, 4, 5], [4, 5, 2, 3, 1], min_n=3)
    assert result.r == pytest.approx(-0.8, abs=1e-12)


def test_correlation_below_the_minimum() -> None:
    result = correlation([1, 2, 3, 4], [1, 3, 2, 4], min_n=10)
    assert (result.r, result.ci_low, result.ci_high) == (None, None, None)
    assert not result.enough
    assert result.n == 4
    assert result.reason == "not enough data: 4 pairs, 10 needed"


def test_correlation_never_runs_on_fewer_than_three_pairs() -> None:
    result = correlation([1, 2], [2, 1], min_n=0)
    assert result.r is None
    assert result.reason == "not enough data: 2 pairs, 3 needed"


def test_correlation_without_variance_is_undefined() -> None:
    result = correlation([3, 3, 3, 3, 3], [1, 2, 3, 4, 5], min_n=5)
    assert result.r is None
    assert result.enough
    assert "does not vary" in result.reason


def test_correlation_refuses_unpaired_values() -> None:
    with pytest.raises(ValueError, match="3 x values but 2 y values"):
        correlation([1, 2, 3], [1, 2], min_n=1)


def _wilson(k: int, n: int) -> tuple[float, float]:
    p = k / n
    denominator = 1 + Z**2 / n
    centre = (p + Z**2 / (2 * n)) / denominator
    half = Z * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2)) / denominator
    return centre - half, centre + half


def test_retention_rate_wilson_interval_and_baseline_by_hand() -> None:
    outcomes = [True] * 7 + [False] * 3
    low, high = _wilson(7, 10)
    result = retention(outcomes, 0.6, min_n=10)
    assert result.enough
    assert (result.n, result.retained) == (10, 7)
    assert result.rate == pytest.approx(0.7)
    assert result.ci_low == pytest.approx(low, abs=1e-6)
    assert result.ci_high == pytest.approx(high, abs=1e-6)
    assert result.baseline == 0.6
    assert result.difference == pytest.approx(0.1)


def test_retention_of_everyone() -> None:
    low, high = _wilson(12, 12)
    result = retention([True] * 12, None, min_n=10)
    assert result.rate == 1.0
    assert result.ci_low == pytest.approx(low, abs=1e-6)
    assert result.ci_high == pytest.approx(high, abs=1e-6)
    assert result.difference is None
    assert result.reason == "no retention baseline entered"


def test_retention_below_the_minimum() -> None:
    result = retention([True, False, True], 0.5, min_n=10)
    assert not result.enough
    assert (result.rate, result.ci_low, result.ci_high, result.difference) == (
        None, None, None, None,
    )
    assert (result.n, result.retained, result.baseline) == (3, 2, 0.5)
    assert result.reason == (
        "not enough data: 3 hired candidates with a six-month outcome, 10 needed"
    )
