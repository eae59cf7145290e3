"""The task manifest: ``pairlab-task.toml`` at the root of a task source.

Admins write the manifest by hand, so validation reports every problem at once, each as
``(file, dotted key, reason)``, in one :class:`tasks.errors.ManifestInvalid`. An optional rules
file (``--rules FILE``) holds an ``[anonymise]`` table merged over the manifest's own.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import shlex
import tomllib
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath
from typing import Any, Literal, cast

from packaging.requirements import InvalidRequirement, Requirement
from text_unidecode import unidecode

from tasks.errors import ManifestInvalid
from tasks.personforms import split_person
from tasks.postscan import deny_terms_in, post_scan_texts

log = logging.getLogger(__name__)

MANIFEST_NAME = "pairlab-task.toml"
MAX_TOML_BYTES = 64 * 1024

Kind = Literal["pipeline-bug", "eval-script", "serving-feature"]
Role = Literal["ml-engineer", "data-scientist", "ai-researcher", "mlops-engineer"]
KINDS: tuple[Kind, ...] = ("pipeline-bug", "eval-script", "serving-feature")
ROLES: tuple[Role, ...] = ("ml-engineer", "data-scientist", "ai-researcher", "mlops-engineer")

_ID_RE = re.compile(r"[a-z0-9][a-z0-9-]{1,62}")
MAX_KEEP = 50  # declared exceptions; each is shown, counted and audited at every import
MAX_KEEP_CHARS = 200
_LOOSE_SEPARATORS = re.compile(r"[\s_.\-]+")
_FILE_KEY = "(file)"

# Which roles each kind mainly tests (see the table in DESIGN.md), and what to say otherwise.
_FITS: dict[str, tuple[frozenset[str], str]] = {
    "pipeline-bug": (
        frozenset({"ml-engineer", "mlops-engineer", "data-scientist"}),
        "this task tests debugging a production data pipeline, which this role does not mainly do",
    ),
    "eval-script": (
        frozenset({"data-scientist", "ml-engineer", "ai-researcher"}),
        "this task tests model evaluation methodology (metrics, slices, leakage), "
        "which this role does not mainly do",
    ),
    "serving-feature": (
        frozenset({"ml-engineer", "mlops-engineer"}),
        "this task tests ML engineering (production serving), which this role does not do",
    ),
}


@dataclass(frozen=True)
class TaskSpec:
    id: str
    title: str
    kind: Kind
    roles: tuple[Role, ...]
    duration_minutes: int
    brief: str  # posix path relative to the source root; shown to the candidate
    guide: str  # posix path relative to the source root; interviewer only


@dataclass(frozen=True)
class Environment:
    requirements: tuple[str, ...] = ()


@dataclass(frozen=True)
class Checks:
    visible: str
    hidden: str | None = None
    solution: str | None = None


@dataclass(frozen=True)
class AnonymiseRules:
    drop: tuple[str, ...] = ()
    replace: tuple[tuple[str, str], ...] = ()
    people: tuple[tuple[str, str], ...] = ()  # declared name → stand-in ("José Núñez" = "Jane Doe")
    keep: tuple[str, ...] = ()  # texts holding a deny-listed term that stay as they are

    @property
    def deny_terms(self) -> tuple[str, ...]:
        return tuple(term for term, _ in self.replace)

    @property
    def person_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.people)

    def is_dropped(self, rel_path: str) -> bool:
        """True when a posix path relative to the source root matches a ``drop`` pattern.

        A pattern ending in ``/`` names a folder and matches everything below any folder it
        matches; other patterns match the whole relative path (``*`` also crosses ``/``).
        """
        parts = PurePosixPath(rel_path).parts
        folders = ["/".join(parts[:i]) for i in range(1, len(parts))]
        for pattern in self.drop:
            if pattern.endswith("/"):
                if any(fnmatchcase(f, pattern.rstrip("/")) for f in folders):
                    return True
            elif fnmatchcase(rel_path, pattern):
                return True
        return False

    def merged_with(self, other: AnonymiseRules) -> AnonymiseRules:
        """``other`` over ``self``: drop lists concatenated, replacements and people merged
        (other wins)."""
        drop = self.drop + tuple(p for p in other.drop if p not in self.drop)
        replace = dict(self.replace)
        replace.update(other.replace)
        people = dict(self.people)
        people.update(other.people)
        keep = self.keep + tuple(k for k in other.keep if k not in self.keep)
        return AnonymiseRules(
            drop=drop, replace=tuple(replace.items()), people=tuple(people.items()), keep=keep
        )


@dataclass(frozen=True)
class Manifest:
    task: TaskSpec
    environment: Environment
    checks: Checks
    anonymise: AnonymiseRules

    @property
    def never_in_workspace(self) -> tuple[str, ...]:
        """Relative paths that must never be copied into a candidate's workspace."""
        paths = [MANIFEST_NAME, self.task.guide, self.checks.hidden, self.checks.solution]
        return tuple(p for p in paths if p is not None)

    def role_warnings(self) -> tuple[str, ...]:
        """One sentence per declared role that this task's kind does not fit."""
        out = []
        for role in self.task.roles:
            warning = kind_fits_role(self.task.kind, role)
            if warning is not None:
                out.append(f"{role}: {warning}")
        return tuple(out)


def kind_fits_role(kind: str, role: str) -> str | None:
    """A warning sentence when a task of ``kind`` does not fit ``role``; None when it fits."""
    if kind not in _FITS:
        raise ValueError(f"unknown task kind {kind!r}")
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    fits, warning = _FITS[kind]
    return None if role in fits else warning


_HINT_HEADING = re.compile(r"^\s{0,3}##\s+hint ladder\s*#*\s*$", re.IGNORECASE)
_ANY_HEADING = re.compile(r"^\s{0,3}#{1,6}(\s|$)")
_NUMBERED = re.compile(r"^\s{0,3}\d{1,3}[.)]\s+(.*\S)\s*$")


def hints_from_guide(text: str) -> list[str]:
    """The numbered items of the ``## Hint ladder`` section of an interviewer guide, in order.

    Continuation lines of an item are joined with single spaces; text that is not part of a
    numbered item is ignored; the section ends at the next heading.
    """
    hints: list[list[str]] = []
    in_section = False
    item_open = False
    previous_blank = False
    for line in text.splitlines():
        if not in_section:
            in_section = bool(_HINT_HEADING.match(line))
            continue
        if _ANY_HEADING.match(line):
            break
        numbered = _NUMBERED.match(line)
        if numbered:
            hints.append([numbered.group(1)])
            item_open = True
        elif not line.strip():
            previous_blank = True
            continue
        elif item_open and (line[:1].isspace() or not previous_blank):
            hints[-1].append(line.strip())
        else:
            item_open = False
        previous_blank = False
    return [" ".join(parts) for parts in hints]


def _type_name(value: object) -> str:
    names: list[tuple[type, str]] = [
        (bool, "a boolean"), (int, "an integer"), (float, "a number"), (str, "a string"),
        (list, "an array"), (dict, "a table"), (dt.datetime, "a date-time"),
        (dt.date, "a date"), (dt.time, "a time"),
    ]
    return next((name for cls, name in names if isinstance(value, cls)), type(value).__name__)


def _key(dotted: str, key: str) -> str:
    shown = key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else f'"{key}"'
    return f"{dotted}.{shown}" if dotted else shown


class _Checker:
    """Collects ``(file, key, reason)`` problems for one file into a shared list."""

    def __init__(self, label: str, problems: list[tuple[str, str, str]], root: Path) -> None:
        self.label, self.problems, self.root = label, problems, root

    def add(self, key: str, reason: str) -> None:
        self.problems.append((self.label, key, reason))

    def count(self) -> int:
        return len(self.problems)

    def read_toml(self, path: Path) -> dict[str, Any] | None:
        if path.is_symlink() or (path.exists() and not path.is_file()):
            self.add(_FILE_KEY, "must be a regular file")
            return None
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            self.add(_FILE_KEY, f"not found at {path}")
            return None
        except OSError as exc:
            self.add(_FILE_KEY, f"cannot be read: {exc.strerror}")
            return None
        if len(raw) > MAX_TOML_BYTES:
            self.add(_FILE_KEY, f"is larger than {MAX_TOML_BYTES} bytes")
            return None
        try:
            return tomllib.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            self.add(_FILE_KEY, "is not UTF-8 text")
        except tomllib.TOMLDecodeError as exc:
            self.add("(syntax)", f"is not valid TOML: {exc}")
        return None

    def keys(self, table: dict[str, Any], dotted: str, allowed: tuple[str, ...],
             required: tuple[str, ...] = ()) -> None:
        for key in table:
            if key not in allowed:
                self.add(_key(dotted, key), f"unknown key; expected one of: {', '.join(allowed)}")
        for key in required:
            if key not in table:
                self.add(_key(dotted, key), "is required but missing")

    def typed(self, table: dict[str, Any], dotted: str, key: str, cls: type, what: str) -> Any:
        if key not in table:
            return None
        value = table[key]
        if not isinstance(value, cls) or (cls is int and isinstance(value, bool)):
            self.add(_key(dotted, key), f"must be {what}, not {_type_name(value)}")
            return None
        return value

    def table(self, data: dict[str, Any], key: str) -> dict[str, Any] | None:
        return cast(dict[str, Any] | None, self.typed(data, "", key, dict, "a table"))

    def str_list(self, table: dict[str, Any], dotted: str, key: str) -> list[str] | None:
        value = self.typed(table, dotted, key, list, "an array of strings")
        if value is None:
            return None
        bad = [i for i, item in enumerate(value) if not isinstance(item, str)]
        for i in bad:
            self.add(f"{_key(dotted, key)}[{i}]", f"must be a string, not {_type_name(value[i])}")
        return None if bad else cast(list[str], value)

    def rel_path(self, dotted: str, value: str) -> str | None:
        """A normalised posix path relative to the source root, or None (problem recorded)."""
        path = PurePosixPath(value)
        if not value.strip() or value != value.strip():
            self.add(dotted, "must be a non-empty relative path without surrounding spaces")
        elif "\\" in value or "\x00" in value:
            self.add(dotted, "must use '/' as the separator and hold no NUL or backslash")
        elif path.is_absolute() or value.startswith("~"):
            self.add(dotted, "must be relative to the task source root, not absolute")
        elif ".." in path.parts:
            self.add(dotted, "must not contain '..'")
        elif path.as_posix() == ".":
            self.add(dotted, "must name something inside the task source, not its root")
        else:
            return path.as_posix()
        return None

    def existing(self, table: dict[str, Any], dotted: str, key: str,
                 kind: Literal["file", "folder", "any"]) -> str | None:
        """An optional path key that must name an existing ``kind`` inside the source."""
        raw = self.typed(table, dotted, key, str, "a relative path string")
        rel = None if raw is None else self.rel_path(_key(dotted, key), raw)
        if rel is None:
            return None
        target = self.root / rel
        try:
            inside = target.resolve().is_relative_to(self.root.resolve())
        except OSError:
            inside = False
        if not inside:
            self.add(_key(dotted, key), f"{rel!r} leads outside the task source")
        elif not target.exists():
            self.add(_key(dotted, key), f"{rel!r} does not exist in the task source")
        elif kind == "file" and not target.is_file():
            self.add(_key(dotted, key), f"{rel!r} must be a file")
        elif kind == "folder" and not target.is_dir():
            self.add(_key(dotted, key), f"{rel!r} must be a folder")
        else:
            return rel
        return None


def _parse_task(c: _Checker, t: dict[str, Any]) -> TaskSpec | None:
    fields = ("id", "title", "kind", "roles", "duration_minutes", "brief", "guide")
    c.keys(t, "task", fields, fields)
    before = c.count()
    task_id = c.typed(t, "task", "id", str, "a string")
    if task_id is not None and not _ID_RE.fullmatch(task_id):
        c.add("task.id", "must be 2-63 characters of a-z, 0-9 and '-', "
              "starting with a letter or digit")
    title = c.typed(t, "task", "title", str, "a string")
    if title is not None and (not title.strip() or len(title) > 120 or "\n" in title):
        c.add("task.title", "must be one non-empty line of at most 120 characters")
    kind = c.typed(t, "task", "kind", str, "a string")
    if kind is not None and kind not in KINDS:
        c.add("task.kind", f"{kind!r} is not one of: {', '.join(KINDS)}")
    roles = c.str_list(t, "task", "roles")
    if roles == []:
        c.add("task.roles", "must name at least one role")
    for i, role in enumerate(names := roles or []):
        if role not in ROLES:
            c.add(f"task.roles[{i}]", f"{role!r} is not one of: {', '.join(ROLES)}")
        elif role in names[:i]:
            c.add(f"task.roles[{i}]", f"{role!r} is listed twice")
    minutes = c.typed(t, "task", "duration_minutes", int, "an integer")
    if minutes is not None and not 15 <= minutes <= 240:
        c.add("task.duration_minutes", f"must be between 15 and 240, not {minutes}")
    brief = c.existing(t, "task", "brief", "file")
    guide = c.existing(t, "task", "guide", "file")
    if brief is not None and brief == guide:
        c.add("task.guide", "must not be the same file as task.brief")
    if c.count() > before or roles is None:
        return None
    return TaskSpec(id=task_id, title=title, kind=cast(Kind, kind),
                    roles=tuple(cast(list[Role], roles)), duration_minutes=minutes,
                    brief=cast(str, brief), guide=cast(str, guide))


def _parse_environment(c: _Checker, e: dict[str, Any]) -> Environment | None:
    c.keys(e, "environment", ("requirements",))
    before = c.count()
    reqs = c.str_list(e, "environment", "requirements") or []
    for i, text in enumerate(reqs):
        try:
            if Requirement(text).url:
                c.add(f"environment.requirements[{i}]",
                      "direct URL references are not allowed; name an index package")
        except InvalidRequirement as exc:
            c.add(f"environment.requirements[{i}]",
                  f"{text!r} is not a PEP 508 requirement: {exc}")
    return None if c.count() > before else Environment(requirements=tuple(reqs))


def _parse_checks(c: _Checker, t: dict[str, Any]) -> Checks | None:
    c.keys(t, "checks", ("visible", "hidden", "solution"), ("visible",))
    before = c.count()
    visible = c.typed(t, "checks", "visible", str, "a command string")
    try:
        if visible is not None and not shlex.split(visible):
            c.add("checks.visible", "must be a non-empty command")
    except ValueError as exc:
        c.add("checks.visible", f"cannot be split into words: {exc}")
    hidden = c.existing(t, "checks", "hidden", "any")
    solution = c.existing(t, "checks", "solution", "folder")
    if c.count() > before:
        return None
    return Checks(visible=cast(str, visible), hidden=hidden, solution=solution)


def _folded(words: tuple[str, ...]) -> str:
    return str(unidecode(" ".join(words))).casefold()


def _loose(text: str) -> str:
    return _LOOSE_SEPARATORS.sub("", text).casefold()


def keep_problem(entry: str, deny_terms: tuple[str, ...]) -> str | None:
    """Why a ``keep`` entry is refused, or None.

    It must hold a deny-listed term (any case, separators ignored: ``Gruber`` holds ``Uber``),
    or it keeps nothing. It must hold more than the terms: an entry that is only a term
    (``Uber``, ``UBER``, ``u-b-e-r``) would switch the deny-list off for that term in every file
    while looking like an exception, so it is refused; a longer entry that still names the
    company (``UberEats``) is the admin's explicit decision: it is listed with its count in the
    report and on the revision page, and recorded in the audit log at each import.
    """
    loose = _loose(entry)
    held = [t for t in deny_terms if _loose(t) and _loose(t) in loose]
    if not held:
        listed = ", ".join(repr(t) for t in deny_terms) or "none are declared"
        return (f"{entry!r} holds no deny-listed term, so it would keep nothing "
                f"(the terms: {listed})")
    rest = loose
    for term in sorted(held, key=lambda t: -len(_loose(t))):
        rest = rest.replace(_loose(term), "")
    if not re.search(r"[^\W_]", rest):
        return (f"{entry!r} is only the deny-listed term {held[0]!r}: keeping it would leave "
                "the term everywhere; keep the longer text that holds it (e.g. a surname or "
                "'np.square')")
    return None


def _parse_keep(c: _Checker, a: dict[str, Any]) -> list[str]:
    keep = c.str_list(a, "anonymise", "keep") or []
    if len(keep) > MAX_KEEP:
        c.add("anonymise.keep", f"must hold at most {MAX_KEEP} entries, not {len(keep)}")
    for i, entry in enumerate(keep):
        if not entry.strip() or entry != entry.strip() or "\n" in entry:
            c.add(f"anonymise.keep[{i}]", "must be one non-empty line without surrounding spaces")
        elif len(entry) > MAX_KEEP_CHARS:
            c.add(f"anonymise.keep[{i}]", f"must be at most {MAX_KEEP_CHARS} characters")
        elif entry in keep[:i]:
            c.add(f"anonymise.keep[{i}]", f"{entry!r} is listed twice")
    return keep


def _parse_anonymise(c: _Checker, a: dict[str, Any]) -> AnonymiseRules | None:
    c.keys(a, "anonymise", ("drop", "replace", "people", "keep"))
    before = c.count()
    drop = c.str_list(a, "anonymise", "drop") or []
    for i, pattern in enumerate(drop):
        c.rel_path(f"anonymise.drop[{i}]", pattern.rstrip("/") or pattern)
    replace = c.typed(a, "anonymise", "replace", dict, "a table of strings") or {}
    for term, repl in replace.items():
        dotted = _key("anonymise.replace", term)
        if not isinstance(repl, str):
            c.add(dotted, f"must be a string, not {_type_name(repl)}")
        elif not term.strip() or term != term.strip():
            c.add(dotted, "the term must be non-empty without surrounding spaces")
        elif term.casefold() in repl.casefold():
            c.add(dotted, "the replacement must not contain the term it replaces")
    people = c.typed(a, "anonymise", "people", dict, "a table of strings") or {}
    for name, repl in people.items():
        dotted = _key("anonymise.people", name)
        if not isinstance(repl, str):
            c.add(dotted, f"must be a string, not {_type_name(repl)}")
            continue
        for what, value in (("the name", name), ("the stand-in", repl)):
            given, family = split_person(value)
            if not given or not family or any(len(w) < 2 for w in family):
                c.add(dotted, f"{what} must be 'Given Family' or 'Family, Given' (two parts)")
                break
        else:
            if name.casefold() in repl.casefold():
                c.add(dotted, "the stand-in must not contain the name it replaces")
            elif _folded(split_person(name)[1]) == _folded(split_person(repl)[1]):
                c.add(dotted, "the stand-in must have another family name")
    keep = _parse_keep(c, a)
    if c.count() > before:
        return None
    return AnonymiseRules(
        drop=tuple(drop), replace=tuple(replace.items()), people=tuple(people.items()),
        keep=tuple(keep),
    )


def _parse_manifest(
    c: _Checker, data: dict[str, Any]
) -> tuple[TaskSpec, Environment, Checks, AnonymiseRules] | None:
    c.keys(data, "", ("task", "environment", "checks", "anonymise"), ("task", "checks"))
    tables = {k: c.table(data, k) for k in ("task", "environment", "checks", "anonymise")}
    task = None if tables["task"] is None else _parse_task(c, tables["task"])
    env = _parse_environment(c, tables["environment"] or {})
    checks = None if tables["checks"] is None else _parse_checks(c, tables["checks"])
    anonymise = _parse_anonymise(c, tables["anonymise"] or {})
    if task is None or env is None or checks is None or anonymise is None:
        return None
    for key, inner in (("hidden", checks.hidden), ("solution", checks.solution)):
        if inner is not None and PurePosixPath(task.brief).is_relative_to(inner):
            c.add("task.brief", f"must not be inside checks.{key}")
            return None
    return task, env, checks, anonymise


def _load_rules(c: _Checker, rules_file: Path) -> AnonymiseRules | None:
    data = c.read_toml(rules_file)
    if data is None:
        return None
    c.keys(data, "", ("anonymise",), ("anonymise",))
    table = c.table(data, "anonymise")
    return None if table is None else _parse_anonymise(c, table)


def load_manifest(source_root: Path, rules_file: Path | None = None) -> Manifest:
    """Read and validate ``pairlab-task.toml`` under ``source_root``.

    ``rules_file`` (optional) holds an ``[anonymise]`` table merged over the manifest's.
    Raises ManifestInvalid listing every problem found in the manifest and the rules file.
    """
    problems: list[tuple[str, str, str]] = []
    checker = _Checker(MANIFEST_NAME, problems, source_root)
    data = checker.read_toml(source_root / MANIFEST_NAME)
    parts = None if data is None else _parse_manifest(checker, data)
    rules = None
    if rules_file is not None:
        rules = _load_rules(_Checker(rules_file.name, problems, source_root), rules_file)
    if problems or parts is None:
        raise ManifestInvalid(problems)
    task, env, checks, anonymise = parts
    if rules is not None:
        anonymise = anonymise.merged_with(rules)
    # Each keep entry against the merged terms (a rules file may keep a manifest's term), under
    # the file and index it was declared at.
    for label, declared in ((MANIFEST_NAME, parts[3].keep),
                            (rules_file.name if rules_file else "", rules.keep if rules else ())):
        for i, entry in enumerate(declared):
            problem = keep_problem(entry, anonymise.deny_terms)
            if problem is not None:
                problems.append((label, f"anonymise.keep[{i}]", problem))
    if problems:
        raise ManifestInvalid(problems)
    # The id is the task's stable key (revisions of a task accumulate under it; it names the
    # store folder): it is refused, not rewritten, as a rewritten id could silently become
    # another task's. It is matched the way the post-scan matches (any case, no separators).
    # A declared person in it is found the way the post-scan finds people in a file.
    denied = deny_terms_in(task.id, anonymise.deny_terms)
    named = sorted({f.excerpt for f in post_scan_texts({"task.id": task.id}, (),
                                                          anonymise.person_names)
                    if f.kind == "person"})
    if denied or named:
        what = [f"the deny-listed term {', '.join(map(repr, denied))}"] if denied else []
        what += [f"a declared person's name ({', '.join(map(repr, named))})"] if named else []
        reason = (f"{task.id!r} contains {' and '.join(what)}; "
                  "an id is a stable key and is never rewritten: choose an id without it")
        raise ManifestInvalid([(MANIFEST_NAME, "task.id", reason)])
    manifest = Manifest(task=task, environment=env, checks=checks, anonymise=anonymise)
    for warning in manifest.role_warnings():
        log.info("task %s: %s", task.id, warning)
    return manifest
