import pandas as pd

from quintessa_features import load, transform
from quintessa_features.transform import FEATURE_COLUMNS


def _frames() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    events = pd.DataFrame(
        {
            "event_id": ["1", "2", "3", "4", "5"],
            "user_id": ["a", "a", "a", "a", "b"],
            "ts": pd.to_datetime(
                [
                    "2024-03-02T08:00:00Z",
                    "2024-03-02T08:10:00Z",
                    "2024-03-02T08:12:00Z",
                    "2024-03-03T19:00:00Z",
                    "2024-03-02T12:00:00Z",
                ],
                utc=True,
            ),
            "event_type": [
                "session_start", "meditation_completed", "purchase", "session_start",
                "session_start",
            ],
            "amount": [0.0, 0.0, 9.99, 0.0, 0.0],
            "duration_min": [0.0, 10.0, 0.0, 0.0, 0.0],
        }
    )
    users = pd.DataFrame(
        {"user_id": ["a", "b"], "country": ["GB", "GB"], "tz": ["UTC", "UTC"],
         "signup_date": ["2024-02-01", "2024-02-03"]}
    )
    plans = pd.DataFrame(
        {"user_id": ["a", "b"], "plan": ["basic", "free"],
         "effective_from": pd.to_datetime(["2024-02-01", "2024-02-03"], utc=True)}
    )
    return events, users, plans


def test_one_row_per_user_and_day() -> None:
    out = transform.build_daily_features(*_frames())
    assert list(out.columns) == FEATURE_COLUMNS
    assert list(zip(out["user_id"], out["day"])) == [
        ("a", "2024-03-02"), ("a", "2024-03-03"), ("b", "2024-03-02"),
    ]


def test_counts_and_revenue() -> None:
    out = transform.build_daily_features(*_frames()).set_index(["user_id", "day"])
    row = out.loc[("a", "2024-03-02")]
    assert row["sessions"] == 1
    assert row["meditations"] == 1
    assert row["minutes"] == 10.0
    assert row["purchases"] == 1
    assert row["revenue"] == 9.99
    assert out.loc[("b", "2024-03-02"), "plan"] == "free"


def test_sample_data_runs_end_to_end() -> None:
    events, users, plans = load.load_all("data")
    out = transform.build_daily_features(events, users, plans)
    assert not out.empty
    assert out[["user_id", "day", "plan"]].notna().all().all()
    assert (out[["sessions", "meditations", "purchases", "revenue"]] >= 0).all().all()
    assert set(out["user_id"]) == set(users["user_id"])
    assert not out.duplicated(["user_id", "day"]).any()
