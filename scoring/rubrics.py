"""Behaviourally anchored rubrics: the model, validation, built-ins and versioned storage.

A rubric is a set of dimensions, each with a 1-4 scale whose every level has an anchor (what
the interviewer saw), a weight (weights add up to 100), and the task kinds and roles it
applies to. Every edit stores a new immutable version; sessions keep the version they were
pinned to (``scoring.session_rubric``).
"""

from __future__ import annotations

import functools
import json
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Any

import sqlite_utils

from common.clock import now_iso
from common.errors import NotFound
from scoring.problems import Problems
from tasks.manifest import KINDS, ROLES

LEVELS = (1, 2, 3, 4)
TOTAL_WEIGHT = 100
MAX_DIMENSIONS = 20
ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
MIN_ANCHOR_CHARS = 10
MAX_TEXT = 2000


class RubricError(Problems):
    """A rubric definition with problems; ``problems`` lists every one of them."""

    verdict = "The rubric is not valid"


class RubricNotFound(NotFound):
    """404: no such rubric (or version), or none fits a task."""


@dataclass(frozen=True)
class Dimension:
    id: str
    title: str
    description: str
    weight: int
    anchors: dict[int, str]

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "description": self.description,
                "weight": self.weight, "anchors": {str(k): v for k, v in self.anchors.items()}}


@dataclass(frozen=True)
class Rubric:
    id: str
    version: int
    title: str
    description: str
    kinds: tuple[str, ...]
    roles: tuple[str, ...]
    dimensions: tuple[Dimension, ...]
    builtin: bool = False

    def dimension(self, dimension_id: str) -> Dimension | None:
        return next((d for d in self.dimensions if d.id == dimension_id), None)

    def definition(self) -> dict[str, Any]:
        """The editable part, in the shape ``validate_rubric`` accepts."""
        return {"id": self.id, "title": self.title, "description": self.description,
                "kinds": list(self.kinds), "roles": list(self.roles),
                "dimensions": [d.public() for d in self.dimensions]}

    def public(self) -> dict[str, Any]:
        return {**self.definition(), "version": self.version, "builtin": self.builtin}

    def weighted(self, levels: dict[str, int]) -> float:
        """The weighted score (1.0-4.0) of a level per dimension (all dimensions present)."""
        return round(sum(levels[d.id] * d.weight for d in self.dimensions) / TOTAL_WEIGHT, 3)


def _text(problems: list[str], where: str, value: Any, *, required: bool = True,
          min_chars: int = 1) -> str:
    if value is None or value == "":
        if required:
            problems.append(f"{where}: missing")
        return ""
    if not isinstance(value, str):
        problems.append(f"{where}: must be text")
        return ""
    value = value.strip()
    if len(value) < min_chars:
        problems.append(f"{where}: too short (at least {min_chars} characters)")
    if len(value) > MAX_TEXT:
        problems.append(f"{where}: too long (at most {MAX_TEXT} characters)")
    return str(value)


def _choices(problems: list[str], where: str, value: Any, allowed: tuple[str, ...]) -> tuple[
        str, ...]:
    if not isinstance(value, list) or not value:
        problems.append(f"{where}: must be a non-empty list of: {', '.join(allowed)}")
        return ()
    bad = [str(v)[:40] for v in value if v not in allowed]
    if bad:
        problems.append(f"{where}: {', '.join(bad)} not one of: {', '.join(allowed)}")
    return tuple(v for v in value if v in allowed)


def _dimension(problems: list[str], n: int, raw: Any, seen: set[str]) -> Dimension | None:
    where = f"dimensions[{n}]"
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be an object")
        return None
    unknown = sorted(set(raw) - {"id", "title", "description", "weight", "anchors"})
    if unknown:
        problems.append(f"{where}: unknown key(s) {', '.join(k[:40] for k in unknown)}")
    dim_id = raw.get("id")
    if not isinstance(dim_id, str) or not ID_RE.match(dim_id):
        problems.append(f"{where}.id: must be 2-63 lowercase letters, digits or '-'")
        dim_id = f"#{n}"
    elif dim_id in seen:
        problems.append(f"{where}.id: {dim_id!r} is used twice")
    seen.add(dim_id)
    where = f"dimension {dim_id!r}"
    title = _text(problems, f"{where}.title", raw.get("title"))
    description = _text(problems, f"{where}.description", raw.get("description"),
                        required=False)
    weight = raw.get("weight")
    if isinstance(weight, bool) or not isinstance(weight, int) or not 1 <= weight <= 100:
        problems.append(f"{where}.weight: must be a whole number from 1 to 100")
        weight = 0
    anchors_raw = raw.get("anchors")
    anchors: dict[int, str] = {}
    if not isinstance(anchors_raw, dict):
        problems.append(f"{where}.anchors: missing (one behavioural anchor per level 1-4)")
    else:
        extra = sorted(str(k)[:10] for k in anchors_raw if str(k) not in {"1", "2", "3", "4"})
        if extra:
            problems.append(f"{where}.anchors: levels are 1-4, not {', '.join(extra)}")
        for level in LEVELS:
            anchors[level] = _text(problems, f"{where}.anchors.{level}",
                                   anchors_raw.get(str(level), anchors_raw.get(level)),
                                   min_chars=MIN_ANCHOR_CHARS)
    return Dimension(dim_id, title, description, weight, anchors)


def validate_rubric(data: Any, *, version: int = 0, builtin: bool = False) -> Rubric:
    """A ``Rubric`` from a definition, or ``RubricError`` listing every problem at once."""
    if not isinstance(data, dict):
        raise RubricError(["the rubric must be an object"])
    problems: list[str] = []
    unknown = sorted(set(data) - {"id", "title", "description", "kinds", "roles", "dimensions",
                                  "version", "builtin"})
    if unknown:
        problems.append(f"unknown key(s): {', '.join(k[:40] for k in unknown)}")
    rubric_id = data.get("id")
    if not isinstance(rubric_id, str) or not ID_RE.match(rubric_id):
        problems.append("id: must be 2-63 lowercase letters, digits or '-'")
        rubric_id = ""
    title = _text(problems, "title", data.get("title"))
    description = _text(problems, "description", data.get("description"), required=False)
    kinds = _choices(problems, "kinds", data.get("kinds"), KINDS)
    roles = _choices(problems, "roles", data.get("roles"), ROLES)
    raw_dims = data.get("dimensions")
    dims: list[Dimension] = []
    if not isinstance(raw_dims, list) or not raw_dims:
        problems.append("dimensions: must be a non-empty list")
    elif len(raw_dims) > MAX_DIMENSIONS:
        problems.append(f"dimensions: at most {MAX_DIMENSIONS}")
    else:
        seen: set[str] = set()
        dims = [d for n, raw in enumerate(raw_dims)
                if (d := _dimension(problems, n, raw, seen)) is not None]
        total = sum(d.weight for d in dims)
        if all(d.weight for d in dims) and total != TOTAL_WEIGHT:
            problems.append(f"weights: add up to {total}, they must add up to {TOTAL_WEIGHT}")
    if problems:
        raise RubricError(problems)
    return Rubric(rubric_id, version, title, description, kinds, roles, tuple(dims), builtin)


@functools.cache
def builtin_rubrics() -> tuple[Rubric, ...]:
    """The built-in rubrics (scoring/builtin_rubrics.toml), validated like any other; read
    once per process (scheduling asks for them)."""
    text = resources.files("scoring").joinpath("builtin_rubrics.toml").read_text("utf-8")
    data = tomllib.loads(text)
    shared = data["dimensions"]
    found = []
    for rubric_id, spec in data["rubrics"].items():
        dims = [{"id": dim_id, **shared[dim_id], "weight": weight}
                for dim_id, weight in spec["weights"].items()]
        found.append(validate_rubric({
            "id": rubric_id, "title": spec["title"], "description": spec["description"],
            "kinds": spec["kinds"], "roles": spec["roles"], "dimensions": dims,
        }, version=1, builtin=True))
    return tuple(found)


# ---- storage ---------------------------------------------------------------------------


def _from_row(row: dict[str, Any]) -> Rubric:
    return validate_rubric(json.loads(row["definition"]), version=row["version"],
                           builtin=bool(row["builtin"]))


def install_builtins(db: sqlite_utils.Database) -> None:
    """Store version 1 of each built-in rubric that is not stored yet (idempotent)."""
    for rubric in builtin_rubrics():
        if not db.execute("SELECT 1 FROM rubrics WHERE id = ?", [rubric.id]).fetchone():
            db.execute(
                "INSERT INTO rubrics (id, version, title, definition, builtin, created_at)"
                " VALUES (?, 1, ?, ?, 1, ?)",
                [rubric.id, rubric.title, json.dumps(rubric.definition()), now_iso()])


def save_version(db: sqlite_utils.Database, data: Any, user_id: int | None, *,
                 expect_new: bool) -> Rubric:
    """Validate and store ``data`` as the next version of its rubric.

    ``expect_new``: creating (the id must be free) rather than editing (it must exist)."""
    rubric = validate_rubric(data)
    current = db.execute("SELECT MAX(version) FROM rubrics WHERE id = ?",
                         [rubric.id]).fetchone()[0]
    if expect_new and current is not None:
        raise RubricError([f"id: a rubric {rubric.id!r} exists already; edit it instead"])
    if not expect_new and current is None:
        raise RubricNotFound(f"There is no rubric {rubric.id!r}.")
    version = (current or 0) + 1
    db.execute(
        "INSERT INTO rubrics (id, version, title, definition, builtin, created_by, created_at)"
        " VALUES (?, ?, ?, ?, 0, ?, ?)",
        [rubric.id, version, rubric.title, json.dumps(rubric.definition()), user_id, now_iso()])
    return get_rubric(db, rubric.id, version)


def get_rubric(db: sqlite_utils.Database, rubric_id: str, version: int | None = None) -> Rubric:
    """A version of a rubric (the latest when ``version`` is None)."""
    if version is None:
        rows = db.execute_returning_dicts(
            "SELECT * FROM rubrics WHERE id = ? ORDER BY version DESC LIMIT 1", [rubric_id])
    else:
        rows = db.execute_returning_dicts(
            "SELECT * FROM rubrics WHERE id = ? AND version = ?", [rubric_id, version])
    if not rows:
        raise RubricNotFound(f"There is no rubric {rubric_id[:60]!r}"
                             + (f" version {version}" if version is not None else "") + ".")
    return _from_row(rows[0])


def list_rubrics(db: sqlite_utils.Database) -> list[Rubric]:
    """The latest version of every rubric, by id."""
    rows = db.execute_returning_dicts(
        "SELECT r.* FROM rubrics r JOIN (SELECT id, MAX(version) AS v FROM rubrics GROUP BY id)"
        " latest ON latest.id = r.id AND latest.v = r.version ORDER BY r.id")
    return [_from_row(r) for r in rows]


def versions(db: sqlite_utils.Database, rubric_id: str) -> list[dict[str, Any]]:
    return db.execute_returning_dicts(
        "SELECT r.version, r.created_at, u.email AS created_by FROM rubrics r"
        " LEFT JOIN users u ON u.id = r.created_by WHERE r.id = ? ORDER BY r.version",
        [rubric_id])


def attach(db: sqlite_utils.Database, task_id: str, rubric_id: str, user_id: int | None) -> None:
    """Score future sessions of ``task_id`` with ``rubric_id`` (its latest version)."""
    get_rubric(db, rubric_id)
    db.execute(
        "INSERT INTO task_rubrics (task_id, rubric_id, attached_by, attached_at)"
        " VALUES (?, ?, ?, ?) ON CONFLICT (task_id) DO UPDATE SET rubric_id = excluded.rubric_id,"
        " attached_by = excluded.attached_by, attached_at = excluded.attached_at",
        [task_id, rubric_id, user_id, now_iso()])


def rubric_for_task(db: sqlite_utils.Database, task_id: str, kind: str) -> Rubric:
    """The latest version of the rubric attached to the task, else the built-in for its kind."""
    row = db.execute("SELECT rubric_id FROM task_rubrics WHERE task_id = ?",
                     [task_id]).fetchone()
    if row:
        return get_rubric(db, row[0])
    install_builtins(db)
    for rubric in builtin_rubrics():
        if kind in rubric.kinds:
            return get_rubric(db, rubric.id)  # its latest version, admins' edits included
    raise RubricNotFound(
        f"No rubric is attached to task {task_id!r} and none fits kind {kind!r}.")
