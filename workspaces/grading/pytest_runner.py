"""pairlab's own pytest runner, run INSIDE a check sandbox (never imported by pairlab itself).

pairlab copies this file read-only into the run's ``/etc/pairlab/harness`` and starts it as
``python -I -B /etc/pairlab/harness/run.py <pytest arguments>``. It imports only the standard
library and the task environment's pytest. ``-I`` keeps the working folder, ``PYTHON*``
variables and the user site off ``sys.path`` (so no ``pytest.py``, ``sitecustomize.py`` or
``usercustomize.py`` of the candidate's is ever imported at start-up); this script then appends
the checks' own folders and the tree under test AFTER the standard library and site-packages,
so the candidate's code is importable but shadows nothing, and keeps it that way before each
module is collected and each test runs (a task's conftest that inserts the tree at the front
is undone).

Plugins: entry-point autoloading stays off (the tree is on ``sys.path``, so a ``.dist-info``
planted there would be found); the ``pytest11`` entry points of the task environment are read
from the ``sys.path`` entries outside the tree, before the tree is added, and each is passed as
``-p <name>``; pytest's entry-point lookup (which ``-p`` and ``pytest_plugins`` use) sees only
those. A ``pytest_plugins`` list in a module of the tree other than a conftest (which are the
revision's: pairlab removed the candidate's) is refused: the module is a collection error.

Each test's outcome goes, as one JSON line when it finishes, to the pipe pairlab passed as
``PAIRLAB_REPORT_FD`` (made not inheritable at once, so no process the tests start holds it),
and a last ``end`` line says pytest finished and how. pairlab never reads a file the sandbox
could have written.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import sys
import types
from typing import IO, Any

MESSAGE_CHARS = 2000
OUTPUT_CHARS = 4000


def _inside(entry: str, tree: str) -> bool:
    """Whether a ``sys.path`` entry names the tree under test (relative ones are the cwd's)."""
    path = os.path.abspath(entry or ".")
    return path == tree or path.startswith(tree.rstrip("/") + "/")


def keep_tree_last(tree: str, first: list[str]) -> None:
    """``sys.path`` with every entry inside ``tree`` moved after all others: the checks' own
    folders (``first``) first, then the rest in their order, the tree's root last."""
    outside = [p for p in sys.path if not _inside(p, tree)]
    inside = [p for p in sys.path if _inside(p, tree) and p not in first and p != tree]
    sys.path[:] = outside + first + inside + [tree]


def environment_plugins(tree: str) -> dict[str, importlib.metadata.EntryPoint]:
    """The ``pytest11`` entry points of the distributions on ``sys.path`` outside ``tree`` (the
    task environment's site-packages), by name, first found first."""
    paths = [p for p in sys.path if not _inside(p, tree)]
    found: dict[str, importlib.metadata.EntryPoint] = {}
    for dist in importlib.metadata.distributions(path=paths):
        for entry in dist.entry_points.select(group="pytest11"):
            found.setdefault(entry.name, entry)
    return found


def guard_plugins(manager: Any, allowed: dict[str, importlib.metadata.EntryPoint],
                  tree: str) -> None:
    """Patch pytest's plugin manager class (there is no hook early enough: ``-p`` and
    ``pytest_plugins`` are handled while the config is built) so that entry points come only
    from ``allowed`` and no module of the tree but a conftest names plugins to load."""
    consider_module = manager.consider_module

    def load_setuptools_entrypoints(self: Any, group: str, name: str | None = None) -> int:
        if group != "pytest11":
            return 0
        count = 0
        for entry in allowed.values():
            if (name is not None and entry.name != name) or self.get_plugin(entry.name) \
                    or self.is_blocked(entry.name):
                continue
            self.register(entry.load(), name=entry.name)
            count += 1
        return count

    def guarded_consider_module(self: Any, mod: types.ModuleType) -> None:
        path = getattr(mod, "__file__", None) or ""
        if getattr(mod, "pytest_plugins", None) and _inside(path, tree) \
                and os.path.basename(path) != "conftest.py":
            raise ImportError(
                f"{os.path.relpath(path, tree)} sets pytest_plugins: pairlab's harness loads "
                "plugins only from the task environment and the revision's conftest files")
        consider_module(self, mod)

    manager.load_setuptools_entrypoints = load_setuptools_entrypoints
    manager.consider_module = guarded_consider_module


class Harness:
    """The pytest plugin: outcomes per test, streamed as they finish."""

    def __init__(self, stream: IO[str], tree: str, first: list[str]) -> None:
        self.stream = stream
        self.tree = tree
        self.first = first
        self.cases: dict[str, dict[str, Any]] = {}

    def send(self, record: dict[str, Any]) -> None:
        try:
            self.stream.write(json.dumps(record) + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass

    def pytest_collectstart(self) -> None:
        keep_tree_last(self.tree, self.first)

    def pytest_runtest_setup(self) -> None:
        keep_tree_last(self.tree, self.first)

    def pytest_collectreport(self, report: Any) -> None:
        if report.failed:
            self.send({"kind": "case", "name": report.nodeid or "collection",
                       "status": "error", "duration": 0.0,
                       "message": _message(report), "output": _output(report)})

    def pytest_runtest_logreport(self, report: Any) -> None:
        case = self.cases.setdefault(report.nodeid, {
            "kind": "case", "name": report.nodeid, "status": "passed", "duration": 0.0})
        case["duration"] += float(report.duration or 0.0)
        if report.failed:
            if report.when == "call":
                case["status"] = "failed"
            elif case["status"] != "failed":
                case["status"] = "error"
            case.setdefault("message", _message(report))
            case.setdefault("output", _output(report))
        elif report.skipped and case["status"] == "passed":
            case["status"] = "skipped"
            case.setdefault("message", _message(report))
        if report.when == "teardown":
            self.send(self.cases.pop(report.nodeid))


def _message(report: Any) -> str:
    crash = getattr(getattr(report, "longrepr", None), "reprcrash", None)
    if crash is not None and getattr(crash, "message", None):
        return str(crash.message)[:MESSAGE_CHARS]
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # a skip: (file, line, reason)
        return str(longrepr[2])[:MESSAGE_CHARS]
    text = str(longrepr or "").strip().splitlines()
    return text[-1][:MESSAGE_CHARS] if text else ""


def _output(report: Any) -> str:
    text = getattr(report, "longreprtext", "") or ""
    for _title, content in getattr(report, "sections", []):
        text += f"\n{content}"
    return text[-OUTPUT_CHARS:]


def main() -> int:
    fd = int(os.environ.pop("PAIRLAB_REPORT_FD"))
    os.set_inheritable(fd, False)
    tree = os.environ.pop("PAIRLAB_TREE")
    first = json.loads(os.environ.pop("PAIRLAB_FIRST_PATHS", "[]"))
    stream = os.fdopen(fd, "w", encoding="utf-8")
    plugins = environment_plugins(tree)  # before the tree is on sys.path
    keep_tree_last(tree, [str(p) for p in first])
    import pytest  # the environment's, found before anything of the tree
    from _pytest.config import PytestPluginManager

    guard_plugins(PytestPluginManager, plugins, tree)
    harness = Harness(stream, tree, [str(p) for p in first])
    args = [arg for name in plugins for arg in ("-p", name)] + sys.argv[1:]
    code = int(pytest.main(args, plugins=[harness]))
    harness.send({"kind": "end", "exit_code": code})
    stream.close()
    return code


if __name__ == "__main__":
    sys.exit(main())
