"""Binary classification metrics, numpy/pandas only (the batch hosts have no scikit-learn)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike


def roc_auc(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Area under the ROC curve (Mann-Whitney U; ties count one half)."""
    y = np.asarray(y_true).astype(int)
    s = np.asarray(y_score, dtype=float)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("ROC AUC is undefined when only one class is present")
    ranks = pd.Series(s).rank(method="average").to_numpy()
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def confusion(y_true: ArrayLike, y_score: ArrayLike, threshold: float) -> tuple[int, int, int, int]:
    """(tp, fp, fn, tn) when predicting churn for ``score >= threshold``."""
    y = np.asarray(y_true).astype(bool)
    pred = np.asarray(y_score, dtype=float) >= threshold
    return (int((pred & y).sum()), int((pred & ~y).sum()),
            int((~pred & y).sum()), int((~pred & ~y).sum()))


def precision_recall_f1(y_true: ArrayLike, y_score: ArrayLike, threshold: float) -> dict[str, float]:
    tp, fp, fn, _ = confusion(y_true, y_score, threshold)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def expected_calibration_error(y_true: ArrayLike, y_prob: ArrayLike, n_bins: int = 10) -> float:
    """ECE with ``n_bins`` equal-width bins [0, 1/n), ..., [(n-1)/n, 1]; 1.0 is in the last.

    The mean over bins of |mean predicted probability - observed positive rate|, weighted by
    the share of rows in each bin (empty bins count zero).
    """
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(y_prob, dtype=float)
    if len(p) == 0:
        raise ValueError("ECE is undefined for an empty sample")
    if ((p < 0) | (p > 1)).any():
        raise ValueError("probabilities must lie in [0, 1]")
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in np.unique(bins):
        in_bin = bins == b
        ece += in_bin.mean() * abs(p[in_bin].mean() - y[in_bin].mean())
    return float(ece)


def bootstrap_ci(
    y_true: ArrayLike,
    y_score: ArrayLike,
    metric: Callable[[np.ndarray, np.ndarray], float] = roc_auc,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float] | None:
    """Percentile bootstrap interval for ``metric``, resampling rows with replacement.

    Resamples holding a single class are skipped (AUC is undefined there); returns None when
    fewer than half of the resamples were usable, e.g. for a segment with one class.
    """
    y = np.asarray(y_true).astype(int)
    s = np.asarray(y_score, dtype=float)
    rng = np.random.default_rng(seed)
    stats = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(y), len(y))
        if y[idx].min() != y[idx].max():
            stats.append(metric(y[idx], s[idx]))
    if len(stats) < n_boot / 2:
        return None
    lo, hi = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)
