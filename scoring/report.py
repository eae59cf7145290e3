"""The candidate report: one session's outcome in a shape for the JSON API and the
printable page (the same dictionary feeds both)."""

from __future__ import annotations

from typing import Any

from scoring.debrief import Debrief
from scoring.scorecard_txns import Panel


def candidate_report(p: Panel, debrief: Debrief) -> dict[str, Any]:
    s = p.session  # already masked for the caller in blind mode
    checks = debrief.checks
    dims = []
    for row in debrief.rows:
        dim = p.rubric.dimension(row.id)
        level = round(row.mean_level) if row.mean_level is not None else None
        public = row.public()
        del public["levels"]  # the report names interviewers with their evidence instead
        dims.append({**public, "anchor": dim.anchors.get(level, "") if dim and level else ""})
    return {
        "session": {"id": s.id, "task_id": s.task_id, "role": s.role,
                    "candidate_name": s.candidate_name, "candidate_email": s.candidate_email,
                    "starts_at": s.starts_at, "ended_at": s.ended_at, "state": s.state},
        "blind": p.scoring.hidden,
        "rubric": {"id": p.rubric.id, "version": p.rubric.version, "title": p.rubric.title},
        "complete": debrief.complete, "waiting_for": list(debrief.waiting_for),
        "weighted_score": debrief.weighted_mean,
        "recommendations": debrief.recommendations,
        "dimensions": dims,
        "hidden_checks": None if checks is None else {
            k: checks.get(k) for k in ("status", "passed", "failed", "errors", "total",
                                         "reason", "graded")},
        "summaries": [{"interviewer": c.name, "recommendation": c.card.recommendation,
                       "summary": c.card.summary, "weighted_score": c.weighted_score}
                      for c in debrief.cards],
    }
