"""Krippendorff's ordinal alpha, its bootstrap interval and rater offsets, checked by hand."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction

import numpy as np
import pytest

from scoring.agreement import Agreement, RaterOffset, agreement, rater_offsets

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 coders
# (A-D) x 12 units, values 1-5, None = missing. Published: nominal .743, ordinal .815,
# interval .849. Unit 12 has a single value, so 11 units are pairable.
PUBLISHED = {
    "A": [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    "B": [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    "C": [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    "D": [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
}


def _units(by_coder: Mapping[str, Sequence[int | None]]) -> list[dict[str, int]]:
    count = len(next(iter(by_coder.values())))
    return [
        {coder: v for coder, values in by_coder.items() if (v := values[u]) is not None}
        for u in range(count)
    ]


def _alpha_by_formula(units: Sequence[Mapping[str, int]], levels: Sequence[int]) -> Fraction:
    """Ordinal alpha written out from Krippendorff's definitions, in exact fractions.

    Coincidences: o_ck = sum over units u with m_u >= 2 raters of (number of ordered pairs of
    different raters in u valued c, k) / (m_u - 1).  n_c = sum_k o_ck, n = sum_c n_c.
    Ordinal distance: delta_ck = (sum_{g=c..k} n_g - (n_c + n_k) / 2) ** 2.
    alpha = 1 - (n - 1) * sum_ck o_ck delta_ck / sum_{c != k} n_c n_k delta_ck.
    """
    o = {(c, k): Fraction(0) for c in levels for k in levels}
    for unit in units:
        values = list(unit.values())
        m = len(values)
        if m < 2:
            continue
        for i, c in enumerate(values):
            for j, k in enumerate(values):
                if i != j:
                    o[(c, k)] += Fraction(1, m - 1)
    n_c = {c: sum((o[(c, k)] for k in levels), Fraction(0)) for c in levels}
    n = sum(n_c.values(), Fraction(0))

    def delta(c: int, k: int) -> Fraction:
        lo, hi = min(levels.index(c), levels.index(k)), max(levels.index(c), levels.index(k))
        between = sum((n_c[g] for g in levels[lo : hi + 1]), Fraction(0))
        d = between - (n_c[c] + n_c[k]) / 2
        return d * d

    observed = sum((o[(c, k)] * delta(c, k) for c in levels for k in levels), Fraction(0))
    expected = sum(
        (n_c[c] * n_c[k] * delta(c, k) for c in levels for k in levels if c != k), Fraction(0)
    )
    return 1 - (n - 1) * observed / expected


# A tiny fixture, by hand. Units (two raters each): (1,2), (2,2), (3,4), (4,4); a fifth unit
# has one rater and is left out.
#   o_12 = o_21 = 1, o_22 = 2, o_34 = o_43 = 1, o_44 = 2   ->   n_1 = 1, n_2 = 3, n_3 = 1,
#   n_4 = 3, n = 8.
#   delta_12 = (1+3 - 2)^2 = 4, delta_13 = (1+3+1 - 1)^2 = 16, delta_14 = (8 - 2)^2 = 36,
#   delta_23 = (3+1 - 2)^2 = 4, delta_24 = (3+1+3 - 3)^2 = 16, delta_34 = (1+3 - 2)^2 = 4.
#   observed sum o*delta = 4 + 4 + 4 + 4 = 16
#   expected sum n_c n_k delta (c != k) = 2 * (3*4 + 1*16 + 3*36 + 3*4 + 9*16 + 3*4) = 608
#   alpha = 1 - 7 * 16 / 608 = 1 - 7/38 = 31/38
TINY = [
    {"ann": 1, "bo": 2},
    {"ann": 2, "bo": 2},
    {"ann": 3, "cy": 4},
    {"bo": 4, "cy": 4},
    {"ann": 1},
]
TINY_ALPHA = Fraction(31, 38)


def test_formula_helper_reproduces_the_hand_computation_and_the_publication() -> None:
    assert _alpha_by_formula(TINY, [1, 2, 3, 4]) == TINY_ALPHA
    assert float(_alpha_by_formula(_units(PUBLISHED), [1, 2, 3, 4, 5])) == pytest.approx(
        0.815, abs=5e-4
    )


def test_alpha_matches_krippendorffs_published_ordinal_example() -> None:
    result = agreement(_units(PUBLISHED), min_sessions=5, levels=(1, 2, 3, 4, 5))
    assert result.enough
    assert result.sessions == 11
    assert result.alpha == pytest.approx(0.815, abs=5e-4)
    assert result.reason == ""


def test_alpha_matches_the_hand_computed_fixture() -> None:
    result = agreement(TINY, min_sessions=4)
    assert result.sessions == 4
    assert result.alpha == pytest.approx(float(TINY_ALPHA), abs=1e-12)


def test_interval_is_the_percentile_bootstrap_over_resampled_sessions() -> None:
    units = _units(PUBLISHED)
    levels = [1, 2, 3, 4, 5]
    result = agreement(units, min_sessions=5, levels=levels, resamples=200, seed=7)

    pairable = [u for u in units if len(u) >= 2]
    draws = np.random.default_rng(7).integers(0, len(pairable), size=(200, len(pairable)))
    boots = []
    for row in draws:
        sample = [pairable[i] for i in row]
        if len({v for u in sample for v in u.values()}) >= 2:
            boots.append(float(_alpha_by_formula(sample, levels)))
    low, high = np.percentile(boots, [2.5, 97.5])
    assert result.ci_low == pytest.approx(low, abs=1e-9)
    assert result.ci_high == pytest.approx(high, abs=1e-9)
    assert result.alpha is not None
    assert result.ci_low is not None and result.ci_high is not None
    assert result.ci_low <= result.alpha <= result.ci_high
    assert agreement(units, min_sessions=5, levels=levels, resamples=200, seed=7) == result


def test_perfect_agreement_gives_one_and_a_degenerate_interval() -> None:
    units = [{"a": 1, "b": 1}, {"a": 3, "b": 3, "c": 3}, {"b": 4, "c": 4}, {"a": 2, "c": 2}]
    result = agreement(units, min_sessions=2, resamples=300)
    assert result.alpha == pytest.approx(1.0)
    assert result.ci_low == pytest.approx(1.0)
    assert result.ci_high == pytest.approx(1.0)


def test_below_the_minimum_there_is_no_alpha() -> None:
    units = [{"a": 1, "b": 2}, {"a": 3, "b": 3}, {"a": 4, "c": 2}, {"a": 4}, {}]
    result = agreement(units, min_sessions=5)
    assert result == Agreement(
        None, None, None, 3, 5, False,
        "not enough data: 3 sessions rated by 2+ interviewers, 5 needed",
    )


def test_no_variation_leaves_alpha_undefined() -> None:
    units = [{"a": 3, "b": 3}, {"a": 3, "c": 3}, {"b": 3, "c": 3}]
    result = agreement(units, min_sessions=3)
    assert result.alpha is None
    assert result.ci_low is None and result.ci_high is None
    assert result.sessions == 3
    assert "undefined" in result.reason


def test_a_level_outside_the_scale_is_refused() -> None:
    with pytest.raises(ValueError, match="level 5"):
        agreement([{"a": 5, "b": 1}], min_sessions=1)


def test_rater_offsets_by_hand() -> None:
    ratings = [
        # s1: design by three raters, testing by two
        ("s1", "alice", "design", 3), ("s1", "bob", "design", 2), ("s1", "carol", "design", 4),
        ("s1", "alice", "testing", 2), ("s1", "bob", "testing", 2),
        ("s2", "alice", "design", 4), ("s2", "bob", "design", 3),
        ("s3", "alice", "design", 2), ("s3", "carol", "design", 1),
        ("s3", "bob", "testing", 4),  # alone on s3 testing: not counted
    ]
    # design:  s1 alice 3 - (2+4)/2 = 0,  bob 2 - (3+4)/2 = -1.5,  carol 4 - (3+2)/2 = 1.5
    #          s2 alice 4 - 3 = 1,        bob 3 - 4 = -1
    #          s3 alice 2 - 1 = 1,        carol 1 - 2 = -1
    # testing: s1 alice 2 - 2 = 0,        bob 2 - 2 = 0
    assert rater_offsets(ratings) == [
        RaterOffset("alice", "design", pytest.approx(2 / 3), 3),  # type: ignore[arg-type]
        RaterOffset("alice", "testing", 0.0, 1),
        RaterOffset("bob", "design", -1.25, 2),
        RaterOffset("bob", "testing", 0.0, 1),
        RaterOffset("carol", "design", 0.25, 2),
    ]


def test_rater_offsets_refuse_a_duplicate_rating() -> None:
    with pytest.raises(ValueError, match="two ratings"):
        rater_offsets([("s1", "a", "d", 1), ("s1", "a", "d", 2)])
