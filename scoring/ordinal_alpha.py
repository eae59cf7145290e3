"""Krippendorff's ordinal alpha over value counts, and its bootstrap: the numpy part of
``scoring.agreement``, kept apart so that only a page that computes agreement loads numpy and
krippendorff into the control plane (``agreement`` imports this module when it is called)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import krippendorff
import numpy as np
import numpy.typing as npt


def value_counts(
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


def alpha(counts: npt.NDArray[np.int_], levels: Sequence[int]) -> float | None:
    """Ordinal alpha of the rows in ``counts``; None when undefined (a single level used)."""
    if np.count_nonzero(counts.sum(axis=0)) < 2:
        return None
    value = krippendorff.alpha(
        value_counts=counts, value_domain=list(levels), level_of_measurement="ordinal"
    )
    return float(value)


def coincidences(counts: npt.NDArray[np.int_]) -> npt.NDArray[np.float64]:
    """Each unit's contribution to the coincidence matrix: (c c^T - diag(c)) / (m_u - 1)."""
    pairs = counts[:, :, None] * counts[:, None, :] - counts[:, :, None] * np.eye(counts.shape[1])
    contributions: npt.NDArray[np.float64] = pairs / (counts.sum(axis=1) - 1)[:, None, None]
    return contributions


def bootstrap_alphas(
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


def percentile_interval(
    counts: npt.NDArray[np.int_], resamples: int, seed: int
) -> tuple[float, float] | None:
    """2.5th and 97.5th percentiles of the alphas of ``resamples`` resamples of the rows of
    ``counts`` (indices drawn at once as ``default_rng(seed).integers(0, n, size=(resamples,
    n))``); None when no resample had variation."""
    n = len(counts)
    draws = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    boots = bootstrap_alphas(coincidences(counts), draws)
    if not len(boots):
        return None
    low, high = np.percentile(boots, [2.5, 97.5])
    return float(low), float(high)
