"""Post-scan findings an admin accepted, with a written reason, so a revision can be published.

A revision is immutable, and so is its report (``report.json`` in the store, which lists the
post-scan findings): an acceptance is a row beside it, in ``task_finding_acceptances``
(append-only: triggers refuse UPDATE and DELETE). A finding is named by :func:`finding_id`, a
digest of its path, line, kind and excerpt, so the same finding has the same id on the page, in
the API and in the CLI. Accepting by ``path`` accepts every finding of that file and of what is
decoded inside it (``bundle.zip`` and ``bundle.zip › inner/notes.txt``).

Only a revision in review takes acceptances; a revision all of whose findings are accepted is no
longer blocked by the post-scan (:func:`tasks.revisions.publish`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import sqlite_utils

from common.clock import now_iso
from tasks.errors import AcceptanceRefused, FindingNotFound, InvalidAcceptance
from tasks.unwrap import SEP

MAX_REASON = 2000
"""Characters of a reason, at most."""

SUMMARY_MARK = "… and "
"""How the post-scan's row for the findings of one kind past its cap in a file starts."""
INSIDE = SEP  # how tasks.unwrap labels a text decoded from inside a file


@dataclass(frozen=True)
class Acceptance:
    revision_id: str
    finding_id: str
    path: str
    line: int | None
    kind: str
    excerpt: str
    reason: str
    accepted_by: str
    accepted_at: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def finding_id(finding: Mapping[str, Any]) -> str:
    """A short, stable name for one post-scan finding (a dict of its report entry)."""
    key = json.dumps([finding.get("path"), finding.get("line"), finding.get("kind"),
                      finding.get("excerpt")], ensure_ascii=False)
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def report_findings(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The post-scan findings of a revision's report, each with its ``id``."""
    findings = report.get("post_scan", {}).get("findings", [])
    return [{**f, "id": finding_id(f)} for f in findings]


def list_acceptances(db: sqlite_utils.Database, rev_id: str) -> dict[str, Acceptance]:
    """The revision's acceptances by finding id."""
    rows = db.execute_returning_dicts(
        "SELECT * FROM task_finding_acceptances WHERE revision_id = ? ORDER BY accepted_at",
        [rev_id],
    )
    return {r["finding_id"]: Acceptance(**r) for r in rows}


def unaccepted(db: sqlite_utils.Database, rev_id: str,
               findings: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The findings no acceptance covers."""
    done = list_acceptances(db, rev_id)
    return [f for f in findings if finding_id(f) not in done]


def file_of(finding_path: str, real: Iterable[str] = ()) -> str:
    """The file a finding belongs to: its path up to the first part label, or the longest of
    ``real`` (files whose own names hold the separator, ``a.zip › notes.txt``) it starts with."""
    owners = [r for r in real if finding_path == r or finding_path.startswith(r + INSIDE)]
    return max(owners, key=len) if owners else finding_path.split(INSIDE)[0]


def _in_file(path: str, finding_path: str, real: Iterable[str]) -> bool:
    return file_of(finding_path, real) == path.rstrip("/") or finding_path == path


def accept(
    db: sqlite_utils.Database, rev_id: str, status: str, findings: Sequence[Mapping[str, Any]],
    reason: str, who: str, *, finding: str = "", path: str = "",
) -> list[Acceptance]:
    """Accept one finding (by id) or every finding of one file (by path) of revision ``rev_id``
    whose status is ``status`` and whose report lists ``findings``; call inside the writer's
    transaction. Returns the new acceptances (a finding accepted before is not accepted again)."""
    reason = reason.strip()
    if status != "review":
        raise AcceptanceRefused(
            f"{rev_id} is already {status}: its findings can no longer be accepted")
    if not reason:
        raise InvalidAcceptance("Write why this may be published: the reason is empty.")
    if len(reason) > MAX_REASON:
        raise InvalidAcceptance(
            f"The reason is {len(reason)} characters long; keep it to {MAX_REASON}.")
    if bool(finding) == bool(path):
        raise InvalidAcceptance("Name one finding (its id) or one file (its path), not both.")
    if finding:
        chosen = [f for f in findings if finding_id(f) == finding]
        if not chosen:
            raise FindingNotFound(f"{rev_id} has no post-scan finding {finding[:40]!r}")
        if str(chosen[0].get("excerpt", "")).startswith(SUMMARY_MARK):
            raise InvalidAcceptance(
                "That row stands for findings that are not listed one by one: accept every "
                f"finding of {chosen[0].get('path')!r} at once (by its path), or drop the file.")
    else:
        real = {str(f.get("path", "")) for f in findings if f.get("kind") == "confusing-name"}
        chosen = [f for f in findings if _in_file(path, str(f.get("path", "")), real)]
        if not chosen:
            raise FindingNotFound(f"{rev_id} has no post-scan finding in {path[:200]!r}")
    done = list_acceptances(db, rev_id)
    new = [f for f in chosen if finding_id(f) not in done]
    if not new:
        what = "this finding is" if finding else f"every finding in {path[:200]!r} is"
        raise AcceptanceRefused(f"{what} already accepted")
    at = now_iso()
    out = []
    for f in new:
        acc = Acceptance(rev_id, finding_id(f), str(f.get("path", "")), f.get("line"),
                         str(f.get("kind", "")), str(f.get("excerpt", "")), reason, who, at)
        db.execute(
            "INSERT INTO task_finding_acceptances (revision_id, finding_id, path, line, kind,"
            " excerpt, reason, accepted_by, accepted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [acc.revision_id, acc.finding_id, acc.path, acc.line, acc.kind, acc.excerpt,
             acc.reason, acc.accepted_by, acc.accepted_at],
        )
        out.append(acc)
    return out
