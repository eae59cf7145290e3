"""Evaluate the shipper churn model on a scored split.

    python -m borealis_eval.evaluate --scores data/scores_test.csv \
        --valid data/scores_valid.csv --out reports/eval.json

The report gives the overall ROC AUC, the operating threshold (best F1 on the validation
split) and the precision, recall and F1 at that threshold on the test split, the expected
calibration error, and the same per segment with 95% bootstrap intervals for the AUC.
The retention team uses the threshold to decide which shippers get a call.

The threshold must not be tuned on the split it is evaluated on: that makes F1 optimistic.
Without --valid the script still runs but says so in the report and the log.
"""

from __future__ import annotations

import argparse
import json
import logging
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from borealis_eval.metrics import (
    bootstrap_ci,
    expected_calibration_error,
    precision_recall_f1,
    roc_auc,
)

log = logging.getLogger("borealis_eval")

REPO_ROOT = Path(__file__).resolve().parent.parent
LABEL, SCORE, SEGMENT = "churned_90d", "churn_score", "segment"
THRESHOLDS = np.round(np.arange(0.05, 0.96, 0.05), 2)


def load_config(path: Path = REPO_ROOT / "config" / "eval.toml") -> dict[str, Any]:
    with path.open("rb") as fh:
        return tomllib.load(fh)


def load_scores(path: Path) -> pd.DataFrame:
    df = pd.read_csv(path, dtype={"shipper_id": str, SEGMENT: str})
    missing = {"shipper_id", SEGMENT, SCORE, LABEL} - set(df.columns)
    if missing:
        raise ValueError(f"{path}: missing columns {sorted(missing)}")
    return df


def tune_threshold(df: pd.DataFrame) -> float:
    """The threshold from THRESHOLDS with the best F1 (the lowest one on ties)."""
    f1 = [precision_recall_f1(df[LABEL], df[SCORE], t)["f1"] for t in THRESHOLDS]
    return float(THRESHOLDS[int(np.argmax(f1))])


def _auc_or_none(df: pd.DataFrame) -> float | None:
    return roc_auc(df[LABEL], df[SCORE]) if df[LABEL].nunique() == 2 else None


def segment_metrics(df: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """n, positive rate, AUC with a 95% bootstrap interval (None with one class), and ECE."""
    auc = _auc_or_none(df)
    ci = None if auc is None else bootstrap_ci(df[LABEL], df[SCORE], n_boot=n_boot, seed=seed)
    return {
        "n": int(len(df)),
        "positive_rate": float(df[LABEL].mean()),
        "auc": auc,
        "auc_ci": None if ci is None else list(ci),
        "ece": expected_calibration_error(df[LABEL], df[SCORE]),
    }


def evaluate(test: pd.DataFrame, valid: pd.DataFrame | None = None) -> dict[str, Any]:
    if valid is None:
        log.warning("no validation split: threshold tuned on the test split, F1 is optimistic")
    threshold = tune_threshold(test if valid is None else valid)
    return {
        "n": int(len(test)),
        "positive_rate": float(test[LABEL].mean()),
        "auc": _auc_or_none(test),
        "threshold": threshold,
        "threshold_source": "test" if valid is None else "validation",
        **precision_recall_f1(test[LABEL], test[SCORE], threshold),
        "ece": expected_calibration_error(test[LABEL], test[SCORE]),
        "segments": {str(name): segment_metrics(part)
                     for name, part in test.groupby(SEGMENT, sort=True)},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Evaluate the shipper churn model.")
    parser.add_argument("--scores", type=Path, default=REPO_ROOT / "data" / "scores_test.csv")
    parser.add_argument("--valid", type=Path, default=None,
                        help="validation split used to choose the threshold")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "reports" / "eval.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    config = load_config()
    report = {"model": config["model"]["name"], "model_version": config["model"]["version"],
              **evaluate(load_scores(args.scores),
                         None if args.valid is None else load_scores(args.valid))}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    log.info("F1 %.3f at threshold %.2f, ECE %.3f -> %s",
             report["f1"], report["threshold"], report["ece"], args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
