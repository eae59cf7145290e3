"""Rubric validation (every problem reported at once), the built-ins, and versioned storage
in a real SQLite file."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from scoring import rubrics as R
from server.db import open_migrated
from tasks.manifest import KINDS, ROLES

ANCHORS = {str(n): f"level {n}: what the interviewer saw" for n in (1, 2, 3, 4)}


def definition(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "team-core", "title": "Team core", "description": "ours",
        "kinds": ["pipeline-bug"], "roles": ["ml-engineer"],
        "dimensions": [
            {"id": "debugging", "title": "Debugging", "weight": 60, "anchors": dict(ANCHORS)},
            {"id": "communication", "title": "Communication", "weight": 40,
             "anchors": dict(ANCHORS)},
        ],
    }
    data.update(overrides)
    return data


def test_a_valid_rubric_and_its_weighted_score() -> None:
    rubric = R.validate_rubric(definition())
    assert [d.id for d in rubric.dimensions] == ["debugging", "communication"]
    assert rubric.dimensions[0].anchors[4].startswith("level 4")
    # by hand: (4 * 60 + 1 * 40) / 100 = 2.8
    assert rubric.weighted({"debugging": 4, "communication": 1}) == 2.8


def test_every_problem_is_reported_at_once() -> None:
    data = definition(kinds=["poetry"], roles=[])
    data["dimensions"][0]["anchors"].pop("3")
    data["dimensions"][0]["anchors"]["5"] = "too high a level"
    data["dimensions"][1]["weight"] = 30
    data["dimensions"][1]["anchors"]["2"] = "meh"
    with pytest.raises(R.RubricError) as caught:
        R.validate_rubric(data)
    problems = caught.value.problems
    assert "kinds: poetry not one of: pipeline-bug, eval-script, serving-feature" in problems
    assert any(p.startswith("roles: must be a non-empty list") for p in problems)
    assert "dimension 'debugging'.anchors.3: missing" in problems
    assert "dimension 'debugging'.anchors: levels are 1-4, not 5" in problems
    assert ("dimension 'communication'.anchors.2: too short (at least 10 characters)"
            in problems)
    assert "weights: add up to 90, they must add up to 100" in problems


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.update(dimensions=[]), "dimensions: must be a non-empty list"),
    (lambda d: d["dimensions"][1].update(id="debugging"), "'debugging' is used twice"),
    (lambda d: d["dimensions"][0].update(weight=True), "weight: must be a whole number"),
    (lambda d: d["dimensions"][0].pop("anchors"), "anchors: missing (one behavioural anchor"),
    (lambda d: d.update(id="Bad Id!"), "id: must be 2-63 lowercase letters"),
    (lambda d: d.update(colour="red"), "unknown key(s): colour"),
])
def test_single_problems(change: Any, message: str) -> None:
    data = copy.deepcopy(definition())
    change(data)
    with pytest.raises(R.RubricError, match=message.replace("(", r"\(").replace(")", r"\)")):
        R.validate_rubric(data)


def test_built_ins_cover_every_kind_and_role() -> None:
    built = R.builtin_rubrics()
    assert {k for r in built for k in r.kinds} == set(KINDS)
    assert all(set(r.roles) == set(ROLES) for r in built)
    for rubric in built:
        assert sum(d.weight for d in rubric.dimensions) == 100
        assert all(len(d.anchors[level]) > 40 for d in rubric.dimensions for level in R.LEVELS)
    dims = {d.id for r in built for d in r.dimensions}
    assert dims == {"navigating-code", "questions", "debugging", "data-quality", "trade-offs",
                    "production-mindset", "working-solution", "communication"}


def test_versions_are_immutable_and_tasks_get_their_rubric(tmp_path: Path) -> None:
    db = open_migrated(tmp_path / "p.db")
    try:
        with db.atomic():
            R.install_builtins(db)
            R.install_builtins(db)  # idempotent
        assert [r.id for r in R.list_rubrics(db)] == sorted(
            ["pipeline-bug", "eval-script", "serving-feature"])
        assert R.rubric_for_task(db, "any-task", "serving-feature").id == "serving-feature"
        with db.atomic():
            first = R.save_version(db, definition(), None, expect_new=True)
        assert first.version == 1
        with pytest.raises(R.RubricError, match="exists already"):
            R.save_version(db, definition(), None, expect_new=True)
        with pytest.raises(R.RubricNotFound):
            R.save_version(db, definition(id="nope-nope"), None, expect_new=False)
        edited = definition(title="Team core, sharper")
        with db.atomic():
            second = R.save_version(db, edited, None, expect_new=False)
        assert second.version == 2 and second.title == "Team core, sharper"
        assert R.get_rubric(db, "team-core", 1).title == "Team core"
        with pytest.raises(Exception, match="immutable"):
            db.execute("UPDATE rubrics SET title = 'x' WHERE id = 'team-core'")
        with db.atomic():
            R.attach(db, "my-task", "team-core", None)
        assert R.rubric_for_task(db, "my-task", "pipeline-bug").version == 2
        # an admin's edit of a built-in is what the kind's tasks get from then on
        builtin = R.get_rubric(db, "eval-script").definition()
        builtin["title"] = "Model evaluation (ours)"
        with db.atomic():
            R.save_version(db, builtin, None, expect_new=False)
        assert R.rubric_for_task(db, "t", "eval-script").title == "Model evaluation (ours)"
    finally:
        db.conn.close()
