"""Demo history for ``pairlab demo``: past interviews with two interviewers' scorecards and
hiring outcomes, so that the debrief, calibration and validity pages have something to show.

Made once (sessions named "Past candidate N"); the levels come from a fixed-seed random
model (a latent skill per candidate, each interviewer with a bias and noise), so the reports
show believable, not perfect, agreement and validity. Every figure on those pages is computed
from these rows like from real ones.
"""

from __future__ import annotations

import random
from datetime import timedelta

import sqlite_utils

from common.clock import now
from scoring import outcomes, scorecards, session_scoring
from scoring.rubrics import Rubric
from scoring.scorecards import Card, Score
from server.people.accounts import User
from tasks import revisions
from workspaces import sessions as S

PAST_SESSIONS = 24
NAME = "Past candidate {n}"
RETENTION_BASELINE = 0.7


def _card(rng: random.Random, rubric: Rubric, skill: float, bias: float) -> Card:
    scores = {}
    for dim in rubric.dimensions:
        level = min(4, max(1, round(skill + bias + rng.gauss(0, 0.6))))
        scores[dim.id] = Score(level, f"(demo) {dim.anchors[level]}", ())
    mean = sum(s.level or 0 for s in scores.values()) / len(scores)
    recommendation = ("strong_no", "no", "yes", "strong_yes")[min(3, max(0, round(mean) - 1))]
    return Card(scores, recommendation, "(demo) a past interview made up for the demo")


def ensure_demo_history(db: sqlite_utils.Database, interviewers: list[User],
                        link_secret: str) -> int:
    """Create the past interviews unless they exist; returns how many were created. Run in
    one write transaction."""
    if db.execute("SELECT 1 FROM interview_sessions WHERE candidate_name = ?",
                  [NAME.format(n=1)]).fetchone():
        return 0
    tasks = [t for t in revisions.list_tasks(db) if t["current_revision"]]
    if not tasks or len(interviewers) < 2:
        return 0
    rng = random.Random(6)  # noqa: S311 - demo data, not security
    biases = [0.0, -0.4]  # the second interviewer scores a little lower: calibration shows it
    start = now() - timedelta(days=240)
    for n in range(1, PAST_SESSIONS + 1):
        task = tasks[n % len(tasks)]
        session, _ = S.create_session(
            db, revision_id=task["current_revision"], task_id=task["id"],
            candidate_name=NAME.format(n=n), candidate_email="", role="ml-engineer",
            duration_minutes=60, starts_at=start + timedelta(days=7 * n),
            interviewer_ids=[u.id for u in interviewers[:2]], created_by=interviewers[0].id,
            link_secret=link_secret)
        S.set_state(db, session.id, "live", expect=("scheduled",))
        S.set_state(db, session.id, "ended", expect=("live",))
        scoring = session_scoring.pin(db, session, blind=False)
        rubric = session_scoring.rubric_of(db, scoring)
        skill = rng.uniform(1.2, 3.8)
        for user, bias in zip(interviewers[:2], biases, strict=True):
            scorecards.submit(db, session.id, user.id, _card(rng, rubric, skill, bias), rubric)
        hired = skill > 2.4
        performance = min(5.0, max(1.0, round(skill + rng.gauss(0.4, 0.6), 1))) if hired else None
        outcomes.store(db, session.id, {
            "hired": hired, "employed_6m": (rng.random() < 0.45 + skill / 6) if hired else None,
            "performance": performance, "note": "(demo)"}, None)
    if outcomes.get_baseline(db) is None:
        outcomes.set_baseline(db, RETENTION_BASELINE, None)
    return PAST_SESSIONS
