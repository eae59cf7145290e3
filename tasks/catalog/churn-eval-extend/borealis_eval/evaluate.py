"""Evaluate the shipper churn model on a scored split.

    python -m borealis_eval.evaluate --scores data/scores_test.csv --out reports/eval.json

The report gives the overall ROC AUC, the operating threshold (best F1) and the precision,
recall and F1 at that threshold. The retention team uses the threshold to decide which
shippers get a call from an account manager.
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

from borealis_eval.metrics import precision_recall_f1, roc_auc

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


def evaluate(test: pd.DataFrame) -> dict[str, Any]:
    threshold = tune_threshold(test)
    return {
        "n": int(len(test)),
        "positive_rate": float(test[LABEL].mean()),
        "auc": roc_auc(test[LABEL], test[SCORE]),
        "threshold": threshold,
        **precision_recall_f1(test[LABEL], test[SCORE], threshold),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Evaluate the shipper churn model.")
    parser.add_argument("--scores", type=Path, default=REPO_ROOT / "data" / "scores_test.csv")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "reports" / "eval.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    config = load_config()
    report = {"model": config["model"]["name"], "model_version": config["model"]["version"],
              **evaluate(load_scores(args.scores))}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    log.info("AUC %.3f, F1 %.3f at threshold %.2f -> %s",
             report["auc"], report["f1"], report["threshold"], args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
