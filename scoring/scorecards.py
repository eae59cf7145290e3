"""Scorecards: each interviewer's draft, its validation against the session's rubric, and
append-only submitted versions.

Body shape (the API's and the storage's)::

    {"scores": {"<dimension id>": {"level": 1-4 | null, "evidence": str,
                                   "moments": [<event seq of this session>, ...]}},
     "recommendation": "strong_no" | "no" | "yes" | "strong_yes" | null,
     "summary": str}

A draft may be incomplete; a submission needs a level and evidence for every dimension, a
recommendation and a summary. Every submission is a new row in ``scorecard_versions`` (the
table refuses updates and deletes); what others see is each interviewer's latest version.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from common.clock import now_iso
from scoring.problems import Problems
from scoring.rubrics import LEVELS, Dimension, Rubric
from workspaces.recording.events import last_seq

RECOMMENDATION_LABELS = {"strong_no": "Strong no", "no": "No", "yes": "Yes",
                         "strong_yes": "Strong yes"}
"""The recommendations (stored and sent by id) as people read them."""
RECOMMENDATIONS = tuple(RECOMMENDATION_LABELS)
MAX_EVIDENCE = 5000
MAX_SUMMARY = 10_000
MAX_MOMENTS = 50
MAX_MOMENT = 2**62
"""Larger event numbers cannot exist (and would not fit an SQLite integer)."""


class ScorecardError(Problems):
    """An invalid scorecard; ``problems`` lists every one of them."""

    verdict = "The scorecard is not valid"


class ScorecardIncomplete(ScorecardError):
    """A submission without everything a submitted scorecard needs."""

    verdict = "The scorecard is not complete"


@dataclass(frozen=True)
class Score:
    level: int | None
    evidence: str
    moments: tuple[int, ...]


@dataclass(frozen=True)
class Card:
    scores: dict[str, Score]
    recommendation: str | None
    summary: str

    def body(self) -> dict[str, Any]:
        return {"scores": {k: {"level": s.level, "evidence": s.evidence,
                               "moments": list(s.moments)} for k, s in self.scores.items()},
                "recommendation": self.recommendation, "summary": self.summary}

    def missing_for_submit(self, rubric: Rubric) -> list[str]:
        """What a submission still needs, in the words of the rubric (dimension titles, the
        recommendation's labels), each a phrase that follows "to submit, "."""
        both, no_level, no_evidence = [], [], []
        for dim in rubric.dimensions:
            score = self.scores.get(dim.id)
            level = score is not None and score.level is not None
            evidence = score is not None and bool(score.evidence.strip())
            if not level and not evidence:
                both.append(dim.title)
            elif not level:
                no_level.append(dim.title)
            elif not evidence:
                no_evidence.append(dim.title)
        problems = []
        if both:
            problems.append(f"give a level and evidence for: {', '.join(both)}")
        if no_level:
            problems.append(f"give a level (1 to 4) for: {', '.join(no_level)}")
        if no_evidence:
            problems.append(f"write the evidence you saw for: {', '.join(no_evidence)}")
        if self.recommendation is None:
            labels = list(RECOMMENDATION_LABELS.values())
            problems.append(f"choose a recommendation ({', '.join(labels[:-1])} or "
                            f"{labels[-1]})")
        if not self.summary.strip():
            problems.append("write a short summary")
        return problems

    def levels(self) -> dict[str, int]:
        return {k: s.level for k, s in self.scores.items() if s.level is not None}


EMPTY = Card({}, None, "")


def _score(problems: list[str], dim: Dimension, raw: Any) -> Score:
    def where(field: str = "") -> str:  # the title for people, the path for API clients
        return f"{dim.title} (scores.{dim.id}{field})"

    if not isinstance(raw, dict):
        problems.append(f"{where()}: must be an object with level, evidence and moments")
        return Score(None, "", ())
    unknown = sorted(set(raw) - {"level", "evidence", "moments"})
    if unknown:
        problems.append(f"{where()}: unknown key(s) {', '.join(k[:40] for k in unknown)}")
    level = raw.get("level")
    if level is not None and (isinstance(level, bool) or not isinstance(level, int)):
        problems.append(f"{where('.level')}: must be a whole number from 1 to 4 (or null)")
        level = None
    elif level is not None and level not in LEVELS:
        problems.append(f"{where('.level')}: {str(level)[:20]} is out of range; levels are 1 to 4")
        level = None
    evidence = raw.get("evidence", "")
    if not isinstance(evidence, str):
        problems.append(f"{where('.evidence')}: must be text")
        evidence = ""
    elif len(evidence) > MAX_EVIDENCE:
        problems.append(f"{where('.evidence')}: too long (at most {MAX_EVIDENCE} characters)")
    moments = raw.get("moments", [])
    if not isinstance(moments, list) or len(moments) > MAX_MOMENTS or not all(
            isinstance(m, int) and not isinstance(m, bool) and 1 <= m <= MAX_MOMENT
            for m in moments):
        problems.append(f"{where('.moments')}: must be a list of at most {MAX_MOMENTS} event "
                        "numbers (positive whole numbers)")
        moments = []
    return Score(level, evidence, tuple(dict.fromkeys(moments)))


def parse_card(data: Any, rubric: Rubric) -> Card:
    """Validate a body against the rubric's dimensions (``ScorecardError`` lists problems)."""
    if not isinstance(data, dict):
        raise ScorecardError(["the scorecard must be a JSON object"])
    problems: list[str] = []
    unknown = sorted(set(data) - {"scores", "recommendation", "summary"})
    if unknown:
        problems.append(f"unknown field(s): {', '.join(k[:40] for k in unknown)}")
    raw_scores = data.get("scores", {})
    scores: dict[str, Score] = {}
    if not isinstance(raw_scores, dict):
        problems.append("scores: must be an object keyed by dimension id")
    else:
        known = {d.id: d for d in rubric.dimensions}
        for dim_id, raw in raw_scores.items():
            if dim_id not in known:
                problems.append(f"scores: {dim_id[:60]!r} is not a dimension of rubric "
                                f"{rubric.id!r} (its dimensions: {', '.join(sorted(known))})")
                continue
            scores[dim_id] = _score(problems, known[dim_id], raw)
    recommendation = data.get("recommendation")
    if recommendation is not None and recommendation not in RECOMMENDATIONS:
        problems.append("recommendation: must be one of " + ", ".join(
            f"{k} ({v})" for k, v in RECOMMENDATION_LABELS.items()))
        recommendation = None
    summary = data.get("summary", "")
    if not isinstance(summary, str):
        problems.append("summary: must be text")
        summary = ""
    elif len(summary) > MAX_SUMMARY:
        problems.append(f"summary: too long (at most {MAX_SUMMARY} characters)")
    if problems:
        raise ScorecardError(problems)
    ordered = {d.id: scores[d.id] for d in rubric.dimensions if d.id in scores}
    return Card(ordered, recommendation, summary)


def check_moments(db: sqlite_utils.Database, session_id: str, card: Card,
                  rubric: Rubric) -> None:
    """Every moment must be an event of this session (not of another one, not beyond its
    end); each problem names the question it was given for."""
    wanted = sorted({m for s in card.scores.values() for m in s.moments})
    if not wanted:
        return
    marks = ", ".join("?" for _ in wanted)
    found = {r[0] for r in db.execute(
        f"SELECT seq FROM events WHERE session_id = ? AND seq IN ({marks})",  # noqa: S608
        [session_id, *wanted]).fetchall()}
    if found == set(wanted):
        return
    last = last_seq(db, session_id)
    extent = (f"its events are numbered 1 to {last}" if last else
              "it has no events yet")
    titles = {d.id: d.title for d in rubric.dimensions}
    problems = []
    for dim_id, score in card.scores.items():
        missing = [m for m in score.moments if m not in found]
        if missing:
            one = len(missing) == 1
            problems.append(
                f"{titles.get(dim_id, dim_id)} (scores.{dim_id}.moments): "
                f"{'moment' if one else 'moments'} {', '.join(map(str, missing[:10]))}"
                f"{' …' if len(missing) > 10 else ''} "
                f"{'is not an event' if one else 'are not events'} of this session ({extent})")
    raise ScorecardError(problems)


def card_from_json(text: str) -> Card:
    data = json.loads(text)
    return Card(
        {k: Score(v.get("level"), v.get("evidence", ""), tuple(v.get("moments", [])))
         for k, v in data.get("scores", {}).items()},
        data.get("recommendation"), data.get("summary", ""))


# ---- storage ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Draft:
    card: Card
    version: int
    updated_at: str | None
    submitted_at: str | None

    @property
    def submitted(self) -> bool:
        return self.version > 0


def get_draft(db: sqlite_utils.Database, session_id: str, user_id: int) -> Draft:
    rows = db.execute_returning_dicts(
        "SELECT * FROM scorecards WHERE session_id = ? AND user_id = ?", [session_id, user_id])
    if not rows:
        return Draft(EMPTY, 0, None, None)
    r = rows[0]
    return Draft(card_from_json(r["body"]), r["version"], r["updated_at"], r["submitted_at"])


def save_draft(db: sqlite_utils.Database, session_id: str, user_id: int, card: Card) -> Draft:
    db.execute(
        "INSERT INTO scorecards (session_id, user_id, body, updated_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (session_id, user_id) DO UPDATE SET body = excluded.body,"
        " updated_at = excluded.updated_at",
        [session_id, user_id, json.dumps(card.body()), now_iso()])
    return get_draft(db, session_id, user_id)


@dataclass(frozen=True)
class Submitted:
    session_id: str
    user_id: int
    email: str
    name: str
    version: int
    rubric_id: str
    rubric_version: int
    card: Card
    weighted_score: float
    submitted_at: str

    def public(self) -> dict[str, Any]:
        return {"interviewer": {"id": self.user_id, "email": self.email, "name": self.name},
                "version": self.version, "rubric_id": self.rubric_id,
                "rubric_version": self.rubric_version, "weighted_score": self.weighted_score,
                "submitted_at": self.submitted_at, **self.card.body()}


def submit(db: sqlite_utils.Database, session_id: str, user_id: int, card: Card,
           rubric: Rubric) -> Submitted:
    """Store ``card`` as the caller's draft and as their next submitted version."""
    problems = card.missing_for_submit(rubric)
    if problems:
        raise ScorecardIncomplete(problems)
    draft = save_draft(db, session_id, user_id, card)
    version = draft.version + 1
    now = now_iso()
    db.execute(
        "INSERT INTO scorecard_versions (session_id, user_id, version, rubric_id,"
        " rubric_version, body, weighted_score, recommendation, submitted_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [session_id, user_id, version, rubric.id, rubric.version, json.dumps(card.body()),
         rubric.weighted(card.levels()), card.recommendation, now])
    db.execute("UPDATE scorecards SET version = ?, submitted_at = ? WHERE session_id = ?"
               " AND user_id = ?", [version, now, session_id, user_id])
    found = [s for s in submitted_cards(db, session_id) if s.user_id == user_id]
    return found[0]


def submitted_cards(db: sqlite_utils.Database, session_id: str) -> list[Submitted]:
    """Each interviewer's latest submitted version, by name."""
    rows = db.execute_returning_dicts(
        "SELECT v.*, u.email, u.display_name FROM current_scorecards v"
        " JOIN users u ON u.id = v.user_id WHERE v.session_id = ?"
        " ORDER BY u.display_name, u.id", [session_id])
    return [Submitted(r["session_id"], r["user_id"], r["email"], r["display_name"],
                      r["version"], r["rubric_id"], r["rubric_version"],
                      card_from_json(r["body"]), r["weighted_score"], r["submitted_at"])
            for r in rows]


def submitted_by(db: sqlite_utils.Database, session_id: str) -> set[int]:
    return {r[0] for r in db.execute(
        "SELECT DISTINCT user_id FROM scorecard_versions WHERE session_id = ?",
        [session_id]).fetchall()}


def sealed_sessions(db: sqlite_utils.Database, user_id: int) -> frozenset[str]:
    """Sessions whose scorecards are sealed for ``user_id``: they are on the panel and have
    not submitted their own. Reports that pool scorecards leave these sessions out."""
    return frozenset(r[0] for r in db.execute(
        "SELECT si.session_id FROM session_interviewers si WHERE si.user_id = ? AND NOT EXISTS"
        " (SELECT 1 FROM scorecard_versions v WHERE v.session_id = si.session_id"
        " AND v.user_id = si.user_id)", [user_id]).fetchall())


def has_submitted(db: sqlite_utils.Database, session_id: str, user_id: int) -> bool:
    return db.execute("SELECT 1 FROM scorecard_versions WHERE session_id = ? AND user_id = ?",
                      [session_id, user_id]).fetchone() is not None
