"""The side-by-side review diff: original snapshot vs anonymised tree, secrets masked.

Built once at import time and stored beside the revision, so the original snapshot itself is
not kept. On the original side, every line of a changed block whose anonymised counterpart holds
a secret placeholder (or which carries URL credentials) is masked; so is every line, on either
side, holding a secret value found anywhere in the original snapshot (a notebook output that the
anonymiser removed rather than rewrote may print one). Dropped files show no content.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

from tasks.anonreport import AnonReport
from tasks.secretscan import find_secrets

MAX_FILE_BYTES = 512 * 1024
MASK = "[secret masked]"
_CREDENTIALS = re.compile(r"://[^/\s:@]+:[^/\s@]+@")
_PLACEHOLDER = "REDACTED_"


def _text(path: Path) -> list[str] | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if len(data) > MAX_FILE_BYTES or b"\0" in data:
        return None
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        return None


def _secret_values(original: Path) -> frozenset[str]:
    """Every secret value (each line of a multi-line one) in the original snapshot's text."""
    values: set[str] = set()
    for path in sorted(p for p in original.rglob("*") if p.is_file() and not p.is_symlink()):
        lines = _text(path)
        if lines is None:
            continue
        for hit in find_secrets("\n".join(lines), path.relative_to(original).as_posix()):
            values.update(part.strip() for part in hit.value.splitlines() if part.strip())
    return frozenset(values)


def _rows(
    before: list[str], after: list[str], secrets: frozenset[str] = frozenset()
) -> list[list[Any]]:
    """Rows of [left_no, left_text, right_no, right_text, tag] for changed regions (+context)."""

    def holds_secret(line: str | None) -> bool:
        return line is not None and any(value in line for value in secrets)

    rows: list[list[Any]] = []
    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    for group in matcher.get_grouped_opcodes(2):
        if rows:
            rows.append([None, "…", None, "…", "gap"])
        for tag, i1, i2, j1, j2 in group:
            right_block = after[j1:j2]
            secret_block = any(_PLACEHOLDER in line for line in right_block)
            for k in range(max(i2 - i1, j2 - j1)):
                left = before[i1 + k] if i1 + k < i2 else None
                right = after[j1 + k] if j1 + k < j2 else None
                if left is not None and tag != "equal" and (
                    secret_block or _CREDENTIALS.search(left)
                ):
                    left = MASK
                left = MASK if holds_secret(left) else left
                right = MASK if holds_secret(right) else right
                rows.append([
                    i1 + k + 1 if left is not None else None,
                    left,
                    j1 + k + 1 if right is not None else None,
                    right,
                    tag,
                ])
    return rows


def build_diff(original: Path, anonymised: Path, report: AnonReport) -> list[dict[str, Any]]:
    """One entry per original file: status, paths, and side-by-side rows when text changed."""
    renamed_dirs = sorted(
        ((r.before, r.after) for r in report.renamed), key=lambda p: -len(p[0])
    )
    dropped = {d.path: d.reason for d in report.dropped}

    def out_path(rel: str) -> str:
        for before, after in renamed_dirs:
            if rel == before or rel.startswith(before.rstrip("/") + "/"):
                return after + rel[len(before):]
        return rel

    def drop_reason(rel: str) -> str | None:
        for path, reason in dropped.items():
            if rel == path or (path.endswith("/") and rel.startswith(path)):
                return reason
        return None

    secrets = _secret_values(original)
    entries: list[dict[str, Any]] = []
    for path in sorted(p for p in original.rglob("*") if p.is_file() and not p.is_symlink()):
        rel = path.relative_to(original).as_posix()
        reason = drop_reason(rel)
        if reason is not None:
            entries.append({"path": rel, "status": "dropped", "reason": reason})
            continue
        new_rel = out_path(rel)
        target = anonymised / new_rel
        if not target.is_file():
            entries.append({"path": rel, "status": "left out", "reason": "not in the output"})
            continue
        before, after = _text(path), _text(target)
        status = "renamed" if new_rel != rel else "same"
        entry: dict[str, Any] = {"path": rel, "new_path": new_rel, "status": status}
        if before is None or after is None:
            if path.read_bytes() != target.read_bytes():
                entry["status"] = "changed (binary)"
        elif before != after:
            entry["status"] = "renamed and changed" if status == "renamed" else "changed"
            entry["rows"] = _rows(before, after, secrets)
        entries.append(entry)
    return entries
