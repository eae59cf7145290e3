"""Declared people's names in the forms people write them, rewritten to the same form of a stand-in.

A person declared as ``"José Núñez" = "Jane Doe"`` (or ``"Núñez, José"``: a comma marks where a
family name of several words ends) is found, in one compiled regex per person, as:

- ``José Núñez`` / ``Núñez José`` / ``Núñez, José`` (citations, ``.bib`` author lists);
- initials: ``J. Núñez``, ``J.Núñez``, ``J Núñez``, ``Núñez, J.``, ``Núñez J`` (initials are
  case-sensitive capitals; an initial alone is never a match);
- with anything between the parts that only lays text out: spaces, a line break (with a comment
  or quote marker after it), Markdown emphasis, short HTML tags, ``~``; given-family also with
  ``_``, ``.`` or ``-`` (``jose_nunez``, ``jose.nunez``);
- accent-folded and transliterated spellings (``Jose Nunez``, ``Muller``/``Mueller`` for
  ``Müller``, ``Sergei`` for ``Сергей``), through ``text-unidecode``;
- ``CITATION.cff`` entries whose ``family-names:`` and ``given-names:`` fields hold the person.

Only the name parts are replaced (given → given, family → family, initials → initials in the same
dot/space style, same letter case), so everything between them stays and the rewrite is the same
in every file. A family name alone is not a person match: declare it under ``replace`` to rewrite
it everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache

from text_unidecode import unidecode

__all__ = ["PersonMatch", "PersonRewriter", "split_person"]

_UMLAUTS = {"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue"}
_L = r"(?<![^\W\d_])"  # not right after a letter
_R = r"(?![^\W\d_])"  # not right before a letter
_MARK = r"(?:\*{1,3}|_{1,3}|`|</?[A-Za-z][A-Za-z0-9]{0,8}>)"
_GAP = r"(?:[ \t\u00a0~]|\r?\n[ \t]*(?:(?:#+|//+|\*|>+|--|%+)[ \t]*)?)"
_SEP = rf"(?:{_MARK}*{_GAP}+{_MARK}*)"
_SEP_OR_IDENT = rf"(?:{_SEP}|[_.\-])"
_COMMA = rf"(?:{_MARK}*,{_SEP}?)"
_CFF_GAP = r"[ \t]*[\"']?"
_WINDOW = 2000  # characters either side of a family name searched for the whole name
# Lines between one field of a CITATION.cff author and the other (not a new list item).
_CFF_BETWEEN = r"[\"']?[ \t]*\r?\n(?:(?![ \t]*-[ \t])[^\n]*\n){0,12}?[ \t]*-?[ \t]*"


def split_person(name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``"Given Names Family"`` or ``"Family Name, Given"`` → (given words, family words)."""
    if "," in name:
        family, _, given = name.partition(",")
        return tuple(given.split()), tuple(family.split())
    words = name.split()
    return tuple(words[:-1]), tuple(words[-1:])


@cache
def _folds_to() -> dict[str, str]:
    """ASCII letter → every Latin letter that folds to it alone (``e`` → ``éèêëēėę…``)."""
    table: dict[str, str] = {}
    for cp in range(0xC0, 0x250):
        ch = chr(cp)
        folded = unidecode(ch).lower()
        if len(folded) == 1 and folded.isascii() and folded.isalpha() and ch.isalpha():
            table[folded] = table.get(folded, "") + ch
    return table


def _char(c: str) -> str:
    if not c.isalpha():
        return "['’]?" if c in "'’" else re.escape(c)
    folded = unidecode(c).lower()
    if len(folded) == 1 and folded.isascii() and folded.isalpha():
        letter = "[" + re.escape(folded + _folds_to().get(folded, "") + c.lower()) + "]"
        umlaut = _UMLAUTS.get(c)
        return f"(?:{re.escape(umlaut)}|{letter})" if umlaut else letter
    options = [re.escape(c)] + [re.escape(f) for f in (folded, _UMLAUTS.get(c, "")) if f]
    return "(?:" + "|".join(sorted(set(options), key=len, reverse=True)) + ")"


def _words(words: Sequence[str], sep: str) -> str:
    # Each letter may carry combining accents (text in decomposed form, NFD).
    word = ["".join(_char(c) + "[\u0300-\u036f]*" for c in w) for w in words]
    return "(?i:" + sep.join(word) + ")"


def _initials(given: Sequence[str]) -> str:
    """The first given name's capital, then the others' optionally: ``J.``, ``J.M.``, ``J M``."""
    caps = []
    for w in given:
        options = {w[0].upper(), unidecode(w[0])[:1].upper()}
        caps.append("[" + re.escape("".join(sorted(options))) + "]")
    rest = "".join(rf"(?:\.?[ \t]?-?{c})?" for c in caps[1:])
    return rf"{caps[0]}{rest}\.?"


def _case_like(matched: str, replacement: str) -> str:
    if matched.isascii() and not replacement.isascii():
        replacement = unidecode(replacement)
    letters = [c for c in matched if c.isalpha()]
    if len(letters) > 1 and all(c.isupper() for c in letters):
        return replacement.upper()
    if letters and all(c.islower() for c in letters):
        return replacement.lower()
    return replacement


def _initials_like(matched: str, given: Sequence[str]) -> str:
    letters = [w[0].upper() for w in given]
    dotted, spaced = "." in matched, " " in matched.strip()
    joiner = (". " if spaced else ".") if dotted else (" " if spaced else "")
    return joiner.join(letters) + ("." if matched.endswith(".") else "")


@dataclass(frozen=True)
class PersonMatch:
    start: int
    end: int
    text: str
    replacement: str
    person: str


class _Person:
    def __init__(self, name: str, replacement: str) -> None:
        self.name = name
        self.given, self.family = split_person(name)
        r_given, r_family = split_person(replacement)
        self.r_given, self.r_family = r_given or self.given[:0], r_family
        g_sep = _words(self.given, _SEP_OR_IDENT)
        g = _words(self.given, _SEP)
        f = _words(self.family, _SEP)
        i = _initials(self.given)
        forms = [
            # CITATION.cff: the two fields of one author, in either order.
            rf"(?i:family-names:){_CFF_GAP}(?P<f0>{f}){_CFF_BETWEEN}(?i:given-names:)"
            rf"{_CFF_GAP}(?P<g0>{g}){_R}",
            rf"(?i:given-names:){_CFF_GAP}(?P<g1>{g}){_CFF_BETWEEN}(?i:family-names:)"
            rf"{_CFF_GAP}(?P<f1>{f}){_R}",
            rf"{_L}(?P<g2>{g_sep}){_SEP_OR_IDENT}(?P<f2>{f}){_R}",
            rf"{_L}(?P<f3>{f})(?:{_COMMA}|{_SEP})(?P<g3>{g}){_R}",
            rf"{_L}(?P<f4>{f})(?:{_COMMA}|{_SEP})(?P<i4>{i})(?:(?<=\.)|{_R})",
            rf"{_L}(?P<i5>{i})(?:{_SEP}|(?<=\.))(?P<f5>{f}){_R}",
        ]
        self.regex = re.compile("|".join(f"(?:{form})" for form in forms))
        # Every form holds the family name: the forms are only tried near one (most files name
        # no one, and a single word is several times quicker to look for than six forms).
        self.family_regex = re.compile(f)

    def _windows(self, text: str) -> Iterator[tuple[int, int]]:
        """Stretches of ``text`` around each family name, merged where they overlap."""
        start = end = -1
        for m in self.family_regex.finditer(text):
            lo, hi = max(0, m.start() - _WINDOW), min(len(text), m.end() + _WINDOW)
            if lo > end >= 0:
                yield start, end
                start = -1
            start = lo if start < 0 else start
            end = hi
        if start >= 0:
            yield start, end

    def _matches(self, text: str) -> Iterator[re.Match[str]]:
        for lo, hi in self._windows(text):
            for m in self.regex.finditer(text, lo, hi):
                # Lookbehinds see the whole text; a match cut by the window's end is not one.
                if m.end() < hi or hi == len(text):
                    yield m

    def finditer(self, text: str) -> Iterator[PersonMatch]:
        for m in self._matches(text):
            for group, span in m.re.groupindex.items():
                start, end = m.span(span)
                if start < 0:
                    continue
                part = text[start:end]
                if group[0] == "g":
                    new = _case_like(part, " ".join(self.r_given))
                elif group[0] == "f":
                    new = _case_like(part, " ".join(self.r_family))
                else:
                    new = _initials_like(part, self.r_given)
                yield PersonMatch(start, end, part, new, self.name)


class PersonRewriter:
    """Every declared person's forms; :meth:`finditer` yields the name parts to replace."""

    def __init__(self, pairs: Sequence[tuple[str, str]]) -> None:
        self._people = [_Person(name, repl) for name, repl in pairs if split_person(name)[0]]

    def finditer(self, text: str) -> Iterator[PersonMatch]:
        for person in self._people:
            yield from person.finditer(text)

    def rewrite_text(self, text: str) -> str:
        """Apply every match (file and folder names use this); earlier, longer matches win."""
        out: list[str] = []
        pos = 0
        for m in sorted(self.finditer(text), key=lambda m: (m.start, -m.end)):
            if m.start < pos:
                continue
            out.append(text[pos : m.start])
            out.append(m.replacement)
            pos = m.end
        out.append(text[pos:])
        return "".join(out)
