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

The search is one pass over the text for the whole deny-list: an Aho-Corasick automaton
(``pyahocorasick``) finds every place a term's first word starts (letter case folded, length
kept); only there is that term's own compiled pattern tried, anchored, in the order the one
combined regex would try it. The result is the combined regex's, match for match (it is kept as
:meth:`TermRewriter.reference_finditer`, the baseline of ``bench/anonymise.py`` and of the tests),
but the time grows with the text and the matches found, not with text x terms as a regex
alternation's does (Python's ``re`` tries every alternative at every position).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache, cached_property

import ahocorasick

_SPLIT = re.compile(r"[\s_.\-]+|(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SEPARATORS = (" ", "_", "-", ".", "")
_DOMAIN = re.compile(r"^[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$")
# Case-sensitive boundaries around a case-insensitive body: a match may not continue a run of
# letters, unless the letter case switches from lower to upper there (camelCase).
_LEFT = r"(?:(?<![A-Za-z])|(?<=[a-z])(?=[A-Z]))"
_RIGHT = r"(?:(?![A-Za-z])|(?<=[a-z])(?=[A-Z]))"
_SUBDOMAIN_LEFT = r"(?<![A-Za-z0-9.\-])"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\."


_HOST_CHAR = re.compile(r"[A-Za-z0-9.\-]")
# Inside (?i:...) a label's [A-Za-z0-9] also takes the few letters whose case folds into ASCII
# (the Kelvin sign, dotted capital I, long s): a run of label characters is walked in that class.
_RUN_CHAR = re.compile(r"(?i:[A-Za-z0-9.\-])")
_RUN = re.compile(r"(?i:[A-Za-z0-9.\-])*")


@cache
def _fold_table() -> dict[int, str]:
    """Each character whose lower case is one other character → that character (the table
    keeps a text's length, so offsets in the folded text are offsets in the text)."""
    table: dict[int, str] = {0x130: "i"}  # "İ": re's case-insensitive match takes it for "i"
    for cp in range(0x30000):
        c = chr(cp)
        low = next((f for f in (c.casefold(), c.lower()) if len(f) == 1), c)
        if low != c:
            table.setdefault(cp, low)
    return table


def fold(text: str) -> str:
    """``text`` in lower case, character for character (same length)."""
    return text.lower() if text.isascii() else text.translate(_fold_table())


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
    return re.sub(r"[\s_.\-]", "", text).casefold()


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
        # Each alternative with the first word it starts with and whether it is a subdomain one.
        starts: list[tuple[str, bool]] = []
        for t in terms:
            body = r"[ _.\-]?".join(re.escape(w) for w in t.words)
            if t.is_domain and subdomains:
                dotted = r"\.".join(re.escape(w) for w in t.words)
                alternatives.append(
                    rf"{_SUBDOMAIN_LEFT}(?P<sub{len(alternatives)}>(?i:(?:{_LABEL})+{dotted})){_RIGHT}"
                )
                starts.append((fold(t.words[0]), True))
            alternatives.append(rf"{_LEFT}(?i:{body}){_RIGHT}")
            starts.append((fold(t.words[0]), False))
        self._regex = re.compile("|".join(alternatives)) if alternatives else None
        self._patterns = [re.compile(a) for a in alternatives]
        self._automaton: ahocorasick.Automaton | None = None
        if alternatives:
            by_word: dict[str, list[tuple[int, bool]]] = defaultdict(list)
            for i, (word, is_sub) in enumerate(starts):
                by_word[word].append((i, is_sub))
            self._automaton = ahocorasick.Automaton()
            for word, entries in by_word.items():
                self._automaton.add_word(word, (len(word), tuple(entries)))
            self._automaton.make_automaton()
        self.terms = tuple(terms)

    def _candidates(self, text: str) -> dict[int, list[int]]:
        """Position → the alternatives (by index) that can match there."""
        found: dict[int, set[int]] = defaultdict(set)
        if self._automaton is None:
            return {}
        run_start, run_checked, starts = -1, -1, [0]  # the last run of label characters
        for end, (size, entries) in self._automaton.iter(fold(text)):
            start = end - size + 1
            for index, is_sub in entries:
                if not is_sub:
                    found[start].add(index)
                    continue
                if start == 0 or text[start - 1] != ".":
                    continue
                # A subdomain match starts in the run of label characters before the domain,
                # where the character before is not an ASCII one of them (its left boundary).
                # Walks are shared between the hits in one run.
                if not (0 <= run_start <= start and (
                    start <= run_checked or _RUN.fullmatch(text, run_checked, start)
                )):
                    run_start, starts = start - 1, []
                    while run_start > 0 and _RUN_CHAR.match(text[run_start - 1]):
                        if not _HOST_CHAR.match(text[run_start - 1]):
                            starts.append(run_start)
                        run_start -= 1
                    starts.append(run_start)
                run_checked = max(run_checked, start)
                for pos in starts:
                    found[pos].add(index)
        return {pos: sorted(indices) for pos, indices in found.items()}

    def term_for(self, matched: str) -> Term | None:
        return self._by_key.get(_key(matched))

    def finditer(self, text: str) -> Iterator[TermMatch]:
        """Every match, as :meth:`reference_finditer` finds them, in one pass over ``text``."""
        last_end = 0
        for start, indices in sorted(self._candidates(text).items()):
            if start < last_end:
                continue
            for index in indices:
                m = self._patterns[index].match(text, start)
                if m is not None:
                    last_end = m.end()
                    yield self._match(m, index)
                    break

    def reference_finditer(self, text: str) -> Iterator[TermMatch]:
        """The same matches through the one combined regex (time grows with text x terms):
        the baseline :meth:`finditer` is measured and tested against."""
        if self._regex is None:
            return
        for m in self._regex.finditer(text):
            index = next(i for i, g in enumerate(self._patterns) if g.match(text, m.start()))
            yield self._match(m, index)

    def _match(self, m: re.Match[str], index: int) -> TermMatch:
        matched = m.group(0)
        if self._subdomains and any(m.groupdict().values()):
            # A host under a deny-listed domain: the caller numbers it (host1.example...).
            return TermMatch(m.start(), m.end(), matched, matched, "", True)
        term = self.term_for(matched)
        if term is None:  # pragma: no cover - every alternative comes from a known term
            raise AssertionError(f"no term for {matched!r}")
        return TermMatch(m.start(), m.end(), matched, term.rewrite(matched), term.term, False)

    def contains_term(self, text: str) -> bool:
        return next(self.finditer(text), None) is not None

    def rewrite_text(self, text: str, kept: Sequence[tuple[int, int]] = ()) -> str:
        """Apply every match in one pass (file and folder names use this too); matches inside
        one of the ``kept`` spans stay as they are."""
        out: list[str] = []
        pos = 0
        for m in self.finditer(text):
            if any(s <= m.start and m.end <= e for s, e in kept):
                continue
            out.append(text[pos : m.start])
            out.append(m.replacement)
            pos = m.end
        out.append(text[pos:])
        return "".join(out)
