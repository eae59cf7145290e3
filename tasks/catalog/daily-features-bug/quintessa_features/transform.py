"""Build the daily per-user feature table used by the engagement and churn models.

See README.md ("Feature definitions") for what each column means.
"""

from __future__ import annotations

import pandas as pd

FEATURE_COLUMNS = [
    "user_id", "day", "plan", "sessions", "meditations", "minutes", "purchases", "revenue",
]


def enrich(events: pd.DataFrame, users: pd.DataFrame, plans: pd.DataFrame) -> pd.DataFrame:
    """Attach the user's profile and subscription plan to every event."""
    df = events.merge(users[["user_id", "country", "tz"]], on="user_id", how="left")
    df = df.merge(plans[["user_id", "plan"]], on="user_id", how="left")
    return df


def assign_day(df: pd.DataFrame) -> pd.DataFrame:
    """Add ``day`` (ISO date string) to each event."""
    out = df.copy()
    out["day"] = out["ts"].dt.strftime("%Y-%m-%d")
    return out


def daily_features(df: pd.DataFrame) -> pd.DataFrame:
    """Aggregate enriched, day-stamped events to one row per (user_id, day)."""
    df = df.sort_values("ts", kind="stable")
    kind = df["event_type"]
    flags = df.assign(
        sessions=kind.eq("session_start").astype(int),
        meditations=kind.eq("meditation_completed").astype(int),
        minutes=df["duration_min"].where(kind.eq("meditation_completed"), 0.0),
        purchases=kind.eq("purchase").astype(int),
        revenue=df["amount"].where(kind.eq("purchase"), 0.0),
    )
    out = flags.groupby(["user_id", "day"], as_index=False).agg(
        plan=("plan", "last"),
        sessions=("sessions", "sum"),
        meditations=("meditations", "sum"),
        minutes=("minutes", "sum"),
        purchases=("purchases", "sum"),
        revenue=("revenue", "sum"),
    )
    out["revenue"] = out["revenue"].round(2)
    return out[FEATURE_COLUMNS].sort_values(["user_id", "day"], ignore_index=True)


def build_daily_features(
    events: pd.DataFrame, users: pd.DataFrame, plans: pd.DataFrame
) -> pd.DataFrame:
    """The whole job: raw frames in, feature table out."""
    return daily_features(assign_day(enrich(events, users, plans)))
