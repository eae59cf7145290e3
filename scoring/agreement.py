"""Inter-rater agreement: Krippendorff's ordinal alpha with a bootstrap interval, rater offsets.

Pure functions over plain data (no database, no web). A *unit* is one interview session: the
levels its raters gave on one rubric dimension. Only units rated by two or more raters carry
information about agreement; the others are left out and not counted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import krippendorff
import numpy as np
import numpy.typing as npt

from scoring.rubrics import LEVELS

RESAMPLES = 1000
SEED = 20240601


@dataclass(frozen=True)
class Agreement:
    """Ordinal alpha over ``sessions`` units, with a 95% percentile bootstrap interval.

    ``alpha`` is None when there is not enough data or when alpha is undefined (no variation);
    ``reason`` then says why. The interval is None when no resample had variation.
    """

    alpha: float | None
    ci_low: float | None
    ci_high: float | None
    sessions: int
    needed: int
    enough: bool
    reason: str


@dataclass(frozen=True)
class RaterOffset:
    """Mean of (the rater's level - the mean of the other raters' levels) on one dimension."""

    rater: str
    dimension: str
    offset: float
    sessions: int


def _value_counts(
    units: Iterable[Mapping[str, int]], levels: Sequence[int]
) -> npt.NDArray[np.int_]:
    """One row per unit rated by 2+ raters: how many raters gave each level."""
    index = {level: i for i, level in enumerate(levels)}
    rows = []
    for unit in units:
        if len(unit) < 2:
            continue
        row = [0] * len(levels)
        for rater, level in unit.items():
            if level not in index:
                raise ValueError(f"level {level!r} of rater {rater!r} is not one of {list(levels)}")
            row[index[level]] += 1
        rows.append(row)
    return np.array(rows, dtype=np.int_).reshape(len(rows), len(levels))


def _alpha(counts: npt.NDArray[np.int_], levels: Sequence[int]) -> float | None:
    """Ordinal alpha of the rows in ``counts``; None when undefined (a single level used)."""
    if np.count_nonzero(counts.sum(axis=0)) < 2:
        return None
    value = krippendorff.alpha(
        value_counts=counts, value_domain=list(levels), level_of_measurement="ordinal"
    )
    return float(value)


def _coincidences(counts: npt.NDArray[np.int_]) -> npt.NDArray[np.float64]:
    """Each unit's contribution to the coincidence matrix: (c c^T - diag(c)) / (m_u - 1)."""
    pairs = counts[:, :, None] * counts[:, None, :] - counts[:, :, None] * np.eye(counts.shape[1])
    contributions: npt.NDArray[np.float64] = pairs / (counts.sum(axis=1) - 1)[:, None, None]
    return contributions


def _bootstrap_alphas(
    units: npt.NDArray[np.float64], draws: npt.NDArray[np.int_]
) -> npt.NDArray[np.float64]:
    """Ordinal alpha of every resample at once (rows of ``draws`` index ``units``); resamples
    with a single level (alpha undefined) are dropped.

    o = the resampled units' coincidences summed, n_c its margins, n = sum n_c;
    delta_ck = (n_c + ... + n_k - (n_c + n_k) / 2)^2;
    alpha = 1 - (n - 1) * sum o_ck delta_ck / sum n_c n_k delta_ck.
    """
    n_units, levels = units.shape[0], units.shape[1]
    weights = np.zeros((draws.shape[0], n_units))
    np.add.at(weights, (np.arange(draws.shape[0])[:, None], draws), 1.0)
    o = (weights @ units.reshape(n_units, -1)).reshape(-1, levels, levels)
    n_c = o.sum(axis=2)
    cum = np.cumsum(n_c, axis=1)
    lo = np.minimum.outer(np.arange(levels), np.arange(levels))
    hi = np.maximum.outer(np.arange(levels), np.arange(levels))
    between = cum[:, hi] - cum[:, lo] + n_c[:, lo]
    delta = (between - (n_c[:, :, None] + n_c[:, None, :]) / 2) ** 2
    observed = (o * delta).sum(axis=(1, 2))
    expected = (n_c[:, :, None] * n_c[:, None, :] * delta).sum(axis=(1, 2))
    defined = expected > 0
    n = n_c.sum(axis=1)
    alphas: npt.NDArray[np.float64] = 1 - (n[defined] - 1) * observed[defined] / expected[defined]
    return alphas


def agreement(
    units: Iterable[Mapping[str, int]],
    *,
    min_sessions: int,
    levels: Sequence[int] = LEVELS,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> Agreement:
    """Krippendorff's ordinal alpha over ``units`` (one mapping rater -> level per session).

    The interval resamples units with replacement ``resamples`` times (indices drawn at once
    as ``default_rng(seed).integers(0, n, size=(resamples, n))``, so a report reads the same
    every time) and takes the 2.5th and 97.5th percentiles of the resampled alphas;
    resamples without variation are skipped.
    """
    counts = _value_counts(units, levels)
    n = len(counts)
    needed = max(min_sessions, 2)
    if n < needed:
        return Agreement(
            None, None, None, n, needed, False,
            f"not enough data: {n} sessions rated by 2+ interviewers, {needed} needed",
        )
    alpha = _alpha(counts, levels)
    if alpha is None:
        return Agreement(
            None, None, None, n, needed, True,
            "alpha undefined: every rating is the same level, so there is no variation",
        )
    draws = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    boots = _bootstrap_alphas(_coincidences(counts), draws)
    if not len(boots):
        return Agreement(alpha, None, None, n, needed, True, "no resample had variation")
    low, high = np.percentile(boots, [2.5, 97.5])
    return Agreement(alpha, float(low), float(high), n, needed, True, "")


def rater_offsets(ratings: Iterable[tuple[str, str, str, int]]) -> list[RaterOffset]:
    """Per rater and dimension, how far the rater sits from the others on the same sessions.

    ``ratings`` are ``(session_id, rater, dimension, level)``; one per session, rater and
    dimension. For each session and dimension rated by 2+ raters, a rater's deviation is their
    level minus the mean of the *other* raters' levels; the offset is the mean deviation and
    ``sessions`` the number of sessions it rests on. Sorted by rater, then dimension.
    """
    by_unit: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for session_id, rater, dimension, level in ratings:
        unit = by_unit[(session_id, dimension)]
        if rater in unit:
            raise ValueError(f"two ratings of {dimension!r} by {rater!r} on session {session_id!r}")
        unit[rater] = level
    deviations: dict[tuple[str, str], list[float]] = defaultdict(list)
    for (_, dimension), unit in by_unit.items():
        if len(unit) < 2:
            continue
        total = sum(unit.values())
        for rater, level in unit.items():
            others = (total - level) / (len(unit) - 1)
            deviations[(rater, dimension)].append(level - others)
    return [
        RaterOffset(rater, dimension, sum(values) / len(values), len(values))
        for (rater, dimension), values in sorted(deviations.items())
    ]
