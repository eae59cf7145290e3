"""Read the raw inputs of the daily features job.

In production these are the nightly extracts in s3://quintessa-prod-raw-events; locally they
are the CSV samples in data/ (same columns, a small slice of early March 2024).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def read_events(data_dir: Path) -> pd.DataFrame:
    """One row per app event. ``ts`` is when the app sent the event (UTC)."""
    df = pd.read_csv(
        Path(data_dir) / "events.csv",
        dtype={"event_id": str, "user_id": str, "event_type": str},
    )
    df["ts"] = pd.to_datetime(df["ts"], utc=True)
    df["amount"] = df["amount"].fillna(0.0)
    df["duration_min"] = df["duration_min"].fillna(0.0)
    return df


def read_users(data_dir: Path) -> pd.DataFrame:
    """One row per user: home country and IANA time zone from the app profile."""
    return pd.read_csv(Path(data_dir) / "users.csv", dtype=str)


def read_plans(data_dir: Path) -> pd.DataFrame:
    """Subscription plan per user, from the billing service export."""
    df = pd.read_csv(Path(data_dir) / "plan_history.csv", dtype={"user_id": str, "plan": str})
    df["effective_from"] = pd.to_datetime(df["effective_from"], utc=True)
    return df


def load_all(data_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return read_events(data_dir), read_users(data_dir), read_plans(data_dir)
