"""Grading the candidate cannot touch: pairlab's own pytest harness for hidden checks and the
continuous visible tests, with the candidate's code treated as data.

Every such run, the import's and the sessions' alike, is ``python -I -B
/etc/pairlab/harness/run.py -c /etc/pairlab/harness/pytest.ini --rootdir=/workspace
--confcutdir=/workspace -p no:cacheprovider --import-mode=append -q <path>`` in the check
sandbox, with a clean environment and ``PYTEST_DISABLE_PLUGIN_AUTOLOAD=1``, on a tree
``prepare_for_grading`` made:

- the interpreter is isolated (no working folder, ``PYTHON*`` variables or user site on
  ``sys.path``), so no ``pytest.py``, ``sitecustomize.py``, ``usercustomize.py`` or ``.pth`` of
  the candidate's loads; the runner (``pytest_runner.py``, read-only under ``/etc/pairlab``)
  appends the checks' folders and then the tree AFTER the standard library and site-packages;
- pytest reads only pairlab's ini (``-c``), so the candidate's ``pytest.ini``,
  ``pyproject.toml``, ``setup.cfg`` or ``tox.ini`` (``addopts``, ``-p``, ``pythonpath``) count
  for nothing; no entry-point plugin autoloads (the task environment's own ``pytest11``
  plugins are loaded by name, see ``pytest_runner.py``), ``PYTEST_ADDOPTS``/``PYTEST_PLUGINS``
  are not in the environment;
- in the copy, every ``conftest.py``, ``__pycache__`` folder and ``.pyc`` file is removed first
  and the revision's own ``conftest.py`` files are put back (a root conftest's fixtures and
  ``sys.path`` set-up work as they did at the import); the hidden checks (with their own
  conftest) replace whatever was at their path; for the visible tests, the revision's test
  files are put back over the candidate's edits (the run says which were edited);
- results come over a pipe pairlab made: the runner streams each test's outcome as it finishes
  and a last ``end`` line; a run that did not say ``end`` has no verdict. No file the sandbox
  could write is read back (``/run/pairlab`` is root's; the old ``junit.xml`` is gone).

Residual risk, plainly: code the tests import (the candidate's modules) runs in the test
process, as it must to be tested. It can reach pytest's objects and the report pipe and forge
outcomes from there. That takes code in the final state that patches the test machinery, in
plain sight of the reviewers in the diff; nothing in the workspace's configuration does it.
A tripwire catches the blunt form of it: every session run also collects, first, a canary, a
test file of a random name at the tree's root whose assertion fails in a way no candidate change
can fix (``plant_canary``); a run that reports it passed, or reports passes without it, was
forged from inside and has no verdict (``check_canary``; an error or skip of the canary proves
nothing and leaves the verdict to the other tests). A forgery aimed only at the checks' folder
or names would not trip it: the canary raises the bar, it is not a proof.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import stat
from pathlib import Path
from typing import Any, NamedTuple

from workspaces.excerpt import truncate
from workspaces.sandbox.bwrap import CONFIG, WORKSPACE
from workspaces.sandbox.run import SandboxJob

HARNESS = CONFIG / "harness"
RUNNER = HARNESS / "run.py"
INI = HARNESS / "pytest.ini"
MESSAGE_CHARS = 300
CHECK_CHARS = 1200
STATUSES = ("passed", "failed", "error", "skipped")
INI_TEXT = """\
# pairlab's own pytest configuration for hidden checks and continuous tests: whatever the
# candidate's tree holds (pytest.ini, pyproject.toml, setup.cfg, tox.ini) is not read.
[pytest]
addopts =
python_files = test_*.py *_test.py
python_classes = Test
python_functions = test
norecursedirs = .* __pycache__ node_modules venv .venv *.egg-info
"""
HOW = ("with pairlab's own pytest setup on the final code; the candidate's conftest, "
       "ini files and plugins are not used")


def harness_files() -> dict[str, bytes]:
    """The runner and the ini, for ``SandboxJob.config_files`` (under ``/etc/pairlab``)."""
    runner = (Path(__file__).parent / "pytest_runner.py").read_bytes()
    return {str(RUNNER.relative_to(CONFIG)): runner,
            str(INI.relative_to(CONFIG)): INI_TEXT.encode()}


def harness_argv(*paths: str) -> list[str]:
    """The command: pytest on ``paths`` (relative to the tree), conftests from the tree's root
    down (only the revision's are left there)."""
    return ["python", "-I", "-B", str(RUNNER), "-c", str(INI), f"--rootdir={WORKSPACE}",
            f"--confcutdir={WORKSPACE}", "-p", "no:cacheprovider", "--import-mode=append", "-q",
            "--color=no", "-rfE", *paths]


def harness_env(first: list[str]) -> dict[str, str]:
    """What the runner needs besides the sandbox's allow-listed base environment."""
    return {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PAIRLAB_TREE": str(WORKSPACE),
            "PAIRLAB_FIRST_PATHS": json.dumps([str(WORKSPACE / p) for p in first])}


def harness_job(target: str, tree: Path, python: Path, timeout_s: float, *,
                checks: Path | None = None, canary: str | None = None) -> SandboxJob:
    """A check run of pytest on ``target`` in ``tree`` with pairlab's harness; ``checks`` (the
    hidden checks' own folder, with ``target`` their path in the tree) go on ``sys.path``
    before the tree; ``canary`` (``plant_canary``) is collected too."""
    first: list[str] = []
    if checks is not None:
        first = [target if folder == "." else f"{target}/{folder}"
                 for folder in check_folders(checks)]
    paths = [canary, target] if canary is not None else [target]  # the canary runs first
    return SandboxJob(harness_argv(*paths), python, tree, timeout_s,
                      env=harness_env(first), config_files=harness_files(), report=True)


# ---- the copy ------------------------------------------------------------------------------


def scrub(tree: Path) -> list[str]:
    """Remove every ``conftest.py``, ``__pycache__`` folder and ``.pyc``/``.pyo`` file of the
    copy (links of those names too, never followed); returns what went, relative."""
    removed: list[str] = []
    for dirpath, dirnames, filenames, dirfd in os.fwalk(tree, follow_symlinks=False):
        rel = Path(dirpath).relative_to(tree)
        for name in list(dirnames):  # links to folders are listed here too
            if name in ("__pycache__", "conftest.py") or name.endswith((".pyc", ".pyo")):
                _remove_at(dirfd, name)
                dirnames.remove(name)
                removed.append(str(rel / name))
        for name in filenames:
            if name == "conftest.py" or name.endswith((".pyc", ".pyo")):
                os.unlink(name, dir_fd=dirfd)
                removed.append(str(rel / name))
    return removed


def _remove_at(dirfd: int, name: str) -> None:
    if stat.S_ISDIR(os.stat(name, dir_fd=dirfd, follow_symlinks=False).st_mode):
        shutil.rmtree(name, dir_fd=dirfd)  # never follows a link (fd-based, as remove_tree)
    else:
        os.unlink(name, dir_fd=dirfd)


def real_folder(tree: Path, rel: str) -> Path:
    """``tree/rel`` as a real folder of the copy: whatever the candidate left on the way (a
    link, a file) is removed first, so pairlab (root) never writes through it."""
    step = tree
    for part in Path(rel).parts:
        step = step / part
        if step.is_symlink() or (step.exists() and not step.is_dir()):
            step.unlink()
        if not step.exists():
            step.mkdir(mode=0o755)
    return step


def put_file(tree: Path, rel: str, data: bytes) -> None:
    """Write ``tree/rel`` (a file of the revision) over whatever the copy has there."""
    folder = real_folder(tree, str(Path(rel).parent))
    target = folder / Path(rel).name
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.exists():
        raise OSError(f"{rel} is a folder in the copy")
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as stream:
        stream.write(data)


def restore_conftests(revision_tree: Path, tree: Path) -> list[str]:
    """Put the revision's own ``conftest.py`` files into the copy; returns them, relative."""
    restored = []
    for path in sorted(revision_tree.rglob("conftest.py")):
        rel = path.relative_to(revision_tree)
        if ".git" in rel.parts or path.is_symlink() or not path.is_file():
            continue
        put_file(tree, str(rel), path.read_bytes())
        restored.append(str(rel))
    return restored


def is_visible_test(rel: Path, target: str) -> bool:
    """Whether the revision's file ``rel`` is one of its visible tests for ``target``: a test
    module (the ini's ``python_files``), or any Python file of a tests folder of its own."""
    name = rel.name
    if name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py")):
        return True
    return target not in ("", ".") and name.endswith(".py")


def restore_visible_tests(revision_tree: Path, tree: Path, target: str) -> list[str]:
    """Put the revision's visible test files under ``target`` back into the copy, over
    whatever the candidate made of them; returns those the candidate had changed or removed."""
    base = revision_tree if target in ("", ".") else revision_tree / target
    if base.is_symlink() or not base.exists():
        return []
    edited = []
    for path in (sorted(base.rglob("*")) if base.is_dir() else [base]):  # a folder, or one file
        rel = path.relative_to(revision_tree)
        if ".git" in rel.parts or path.is_symlink() or not path.is_file() \
                or not is_visible_test(rel, target):
            continue
        data = path.read_bytes()
        mine = real_folder(tree, str(rel.parent)) / rel.name
        if mine.is_symlink() or not mine.is_file() or mine.read_bytes() != data:
            edited.append(str(rel))
        if mine.is_dir() and not mine.is_symlink():
            shutil.rmtree(mine)
        elif mine.is_symlink() or mine.exists():  # a file, link, fifo... of the candidate's
            mine.unlink()
        put_file(tree, str(rel), data)
    return edited


def place_checks(hidden: Path, tree: Path, target: str) -> None:
    """The hidden checks' regular files (never links) at ``target``, replacing whatever the
    candidate left there or on the way (a link, a file): pairlab writes them as root."""
    if Path(target).parts in ((), (".",)):
        raise ValueError("the hidden checks need a folder of their own in the tree")
    folder = real_folder(tree, target)
    shutil.rmtree(folder)
    folder.mkdir(mode=0o755)
    for path in sorted(hidden.rglob("*")):
        if path.is_file() and not path.is_symlink():
            put_file(folder, str(path.relative_to(hidden)), path.read_bytes())


def prepare_for_grading(tree: Path, target: str, *, revision_tree: Path | None,
                        hidden: Path | None = None) -> list[str]:
    """Make the copy ``tree`` ready for the harness, the same way for the import and for
    sessions: the candidate's conftests and bytecode go, the revision's conftests come back;
    ``hidden`` checks go at ``target``, else the revision's visible tests under ``target`` are
    put back. Returns the visible test files the candidate had edited (their revision's
    version is what runs)."""
    scrub(tree)
    if revision_tree is not None:
        restore_conftests(revision_tree, tree)
    if hidden is not None:
        place_checks(hidden, tree, target)
        return []
    return [] if revision_tree is None else restore_visible_tests(revision_tree, tree, target)


CANARY_TEXT = """\
import hashlib


def test_{name}():
    assert hashlib.sha256(b"{seed}").hexdigest()[:16] == "{other}"
"""
TAMPERED = ("the test process reported a test pairlab planted to fail as {status}: the results "
            "were changed from inside the test process, so they are not a verdict (look for "
            "code in the candidate's changes that patches pytest)")


def plant_canary(tree: Path) -> str:
    """Write the tripwire test (see the module docstring) at the tree's root; returns its path,
    relative. Its name and values are random per run, so nothing in the tree can know them."""
    name = secrets.token_hex(8)
    rel = f"test_{name}.py"
    text = CANARY_TEXT.format(name=name, seed=secrets.token_hex(16),
                              other=secrets.token_hex(8))
    put_file(tree, rel, text.encode())
    return rel


class CanaryVerdict(NamedTuple):
    cases: list[dict[str, Any]]
    """The run's cases without the canary."""
    code: int | None
    """The exit code pytest would have given without it."""
    forged: str | None
    """Why the run is not to be believed, or None."""
    failed: bool
    """It failed as it must (its marks can be taken out of the output: ``without_canary``)."""


def check_canary(cases: list[dict[str, Any]], code: int | None, canary: str) -> CanaryVerdict:
    """What the canary says about a run: reported passed, or missing from a run that passed
    tests (it runs first, so a run cut short still has it), means forged from inside. A canary
    that errored or was skipped (a revision's conftest can do that to a root-level test) proves
    nothing either way: the run keeps its verdict from the other tests."""
    own = [c for c in cases if c["name"].split("::", 1)[0] == canary]
    rest = [c for c in cases if c not in own]
    status = own[0]["status"] if own else None
    if status == "passed":
        return CanaryVerdict(rest, code, TAMPERED.format(status="passed"), False)
    if status is None and any(c["status"] == "passed" for c in rest):
        return CanaryVerdict(rest, code, TAMPERED.format(status="missing"), False)
    if status is not None and code == 1:  # its own failure (or error) made the 1
        if not rest:
            code = 5  # nothing of the task's was collected
        elif not any(c["status"] in ("failed", "error") for c in rest):
            code = 0
    return CanaryVerdict(rest, code, None, status == "failed")


_SUMMARY_FAILED = re.compile(r"\b(\d+) failed(, )?")
_PROGRESS = re.compile(r"^([.FEsxX]+)(\s+\[\s*\d+%\])?\s*$")
_SECTION = re.compile(r"^_{3,} (.+?) _{3,}$")


def without_canary(output: str, canary: str) -> str:
    """The run's printed output as if the canary (run first, failed) had not been there: its
    progress mark, its failure section and summary line go, and pytest's last line counts one
    failure fewer."""
    name = canary.removesuffix(".py")
    kept: list[str] = []
    skipping = progress_seen = False
    for line in output.splitlines():
        section = _SECTION.match(line)
        if section is not None or line.startswith("==="):
            skipping = section is not None and section.group(1) == name
        if skipping or canary in line:
            continue
        if not progress_seen and (mark := _PROGRESS.match(line)) is not None:
            progress_seen = True
            dots = mark.group(1)[1:]
            if not dots:
                continue
            line = dots + line[len(mark.group(1)):]
        kept.append(line)
    for index in range(len(kept) - 1, -1, -1):
        if _SUMMARY_FAILED.search(kept[index]) and " in " in kept[index]:
            kept[index] = _SUMMARY_FAILED.sub(_one_failure_fewer, kept[index], count=1)
            break
    return "\n".join(kept)


def _one_failure_fewer(match: re.Match[str]) -> str:
    count = int(match.group(1)) - 1
    return f"{count} failed{match.group(2) or ''}" if count else ""


def edited_note(edited: list[str]) -> str:
    """The ``tests.run`` event's sentence on test files the candidate changed."""
    shown = ", ".join(edited[:10]) + (f" and {len(edited) - 10} more" if len(edited) > 10 else "")
    return f"tests edited by the candidate: {shown} (the revision's version ran)"


def check_folders(hidden: Path) -> list[str]:
    """The hidden checks' folders (relative to them, ``.`` first): put on ``sys.path`` before
    the tree, so no module of the candidate's shadows one of the checks'."""
    folders = ["."]
    for path in sorted(hidden.rglob("*")):
        if path.is_dir() and not path.is_symlink() and path.name != "__pycache__":
            folders.append(str(path.relative_to(hidden)))
    return folders


# ---- the results ---------------------------------------------------------------------------


def _case(record: dict[str, Any]) -> dict[str, Any] | None:
    name, status = record.get("name"), record.get("status")
    if not isinstance(name, str) or status not in STATUSES:
        return None
    case: dict[str, Any] = {"name": truncate(name, MESSAGE_CHARS), "status": status}
    duration = record.get("duration")
    if isinstance(duration, int | float):
        case["duration_ms"] = round(float(duration) * 1000)
    message, output = record.get("message"), record.get("output")
    if isinstance(message, str) and message:
        case["message"] = truncate(message, MESSAGE_CHARS)
    if isinstance(output, str) and output and status != "passed":
        case["output"] = output[-CHECK_CHARS:]
    return case


def parse_report(data: bytes) -> tuple[list[dict[str, Any]] | None, int | None]:
    """Per-test results streamed by the runner, and the exit code it reported; ``(None,
    None)`` unless it reached its ``end`` line (a run cut short has no verdict)."""
    cases: list[dict[str, Any]] = []
    for line in data.decode("utf-8", "replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict):
            continue
        if record.get("kind") == "case":
            case = _case(record)
            if case is not None:
                cases.append(case)
        elif record.get("kind") == "end":
            code = record.get("exit_code")
            return cases, code if isinstance(code, int) else None
    return None, None


def how_graded(count: int, revision: str, *, hidden: bool = True) -> str:
    """The debrief's sentence on what was graded and how."""
    what = f"{count} hidden check{'s' if count != 1 else ''}" if hidden else \
        f"{count} test{'s' if count != 1 else ''}"
    return f"{what} of revision {revision} ran {HOW}."
