"""Binary classification metrics, numpy/pandas only (the batch hosts have no scikit-learn)."""

from __future__ import annotations

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
