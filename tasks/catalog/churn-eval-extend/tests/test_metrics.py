import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from borealis_eval.evaluate import evaluate, tune_threshold
from borealis_eval.metrics import confusion, precision_recall_f1, roc_auc


def test_auc_perfect_and_reversed() -> None:
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert roc_auc([0, 0, 1, 1], [0.9, 0.8, 0.2, 0.1]) == 0.0


def test_auc_counts_ties_as_half() -> None:
    assert roc_auc([0, 1], [0.5, 0.5]) == 0.5
    assert roc_auc([0, 1, 0, 1], [0.1, 0.4, 0.5, 0.8]) == 0.75


def test_auc_needs_both_classes() -> None:
    with pytest.raises(ValueError):
        roc_auc([1, 1], [0.3, 0.4])


def test_confusion_and_f1() -> None:
    y, s = [1, 1, 0, 0, 1], [0.9, 0.4, 0.6, 0.1, 0.7]
    assert confusion(y, s, 0.5) == (2, 1, 1, 1)
    prf = precision_recall_f1(y, s, 0.5)
    assert prf["precision"] == pytest.approx(2 / 3)
    assert prf["recall"] == pytest.approx(2 / 3)
    assert prf["f1"] == pytest.approx(2 / 3)


def test_threshold_maximises_f1() -> None:
    df = pd.DataFrame({"churn_score": [0.1, 0.2, 0.32, 0.6, 0.7, 0.9],
                       "churned_90d": [0, 0, 0, 1, 1, 1], "segment": "smb"})
    assert 0.3 < tune_threshold(df) <= 0.6
    assert evaluate(df)["f1"] == 1.0


def test_command_line_report(tmp_path: Path) -> None:
    out = tmp_path / "eval.json"
    subprocess.run([sys.executable, "-m", "borealis_eval.evaluate",
                    "--scores", "data/scores_test.csv", "--out", str(out)],
                   check=True, timeout=120, capture_output=True)
    report = json.loads(out.read_text())
    assert report["n"] == 1200
    assert 0.5 < report["auc"] < 1.0
    assert report["threshold"] in [round(0.05 * i, 2) for i in range(1, 20)]
