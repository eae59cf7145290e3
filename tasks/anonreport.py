"""What anonymisation changed: the report an admin reviews before publishing a task revision.

Plain frozen dataclasses; :meth:`AnonReport.to_dict` gives JSON-ready data and
:meth:`AnonReport.to_json` bytes-stable text (sorted keys), so two runs over the same snapshot
produce identical reports. Secret values never enter a report: their ``before`` is masked.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Replacement:
    """One rewritten occurrence. ``file`` is the output path (``nb.ipynb#cell-3`` in notebooks)."""

    rule: str  # term, email, host, ip, url-credentials, secret:<kind>
    file: str
    line: int | None
    before: str  # masked for secrets and credentials
    after: str


@dataclass(frozen=True)
class DroppedPath:
    path: str  # ends with "/" when a whole folder was dropped
    reason: str
    files: int


@dataclass(frozen=True)
class RenamedPath:
    before: str
    after: str


@dataclass(frozen=True)
class Flag:
    """Something a person must look at: it blocks publishing until an admin acknowledges it."""

    path: str
    reason: str


@dataclass(frozen=True)
class Kept:
    """Deny-listed words left as they are, with how many times: a declared exception
    (``rule="keep"``, ``text`` the entry as declared, ``stops_rewrite`` when the rewriter would
    otherwise have rewritten part of it) or a third-party API name in Python
    (``rule="third-party-api"``, ``text`` the dotted name: ``numpy.square``)."""

    rule: str
    text: str
    count: int
    stops_rewrite: bool = False


@dataclass(frozen=True)
class AnonReport:
    replacements: tuple[Replacement, ...]
    dropped: tuple[DroppedPath, ...]
    renamed: tuple[RenamedPath, ...]
    flags: tuple[Flag, ...]
    counts: tuple[tuple[str, int], ...]
    fields: tuple[tuple[str, str], ...] = ()
    """The manifest texts given to ``anonymise_tree(fields=...)``, rewritten, by label (not in
    :meth:`to_dict`: their changes are in ``replacements`` under the same label)."""
    kept: tuple[Kept, ...] = ()
    """Every declared ``keep`` entry (count 0 when it matched nothing), then the kept API names."""

    def field(self, label: str) -> str:
        return dict(self.fields)[label]

    def count(self, name: str) -> int:
        return dict(self.counts).get(name, 0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "replacements": [asdict(r) for r in self.replacements],
            "dropped": [asdict(d) for d in self.dropped],
            "renamed": [asdict(r) for r in self.renamed],
            "flags": [asdict(f) for f in self.flags],
            "counts": dict(self.counts),
            "kept": [asdict(k) for k in self.kept],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True, ensure_ascii=False) + "\n"
