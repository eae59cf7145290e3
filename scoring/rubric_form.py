"""The rubric editor's form: a definition from the fields an admin typed, and the validation
problems of ``scoring.rubrics`` put back next to the field they are about, as sentences that
name the dimension by its title.

Validation itself stays in ``scoring.rubrics.validate_rubric`` (the JSON API's); this module
only translates between form fields and a definition. Its problems are ``"<where>: <reason>"``
strings; ``place`` reads the ``<where>`` part back (written by hand: no library knows this
format, and it is ours).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from scoring.rubrics import ID_RE, LEVELS, Rubric

FIELDS = ("id", "title", "description", "weight", *(f"anchor_{n}" for n in LEVELS))
"""Per dimension, the form sends each of these once (``dim_<name>``), in dimension order."""
MAX_FORM_DIMENSIONS = 50
DIM_PROBLEM = re.compile(
    r"^dimension '(?P<id>[^']*)'\.(?P<field>title|description|weight|anchors)"
    r"(?:\.(?P<level>[1-4]))?: (?P<reason>.*)$", re.S)
INDEX_PROBLEM = re.compile(r"^dimensions\[(?P<n>\d+)\](?:\.id)?: (?P<reason>.*)$", re.S)
TOP_PROBLEM = re.compile(
    r"^(?P<field>id|title|description|kinds|roles|weights): (?P<reason>.*)$", re.S)
LABELS = {"title": "The title", "description": "The description", "weight": "The weight",
          "anchors": "The anchors", "id": "The dimension"}


@dataclass
class DimensionDraft:
    """One dimension as typed (text, not yet validated)."""

    id: str = ""
    title: str = ""
    description: str = ""
    weight: str = ""
    anchors: dict[int, str] = field(default_factory=lambda: {n: "" for n in LEVELS})

    def blank(self) -> bool:
        return not (self.title.strip() or self.description.strip() or self.weight.strip()
                    or any(a.strip() for a in self.anchors.values()))


@dataclass
class RubricDraft:
    title: str
    description: str
    kinds: list[str]
    roles: list[str]
    dimensions: list[DimensionDraft]


@dataclass
class Placed:
    """Problems by field: ``top[name]`` (title, description, kinds, roles, weights),
    ``dims[(dimension index, field)]`` (field: title, description, weight, anchor_N, id)."""

    top: dict[str, list[str]] = field(default_factory=dict)
    dims: dict[tuple[int, str], list[str]] = field(default_factory=dict)
    other: list[str] = field(default_factory=list)

    def all(self) -> list[str]:
        return [*(p for ps in self.top.values() for p in ps),
                *(p for ps in self.dims.values() for p in ps), *self.other]


def draft_of(rubric: Rubric) -> RubricDraft:
    return RubricDraft(rubric.title, rubric.description, list(rubric.kinds), list(rubric.roles),
                       [DimensionDraft(d.id, d.title, d.description, str(d.weight),
                                       dict(d.anchors)) for d in rubric.dimensions])


def read_form(getall: Callable[[str], list[str]]) -> RubricDraft:
    """The draft a form submission describes; ``getall(name)`` gives every value of a field in
    the order sent. A dimension is the n-th value of each ``dim_<field>``."""
    def one(name: str) -> str:
        values = getall(name)
        return values[0] if values else ""

    columns = {name: getall(f"dim_{name}") for name in FIELDS}
    count = min(max((len(v) for v in columns.values()), default=0), MAX_FORM_DIMENSIONS)

    def cell(name: str, n: int) -> str:
        return columns[name][n] if n < len(columns[name]) else ""

    dims = [DimensionDraft(cell("id", n).strip(), cell("title", n), cell("description", n),
                           cell("weight", n),
                           {level: cell(f"anchor_{level}", n) for level in LEVELS})
            for n in range(count)]
    dims = [d for d in dims if d.id or not d.blank()]  # the empty "add a dimension" fields
    return RubricDraft(one("title"), one("description"), getall("kinds"), getall("roles"), dims)


def _slug(title: str, taken: set[str], what: str = "dimension") -> str:
    base = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:56] or what
    if not ID_RE.match(base):
        base = f"{what}-{base}"[:56].strip("-")
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    return candidate


def _weight(text: str) -> Any:
    text = text.strip()
    return int(text) if re.fullmatch(r"\d{1,4}", text) else (text or None)


def new_rubric_id(typed: str, title: str, taken: set[str]) -> str:
    """A new rubric's id: what the admin typed (validated later, as the JSON API's is), or one
    made from the title that no rubric in ``taken`` has."""
    return typed.strip() or _slug(title, taken, "rubric")


def definition(rubric_id: str, draft: RubricDraft) -> tuple[dict[str, Any], list[int]]:
    """``(definition for validate_rubric, the draft index of each of its dimensions)``. A new
    dimension (no id yet) gets one from its title."""
    taken = {d.id for d in draft.dimensions if d.id}
    dims: list[dict[str, Any]] = []
    where: list[int] = []
    for n, d in enumerate(draft.dimensions):
        dim_id = d.id
        if not dim_id:  # the draft keeps no id, so a retitled new dimension is slugged anew
            dim_id = _slug(d.title, taken)
            taken.add(dim_id)
        dims.append({"id": dim_id, "title": d.title, "description": d.description,
                     "weight": _weight(d.weight),
                     "anchors": {str(level): text for level, text in d.anchors.items()}})
        where.append(n)
    return ({"id": rubric_id, "title": draft.title, "description": draft.description,
             "kinds": draft.kinds, "roles": draft.roles, "dimensions": dims}, where)


def _name(draft: RubricDraft, n: int) -> str:
    title = draft.dimensions[n].title.strip()
    return f"“{title[:80]}”" if title else f"dimension {n + 1} (no title yet)"


def place(draft: RubricDraft, data: dict[str, Any], where: list[int],
          problems: list[str]) -> Placed:
    """Each problem as a sentence, by the field it is about (see ``Placed``); ``data`` and
    ``where`` are what ``definition`` made of ``draft``."""
    placed = Placed()
    by_id = {dim["id"]: n for dim, n in zip(data["dimensions"], where, strict=True)}
    for problem in problems:
        if m := DIM_PROBLEM.match(problem):
            n = by_id.get(m["id"])
            if n is None:
                placed.other.append(problem)
                continue
            name, reason = m["field"], m["reason"]
            if m["level"]:
                key, label = f"anchor_{m['level']}", f"The anchor for level {m['level']}"
            else:
                key, label = name, LABELS[name]
            if name == "anchors" and not m["level"]:
                key = "anchor_1"
            placed.dims.setdefault((n, key), []).append(
                f"{label} of {_name(draft, n)}: {reason}.")
        elif m := INDEX_PROBLEM.match(problem):
            k = int(m["n"])
            n = where[k] if k < len(where) else -1
            if n < 0:
                placed.other.append(problem)
                continue
            placed.dims.setdefault((n, "title"), []).append(
                f"{_name(draft, n)} cannot be saved: {m['reason']}.")
        elif m := TOP_PROBLEM.match(problem):
            label = {"weights": "The weights", "kinds": "The task kinds", "id": "The id",
                     "roles": "The roles"}.get(m["field"], LABELS.get(m["field"], m["field"]))
            placed.top.setdefault(m["field"], []).append(f"{label}: {m['reason']}.")
        elif problem == "dimensions: must be a non-empty list":
            placed.top.setdefault("weights", []).append("Give the rubric at least one"
                                                        " dimension.")
        else:
            placed.other.append(problem)
    return placed
