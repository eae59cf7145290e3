"""Hidden checks for daily-features-bug: an independent reference built with the stdlib."""

import csv
import datetime as dt
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from quintessa_features import load, transform

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"


def _utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def reference(data_dir: Path) -> dict[tuple[str, str], dict[str, object]]:
    """Per (user, local day): counts, revenue, and the set of plans in effect at its events."""
    with open(data_dir / "users.csv", newline="") as fh:
        tz = {r["user_id"]: ZoneInfo(r["tz"]) for r in csv.DictReader(fh)}
    history: dict[str, list[tuple[dt.datetime, str]]] = defaultdict(list)
    with open(data_dir / "plan_history.csv", newline="") as fh:
        for r in csv.DictReader(fh):
            history[r["user_id"]].append((_utc(r["effective_from"]), r["plan"]))
    out: dict[tuple[str, str], dict[str, object]] = {}
    with open(data_dir / "events.csv", newline="") as fh:
        for r in csv.DictReader(fh):
            ts = _utc(r["ts"])
            day = ts.astimezone(tz[r["user_id"]]).date().isoformat()
            plan = max((h for h in history[r["user_id"]] if h[0] <= ts), default=(None, None))[1]
            row = out.setdefault((r["user_id"], day), {
                "sessions": 0, "meditations": 0, "minutes": 0.0, "purchases": 0,
                "revenue": 0.0, "plans": set()})
            row["plans"].add(plan)  # type: ignore[union-attr]
            kind = r["event_type"]
            row["sessions"] += kind == "session_start"  # type: ignore[operator]
            row["meditations"] += kind == "meditation_completed"  # type: ignore[operator]
            if kind == "meditation_completed":
                row["minutes"] += float(r["duration_min"])  # type: ignore[operator]
            if kind == "purchase":
                row["purchases"] += 1  # type: ignore[operator]
                row["revenue"] += float(r["amount"])  # type: ignore[operator]
    return out


def _keyed(frame: pd.DataFrame) -> dict[tuple[str, str], pd.Series]:
    return {(str(r["user_id"]), str(r["day"])[:10]): r for _, r in frame.iterrows()}


def _build(data_dir: Path) -> pd.DataFrame:
    return transform.build_daily_features(*load.load_all(data_dir))


def _write(data_dir: Path, users: list[tuple], plans: list[tuple], events: list[tuple]) -> Path:
    data_dir.mkdir()
    tables = {
        "users.csv": (["user_id", "country", "tz", "signup_date"], users),
        "plan_history.csv": (["user_id", "plan", "effective_from"], plans),
        "events.csv": (["event_id", "user_id", "ts", "event_type", "amount", "duration_min"],
                       events),
    }
    for name, (header, rows) in tables.items():
        with open(data_dir / name, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            writer.writerows(rows)
    return data_dir


def test_total_revenue_matches_raw_purchases() -> None:
    events = load.read_events(DATA)
    raw = events.loc[events["event_type"] == "purchase", "amount"].sum()
    assert _build(DATA)["revenue"].sum() == pytest.approx(raw, abs=0.01)


def test_event_counts_are_not_inflated() -> None:
    events = load.read_events(DATA)
    out = _build(DATA)
    assert out["sessions"].sum() == (events["event_type"] == "session_start").sum()
    assert out["purchases"].sum() == (events["event_type"] == "purchase").sum()
    assert out["minutes"].sum() == pytest.approx(events["duration_min"].sum())


def test_every_user_day_matches_reference() -> None:
    expected = reference(DATA)
    got = _keyed(_build(DATA))
    assert set(got) == set(expected)
    for key, want in expected.items():
        row = got[key]
        for col in ("sessions", "meditations", "purchases"):
            assert int(row[col]) == want[col], (key, col)
        assert float(row["minutes"]) == pytest.approx(want["minutes"]), key
        assert float(row["revenue"]) == pytest.approx(want["revenue"], abs=0.005), key
        plans = want["plans"]
        if len(plans) == 1:  # type: ignore[arg-type]
            assert row["plan"] in plans, (key, row["plan"], plans)  # type: ignore[operator]


def test_day_is_the_users_local_day(tmp_path: Path) -> None:
    data = _write(
        tmp_path / "data",
        users=[("tok", "JP", "Asia/Tokyo", "2024-02-01"),
               ("lax", "US", "America/Los_Angeles", "2024-02-01")],
        plans=[("tok", "free", "2024-02-01T00:00:00Z"), ("lax", "free", "2024-02-01T00:00:00Z")],
        events=[("1", "tok", "2024-03-04T23:30:00Z", "session_start", "", ""),
                ("2", "lax", "2024-03-05T03:00:00Z", "session_start", "", "")],
    )
    got = _keyed(_build(data))
    assert set(got) == {("tok", "2024-03-05"), ("lax", "2024-03-04")}


def test_plan_is_the_one_in_effect_and_upgrades_do_not_double_revenue(tmp_path: Path) -> None:
    data = _write(
        tmp_path / "data",
        users=[("u", "US", "America/Los_Angeles", "2024-02-01")],
        plans=[("u", "free", "2024-02-01T00:00:00Z"), ("u", "plus", "2024-03-03T12:00:00Z")],
        events=[("1", "u", "2024-03-02T05:00:00Z", "purchase", "9.99", ""),
                ("2", "u", "2024-03-04T18:00:00Z", "purchase", "14.99", "")],
    )
    got = _keyed(_build(data))
    assert set(got) == {("u", "2024-03-01"), ("u", "2024-03-04")}
    assert got[("u", "2024-03-01")]["plan"] == "free"
    assert got[("u", "2024-03-04")]["plan"] == "plus"
    assert sum(float(r["revenue"]) for r in got.values()) == pytest.approx(24.98)


def test_command_line_job_writes_correct_totals(tmp_path: Path) -> None:
    out = tmp_path / "features.csv"
    subprocess.run(
        [sys.executable, "-m", "quintessa_features.run", "--data-dir", str(DATA), "--out",
         str(out)],
        cwd=ROOT, check=True, timeout=60, capture_output=True,
    )
    written = pd.read_csv(out)
    expected = reference(DATA)
    assert len(written) == len(expected)
    assert written["revenue"].sum() == pytest.approx(
        sum(float(v["revenue"]) for v in expected.values()), abs=0.01)
