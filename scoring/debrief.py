"""The debrief of a session: submitted scorecards side by side, where the panel disagrees,
the weighted scores, the hidden-check results and the evidence linked into the replay.

Pure functions over already-loaded data; the candidate report is built from the same
``Debrief``.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import mean
from typing import Any

from scoring.rubrics import Rubric
from scoring.scorecards import RECOMMENDATIONS, Submitted

DISAGREEMENT = 2
"""Levels apart (max - min) from which a dimension is flagged as a disagreement."""


@dataclass(frozen=True)
class Evidence:
    interviewer: str
    level: int | None
    text: str
    moments: tuple[int, ...]


@dataclass(frozen=True)
class DimensionRow:
    id: str
    title: str
    weight: int
    levels: dict[int, int | None]  # interviewer user id -> level
    mean_level: float | None
    spread: int | None
    disagreement: bool
    evidence: tuple[Evidence, ...]

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "weight": self.weight,
                "levels": {str(k): v for k, v in self.levels.items()},
                "mean_level": self.mean_level, "spread": self.spread,
                "disagreement": self.disagreement,
                "evidence": [{"interviewer": e.interviewer, "level": e.level, "text": e.text,
                              "moments": list(e.moments)} for e in self.evidence]}


@dataclass(frozen=True)
class Debrief:
    rubric: Rubric
    cards: tuple[Submitted, ...]
    rows: tuple[DimensionRow, ...]
    weighted_mean: float | None
    recommendations: dict[str, int]
    checks: dict[str, Any] | None
    waiting_for: tuple[str, ...]

    @property
    def complete(self) -> bool:
        return not self.waiting_for

    def public(self) -> dict[str, Any]:
        return {
            "rubric": {"id": self.rubric.id, "version": self.rubric.version,
                       "title": self.rubric.title},
            "complete": self.complete, "waiting_for": list(self.waiting_for),
            "weighted_score": self.weighted_mean,
            "recommendations": self.recommendations,
            "dimensions": [r.public() for r in self.rows],
            "scorecards": [c.public() for c in self.cards],
            "hidden_checks": self.checks,
        }


def panel_mean(cards: list[Submitted]) -> float | None:
    """The panel's weighted score: the mean of each card's weighted score."""
    return round(mean(c.weighted_score for c in cards), 3) if cards else None


def build(rubric: Rubric, cards: list[Submitted], checks: dict[str, Any] | None,
          waiting_for: list[str]) -> Debrief:
    rows = []
    for dim in rubric.dimensions:
        levels: dict[int, int | None] = {}
        evidence = []
        for card in cards:
            score = card.card.scores.get(dim.id)
            levels[card.user_id] = score.level if score else None
            if score is not None:
                evidence.append(Evidence(card.name, score.level, score.evidence, score.moments))
        given = [v for v in levels.values() if v is not None]
        spread = max(given) - min(given) if given else None
        rows.append(DimensionRow(
            dim.id, dim.title, dim.weight, levels,
            round(mean(given), 2) if given else None, spread,
            spread is not None and spread >= DISAGREEMENT, tuple(evidence)))
    counts = {r: sum(1 for c in cards if c.card.recommendation == r) for r in RECOMMENDATIONS}
    return Debrief(rubric, tuple(cards), tuple(rows), panel_mean(cards), counts, checks,
                   tuple(waiting_for))
