"""Deny-list terms in all the forms code writes them, mapped to the same form of a replacement.

A term such as ``"Quintessa Analytics"`` is split into words (``quintessa``, ``analytics``) and
matched with any of the separators code uses between words (space, ``_``, ``-``, ``.`` or none)
in any letter case, so ``quintessa_analytics``, ``QUINTESSA-ANALYTICS`` and ``QuintessaAnalytics``
are all found by one compiled regex. Each match is rewritten to the replacement's words joined
with the same separator in the same case style (``quintessa_analytics`` → ``acme_analytics``,
``QuintessaAnalytics`` → ``AcmeAnalytics``), so identifiers, imports and file names stay
consistent with each other and the code still runs.

Boundaries are "word-ish": a match may not continue a run of letters, except across a camelCase
transition, so ``quintessa_io`` and ``getQuintessaClient`` are caught but ``quintessas`` is not.
With ``subdomains=True``, terms that are domains (``quintessa.internal``) also match their
subdomains, reported as hosts for the caller to number: subdomain labels (``warehouse``) can
identify too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property

_SPLIT = re.compile(r"[\s_.\-]+|(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SEPARATORS = (" ", "_", "-", ".", "")
_DOMAIN = re.compile(r"^[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$")
# Case-sensitive boundaries around a case-insensitive body: a match may not continue a run of
# letters, unless the letter case switches from lower to upper there (camelCase).
_LEFT = r"(?:(?<![A-Za-z])|(?<=[a-z])(?=[A-Z]))"
_RIGHT = r"(?:(?![A-Za-z])|(?<=[a-z])(?=[A-Z]))"
_SUBDOMAIN_LEFT = r"(?<![A-Za-z0-9.\-])"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\."


def split_words(term: str) -> list[str]:
    """``"Quintessa Analytics"`` / ``"quintessa_analytics"`` / ``"QuintessaAnalytics"`` → words."""
    return [w for w in _SPLIT.split(term.strip()) if w]


def _style(words: Sequence[str], case: str) -> list[str]:
    if case == "lower":
        return [w.lower() for w in words]
    if case == "upper":
        return [w.upper() for w in words]
    if case == "title":
        return [w[:1].upper() + w[1:].lower() for w in words]
    if case == "camel":
        return [w.lower() if i == 0 else w[:1].upper() + w[1:].lower() for i, w in enumerate(words)]
    return list(words)  # "original"


def render(words: Sequence[str], sep: str, case: str) -> str:
    """Join ``words`` with ``sep`` in a case style: lower, upper, title, camel or original."""
    return sep.join(_style(words, case))


def _infer_case(text: str) -> str:
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return "lower"
    if all(c.isupper() for c in letters):
        return "upper"
    if all(c.islower() for c in letters):
        return "lower"
    return "title" if letters[0].isupper() else "camel"


@dataclass(frozen=True)
class Term:
    """One deny-list entry with every exact form it has, mapped to the replacement's form."""

    term: str
    replacement: str
    words: tuple[str, ...]
    replacement_words: tuple[str, ...]
    is_domain: bool

    @cached_property
    def forms(self) -> dict[str, str]:
        """Every separator x case form of the term → the same form of the replacement."""
        table: dict[str, str] = {}
        for sep in _SEPARATORS:
            for case in ("original", "lower", "upper", "title", "camel"):
                table.setdefault(
                    render(self.words, sep, case), render(self.replacement_words, sep, case)
                )
        table[self.term] = self.replacement
        return table

    def rewrite(self, matched: str) -> str:
        """The replacement in the separator and case style of ``matched``."""
        exact = self.forms.get(matched)
        if exact is not None:
            return exact
        sep = next((c for c in matched if not c.isalnum()), "")
        return render(self.replacement_words, sep, _infer_case(matched))


@dataclass(frozen=True)
class TermMatch:
    start: int
    end: int
    text: str
    replacement: str
    term: str
    is_host: bool


def _key(text: str) -> str:
    return re.sub(r"[\s_.\-]", "", text).lower()


class TermRewriter:
    """One compiled regex for a whole deny-list; longest terms are tried first."""

    def __init__(self, pairs: Sequence[tuple[str, str]], *, subdomains: bool = False) -> None:
        terms: list[Term] = []
        for term, replacement in pairs:
            words = split_words(term)
            if not words:
                continue
            terms.append(
                Term(
                    term=term,
                    replacement=replacement,
                    words=tuple(words),
                    replacement_words=tuple(split_words(replacement)) or (replacement,),
                    is_domain=bool(_DOMAIN.match(term.strip())),
                )
            )
        # Longest first so "Quintessa Analytics" wins over "Quintessa" at the same position.
        terms.sort(key=lambda t: (-len(_key(t.term)), t.term))
        self._by_key: dict[str, Term] = {}
        for t in terms:
            self._by_key.setdefault(_key(t.term), t)
        self._subdomains = subdomains
        alternatives: list[str] = []
        for t in terms:
            body = r"[ _.\-]?".join(re.escape(w) for w in t.words)
            if t.is_domain and subdomains:
                dotted = r"\.".join(re.escape(w) for w in t.words)
                alternatives.append(
                    rf"{_SUBDOMAIN_LEFT}(?P<sub{len(alternatives)}>(?i:(?:{_LABEL})+{dotted})){_RIGHT}"
                )
            alternatives.append(rf"{_LEFT}(?i:{body}){_RIGHT}")
        self._regex = re.compile("|".join(alternatives)) if alternatives else None
        self.terms = tuple(terms)

    def term_for(self, matched: str) -> Term | None:
        return self._by_key.get(_key(matched))

    def finditer(self, text: str) -> Iterator[TermMatch]:
        if self._regex is None:
            return
        for m in self._regex.finditer(text):
            matched = m.group(0)
            if self._subdomains and any(m.groupdict().values()):
                # A host under a deny-listed domain: the caller numbers it (host1.example...).
                yield TermMatch(m.start(), m.end(), matched, matched, "", True)
                continue
            term = self.term_for(matched)
            if term is None:  # pragma: no cover - every alternative comes from a known term
                continue
            yield TermMatch(m.start(), m.end(), matched, term.rewrite(matched), term.term, False)

    def contains_term(self, text: str) -> bool:
        return self._regex is not None and self._regex.search(text) is not None

    def rewrite_text(self, text: str) -> str:
        """Apply every match in one pass (file and folder names use this too)."""
        out: list[str] = []
        pos = 0
        for m in self.finditer(text):
            out.append(text[pos : m.start])
            out.append(m.replacement)
            pos = m.end
        out.append(text[pos:])
        return "".join(out)
