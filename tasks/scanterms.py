"""The post-scan's own search for deny-listed terms (used by :mod:`tasks.postscan` only).

Independent of the rewriter on purpose (no imports from ``tasks.termforms``, ``tasks.pyapis`` or
``tasks.anonymise``; its own matching rules and its own reading of Python, through ``ast`` where
the rewriter uses ``tokenize``), so that a mistake in one is not repeated by the other.

What is a finding:

- a term, case-insensitively, with any of ``_ - . space`` between any two of its characters
  (``quin_tessa``, ``QUINTESSAANALYTICS``), that **starts a word**: the character before it is
  not an ASCII letter, or the text turns from lower to upper case there (``getQuintessa``). So
  ``Gruber``, ``HuberRegressor``, ``trying`` and ``directory is`` hold no ``Uber``/``ryi``.
  The end is left open on purpose: a word that starts with the term (``ubereats``,
  ``Quintessas``, ``squared``) is a finding although the rewriter leaves it (it cannot tell a
  compound from an inflection): it names the company as often as not, so a person decides, with
  ``replace`` or ``keep``. This is stricter than the rewriter, never looser.
- unless it lies inside an occurrence of a declared ``keep`` entry (exact text, case-sensitive);
- or, in a Python file that ``ast`` can parse, inside a name of a third-party API: an attribute
  reached from a name bound by ``import mod`` (``np.square``, ``pd.DataFrame.square``), a name
  imported ``from mod import X`` and its uses, and the module names of those imports, where
  ``mod`` is not one of the tree's own modules (a ``.py`` file or a folder of the tree), is not a
  relative import, and holds no deny-listed term itself (an internal package named after the
  company is the company's, not a third party's).

One pass over the text for all terms: separators are dropped from a case-folded copy of the text
(``str.translate``, in C), an Aho-Corasick automaton (``pyahocorasick``) finds every bare term in
it, and only those hits are mapped back to the text (walking its runs of non-separators once).
"""

from __future__ import annotations

import ast
import bisect
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import ahocorasick

__all__ = ["TermHit", "TermScan"]

_SEPARATORS = "_-. "
_DROP = {ord(c): None for c in _SEPARATORS}
_KEPT_RUN = re.compile(r"[^_\-. ]+")
_NEWLINE = re.compile(r"\r\n|\r|\n")
_LOWER_TABLE: dict[int, str] = {}


def _lower(text: str) -> str:
    """Lower case, one character for one (a character whose lower case is longer stays)."""
    if text.isascii():
        return text.lower()
    if not _LOWER_TABLE:
        for cp in range(0x30000):
            low = chr(cp).lower()
            if len(low) == 1 and low != chr(cp):
                _LOWER_TABLE[cp] = low
    return text.translate(_LOWER_TABLE)


def _bare(term: str) -> str:
    return _lower("".join(c for c in term if c not in _SEPARATORS and not c.isspace()))


def _starts_word(text: str, pos: int) -> bool:
    if pos == 0:
        return True
    before, first = text[pos - 1], text[pos]
    if not (before.isascii() and before.isalpha()):
        return True
    return before.islower() and first.isupper()


@dataclass(frozen=True)
class TermHit:
    start: int
    end: int
    term: str
    excerpt: str


class _Offsets:
    """Offsets in the separator-free copy → offsets in the text, walked forward once. Hits come
    in the order of their ends and start at most ``reach`` before it, so runs further back are
    dropped as the walk goes (memory stays bounded on a large file with many hits)."""

    def __init__(self, text: str, reach: int) -> None:
        self._runs = _KEPT_RUN.finditer(text)
        self._reach = reach
        self._bare_starts: list[int] = []
        self._text_starts: list[int] = []
        self._size = 0

    def text_offset(self, bare: int) -> int:
        while self._size <= bare:
            run = next(self._runs)
            self._bare_starts.append(self._size)
            self._text_starts.append(run.start())
            self._size += run.end() - run.start()
        i = bisect.bisect_right(self._bare_starts, bare) - 1
        return self._text_starts[i] + bare - self._bare_starts[i]

    def forget_before(self, bare: int) -> None:
        """Drop the runs that end before ``bare - reach`` (no later hit can start there)."""
        if len(self._bare_starts) > 4096:
            i = bisect.bisect_right(self._bare_starts, bare - self._reach) - 1
            if i > 2048:
                del self._bare_starts[:i]
                del self._text_starts[:i]


class TermScan:
    """Every deny-listed term, the declared ``keep`` texts and the tree's own module names."""

    def __init__(self, deny_terms: Sequence[str], keep: Sequence[str] = (),
                 own_modules: frozenset[str] = frozenset()) -> None:
        self.terms = sorted({t for t in deny_terms if _bare(t)})
        self.keep = sorted(set(keep))
        self.own_modules = own_modules
        self._automaton: ahocorasick.Automaton | None = None
        self._reach = max((len(_bare(t)) for t in self.terms), default=0)
        if self.terms:
            self._automaton = ahocorasick.Automaton()
            by_bare: dict[str, list[str]] = {}
            for term in self.terms:
                by_bare.setdefault(_bare(term), []).append(term)
            for bare, terms in by_bare.items():
                self._automaton.add_word(bare, (len(bare), tuple(terms)))
            self._automaton.make_automaton()

    def hits(self, text: str) -> Iterator[TermHit]:
        """Every term that starts a word in ``text`` (no exception applied)."""
        if self._automaton is None:
            return
        squeezed = _lower(text).translate(_DROP)
        offsets: _Offsets | None = None
        for end, (size, terms) in self._automaton.iter(squeezed):
            offsets = offsets or _Offsets(text, self._reach)
            offsets.forget_before(end)
            start = offsets.text_offset(end - size + 1)
            if not _starts_word(text, start):
                continue
            stop = offsets.text_offset(end) + 1
            for term in terms:
                yield TermHit(start, stop, term, text[start:stop])

    def findings(self, text: str, python: bool = False) -> Iterator[TermHit]:
        """The hits that no declared ``keep`` text and (``python``: a Python file) no
        third-party API name holds."""
        exempt: list[tuple[int, int]] | None = None
        for hit in self.hits(text):
            if exempt is None:
                exempt = self._keep_spans(text)
                if python:
                    exempt += self._api_spans(text)
            if not any(s <= hit.start and hit.end <= e for s, e in exempt):
                yield hit

    def terms_in(self, text: str) -> list[str]:
        return sorted({hit.term for hit in self.hits(text)})

    def _keep_spans(self, text: str) -> list[tuple[int, int]]:
        # At most MAX_KEEP entries (tasks.manifest): a str.find loop each is C-speed.
        spans: list[tuple[int, int]] = []
        for entry in self.keep:
            pos = text.find(entry)
            while pos >= 0:
                spans.append((pos, pos + len(entry)))
                pos = text.find(entry, pos + 1)
        return spans

    # -- Python -----------------------------------------------------------------------------

    def _foreign(self, module: str | None, level: int) -> bool:
        if level or not module:
            return False
        return module.split(".")[0] not in self.own_modules and not self.terms_in(module)

    def _api_spans(self, text: str) -> list[tuple[int, int]]:
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError):
            return []
        lines = _line_starts(text)

        def offset(lineno: int, col: int) -> int:
            start = lines[lineno - 1]
            end = lines[lineno] if lineno < len(lines) else len(text)
            line = text[start:end].encode("utf-8")  # ast columns count UTF-8 bytes
            return start + len(line[:col].decode("utf-8", "ignore"))

        spans: list[tuple[int, int]] = []
        modules: set[str] = set()  # names bound to a third-party module
        objects: set[str] = set()  # names bound to a third-party module's object, unrenamed
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if self._foreign(alias.name, 0):
                        at = offset(alias.lineno, alias.col_offset)
                        spans.append((at, at + len(alias.name)))
                        modules.add(alias.asname or alias.name.split(".")[0])
            elif isinstance(node, ast.ImportFrom) and self._foreign(node.module, node.level):
                segment = ast.get_source_segment(text, node) or ""
                found = re.match(r"from\s+([\w.]+)", segment)
                if found:
                    at = offset(node.lineno, node.col_offset) + found.start(1)
                    spans.append((at, found.end(1) - found.start(1) + at))
                for alias in node.names:
                    at = offset(alias.lineno, alias.col_offset)
                    spans.append((at, at + len(alias.name)))
                    if alias.asname is None:
                        objects.add(alias.name)
                    else:
                        modules.add(alias.asname)  # attributes of the renamed object
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id in objects:
                at = offset(node.lineno, node.col_offset)
                spans.append((at, at + len(node.id)))
            elif isinstance(node, ast.Attribute) and node.end_lineno is not None \
                    and node.end_col_offset is not None:
                root: ast.expr = node
                while isinstance(root, ast.Attribute):
                    root = root.value
                if isinstance(root, ast.Name) and (root.id in modules or root.id in objects):
                    end = offset(node.end_lineno, node.end_col_offset)
                    spans.append((end - len(node.attr), end))
        return spans


def _line_starts(text: str) -> list[int]:
    return [0] + [m.end() for m in _NEWLINE.finditer(text)]
