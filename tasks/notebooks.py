"""Clean a Jupyter notebook for a task: no outputs, no identifying metadata, rewritten sources.

Outputs and execution counts go (they hold data, paths, user names and host names), notebook
metadata keeps only the kernel's name and display name and the language's name, and cell
metadata keeps only ``tags``. Every remaining string the candidate will see (sources, tags,
kernel names) goes through the caller's ``rewrite``. The result is serialised the way nbformat
writes notebooks (sorted keys, ``indent=1``, sources split into lines, a trailing newline) so
the same input always gives the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Rewrite = Callable[[str, str], str]
"""``rewrite(text, where)``: ``where`` names the part of the notebook (for the report)."""


@dataclass(frozen=True)
class CleanedNotebook:
    text: str
    notes: tuple[str, ...]  # things an admin should look at (e.g. embedded attachments)


def _joined(source: Any) -> str:
    if isinstance(source, list):
        return "".join(str(part) for part in source)
    return "" if source is None else str(source)


def _clean_meta(meta: Any, rewrite: Rewrite) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    if not isinstance(meta, dict):
        return kept
    kernelspec = meta.get("kernelspec")
    if isinstance(kernelspec, dict):
        spec = {
            k: rewrite(str(kernelspec[k]), "metadata")
            for k in ("name", "display_name")
            if k in kernelspec
        }
        if spec:
            kept["kernelspec"] = spec
    language = meta.get("language_info")
    if isinstance(language, dict) and "name" in language:
        kept["language_info"] = {"name": rewrite(str(language["name"]), "metadata")}
    return kept


def _clean_cell(index: int, cell: Any, rewrite: Rewrite, notes: list[str]) -> dict[str, Any]:
    if not isinstance(cell, dict):
        raise ValueError(f"cell {index} is not an object")
    where = f"cell-{index}"
    cell_type = str(cell.get("cell_type", "code"))
    source = rewrite(_joined(cell.get("source")), where)
    out: dict[str, Any] = {
        "cell_type": cell_type,
        "metadata": {},
        "source": source.splitlines(keepends=True),
    }
    if "id" in cell:
        out["id"] = rewrite(str(cell["id"]), where)
    meta = cell.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("tags"), list):
        out["metadata"]["tags"] = [rewrite(str(t), where) for t in meta["tags"]]
    if cell_type == "code":
        out["outputs"] = []
        out["execution_count"] = None
    if cell.get("attachments"):
        out["attachments"] = cell["attachments"]
        notes.append(f"{where} has embedded attachments (binary data kept as is)")
    return out


def clean_notebook(raw: str, rewrite: Rewrite) -> CleanedNotebook:
    """Raises ``ValueError`` when ``raw`` is not a notebook (bad JSON or no ``cells`` list)."""
    try:
        nb = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc.msg} at line {exc.lineno}") from exc
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise ValueError("no list of cells")
    notes: list[str] = []
    cleaned: dict[str, Any] = {
        "cells": [_clean_cell(i, c, rewrite, notes) for i, c in enumerate(nb["cells"], start=1)],
        "metadata": _clean_meta(nb.get("metadata"), rewrite),
        "nbformat": nb.get("nbformat", 4),
        "nbformat_minor": nb.get("nbformat_minor", 5),
    }
    text = json.dumps(cleaned, indent=1, sort_keys=True, ensure_ascii=False, separators=(",", ": "))
    return CleanedNotebook(text=text + "\n", notes=tuple(notes))
