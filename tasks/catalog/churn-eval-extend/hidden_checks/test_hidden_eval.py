"""Hidden checks for churn-eval-extend: held-out data generated here, reference metrics here."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from borealis_eval import metrics

ROOT = Path(__file__).resolve().parent.parent
COLUMNS = ["shipper_id", "segment", "churn_score", "churned_90d"]


def ref_auc(y: np.ndarray, s: np.ndarray) -> float:
    pos, neg = s[y == 1], s[y == 0]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(wins / (len(pos) * len(neg)))


def ref_ece(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> float:
    total = 0.0
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        m = (p >= lo) & ((p < hi) if b < n_bins - 1 else (p <= hi))
        if m.any():
            total += m.sum() / len(p) * abs(p[m].mean() - y[m].mean())
    return total


def ref_boot_width(y: np.ndarray, s: np.ndarray, n_boot: int = 300) -> float:
    rng = np.random.default_rng(99)
    stats = []
    for _ in range(n_boot):
        i = rng.integers(0, len(y), len(y))
        if 0 < y[i].sum() < len(i):
            stats.append(ref_auc(y[i], s[i]))
    lo, hi = np.quantile(stats, [0.025, 0.975])
    return float(hi - lo)


def scored(rng: np.random.Generator, segment: str, n: int, shift: float) -> pd.DataFrame:
    logit = rng.normal(-1.0 + shift, 1.4, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    score = np.round(1 / (1 + np.exp(-(logit * 1.3 + rng.normal(0, 0.8, n)))), 6)
    ids = [f"H{segment[:2]}{i:05d}" for i in range(n)]
    return pd.DataFrame(dict(zip(COLUMNS, [ids, [segment] * n, score, y])))


def run_cli(tmp_path: Path, test: pd.DataFrame, valid: pd.DataFrame) -> dict:
    test.to_csv(tmp_path / "heldout_test.csv", index=False)
    valid.to_csv(tmp_path / "heldout_valid.csv", index=False)
    out = tmp_path / "report.json"
    subprocess.run(
        [sys.executable, "-m", "borealis_eval.evaluate", "--scores",
         str(tmp_path / "heldout_test.csv"), "--valid", str(tmp_path / "heldout_valid.csv"),
         "--out", str(out)],
        cwd=ROOT, check=True, timeout=300, capture_output=True,
    )
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def heldout(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, dict]:
    rng = np.random.default_rng(2024)
    test = pd.concat([scored(rng, "smb", 1500, 0.3), scored(rng, "enterprise", 90, -0.4)])
    none_churned = scored(rng, "startup", 40, -1.0).assign(churned_90d=0)
    test = pd.concat([test, none_churned]).sample(frac=1.0, random_state=7)
    valid = pd.concat([scored(rng, "smb", 600, 0.3), scored(rng, "enterprise", 60, -0.4)])
    return test, run_cli(tmp_path_factory.mktemp("heldout"), test, valid)


def test_ece_known_values() -> None:
    y, p = [0, 1, 1, 0], [0.05, 0.95, 0.55, 1.0]
    assert metrics.expected_calibration_error(y, p) == pytest.approx(0.3625)
    assert metrics.expected_calibration_error(y, p, n_bins=2) == pytest.approx(0.1375)
    calibrated = [1] * 7 + [0] * 13
    assert metrics.expected_calibration_error(calibrated, [0.35] * 20) == pytest.approx(0.0)


def test_ece_matches_reference_on_random_data() -> None:
    rng = np.random.default_rng(5)
    p = rng.random(3000)
    y = (rng.random(3000) < p ** 1.5).astype(int)
    assert metrics.expected_calibration_error(y, p) == pytest.approx(ref_ece(y, p), abs=1e-9)


def test_overall_ece_in_report(heldout: tuple[pd.DataFrame, dict]) -> None:
    test, report = heldout
    y, p = test["churned_90d"].to_numpy(), test["churn_score"].to_numpy()
    assert report["ece"] == pytest.approx(ref_ece(y, p), abs=5e-4)


def test_segments_have_metrics(heldout: tuple[pd.DataFrame, dict]) -> None:
    test, report = heldout
    assert set(report["segments"]) == {"smb", "enterprise", "startup"}
    for name, part in test.groupby("segment"):
        seg = report["segments"][name]
        y, s = part["churned_90d"].to_numpy(), part["churn_score"].to_numpy()
        assert seg["n"] == len(part)
        assert seg["ece"] == pytest.approx(ref_ece(y, s), abs=5e-4)
        if name != "startup":
            assert seg["auc"] == pytest.approx(ref_auc(y, s), abs=5e-4)


def test_single_class_segment_has_no_auc(heldout: tuple[pd.DataFrame, dict]) -> None:
    _, report = heldout
    startup = report["segments"]["startup"]
    assert startup["auc"] is None
    assert startup["auc_ci"] is None


def test_bootstrap_intervals_are_plausible(heldout: tuple[pd.DataFrame, dict]) -> None:
    test, report = heldout
    widths = {}
    for name in ("smb", "enterprise"):
        seg = report["segments"][name]
        lo, hi = seg["auc_ci"]
        assert 0.0 <= lo <= seg["auc"] <= hi <= 1.0
        part = test[test["segment"] == name]
        expected = ref_boot_width(part["churned_90d"].to_numpy(), part["churn_score"].to_numpy())
        widths[name] = hi - lo
        assert 0.5 * expected <= widths[name] <= 2.0 * expected, (name, widths[name], expected)
    assert widths["enterprise"] > widths["smb"]


def test_threshold_is_tuned_on_validation_not_test(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)

    def split(pos_lo: float, pos_hi: float, neg_hi: float, prefix: str) -> pd.DataFrame:
        score = np.concatenate([rng.uniform(pos_lo, pos_hi, 200), rng.uniform(0.0, neg_hi, 600)])
        y = np.r_[np.ones(200, int), np.zeros(600, int)]
        ids = [f"{prefix}{i:04d}" for i in range(800)]
        return pd.DataFrame(dict(zip(COLUMNS, [ids, ["smb"] * 800, np.round(score, 6), y])))

    valid = split(0.26, 0.45, 0.22, "V")   # best F1 on validation: threshold 0.25
    test = split(0.76, 0.95, 0.69, "T")    # best F1 on test: threshold 0.70 or 0.75
    report = run_cli(tmp_path, test, valid)
    assert abs(report["threshold"] - 0.25) <= 0.05
    y, s = test["churned_90d"].to_numpy(), test["churn_score"].to_numpy()
    pred = s >= report["threshold"]
    tp, fp, fn = (pred & (y == 1)).sum(), (pred & (y == 0)).sum(), (~pred & (y == 1)).sum()
    assert report["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn), abs=1e-3)
