"""Calibration and validity figures read from the database (plain functions, no web layer).

Everything rests on each interviewer's *current* submitted scorecard of a session (the highest
``version`` in the append-only ``scorecard_versions``). Calibration: how far each interviewer
sits from the others on the same sessions, and how well interviewers agree (Krippendorff's
ordinal alpha) per dimension and per task. Validity: how the panel's mean score of a session
tracks the hire's outcome, and six-month retention among hires against the admin's baseline.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from statistics import fmean
from typing import Any

import sqlite_utils

from scoring.agreement import Agreement, RaterOffset, agreement, rater_offsets
from scoring.outcomes import RETENTION_BASELINE
from scoring.scorecards import card_from_json
from scoring.validity import Correlation, Retention, correlation, retention

OVERALL = "overall"


@dataclass(frozen=True)
class CurrentCard:
    """One interviewer's latest submitted card of a session: a level per scored dimension."""

    session_id: str
    task_id: str
    user_id: int
    interviewer: str
    levels: dict[str, int]
    weighted_score: float


def current_cards(db: sqlite_utils.Database,
                  hide: frozenset[str] = frozenset()) -> list[CurrentCard]:
    """Every interviewer's latest submitted card, except those of the ``hide`` sessions."""
    rows = db.execute(
        "SELECT v.session_id, s.task_id, v.user_id, u.display_name, u.email, v.body,"
        " v.weighted_score FROM current_scorecards v"
        " JOIN interview_sessions s ON s.id = v.session_id JOIN users u ON u.id = v.user_id"
        " ORDER BY v.session_id, v.user_id"
    ).fetchall()
    return [
        CurrentCard(session_id, task_id, user_id, name or email, card_from_json(body).levels(),
                    float(score))
        for session_id, task_id, user_id, name, email, body, score in rows
        if session_id not in hide
    ]


# ---- calibration ----------------------------------------------------------------------------


@dataclass(frozen=True)
class InterviewerOffset:
    """Mean of (this interviewer's level - the other interviewers' mean) on shared sessions;
    None (with a ``reason``) below the minimum number of sessions."""

    user_id: int
    interviewer: str
    dimension: str
    offset: float | None
    sessions: int
    enough: bool
    reason: str


@dataclass(frozen=True)
class DimensionAgreement:
    """Agreement on one dimension, over every task (``task_id`` None) or over one task."""

    task_id: str | None
    dimension: str
    agreement: Agreement


@dataclass(frozen=True)
class Calibration:
    min_sessions: int
    offsets: list[InterviewerOffset]
    by_dimension: list[DimensionAgreement]
    by_task: list[DimensionAgreement]


def _offset(o: RaterOffset, name: str, min_sessions: int) -> InterviewerOffset:
    if o.sessions >= min_sessions:
        return InterviewerOffset(int(o.rater), name, o.dimension, o.offset, o.sessions, True, "")
    reason = (f"not enough data: {o.sessions} sessions shared with other interviewers,"
              f" {min_sessions} needed")
    return InterviewerOffset(int(o.rater), name, o.dimension, None, o.sessions, False, reason)


def calibration(db: sqlite_utils.Database, *, min_sessions: int,
                hide: frozenset[str] = frozenset()) -> Calibration:
    cards = current_cards(db, hide)
    names = {c.user_id: c.interviewer for c in cards}
    ratings = [
        (c.session_id, str(c.user_id), dim, level) for c in cards for dim, level in c.levels.items()
    ]
    offsets = [_offset(o, names[int(o.rater)], min_sessions) for o in rater_offsets(ratings)]
    offsets.sort(key=lambda o: (o.interviewer.lower(), o.user_id, o.dimension))
    units: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    tasks: dict[str, str] = {}
    for c in cards:
        tasks[c.session_id] = c.task_id
        for dim, level in c.levels.items():
            units[(dim, c.session_id)][str(c.user_id)] = level
    by_dim: dict[str, list[dict[str, int]]] = defaultdict(list)
    by_task: dict[tuple[str, str], list[dict[str, int]]] = defaultdict(list)
    for (dim, session_id), unit in units.items():
        by_dim[dim].append(unit)
        by_task[(tasks[session_id], dim)].append(unit)
    return Calibration(
        min_sessions,
        offsets,
        [DimensionAgreement(None, dim, agreement(us, min_sessions=min_sessions))
         for dim, us in sorted(by_dim.items())],
        [DimensionAgreement(task, dim, agreement(us, min_sessions=min_sessions))
         for (task, dim), us in sorted(by_task.items())],
    )


# ---- validity -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoreOutcome:
    """How one score (a dimension's panel mean, or the overall weighted score) tracks an
    outcome; ``points`` are the (score, outcome) pairs the correlation rests on."""

    score: str
    outcome: str
    correlation: Correlation
    points: list[tuple[float, float]]


@dataclass(frozen=True)
class Validity:
    min_n: int
    sessions_scored: int
    correlations: list[ScoreOutcome]
    retention: Retention


def panel_means(cards: list[CurrentCard]) -> dict[str, dict[str, float]]:
    """Per session: the mean level per dimension over its cards, and ``overall`` (the mean
    weighted score)."""
    by_session: dict[str, list[CurrentCard]] = defaultdict(list)
    for c in cards:
        by_session[c.session_id].append(c)
    means: dict[str, dict[str, float]] = {}
    for session_id, session_cards in by_session.items():
        levels: dict[str, list[int]] = defaultdict(list)
        for c in session_cards:
            for dim, level in c.levels.items():
                levels[dim].append(level)
        means[session_id] = {dim: fmean(values) for dim, values in levels.items()}
        means[session_id][OVERALL] = fmean(c.weighted_score for c in session_cards)
    return means


def _outcomes(db: sqlite_utils.Database) -> dict[str, dict[str, Any]]:
    rows = db.execute(
        "SELECT session_id, hired, employed_6m, performance FROM outcomes"
    ).fetchall()
    return {r[0]: {"hired": r[1], "employed_6m": r[2], "performance": r[3]} for r in rows}


def _baseline(db: sqlite_utils.Database) -> float | None:
    row = db.execute(
        "SELECT value FROM report_baselines WHERE name = ?", [RETENTION_BASELINE]
    ).fetchone()
    return None if row is None else float(row[0])


def _relate(means: dict[str, dict[str, float]], outcomes: dict[str, dict[str, Any]],
            score: str, outcome: str, min_n: int) -> ScoreOutcome:
    points = sorted(
        (m[score], float(outcomes[s][outcome])) for s, m in means.items()
        if score in m and s in outcomes and outcomes[s][outcome] is not None
    )
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return ScoreOutcome(score, outcome, correlation(xs, ys, min_n=min_n), points)


def validity(db: sqlite_utils.Database, *, min_n: int,
             hide: frozenset[str] = frozenset()) -> Validity:
    means = panel_means(current_cards(db, hide))
    outcomes = _outcomes(db)
    dimensions = sorted({d for m in means.values() for d in m if d != OVERALL})
    related = [_relate(means, outcomes, OVERALL, "performance", min_n)]
    related += [_relate(means, outcomes, dim, "performance", min_n) for dim in dimensions]
    related.append(_relate(means, outcomes, OVERALL, "hired", min_n))
    related.append(_relate(means, outcomes, OVERALL, "employed_6m", min_n))  # hires only
    kept = [bool(o["employed_6m"]) for _, o in sorted(outcomes.items())
            if o["hired"] == 1 and o["employed_6m"] is not None]
    return Validity(
        min_n, len(means), related, retention(kept, _baseline(db), min_n=min_n)
    )
