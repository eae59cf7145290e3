"""The counts a revision's review page opens with: one line per section of the page.

Web-free: it reads a revision's report (``report.json``), its diff (``diff.json``), its
post-scan findings with the admin's acceptances, and what still blocks publishing, and says in
numbers what each long section below holds, so an admin sees at a glance where to look.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

CHANGED = frozenset({"changed", "renamed and changed", "changed (binary)"})


@dataclass(frozen=True)
class CheckLine:
    name: str
    result: str  # "passed", "failed", "timed out" or "not run"


@dataclass(frozen=True)
class ReviewSummary:
    blocking: tuple[str, ...]
    findings_accepted: int
    findings_left: int
    postscan_clean: bool
    flagged: int
    flags_acknowledged_by: str | None
    identifiers: int | None  # None: not looked for in this import
    kept: int
    kept_stopping_rewrite: int
    replacements: int
    replaced_files: int
    files: int
    files_changed: int
    files_renamed: int
    files_dropped: int
    checks: tuple[CheckLine, ...]

    @property
    def publishable(self) -> bool:
        return not self.blocking


def check_result(check: Mapping[str, Any] | None) -> str:
    if not check:
        return "not run"
    if check.get("passed"):
        return "passed"
    return "timed out" if check.get("timed_out") else "failed"


def summarise(report: Mapping[str, Any], diff: Sequence[Mapping[str, Any]],
              finding_ids: Sequence[str], accepted: Collection[str],
              blocking: Sequence[str], flags_acknowledged_by: str | None) -> ReviewSummary:
    anonymisation = report.get("anonymisation", {})
    ids = report.get("possible_identifiers")
    replacements = anonymisation.get("replacements", [])
    kept = anonymisation.get("kept", [])
    left = sum(1 for f in finding_ids if f not in accepted)
    return ReviewSummary(
        blocking=tuple(blocking),
        findings_accepted=len(finding_ids) - left,
        findings_left=left,
        postscan_clean=bool(report.get("post_scan", {}).get("clean")),
        flagged=len(anonymisation.get("flags", [])),
        flags_acknowledged_by=flags_acknowledged_by,
        identifiers=(len(ids.get("hints", [])) + int(ids.get("left_off") or 0)) if ids else None,
        kept=len(kept),
        kept_stopping_rewrite=sum(1 for k in kept if k.get("stops_rewrite")),
        replacements=len(replacements),
        replaced_files=len({r.get("file") for r in replacements}),
        files=len(diff),
        files_changed=sum(1 for f in diff if f.get("status") in CHANGED),
        files_renamed=sum(1 for f in diff if str(f.get("status", "")).startswith("renamed")),
        files_dropped=sum(1 for f in diff if f.get("status") in ("dropped", "left out")),
        checks=tuple(CheckLine(name, check_result(c))
                     for name, c in report.get("checks", {}).items()),
    )
