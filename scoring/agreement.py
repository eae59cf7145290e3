"""Inter-rater agreement: Krippendorff's ordinal alpha with a bootstrap interval, rater offsets.

Pure functions over plain data (no database, no web). A *unit* is one interview session: the
levels its raters gave on one rubric dimension. Only units rated by two or more raters carry
information about agreement; the others are left out and not counted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from scoring.rubrics import LEVELS

RESAMPLES = 1000
SEED = 20240601


@dataclass(frozen=True)
class Agreement:
    """Ordinal alpha over ``sessions`` units, with a 95% percentile bootstrap interval.

    ``alpha`` is None when there is not enough data or when alpha is undefined (no variation);
    ``reason`` then says why. The interval is None when no resample had variation.
    """

    alpha: float | None
    ci_low: float | None
    ci_high: float | None
    sessions: int
    needed: int
    enough: bool
    reason: str


@dataclass(frozen=True)
class RaterOffset:
    """Mean of (the rater's level - the mean of the other raters' levels) on one dimension."""

    rater: str
    dimension: str
    offset: float
    sessions: int


def agreement(
    units: Iterable[Mapping[str, int]],
    *,
    min_sessions: int,
    levels: Sequence[int] = LEVELS,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> Agreement:
    """Krippendorff's ordinal alpha over ``units`` (one mapping rater -> level per session).

    The interval resamples units with replacement ``resamples`` times (indices drawn at once
    as ``default_rng(seed).integers(0, n, size=(resamples, n))``, so a report reads the same
    every time) and takes the 2.5th and 97.5th percentiles of the resampled alphas;
    resamples without variation are skipped.
    """
    from scoring import ordinal_alpha  # numpy + krippendorff: only when agreement is asked

    counts = ordinal_alpha.value_counts(units, levels)
    n = len(counts)
    needed = max(min_sessions, 2)
    if n < needed:
        return Agreement(
            None, None, None, n, needed, False,
            f"not enough data: {n} sessions rated by 2+ interviewers, {needed} needed",
        )
    alpha = ordinal_alpha.alpha(counts, levels)
    if alpha is None:
        return Agreement(
            None, None, None, n, needed, True,
            "alpha undefined: every rating is the same level, so there is no variation",
        )
    interval = ordinal_alpha.percentile_interval(counts, resamples, seed)
    if interval is None:
        return Agreement(alpha, None, None, n, needed, True, "no resample had variation")
    return Agreement(alpha, interval[0], interval[1], n, needed, True, "")


def rater_offsets(ratings: Iterable[tuple[str, str, str, int]]) -> list[RaterOffset]:
    """Per rater and dimension, how far the rater sits from the others on the same sessions.

    ``ratings`` are ``(session_id, rater, dimension, level)``; one per session, rater and
    dimension. For each session and dimension rated by 2+ raters, a rater's deviation is their
    level minus the mean of the *other* raters' levels; the offset is the mean deviation and
    ``sessions`` the number of sessions it rests on. Sorted by rater, then dimension.
    """
    by_unit: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for session_id, rater, dimension, level in ratings:
        unit = by_unit[(session_id, dimension)]
        if rater in unit:
            raise ValueError(f"two ratings of {dimension!r} by {rater!r} on session {session_id!r}")
        unit[rater] = level
    deviations: dict[tuple[str, str], list[float]] = defaultdict(list)
    for (_, dimension), unit in by_unit.items():
        if len(unit) < 2:
            continue
        total = sum(unit.values())
        for rater, level in unit.items():
            others = (total - level) / (len(unit) - 1)
            deviations[(rater, dimension)].append(level - others)
    return [
        RaterOffset(rater, dimension, sum(values) / len(values), len(values))
        for (rater, dimension), values in sorted(deviations.items())
    ]
