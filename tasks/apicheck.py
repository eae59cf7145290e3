"""Third-party API names the anonymiser kept must exist in the task's environment.

The rewriter keeps a deny-listed word in a Python name reached through an import of a module
that is not the repository's own (``np.square``, ``from sklearn.linear_model import
HuberRegressor``): it cannot tell from the code alone whether ``from corp_utils import
QuintessaConfig`` is a library or the company's internal package that is simply not in the
tree. So once the task's environment is built, each kept name is looked up there, in the
sandbox (importing a package runs its code): a name that does not resolve to a real attribute
of an importable module becomes a post-scan finding (``unverified-api``), which blocks
publishing until an admin drops, rewrites or accepts it with a reason.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from tasks.checks import CheckRunner
from tasks.postscan import Finding

LABEL = "(third-party names kept in Python code)"
KIND = "unverified-api"
_MARK = "PAIRLAB-API-NAMES "
_SCRIPT = """\
import importlib, json
found = {}
for dotted in json.load(open("names.json", encoding="utf-8")):
    parts, ok = dotted.split("."), False
    for i in range(len(parts) - 1, 0, -1):  # the longest importable module, then attributes
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except Exception:
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
            ok = True
        except Exception:
            pass
        break
    found[dotted] = ok
print("PAIRLAB-API-NAMES " + json.dumps(found))
"""


def unverified_names(names: Sequence[str], run_check: CheckRunner, python: Path, work: Path,
                     timeout_s: float) -> list[Finding]:
    """A finding for each of ``names`` (dotted, ``numpy.square``) that the environment of
    ``python`` does not have, looked up in the sandbox in an empty folder (so nothing of the
    repository's can stand in for a library)."""
    if not names:
        return []
    folder = work / "check-api-names"
    folder.mkdir()
    (folder / "names.json").write_text(json.dumps(sorted(set(names))), encoding="utf-8")
    (folder / "lookup.py").write_text(_SCRIPT, encoding="utf-8")
    result = run_check("python lookup.py", folder, python, timeout_s, revision=folder)
    marked = [line for line in result.output.splitlines() if line.startswith(_MARK)]
    found: object = {}
    if len(marked) == 1:  # more than one: something else printed one too; trust none
        try:
            found = json.loads(marked[0][len(_MARK):])
        except ValueError:
            found = {}
    if not isinstance(found, dict):
        found = {}
    return [Finding(LABEL, None, KIND, name) for name in sorted(set(names))
            if found.get(name) is not True]
