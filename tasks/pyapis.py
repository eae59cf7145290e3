"""Names in Python source that belong to a third-party API, which the anonymiser keeps.

A deny-listed word can be a real library's name: ``np.square`` (company "Square"),
``HuberRegressor``. Rewriting those breaks the code, and they name the library, not the company.
What counts as third-party, read from the tokens (``tokenize``; the post-scan reads the same
thing independently, through ``ast``):

- ``import mod`` / ``import mod.sub as m``: the module names in the statement, and every
  attribute reached from the bound name (``np.square``, ``np.linalg.square``, ``pd.DataFrame.x``);
- ``from mod import X`` / ``... import X as Y``: ``mod``, ``X`` in the statement, every later
  use of ``X`` (``HuberRegressor().fit``) and attributes reached from ``X`` or ``Y``;

where ``mod`` is not a relative import, its first part is not one of the repository's own
modules (a ``.py`` file or a folder holding one, anywhere in the tree), and its dotted name holds
no deny-listed term: an internal package named after the company (``import uber_sdk``) is the
company's own name, and is rewritten like the rest.

Chosen: names only (tokens), never strings or comments, which are prose (``keep`` covers a
library name in prose), and no scope analysis (a local variable that shadows ``np`` is taken for
numpy: rare, and the anonymiser's report lists every name it kept this way). An alias the author
chose (``import numpy as uber_np``) is the author's name and is rewritten. Source that
``tokenize`` cannot read keeps nothing.
"""

from __future__ import annotations

import io
import os
import re
import tokenize
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["KeptName", "might_keep", "own_modules", "third_party_names"]

_NEWLINE = re.compile(r"\n")
_IMPORT_LINE = re.compile(r"^[ \t]*(?:from[ \t]+([\w.]+)[ \t]+import\b|import[ \t]+([\w.]+))(.*)$",
                          re.MULTILINE)
_IDENT = re.compile(r"\w+")
_CHAIN_BEFORE = re.compile(r"(\w+)(?:[ \t]*\.[ \t]*\w+)*[ \t]*\.[ \t]*\Z")
_SKIP = frozenset({tokenize.NL, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT})


@dataclass(frozen=True)
class KeptName:
    start: int
    end: int
    label: str  # how the report shows it: "np.square", "sklearn.linear_model.HuberRegressor"


def _statements(tokens: list[tokenize.TokenInfo]) -> Iterator[list[tokenize.TokenInfo]]:
    """Logical lines, comments and layout tokens left out."""
    current: list[tokenize.TokenInfo] = []
    for tok in tokens:
        if tok.type in (tokenize.NEWLINE, tokenize.ENDMARKER) or tok.string == ";":
            if current:
                yield current
            current = []
        elif tok.type not in _SKIP:
            current.append(tok)
    if current:
        yield current


def _dotted(toks: list[tokenize.TokenInfo], i: int) -> tuple[list[tokenize.TokenInfo], int]:
    """The NAME tokens of a dotted name starting at ``toks[i]``, and the index after it."""
    names: list[tokenize.TokenInfo] = []
    while i < len(toks) and toks[i].type == tokenize.NAME:
        names.append(toks[i])
        if i + 1 < len(toks) and toks[i + 1].string == ".":
            i += 2
        else:
            i += 1
            break
    return names, i


def might_keep(source: str, spans: Sequence[tuple[int, int]], own_modules: frozenset[str],
               is_denied: Callable[[str], bool]) -> bool:
    """A cheap, conservative pre-check (regexes, no tokenizer): False only when
    :func:`third_party_names` could keep none of ``spans`` (so a file whose terms are all the
    company's own names is not tokenized: ``tokenize`` reads about 1 MB/s).

    A kept name is on a third-party import line, or is a name imported there, or follows a dotted
    chain from one; the lines are read roughly (a parenthesised list: to its ``)``) and every
    identifier on them counts, which can only say "maybe" too often, never too rarely."""
    names: set[str] = set()
    for m in _IMPORT_LINE.finditer(source):
        module = m.group(1) or m.group(2)
        if module.split(".")[0] in own_modules or is_denied(module):
            continue
        rest = m.group(3)
        if "(" in rest and ")" not in rest:
            close = source.find(")", m.end())
            rest = source[m.start(3): close if close >= 0 else len(source)]
        elif rest.rstrip().endswith("\\"):
            end = source.find("\n", m.end() + 1)
            rest = source[m.start(3): end if end >= 0 else len(source)]
        names.update(_IDENT.findall(module + " " + rest))
    if not names:
        return False
    for start, end in spans:
        # The identifier holding the span, and the dotted chain before it.
        left = start
        while left > 0 and (source[left - 1].isalnum() or source[left - 1] == "_"):
            left -= 1
        right = end
        while right < len(source) and (source[right].isalnum() or source[right] == "_"):
            right += 1
        if source[left:right] in names:
            return True
        chain = _CHAIN_BEFORE.search(source, max(0, left - 300), left)
        if chain is not None and chain.group(1) in names:
            return True
    return False


def third_party_names(
    source: str, own_modules: frozenset[str], is_denied: Callable[[str], bool]
) -> list[KeptName]:
    """Spans (character offsets) of the names in ``source`` that belong to a third-party API."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError, ValueError):
        return []
    starts = [0] + [m.end() for m in _NEWLINE.finditer(source)]

    def span(tok: tokenize.TokenInfo) -> tuple[int, int]:
        at = starts[tok.start[0] - 1] + tok.start[1]
        return at, at + len(tok.string)

    def foreign(module: str) -> bool:
        return module.split(".")[0] not in own_modules and not is_denied(module)

    kept: list[KeptName] = []
    bound: dict[str, str] = {}  # a name bound by a third-party import → what it stands for
    objects: set[str] = set()  # names imported from a module unrenamed: their uses are kept
    in_imports: set[tuple[int, int]] = set()  # token positions inside import statements
    for stmt in _statements(tokens):
        head = stmt[0].string
        if head == "import":
            i = 1
            while i < len(stmt):
                names, i = _dotted(stmt, i)
                module = ".".join(t.string for t in names)
                alias = None
                if i < len(stmt) and stmt[i].string == "as" and i + 1 < len(stmt):
                    alias, i = stmt[i + 1], i + 2
                if names and foreign(module):
                    kept += [KeptName(*span(t), module) for t in names]
                    bound[alias.string if alias else names[0].string] = (
                        module if alias else names[0].string)
                i += 1  # the comma
            in_imports.update(t.start for t in stmt)
        elif head == "from" and len(stmt) > 1 and stmt[1].type == tokenize.NAME:
            names, i = _dotted(stmt, 1)
            module = ".".join(t.string for t in names)
            in_imports.update(t.start for t in stmt)
            if not foreign(module) or i >= len(stmt) or stmt[i].string != "import":
                continue
            kept += [KeptName(*span(t), module) for t in names]
            rest = [t for t in stmt[i + 1:] if t.type == tokenize.NAME]
            j = 0
            while j < len(rest):
                name = rest[j]
                kept.append(KeptName(*span(name), f"{module}.{name.string}"))
                if j + 2 < len(rest) and rest[j + 1].string == "as":
                    bound[rest[j + 2].string] = f"{module}.{name.string}"
                    j += 3
                else:
                    bound[name.string] = f"{module}.{name.string}"
                    objects.add(name.string)
                    j += 1
    if not bound:
        return kept
    code = [t for t in tokens if t.type not in _SKIP]
    for k, tok in enumerate(code):
        if tok.type != tokenize.NAME or tok.string not in bound:
            continue
        if tok.start in in_imports:
            continue
        if k > 0 and code[k - 1].string == ".":
            continue  # an attribute of something else that happens to share the name
        label = bound[tok.string]
        if tok.string in objects:
            kept.append(KeptName(*span(tok), label))
        m = k
        while m + 2 < len(code) and code[m + 1].string == "." \
                and code[m + 2].type == tokenize.NAME:
            label = f"{label}.{code[m + 2].string}"
            kept.append(KeptName(*span(code[m + 2]), label))
            m += 2
    return kept


def own_modules(tree: Path) -> frozenset[str]:
    """What ``import`` finds in the repository itself: every ``.py`` file's stem and every folder
    holding one, at any depth (tests and ``src/`` layouts import them as top-level names)."""
    names: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(tree, followlinks=False):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if not (here / d).is_symlink()]
        stems = [f.rsplit(".", 1)[0] for f in filenames if f.endswith((".py", ".pyi"))]
        names.update(stems)
        if stems and here != tree:
            names.update(here.relative_to(tree).parts)
    return frozenset(names)
