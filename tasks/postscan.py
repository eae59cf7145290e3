"""The independent post-scan: an anonymised tree may be published only if this finds nothing.

Deliberately separate from the anonymiser (no imports from ``tasks.anonymise`` or its helper
modules, its own patterns), so a bug in one is not silently repeated by the other. It reads every
byte of every file, text or binary, and every file and folder name, and reports:

- deny-listed terms, case-insensitively and also with ``_``, ``-``, ``.`` and spaces removed from
  both the term and the text (``Quintessa Analytics`` is found in ``quintessa_analytics`` and in
  ``QUINTESSAANALYTICS``), where they start a word (not ``Gruber`` for ``Uber``), except inside a
  declared ``keep`` text or a third-party API name in Python (:mod:`tasks.scanterms` has the
  rules); in binary files also in UTF-16-looking runs (NUL bytes dropped);
- e-mail addresses other than ``@example.com``, ``@example.org`` and ``@example.net`` ones;
- secrets: AWS key ids and secret keys, private key blocks, JWTs, vendor tokens, high-entropy
  values assigned to key/secret/token/password names, plus detect-secrets' regex detectors
  (asked through ``analyze_string`` only: no verification, no network, no global settings);
- URLs with credentials (``scheme://user:password@host``);
- declared people's names however they are written: the text is first reduced to a skeleton
  (words folded to ASCII by ``text-unidecode``, markup, line breaks and comment markers reduced to
  one space, ``,`` and ``.`` kept) and searched for given-family, family-given, "family, given",
  initials before or after the family name (``J. Nunez``, ``Nunez, J.``), ``ae``/``oe``/``ue``
  for umlauts, and ``family-names:``/``given-names:`` fields of one CITATION.cff author. A family
  name alone is not a finding (declare it under ``replace``).

Texts inside encodings (gzip, zlib, zip members, base64 runs, notebook attachments, PNG and JPEG
metadata, UTF-16) are decoded by :mod:`tasks.unwrap` and scanned the same way, each finding's
``path`` naming where it is (``bundle.zip › inner/notes.txt``); a decoding limit that stopped the
scan (a zip bomb) is an ``encoding-limit`` finding.

A :class:`Finding` never holds a secret value: excerpts of secrets are masked.
:func:`post_scan_texts` scans texts that are not files (the manifest's title) the same way.
"""

from __future__ import annotations

import bisect
import logging
import math
import os
import re
import stat
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
from detect_secrets.plugins.base import RegexBasedDetector
from text_unidecode import unidecode

from tasks.scanterms import TermScan
from tasks.unwrap import SEP, Budget, Limited, Limits, unwrap

__all__ = ["Finding", "deny_terms_in", "own_modules", "post_scan", "post_scan_texts"]

log = logging.getLogger(__name__)

MAX_PER_KIND = 100  # findings of one kind in one file; the rest are summed up in one more

_SEPARATORS = "_-. "
_ALLOWED_EMAIL_DOMAINS = ("example.com", "example.org", "example.net")
_GENERIC_TLDS = frozenset(
    "com org net edu gov mil int io ai dev app cloud tech info biz name pro xyz site online "
    "systems solutions company consulting digital network services agency group global "
    "internal corp local lan intranet localdomain arpa".split()
)
_NOT_MAIL_HOSTS = frozenset({"self", "cls", "this", "super", "np", "torch", "tf", "jnp"})
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.)+"
    r"[A-Za-z0-9]{2,24}(?![A-Za-z0-9\-])"
)
_SECRET_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("private-key", re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")),
    ("private-key", re.compile(r"PuTTY-User-Key-File-\d")),
    ("aws-access-key", re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])")),
    (
        "aws-secret-key",
        re.compile(r"(?i)aws_?secret_?(?:access_?)?key['\"]?\s*[:=]+\s*['\"]?([A-Za-z0-9/+]{40})"),
    ),
    (
        "jwt",
        re.compile(r"(?<![A-Za-z0-9_\-])eyJ[A-Za-z0-9_\-]{4,}\.eyJ[A-Za-z0-9_\-]{4,}\.[\w\-]*"),
    ),
    ("token", re.compile(r"(?<![A-Za-z0-9])(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_\w{30,})")),
    ("token", re.compile(r"(?<![A-Za-z0-9])xox[abposre]-[A-Za-z0-9\-]{10,}")),
    ("token", re.compile(r"(?<![A-Za-z0-9])[sr]k_(?:live|test)_[A-Za-z0-9]{10,}")),
    ("token", re.compile(r"(?<![A-Za-z0-9])AIza[0-9A-Za-z_\-]{35}")),
    ("token", re.compile(r"(?<![A-Za-z0-9])hf_[A-Za-z0-9]{30,}")),
    ("token", re.compile(r"(?<![A-Za-z0-9\-])sk-[A-Za-z0-9_\-]{32,}")),
)
_URL_CREDENTIALS = re.compile(
    r"(?i)(?<![a-z0-9+.\-])[a-z][a-z0-9+.\-]*://([^\s/@'\"<>:]+):([^\s/@'\"<>]*)@"
)
_KEY_NAME = (
    r"[A-Za-z0-9_.\-]*(?:password|passwd|secret|token|api[_\-]?key|apikey|"
    r"(?:access|secret|private)[_\-]?key)"
)
_VALUE = r"[A-Za-z0-9+/=_\-.~]{12,}"
_ASSIGNED_QUOTED = re.compile(
    rf"(?i)(?<![A-Za-z0-9_.\-]){_KEY_NAME}['\"]?\s*(?:=|:|==|:=|=>)\s*(['\"])({_VALUE})\1"
)
_ASSIGNED_BARE = re.compile(
    rf"(?im)^[ \t]*(?:export[ \t]+)?{_KEY_NAME}[ \t]*[=:][ \t]*({_VALUE})(?=[ \t]*(?:#|$))"
)
_CODE_SUFFIXES = frozenset(
    ".py .pyi .ipynb .js .jsx .ts .tsx .java .go .rs .c .h .cc .cpp .hpp .rb .r .scala .kt "
    ".swift .cs .php .sql .jl .lua .pl".split()
)
_PLACEHOLDER = re.compile(r"REDACTED_[A-Z_]+_\d+")
_LIBRARY_MAX_LINE = 1000
_LIBRARY_SKIP = frozenset({"IPPublicDetector", "PrivateKeyDetector", "BasicAuthDetector"})


@dataclass(frozen=True)
class Finding:
    path: str  # relative to the tree (folders end with "/"), or a text's label
    line: int | None  # None for names and for binary files
    kind: str
    excerpt: str  # masked for secrets and credentials

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _mask(value: str) -> str:
    shown = min(4, len(value) // 4)
    return f"{value[:shown]}…[{len(value)} chars]"


def _mask_email(value: str) -> str:
    local, _, domain = value.rpartition("@")
    return f"{local[:1]}…@{domain}"


def _entropy(value: str) -> float:
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


_SKELETON_TOKEN = re.compile(
    r"((?:[^\W_]|[\u0300-\u036f])+)|([,.])|((?:<[^<>\n]{1,20}>|[^\w,.]|_)+)"
)
_UMLAUT_SPELLING = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue"})
_CFF_FIELD = r"(?i:family names|given names)"
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


class _Skeleton:
    """The text as ASCII words, single spaces, commas and dots, with a map back to the text."""

    def __init__(self, text: str) -> None:
        parts: list[str] = []
        self.starts: list[int] = []  # skeleton offset of each token
        self.spans: list[tuple[int, int]] = []  # the token's span in the text
        size = 0
        for m in _SKELETON_TOKEN.finditer(text):
            piece = unidecode(m.group(1)) if m.group(1) else (m.group(2) or " ")
            if piece == " " and parts and parts[-1] == " ":
                self.spans[-1] = (self.spans[-1][0], m.end())
                continue
            parts.append(piece)
            self.starts.append(size)
            self.spans.append(m.span())
            size += len(piece)
        self.text = "".join(parts)

    def span(self, start: int, end: int) -> tuple[int, int]:
        first = bisect.bisect_right(self.starts, start) - 1
        last = bisect.bisect_right(self.starts, max(start, end - 1)) - 1
        return self.spans[first][0], self.spans[last][1]


def _spellings(word: str) -> str:
    """``Müller`` → ``(?:Muller|Mueller)``: every ASCII spelling of one word."""
    options = {unidecode(word), unidecode(word.translate(_UMLAUT_SPELLING))}
    return "(?:" + "|".join(re.escape(o) for o in sorted(options, key=len, reverse=True)) + ")"


@dataclass(frozen=True)
class _PersonScan:
    name: str
    regex: re.Pattern[str]  # every form, in a skeleton
    first_word: re.Pattern[str]  # the first family word, in the folded text


def _person_patterns(people: Sequence[str]) -> list[_PersonScan]:
    """Each declared person's forms, searched in a :class:`_Skeleton` (one regex a person)."""
    out: list[_PersonScan] = []
    for name in sorted(set(people)):
        family_text, comma, given_text = name.partition(",")
        if not comma:
            *given_words, last = name.split() or [""]
            given_text, family_text = " ".join(given_words), last
        given, family = given_text.split(), family_text.split()
        if not given or not family:
            continue
        g = "(?i:" + "[ .]{1,2}".join(_spellings(w) for w in given) + ")"
        f = "(?i:" + " ".join(_spellings(w) for w in family) + ")"
        first = {given[0][0].upper(), unidecode(given[0][0])[:1].upper()}
        i = "[" + re.escape("".join(sorted(first))) + r"](?:\.? ?[A-Z]){0,2}"
        between = rf"(?:(?!{_CFF_FIELD}).){{0,300}}?"
        forms = [
            rf"\b{g}[ .]{{1,2}}{f}\b",
            rf"\b{f},? {g}\b",
            rf"(?<![A-Za-z0-9]){i}(?:\. ?| ){f}\b",
            rf"\b{f},? {i}\.?(?![A-Za-z])",
            rf"(?i:family names) {f} {between}(?i:given names) {g}\b",
            rf"(?i:given names) {g} {between}(?i:family names) {f}\b",
        ]
        # A cheap, exact pre-check: a skeleton word is the folded word, so no folded text holding
        # the first family word (in any spelling) means no skeleton to build for this person.
        first_word = "(?i:" + _spellings(family[0]) + ")"
        out.append(_PersonScan(name, re.compile("|".join(forms)), re.compile(first_word)))
    return out


def _person_findings(text: str, people: list[_PersonScan]) -> Iterator[tuple[int, str]]:
    """(offset in ``text``, excerpt) of every declared person found."""
    if not people:
        return
    folded = _NON_ASCII.sub(lambda m: str(unidecode(m.group(0))), text)
    candidates = [p for p in people if p.first_word.search(folded)]
    if not candidates:
        return
    skeleton = _Skeleton(text)
    for person in candidates:
        for m in person.regex.finditer(skeleton.text):
            start, end = skeleton.span(m.start(), m.end())
            yield start, text[start:end]


def _mail_address(match: re.Match[str]) -> str | None:
    """The address in an e-mail-shaped match, or None when it is code or an allowed address.

    Trailing labels that cannot be a TLD are cut (``maya@corp.com.txt`` → ``maya@corp.com``).
    """
    local, _, domain = match.group(0).rpartition("@")
    labels = domain.lower().split(".")
    if labels[0] in _NOT_MAIL_HOSTS:
        return None  # x@self.fc is matrix multiplication
    while len(labels) > 1 and not (
        labels[-1].isalpha() and (len(labels[-1]) == 2 or labels[-1] in _GENERIC_TLDS)
    ):
        labels.pop()
    d = ".".join(labels)
    if len(labels) < 2 or any(d == a or d.endswith("." + a) for a in _ALLOWED_EMAIL_DOMAINS):
        return None
    return f"{local}@{d}"


def _library_plugins() -> list[Any]:
    classes: list[type[Any]] = list(get_mapping_from_secret_type_to_class().values())
    chosen = [c for c in classes if issubclass(c, RegexBasedDetector)]
    chosen = [c for c in chosen if c.__name__ not in _LIBRARY_SKIP]
    return [c() for c in sorted(chosen, key=lambda c: c.__name__)]


class _FileScan:
    def __init__(
        self, rel: str, text: str, binary: bool, terms: TermScan,
        people: list[_PersonScan],
    ) -> None:
        self.rel, self.text, self.binary, self.terms = rel, text, binary, terms
        self.people = people
        self.newlines = [m.start() for m in re.finditer("\n", text)] if not binary else []

    def line(self, pos: int) -> int | None:
        if self.binary:
            return None
        lo, hi = 0, len(self.newlines)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.newlines[mid] < pos:
                lo = mid + 1
            else:
                hi = mid
        return lo + 1

    def findings(self) -> Iterator[Finding]:
        texts = [self.text]
        if self.binary and "\x00" in self.text:
            texts.append(self.text.replace("\x00", ""))  # UTF-16 strings in binaries
        python = not self.binary and PurePosixPath(self.rel).suffix.lower() in (".py", ".pyi")
        for i, text in enumerate(texts):
            for hit in self.terms.findings(text, python):
                line = self.line(hit.start) if i == 0 else None
                yield Finding(self.rel, line, "deny-term", hit.excerpt)
            for start, excerpt in _person_findings(text, self.people):
                line = self.line(start) if i == 0 else None
                yield Finding(self.rel, line, "person", excerpt)
            for m in _EMAIL.finditer(text):
                address = _mail_address(m)
                if address is not None:
                    line = self.line(m.start()) if i == 0 else None
                    yield Finding(self.rel, line, "email", _mask_email(address))
        yield from self._secrets()

    def _secrets(self) -> Iterator[Finding]:
        text = self.text
        for kind, regex in _SECRET_PATTERNS:
            for m in regex.finditer(text):
                yield Finding(self.rel, self.line(m.start()), kind, _mask(m.group(0)))
        for m in _URL_CREDENTIALS.finditer(text):
            user, password = m.group(1), m.group(2)
            if any(t in user + password for t in ("${", "{{", "%(", "<")):
                continue  # a template, not a credential
            excerpt = f"{m.group(0).split('://')[0]}://{_mask(user)}:{_mask(password)}@"
            yield Finding(self.rel, self.line(m.start()), "url-credentials", excerpt)
        regexes = [(_ASSIGNED_QUOTED, 2)]
        if PurePosixPath(self.rel).suffix.lower() not in _CODE_SUFFIXES:
            regexes.append((_ASSIGNED_BARE, 1))
        for regex, group in regexes:
            for m in regex.finditer(text):
                value = m.group(group)
                if _PLACEHOLDER.fullmatch(value) or _entropy(value) < 3.5:
                    continue
                if not (re.search(r"[A-Za-z]", value) and re.search(r"[0-9]", value)):
                    continue
                line = self.line(m.start(group))
                yield Finding(self.rel, line, "secret-assignment", _mask(value))
        if self.binary:
            return
        # Some detect-secrets patterns are quadratic on long lines: those get our patterns only.
        lines = text.split("\n")
        short = "\n".join("" if len(line) > _LIBRARY_MAX_LINE else line for line in lines)
        for plugin in _library_plugins():
            for value in sorted({v for v in plugin.analyze_string(short) if isinstance(v, str)}):
                if len(value) < 8 or _PLACEHOLDER.fullmatch(value):
                    continue
                kind = f"detect-secrets:{plugin.secret_type}"
                yield Finding(self.rel, self.line(text.find(value)), kind, _mask(value))


def _name_findings(
    rel: str, name: str, terms: TermScan, people: list[_PersonScan],
) -> Iterator[Finding]:
    for hit in terms.findings(name):
        yield Finding(rel, None, "deny-term-in-name", hit.excerpt)
    for _start, excerpt in _person_findings(name, people):
        yield Finding(rel, None, "person-in-name", excerpt)
    for m in _EMAIL.finditer(name):
        address = _mail_address(m)
        if address is not None:
            yield Finding(rel, None, "email-in-name", _mask_email(address))


def _capped(findings: Iterator[Finding]) -> list[Finding]:
    seen: set[Finding] = set()
    per_kind: Counter[tuple[str, str]] = Counter()
    out: list[Finding] = []
    for f in findings:
        if f in seen:
            continue
        seen.add(f)
        per_kind[(f.path, f.kind)] += 1
        if per_kind[(f.path, f.kind)] <= MAX_PER_KIND:
            out.append(f)
    for (path, kind), n in sorted(per_kind.items()):
        if n > MAX_PER_KIND:
            out.append(Finding(path, None, kind, f"… and {n - MAX_PER_KIND} more"))
    return out


def _inside(
    rel: str, data: bytes, terms: TermScan, people: list[_PersonScan], budget: Budget,
) -> Iterator[Finding]:
    """What the same scanners find in the texts decoded from inside a file (:mod:`tasks.unwrap`),
    each under its label (``bundle.zip › inner/notes.txt``); a limit that stopped the decoding
    is a finding too (``encoding-limit``)."""
    for piece in unwrap(rel, data, tree=budget):
        if isinstance(piece, Limited):
            yield Finding(piece.label, None, "encoding-limit", piece.reason)
        else:
            yield from _FileScan(piece.label, piece.text, piece.binary, terms, people).findings()


def _scan(tree: Path, terms: TermScan, people: list[_PersonScan]) -> Iterator[Finding]:
    budget = Budget(Limits())  # decoded bytes for the whole tree
    for dirpath, dirnames, filenames in os.walk(tree, followlinks=False):
        here = Path(dirpath)
        base = here.relative_to(tree).as_posix()
        prefix = "" if base == "." else base + "/"
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            path = here / name
            st = os.lstat(path)
            is_dir = stat.S_ISDIR(st.st_mode)
            rel = prefix + name + ("/" if is_dir else "")
            yield from _name_findings(rel, name, terms, people)
            if SEP.strip() in name:  # it would read as a part inside another file ("a.zip › x")
                yield Finding(rel, None, "confusing-name",
                              f"a name holding {SEP.strip()!r}, which labels parts inside files")
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(path)
                yield Finding(rel, None, "symlink", "a symbolic link (not followed)")
                yield from _name_findings(rel, target, terms, people)
            elif stat.S_ISREG(st.st_mode):
                data = path.read_bytes()
                try:
                    text, binary = data.decode("utf-8"), b"\x00" in data
                except UnicodeDecodeError:
                    text, binary = data.decode("latin-1"), True
                yield from _FileScan(rel, text, binary, terms, people).findings()
                yield from _inside(rel, data, terms, people, budget)
            elif not is_dir:
                yield Finding(rel, None, "special-file", "not a regular file")
        dirnames[:] = [d for d in dirnames if not (here / d).is_symlink()]


def own_modules(tree: Path) -> frozenset[str]:
    """The names ``import`` finds in ``tree`` itself: every ``.py`` file's stem and every
    folder holding one (at any depth: tests and ``src/`` layouts import them too)."""
    names: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(tree, followlinks=False):
        dirnames[:] = [d for d in dirnames if not (Path(dirpath) / d).is_symlink()]
        py = [f for f in filenames if f.endswith((".py", ".pyi"))]
        names.update(f.rsplit(".", 1)[0] for f in py)
        if py and Path(dirpath) != tree:
            names.update(Path(dirpath).relative_to(tree).parts)
    return frozenset(names)


def post_scan(
    tree: Path, deny_terms: Sequence[str], people: Sequence[str] = (), keep: Sequence[str] = ()
) -> list[Finding]:
    """Every finding in ``tree``, sorted by path, line and kind; empty means publishable.

    ``people`` are declared names (``"José Núñez"`` or ``"Núñez, José"``); ``keep`` the
    declared exceptions (a term inside one of these texts is not a finding)."""
    terms = TermScan(deny_terms, keep, own_modules(tree))
    findings = _capped(_scan(tree, terms, _person_patterns(people)))
    findings.sort(key=lambda f: (f.path, f.line or 0, f.kind, f.excerpt))
    log.info("post-scan of %s: %d findings", tree, len(findings))
    return findings


def post_scan_texts(texts: Mapping[str, str], deny_terms: Sequence[str],
                    people: Sequence[str] = (), keep: Sequence[str] = ()) -> list[Finding]:
    """Every finding in texts that are not files (the manifest's title), each reported under
    its label (``pairlab-task.toml:task.title``) with the line inside the text."""
    terms, persons = TermScan(deny_terms, keep), _person_patterns(people)
    found = (f for label, text in texts.items()
             for f in _FileScan(label, text, False, terms, persons).findings())
    findings = _capped(found)
    findings.sort(key=lambda f: (f.path, f.line or 0, f.kind, f.excerpt))
    return findings


def deny_terms_in(text: str, deny_terms: Sequence[str]) -> list[str]:
    """The deny-listed terms found in ``text`` the way the post-scan finds them (any case,
    separators ignored, starting a word), each once, in sorted order."""
    return TermScan(deny_terms).terms_in(text)
