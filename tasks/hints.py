"""Possible identifiers the rules did not declare: hints for the admin, never blockers.

The anonymiser rewrites what it knows (declared terms and people, e-mail addresses, internal
hosts it can tell from code); the post-scan checks what was declared. Neither can know a name
nobody declared. :func:`find_hints` reads the anonymised tree (and the source's commit authors,
which pairlab drops with ``.git``) for what often identifies and was left as it was:

- ``home-path``: ``/home/<user>/`` and ``/Users/<user>/`` with a personal-looking user name;
- ``obfuscated-email``: ``name [at] company [dot] com``, ``name(at)company.com``;
- ``host``: a host under a declared name, rewritten only in part (``db01.prod.acme.net`` once
  ``Quintcorp`` = ``Acme`` rewrote ``db01.prod.quintcorp.net``) or under another domain of a
  declared organisation (``api.quintcorp.io`` when ``quintcorp.net`` is declared);
- ``private-host``: a host under a private-looking domain (``*.corp``, ``*.lan``, ``*.local``,
  ``*.internal``, a label ``intra*``) that the anonymiser left (code it could not tell apart);
- ``author``: a commit author or committer of the source who is not declared.

Each :class:`Hint` carries where it was seen (a few ``file:line``, a count) and the
:class:`Rule`\\ s that would rewrite it next time (a deny-list term under ``[anonymise.replace]``
or a person under ``[anonymise.people]``). What is declared, rewritten, generic (``/home/jovyan``,
CI and image default users) or a documentation placeholder (``example.com``, ``*.example``,
``.test``/``.invalid``) is left out, and the list is bounded. Blocking; pure: no network.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from text_unidecode import unidecode

from tasks.netscan import INTERNAL_SUFFIXES, is_example_domain
from tasks.personforms import PersonRewriter, split_person
from tasks.termforms import TermRewriter, split_words

__all__ = ["Hint", "HintReport", "Rule", "find_hints"]

MAX_HINTS = 40
MAX_EXAMPLES = 3
MAX_FILE_BYTES = 1 << 20
KINDS = ("author", "home-path", "obfuscated-email", "host", "private-host")

# Users that name no one: container and CI images' defaults, and placeholders in docs.
GENERIC_USERS = frozenset(
    "jovyan user users username your_user youruser yourname your_name yourusername you me name "
    "ubuntu debian centos fedora admin administrator root runner runneradmin vagrant ec2-user "
    "pi docker app appuser nobody guest test tester dev developer build builder ci jenkins "
    "gitlab-runner circleci travis shared public default linuxbrew coder vscode codespace "
    "node python jupyter rstudio gitpod".split()
)
GENERIC_MAILBOXES = frozenset(
    "info contact hello support team admin jobs careers noreply no-reply press security "
    "sales help office mail".split()
)
PUBLIC_MAIL = frozenset(
    "gmail googlemail outlook hotmail live yahoo proton protonmail pm icloud me gmx web "
    "yandex aol mail fastmail zoho qq 163 users".split()
)
_COMMON_TLDS = frozenset(
    "com org net edu gov io ai dev app cloud tech info biz co us uk de fr eu ch nl se no "
    "dk fi es it pl cz at be ca au nz jp cn in br ru".split()
)
_CODE_SUFFIXES = frozenset(".py .pyi .ipynb .js .ts .java .go .rs .c .h .cpp .rb .r .scala "
                           ".kt .jl .sh".split())
_CODE_NAMES = frozenset(
    "self cls this super np torch tf jnp os sys settings config cfg conf args opts options ctx "
    "app threading pd".split()
)
_BOTS = re.compile(r"(?i)\[bot\]|^(?:github|gitlab|gitea|dependabot|renovate|web-flow)\b")
_HOME = re.compile(
    r"(?<![\w.~-])(?:/home|/Users)/([A-Za-z0-9][A-Za-z0-9._-]{0,31})(?=[/\s\"'`:;,)\]]|$)"
)
_AT = r"\s*[\[({<]\s*(?:at|AT|At)\s*[\])}>]\s*|\s+(?:at|AT)\s+"
_DOT = r"\s*[\[({<]\s*(?:dot|DOT|Dot)\s*[\])}>]\s*|\s+(?:dot|DOT)\s+|\."
_OBFUSCATED = re.compile(
    rf"(?<![\w.+%-])(?P<local>[A-Za-z0-9][A-Za-z0-9._%+-]{{0,63}})(?P<at>{_AT})"
    rf"(?P<domain>[A-Za-z0-9][A-Za-z0-9-]{{0,62}}(?:(?:{_DOT})[A-Za-z0-9][A-Za-z0-9-]{{0,62}}){{1,5}})"
)
_DOT_SPLIT = re.compile(_DOT)
_HOSTNAME = re.compile(
    r"(?<![\w.@/-])(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){1,8}[A-Za-z]{2,24}"
    r"(?![\w(-]|\.\w)"
)
_PLACEHOLDER_HOST = re.compile(r"(?i)^host\d+\.example\.internal$")
_STAND_IN_GIVEN = ("Alex", "Sam", "Kim", "Robin", "Jo", "Lee", "Max", "Pat", "Dana", "Chris")
_STAND_IN_FAMILY = ("Roe", "Poe", "Moe", "Loe", "Noe", "Toe", "Hoe", "Koe")


@dataclass(frozen=True)
class Rule:
    """One entry to add under ``[anonymise.<table>]``."""

    table: Literal["replace", "people"]
    key: str
    value: str

    def to_dict(self) -> dict[str, str]:
        return {"table": self.table, "key": self.key, "value": self.value}

    def toml(self) -> str:
        """How the entry reads in a rules file (for people reading the report)."""
        return f"[anonymise.{self.table}] {_quote(self.key)} = {_quote(self.value)}"


def _quote(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


@dataclass(frozen=True)
class Hint:
    kind: str
    value: str
    why: str
    count: int
    examples: tuple[str, ...]
    rules: tuple[Rule, ...]

    @property
    def id(self) -> str:
        """Stable across imports of the same thing: the page's "add to rules" names it."""
        return hashlib.sha256(f"{self.kind}\0{self.value}".encode()).hexdigest()[:12]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "value": self.value, "why": self.why,
                "count": self.count, "examples": list(self.examples),
                "rules": [r.to_dict() for r in self.rules]}


@dataclass(frozen=True)
class HintReport:
    hints: tuple[Hint, ...]
    left_off: int = 0
    history: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"hints": [h.to_dict() for h in self.hints], "left_off": self.left_off,
                "history": dict(self.history)}


def rules_of(data: Mapping[str, Any]) -> tuple[Rule, ...]:
    """The rules of one stored hint (``Hint.to_dict()['rules']``), checked."""
    out = []
    for r in data.get("rules", []):
        table, key, value = r.get("table"), r.get("key"), r.get("value")
        if table not in ("replace", "people") or not isinstance(key, str) \
                or not isinstance(value, str):
            raise ValueError("a stored hint holds a rule of an unknown shape")
        out.append(Rule(table, key, value))
    return tuple(out)


# ---- what is declared ------------------------------------------------------------------------


def _fold(text: str) -> str:
    return str(unidecode(text)).casefold()


class _Declared:
    """The rules' terms, people and stand-ins, to leave out what they already cover."""

    def __init__(self, replace: Sequence[tuple[str, str]], people: Sequence[tuple[str, str]]):
        self.people = list(people)
        self.terms = {_fold(t) for t, _ in replace}
        words = [w for t, _ in replace for w in split_words(t)]
        self.term_words = {_fold(w) for w in words}
        self.stand_in_words = {_fold(w) for _, r in replace for w in split_words(r)}
        self.stand_in_words |= {_fold(w) for _, r in people for w in r.replace(",", " ").split()}
        self.person_keys = {self._person_key(n) for n, _ in people}
        # Output text -> source text: a stand-in back to the term it replaced.
        self.back = TermRewriter([(r, t) for t, r in replace if split_words(r)])
        self.denied = TermRewriter(list(replace))

    @staticmethod
    def _person_key(name: str) -> frozenset[str]:
        given, family = split_person(name)
        return frozenset(_fold(w) for w in (*given, *family))

    def has_person(self, name: str) -> bool:
        """A declared person, also when written as a handle (``robert-yi``, ``robert.yi``)."""
        spaced = re.sub(r"[-_.]+", " ", name)
        return any(self._person_key(n) in self.person_keys for n in {name, spaced} if n.strip())

    def covers(self, text: str) -> bool:
        """Text every word of which is a declared term, a stand-in or one of their words."""
        words = [_fold(w) for w in split_words(text)]
        known = self.term_words | self.stand_in_words
        return bool(words) and all(w in known for w in words)

    def rewritten(self, text: str) -> bool:
        """Text the anonymiser already rewrote: it holds a stand-in word."""
        return any(_fold(w) in self.stand_in_words for w in split_words(text))


# ---- suggested rules ---------------------------------------------------------------------------


class _StandIns:
    """Distinct made-up people for suggested person rules (never a declared stand-in)."""

    def __init__(self, declared: _Declared) -> None:
        self.used = {_fold(r) for _, r in declared.people}
        self.pool = [f"{g} {f}" for f in _STAND_IN_FAMILY for g in _STAND_IN_GIVEN]
        self.given: dict[str, str] = {}

    def pick(self, name: str) -> str:
        """The same stand-in for the same person in every hint of one report."""
        key = _fold(name)
        if key not in self.given:
            self.given[key] = self._new(name)
        return self.given[key]

    def _new(self, name: str) -> str:
        family = _fold(" ".join(split_person(name)[1]))
        for candidate in self.pool:
            c_family = _fold(candidate.split()[-1])
            if _fold(candidate) in self.used or c_family == family or \
                    _fold(name) in _fold(candidate):
                continue
            self.used.add(_fold(candidate))
            return candidate
        return "Alex Doe"  # pragma: no cover - 80 stand-ins for at most MAX_HINTS hints


def _term_rule(term: str, *choices: str) -> Rule:
    """A deny-list term whose replacement does not contain it (a rule the manifest accepts)."""
    for choice in (*choices, "someone", "redacted", "placeholder"):
        if term.casefold() not in choice.casefold():
            return Rule("replace", term, choice)
    return Rule("replace", term, "x" * (len(term) + 1))  # pragma: no cover


def _person_words(text: str) -> tuple[str, str] | None:
    """``maya.okafor`` / ``Maya_Okafor`` -> ("Maya", "Okafor") when it reads like a name."""
    parts = [p for p in re.split(r"[._\-\s]+", text) if p]
    if len(parts) == 2 and all(p.isalpha() and len(p) >= 2 for p in parts):
        return parts[0].capitalize(), parts[1].capitalize()
    return None


def _registrable(host: str) -> str:
    """The domain to declare for a host: its last two labels (three under ``co.uk``-style
    second levels)."""
    labels = host.lower().rstrip(".").split(".")
    keep = 3 if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in (
        "co", "com", "ac", "org", "net", "gov", "ne", "or") else 2
    return ".".join(labels[-keep:])


# ---- finding ---------------------------------------------------------------------------------


@dataclass
class _Seen:
    kind: str
    value: str
    why: str
    rules: tuple[Rule, ...]
    count: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, where: str) -> None:
        self.count += 1
        if len(self.examples) < MAX_EXAMPLES and where not in self.examples:
            self.examples.append(where)


def _texts(tree: Path) -> Iterator[tuple[str, str]]:
    """(relative path, text) of every UTF-8 text file under ``tree``, in sorted order."""
    for folder, dirs, files in os.walk(tree, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            path = Path(folder) / name
            if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_FILE_BYTES:
                continue
            try:
                text = path.read_bytes().decode("utf-8")
            except UnicodeDecodeError:
                continue
            if "\x00" not in text:
                yield path.relative_to(tree).as_posix(), text


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


class _Finder:
    def __init__(self, declared: _Declared) -> None:
        self.declared = declared
        self.stand_ins = _StandIns(declared)
        self.seen: dict[tuple[str, str], _Seen] = {}

    def note(self, kind: str, value: str, where: str, why: str,
             rules: Iterable[Rule] | None) -> None:
        key = (kind, value.casefold())
        if key not in self.seen:
            made = tuple(rules or ())
            if not made:
                return
            self.seen[key] = _Seen(kind, value, why, made)
        self.seen[key].add(where)

    # -- home paths ----------------------------------------------------------------------------

    def home_paths(self, label: str, text: str) -> None:
        for m in _HOME.finditer(text):
            user = m.group(1).rstrip(".")
            folded = user.casefold()
            if folded in GENERIC_USERS or self.declared.rewritten(user) or \
                    folded in self.declared.terms or len(user) < 2:
                continue
            where = f"{label}:{_line_of(text, m.start())}"
            self.note("home-path", m.group(0).split(user)[0] + user, where,
                      "a home folder names its user", self._home_rules(user))

    # -- obfuscated e-mail ---------------------------------------------------------------------

    def obfuscated(self, label: str, text: str) -> None:
        for m in _OBFUSCATED.finditer(text):
            plain_at = "[" not in m.group("at") and "(" not in m.group("at") \
                and "{" not in m.group("at") and "<" not in m.group("at")
            separators = _DOT_SPLIT.findall(m.group("domain"))
            labels = [p for p in _DOT_SPLIT.split(m.group("domain")) if p]
            if plain_at and all(s == "." for s in separators):
                continue  # "look at example.com": prose, not an address
            tld = labels[-1].lower()
            # "at"/"dot" spelled as plain words only before a common TLD ("see setup dot py")
            if not tld.isalpha() or tld not in _COMMON_TLDS and (plain_at or len(tld) != 2):
                continue
            domain = ".".join(labels).lower()
            local = m.group("local")
            if is_example_domain(domain) or self.declared.covers(domain):
                if self.declared.covers(local) or local.casefold() in GENERIC_MAILBOXES:
                    continue
            rules = list(self._local_rules(local))
            org = labels[-2].lower() if len(labels) >= 2 else ""
            if org and org not in PUBLIC_MAIL and not is_example_domain(domain) and \
                    not self.declared.covers(org) and not org.isdigit():
                rules.append(_term_rule(org, "example"))
            value = f"{local}@{domain}"
            where = f"{label}:{_line_of(text, m.start())}"
            self.note("obfuscated-email", value, where,
                      f"written as {m.group(0)!r} so no address finder matches it", rules)

    def _local_rules(self, local: str) -> Iterator[Rule]:
        if local.casefold() in GENERIC_MAILBOXES or self.declared.covers(local):
            return
        person = _person_words(local)
        if person is not None:
            name = " ".join(person)
            if not self.declared.has_person(name):
                yield Rule("people", name, self.stand_ins.pick(name))
            return
        if local.casefold() not in self.declared.terms:
            yield _term_rule(local, "someone")

    # -- hosts ---------------------------------------------------------------------------------

    def hosts(self, label: str, text: str) -> None:
        code = PurePosixPath(label.split("#", 1)[0]).suffix.lower() in _CODE_SUFFIXES
        for m in _HOSTNAME.finditer(text):
            host = m.group(0)
            lower = host.lower()
            if is_example_domain(lower) or _PLACEHOLDER_HOST.match(lower):
                continue
            labels = lower.split(".")
            if labels[0] in _CODE_NAMES:
                continue  # threading.local, self.cache.local: code, in prose or in code
            where = f"{label}:{_line_of(text, m.start())}"
            declared = self._declared_host(host, labels)
            if declared is not None:
                self.note("host", host, where, declared[0], [declared[1]])
                continue
            private = self._private(labels)
            if private and (not code or len(labels) > 2 or self._commented(text, m.start())):
                domain = _registrable(lower) if private == "intra" else ".".join(labels[-2:])
                self.note("private-host", host, where, "a host under a private-looking domain",
                          [_term_rule(domain, "internal.example")])

    @staticmethod
    def _commented(text: str, pos: int) -> bool:
        line = text[text.rfind("\n", 0, pos) + 1 : pos]
        return "#" in line or '"' in line or "'" in line

    @staticmethod
    def _private(labels: list[str]) -> str | None:
        tail = ".".join(labels[-2:])
        if labels[-1] in INTERNAL_SUFFIXES or tail in INTERNAL_SUFFIXES:
            return "suffix"
        if any(lab.startswith("intra") for lab in labels[:-1]) and len(labels) >= 3:
            return "intra"
        return None

    def _declared_host(self, host: str, labels: list[str]) -> tuple[str, Rule] | None:
        """A host that holds a declared organisation's name or its stand-in in a label, with
        a subdomain or under a domain that is not declared."""
        tld = labels[-1]
        if not (len(tld) == 2 or tld in _COMMON_TLDS) or len(labels) < 2:
            return None
        parts = {_fold(p) for lab in labels[:-1] for p in lab.split("-")}
        stand_in = parts & self.declared.stand_in_words
        term = parts & self.declared.term_words
        if not stand_in and not term:
            return None
        source = self.declared.back.rewrite_text(host) if stand_in else host
        domain = _registrable(source)
        if _fold(domain) in self.declared.terms:
            return None  # the anonymiser numbers these (host1.example.internal)
        if stand_in and len(labels) <= 2:
            return None  # "acme.com": the stand-in itself, nothing more
        stem = "-".join(sorted(stand_in)) if stand_in else "internal"
        why = ("a host under a declared name, rewritten only in part" if stand_in
               else "a host under another domain of a declared name")
        return why, _term_rule(domain, f"{stem}.example")

    # -- authors -------------------------------------------------------------------------------

    def authors(self, people: Sequence[tuple[str, str]], texts: Sequence[tuple[str, str]],
                commits: int) -> None:
        by_name: dict[str, tuple[str, str]] = {}
        for name, email in people:
            domain = email.rpartition("@")[2].lower()
            if _BOTS.search(name) or _BOTS.search(email.partition("@")[0]) or \
                    email.lower() == "noreply@github.com":
                continue
            if is_example_domain(domain) or domain.endswith(".invalid"):
                continue  # a made-up identity (tests, templates) names no one
            if not name.strip() or self.declared.has_person(name) or \
                    self.declared.denied.contains_term(name) or self.declared.covers(name):
                continue
            by_name.setdefault(_fold(name), (name, email))
        for name, email in by_name.values():
            rules = list(self._name_rules(name))
            domain = email.rpartition("@")[2].lower()
            labels = domain.split(".")
            org = labels[-2] if len(labels) >= 2 else ""
            if org and org not in PUBLIC_MAIL and "noreply" not in domain and \
                    not self.declared.denied.contains_term(domain) and \
                    not self.declared.covers(org):
                rules.append(_term_rule(org, "example"))
            seen = _Seen("author", f"{name} <{email}>",
                         f"author or committer in the source's last {commits} commit(s)",
                         tuple(rules))
            finder = self._name_finder(name)
            for label, text in texts:
                for line in sorted({_line_of(text, start) for start in finder(text)}):
                    seen.add(f"{label}:{line}")
            if not seen.examples:
                seen.examples.append("git history only")
            if seen.rules:
                self.seen[("author", seen.value.casefold())] = seen

    def _name_rules(self, name: str) -> Iterator[Rule]:
        given, family = split_person(name)
        if given and family and all(len(w) >= 2 for w in family) and len(name) <= 80:
            yield Rule("people", name, self.stand_ins.pick(name))
        elif len(name.split()) == 1 and len(name) >= 3:
            yield _term_rule(name, "someone")

    @staticmethod
    def _name_finder(name: str) -> Callable[[str], list[int]]:
        """Where the tree names the author, in every form the anonymiser would rewrite."""
        given, family = split_person(name)
        if given and family:
            people = PersonRewriter([(name, "Xx Yy")])
            return lambda text: [m.start for m in people.finditer(text)]
        terms = TermRewriter([(name, "someone")])
        return lambda text: [m.start for m in terms.finditer(text)]

    def _home_rules(self, user: str) -> list[Rule]:
        """A home folder's user: a person when it reads as ``given.family``, else a term."""
        person = _person_words(user)
        if person is not None:
            name = " ".join(person)
            return [] if self.declared.has_person(name) else \
                [Rule("people", name, self.stand_ins.pick(name))]
        return [_term_rule(user, "user", "someone")]


def find_hints(
    tree: Path,
    replace: Sequence[tuple[str, str]],
    people: Sequence[tuple[str, str]],
    *,
    history: Sequence[tuple[str, str]] = (),
    history_commits: int = 0,
    history_problem: str | None = None,
    fields: Mapping[str, str] | None = None,
) -> HintReport:
    """Possible identifiers in the anonymised ``tree`` (and ``fields``, labelled texts) and
    among the source's commit ``history`` (name, email), given the rules' ``replace`` and
    ``people`` pairs."""
    finder = _Finder(_Declared(replace, people))
    texts = list(_texts(tree)) + list((fields or {}).items())
    for label, text in texts:
        finder.home_paths(label, text)
        finder.obfuscated(label, text)
        finder.hosts(label, text)
    finder.authors(history, texts, history_commits)
    order = {k: i for i, k in enumerate(KINDS)}
    ranked = sorted(finder.seen.values(), key=lambda s: (order[s.kind], -s.count, s.value))
    hints = tuple(Hint(s.kind, s.value, s.why, s.count, tuple(s.examples), s.rules)
                  for s in ranked[:MAX_HINTS])
    return HintReport(hints, max(0, len(ranked) - MAX_HINTS), {
        "commits": history_commits, "people": len(history), "problem": history_problem,
    })
