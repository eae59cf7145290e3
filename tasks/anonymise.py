"""Anonymise an exported task tree: drop, rewrite, rename, flag — and report every change.

``anonymise_tree(src, dest, rules)`` copies a snapshot (regular files only) into an empty
``dest``:

1. paths matching the drop rules (:mod:`tasks.droprules`) are left out;
2. text files are rewritten in one pass each: secrets (:mod:`tasks.secretscan`) become
   ``REDACTED_<KIND>_<n>``, e-mail addresses ``person<n>@example.com``, internal hosts
   ``host<n>.example.internal``, IP addresses ``192.0.2.<n>`` / ``2001:db8::<n>``, URL
   credentials disappear (:mod:`tasks.netscan`), deny-listed terms take the same form of their
   replacement (:mod:`tasks.termforms`), and declared people's names, in every form people write
   them, the same form of their stand-in (:mod:`tasks.personforms`). Numbers are per distinct
   value across the whole tree, so a value and every copy of it stay equal and the code still runs;
3. notebooks lose outputs and identifying metadata (:mod:`tasks.notebooks`);
4. file and folder names holding deny-listed terms or people are renamed the same way;
5. binary files, images and documents are copied unchanged but flagged for a person to review;
6. ``fields``, texts from the manifest that people see (the task title), are rewritten last
   with the same rules and numbering, labelled like files (``pairlab-task.toml:task.title``).

Deny-listed terms are left as they are inside a declared ``keep`` text (exact, case-sensitive:
``keep = ["Gruber", "np.square"]``) and, in ``.py`` files, inside third-party API names
(:mod:`tasks.pyapis`: ``np.square``, ``HuberRegressor`` imported from sklearn); the report
lists each ``keep`` entry with its count of occurrences and each kept API name with its count.

Everything is deterministic: files are visited in sorted order, placeholders are numbered in
that order, and the output and the :class:`~tasks.anonreport.AnonReport` are byte-identical
between runs. Symbolic links are never followed (they are flagged and left out). The function
blocks; call it through ``asyncio.to_thread``. An *independent* check of the result is
:func:`tasks.postscan.post_scan`.
"""

from __future__ import annotations

import bisect
import ipaddress
import logging
import os
import re
import stat
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol

import ahocorasick

from tasks.anonreport import AnonReport, DroppedPath, Flag, Kept, RenamedPath, Replacement
from tasks.droprules import DropRule, make_rules, match_drop
from tasks.netscan import find_bare_hosts, find_emails, find_ips, find_url_parts
from tasks.notebooks import clean_notebook
from tasks.personforms import PersonRewriter
from tasks.pyapis import might_keep, own_modules, third_party_names
from tasks.secretscan import find_secrets, is_code, mask, placeholder
from tasks.termforms import TermRewriter

__all__ = ["AnonReport", "DroppedPath", "Flag", "Kept", "RenamedPath", "Replacement",
           "RulesLike", "anonymise_tree"]

log = logging.getLogger(__name__)

FLAG_SUFFIXES = frozenset(
    ".png .jpg .jpeg .gif .bmp .tif .tiff .webp .ico .svg .heic .pdf .doc .docx .xls .xlsx "
    ".ppt .pptx .odt .ods .zip .tar .gz .tgz .bz2 .xz .7z .parquet .feather .arrow .pkl "
    ".pickle .joblib .npy .npz .h5 .hdf5 .pt .pth .ckpt .onnx .safetensors .db .sqlite "
    ".sqlite3 .mp3 .mp4 .wav .mov".split()
)
# At equal length the more specific finding wins.
_PRIORITY = {
    "secret": 0, "url-credentials": 1, "email": 2, "person": 3, "term": 4, "host": 5, "ip": 6,
}
_NEWLINE = re.compile("\n")
_SECRET_KIND_ORDER = ("private-key", "aws-access-key", "aws-secret-key", "jwt", "token", "secret")
_PYTHON = (".py", ".pyi")


class RulesLike(Protocol):
    """What the anonymiser needs from ``tasks.manifest.AnonymiseRules``."""

    @property
    def drop(self) -> Sequence[str]: ...

    @property
    def replace(self) -> Sequence[tuple[str, str]]: ...

    @property
    def people(self) -> Sequence[tuple[str, str]]: ...

    @property
    def keep(self) -> Sequence[str]: ...


class _KeepList:
    """The declared ``keep`` texts, found in one pass (Aho-Corasick), counted as they are met."""

    def __init__(self, entries: Sequence[str]) -> None:
        self.entries = tuple(dict.fromkeys(entries))
        self.counts: Counter[str] = Counter()
        self._automaton: ahocorasick.Automaton | None = None
        if self.entries:
            self._automaton = ahocorasick.Automaton()
            for entry in self.entries:
                self._automaton.add_word(entry, entry)
            self._automaton.make_automaton()

    def spans(self, text: str, count: bool = True) -> list[tuple[int, int]]:
        """Where a kept text occurs in ``text`` (each occurrence counted, if ``count``)."""
        if self._automaton is None:
            return []
        out = []
        for end, entry in self._automaton.iter(text):
            self.counts[entry] += count
            out.append((end - len(entry) + 1, end + 1))
        return out


def _inside(spans: Sequence[tuple[int, int]], start: int, end: int) -> bool:
    return any(s <= start and end <= e for s, e in spans)


@dataclass(frozen=True)
class _Edit:
    start: int
    end: int
    rule: str  # a key of _PRIORITY
    kind: str  # secret kind, or the rule again
    original: str
    replacement: str | None = None  # None: numbered by the registry when applied
    claim: bool = False


class _Registry:
    """Consistent numbered placeholders for one tree."""

    _V4_POOLS = (("192.0.2.", 254), ("198.51.100.", 254), ("203.0.113.", 254))

    def __init__(self) -> None:
        self._maps: dict[str, dict[str, str]] = {}
        self._counters: Counter[str] = Counter()

    def _next(self, counter: str) -> int:
        self._counters[counter] += 1
        return self._counters[counter]

    def resolve(self, edit: _Edit) -> str:
        if edit.replacement is not None:
            return edit.replacement
        family, key = edit.rule, edit.original
        if edit.rule in ("email", "host"):
            key = key.lower().rstrip(".")
        elif edit.rule == "ip":
            key = str(ipaddress.ip_address(key))
        known = self._maps.setdefault(family, {})
        if key not in known:
            known[key] = self._new(edit, key)
        return known[key]

    def _new(self, edit: _Edit, key: str) -> str:
        if edit.rule == "email":
            return f"person{self._next('email')}@example.com"
        if edit.rule == "host":
            return f"host{self._next('host')}.example.internal"
        if edit.rule == "ip":
            if ipaddress.ip_address(key).version == 6:
                return f"2001:db8::{self._next('ipv6'):x}"
            n = self._next("ipv4")
            for prefix, size in self._V4_POOLS:
                if n <= size:
                    return f"{prefix}{n}"
                n -= size
            return f"198.18.{(n - 1) // 254}.{(n - 1) % 254 + 1}"  # RFC 2544 benchmarking range
        return placeholder(edit.kind, self._next(edit.kind))


def _edit_rank(e: _Edit) -> tuple[bool, int, int, int, int]:
    kind_rank = _SECRET_KIND_ORDER.index(e.kind) if e.rule == "secret" else 0
    return (not e.claim, -(e.end - e.start), _PRIORITY[e.rule], kind_rank, e.start)


def _choose(edits: list[_Edit]) -> list[_Edit]:
    """Non-overlapping edits in text order: within each group of overlapping findings, claimed
    spans (key blocks, URL parts) first, then the longest, then the most specific rule."""
    chosen: list[_Edit] = []
    group: list[_Edit] = []
    group_end = -1
    for e in sorted((e for e in edits if e.start < e.end), key=lambda e: (e.start, -e.end)):
        if group and e.start >= group_end:
            chosen.extend(_resolve(group))
            group = []
        group.append(e)
        group_end = max(group_end, e.end) if len(group) > 1 else e.end
    chosen.extend(_resolve(group))
    return chosen


def _resolve(group: list[_Edit]) -> list[_Edit]:
    if len(group) <= 1:
        return group
    taken: list[_Edit] = []
    for e in sorted(group, key=_edit_rank):
        if all(e.end <= t.start or t.end <= e.start for t in taken):
            taken.append(e)
    return sorted(taken, key=lambda e: e.start)


class _Anonymiser:
    def __init__(self, rules: RulesLike, extra_drop: Sequence[str],
                 modules: frozenset[str] = frozenset()) -> None:
        pairs = [(str(t), str(r)) for t, r in rules.replace]
        self.text_terms = TermRewriter(pairs, subdomains=True)
        self.name_terms = TermRewriter(pairs)
        self.keep = _KeepList([str(k) for k in rules.keep])
        self.modules = modules
        self.kept_api: Counter[str] = Counter()
        self.folders_seen: set[str] = set()
        self.people = PersonRewriter([(str(n), str(r)) for n, r in rules.people])
        self.drop_rules: tuple[DropRule, ...] = make_rules(rules.drop, extra_drop)
        self.registry = _Registry()
        self.replacements: list[Replacement] = []
        self.dropped: list[DroppedPath] = []
        self.renamed: dict[str, str] = {}
        self.flags: list[Flag] = []
        self.counts: Counter[str] = Counter()

    # -- text -------------------------------------------------------------------------------

    def _terms(self, text: str, python: bool) -> Iterator[_Edit]:
        """The term edits, less those inside a kept text or a third-party API name."""
        kept = self.keep.spans(text)  # counted in every text, found a term or not
        matches = list(self.text_terms.finditer(text))
        if not matches:
            return
        denied = self.text_terms.contains_term
        spans = [(m.start, m.end) for m in matches if not m.is_host]
        api = third_party_names(text, self.modules, denied) \
            if python and might_keep(text, spans, self.modules, denied) else []
        for m in matches:
            if _inside(kept, m.start, m.end):
                continue
            if not m.is_host:
                name = next((k for k in api if k.start <= m.start and m.end <= k.end), None)
                if name is not None:
                    self.kept_api[name.label] += 1
                    continue
            if m.is_host:
                yield _Edit(m.start, m.end, "host", "host", m.text)
            else:
                yield _Edit(m.start, m.end, "term", "term", m.text, m.replacement)

    def _edits(self, text: str, filename: str, python: bool = False) -> list[_Edit]:
        edits: list[_Edit] = []
        for s in find_secrets(text, filename):
            claim = s.kind == "private-key"
            edits.append(_Edit(s.start, s.end, "secret", s.kind, s.value, claim=claim))
        denied = self.text_terms.contains_term
        for n in find_url_parts(text, denied):
            repl = "" if n.kind == "url-credentials" else None
            edits.append(_Edit(n.start, n.end, n.kind, n.kind, n.value, repl, claim=n.claim))
        hosts = find_bare_hosts(text, code=is_code(filename))
        for n in [*find_emails(text), *hosts, *find_ips(text)]:
            edits.append(_Edit(n.start, n.end, n.kind, n.kind, n.value))
        edits.extend(self._terms(text, python))
        for p in self.people.finditer(text):
            edits.append(_Edit(p.start, p.end, "person", "person", p.text, p.replacement))
        return edits

    def rewrite(self, text: str, label: str, filename: str) -> str:
        # Third-party names only in a Python file of the tree (notebook cells are rewritten one
        # by one, without the imports of the cells before them: they keep nothing this way).
        python = label == filename and filename.endswith(_PYTHON)
        chosen = _choose(self._edits(text, filename, python))
        if not chosen:
            return text
        newlines = [m.start() for m in _NEWLINE.finditer(text)]
        out: list[str] = []
        pos = 0
        for e in chosen:
            after = self.registry.resolve(e)
            hidden = e.rule in ("secret", "url-credentials")
            rule = f"secret:{e.kind}" if e.rule == "secret" else e.rule
            line = bisect.bisect_left(newlines, e.start) + 1
            before = mask(e.original) if hidden else e.original
            self.replacements.append(Replacement(rule, label, line, before, after))
            self.counts[f"replacements.{rule}"] += 1
            out.append(text[pos : e.start])
            out.append(after)
            pos = e.end
        out.append(text[pos:])
        return "".join(out)

    # -- files ------------------------------------------------------------------------------

    def content(self, data: bytes, rel_out: str) -> bytes:
        suffix = PurePosixPath(rel_out).suffix.lower()
        if suffix in FLAG_SUFFIXES:
            self.flags.append(Flag(rel_out, f"{suffix} file: review its content by eye"))
        try:
            text = data.decode("utf-8")
            if "\x00" in text:
                raise ValueError("NUL byte")
        except (UnicodeDecodeError, ValueError):
            if suffix not in FLAG_SUFFIXES:
                self.flags.append(Flag(rel_out, "binary file copied unchanged"))
            self.counts["files.binary"] += 1
            return data
        if suffix == ".ipynb":
            try:
                cleaned = clean_notebook(
                    text, lambda s, where: self.rewrite(s, f"{rel_out}#{where}", f"{rel_out}.py")
                )
            except ValueError as exc:
                self.flags.append(Flag(rel_out, f"notebook not cleaned ({exc}); rewritten as text"))
            else:
                self.flags.extend(Flag(rel_out, note) for note in cleaned.notes)
                self.counts["files.notebooks"] += 1
                return cleaned.text.encode("utf-8")
        return self.rewrite(text, rel_out, rel_out).encode("utf-8")

    def out_path(self, rel: str, taken: set[str]) -> str:
        parts = rel.split("/")
        new_parts = []
        for depth, part in enumerate(parts, 1):
            part = self.people.rewrite_text(part)
            folder = "/".join(parts[:depth])
            first = depth == len(parts) or folder not in self.folders_seen
            self.folders_seen.add(folder)  # a folder's name is counted once, not once a file
            new_parts.append(self.name_terms.rewrite_text(part, self.keep.spans(part, first)))
        for depth in range(1, len(parts) + 1):
            if parts[depth - 1] != new_parts[depth - 1]:
                tail = "/" if depth < len(parts) else ""
                self.renamed["/".join(parts[:depth]) + tail] = "/".join(new_parts[:depth]) + tail
        out = "/".join(new_parts)
        if out in taken:
            stem, suffix = os.path.splitext(new_parts[-1])
            n = 2
            while "/".join([*new_parts[:-1], f"{stem}-{n}{suffix}"]) in taken:
                n += 1
            out = "/".join([*new_parts[:-1], f"{stem}-{n}{suffix}"])
            self.flags.append(Flag(out, f"renaming {rel} collided with another file"))
            self.renamed[rel] = out
        taken.add(out)
        return out

    def drop(self, root: Path, rel: str, is_dir: bool) -> bool:
        hit = match_drop(rel, self.drop_rules, is_dir=is_dir)
        if hit is None:
            return False
        files = sum(len(f) for _, _, f in os.walk(root / rel)) if is_dir else 1
        self.dropped.append(DroppedPath(hit[0], hit[1], files))
        self.counts["files.dropped"] += files
        return True


def _check_dirs(src: Path, dest: Path) -> None:
    if not src.is_dir() or src.is_symlink():
        raise NotADirectoryError(f"{src} is not a directory")
    s, d = src.resolve(), dest.resolve()
    if d == s or s in d.parents or d in s.parents:
        raise ValueError("src and dest must not contain each other")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise FileExistsError(f"{dest} exists and is not an empty directory")


def anonymise_tree(
    src: Path, dest: Path, rules: RulesLike, *, extra_drop: Sequence[str] = (),
    fields: Mapping[str, str] | None = None,
) -> AnonReport:
    """Write an anonymised copy of the snapshot ``src`` into the new or empty folder ``dest``.

    ``fields`` (label -> text) are rewritten after the tree, so a term, address or host gets
    the same replacement as in the files and the tree's output does not depend on them; the
    results are ``AnonReport.fields``.
    """
    _check_dirs(src, dest)
    anon = _Anonymiser(rules, extra_drop, own_modules(src))
    taken: set[str] = set()
    dest.mkdir(parents=True, exist_ok=True)
    for dirpath, dirnames, filenames in os.walk(src, followlinks=False):
        here = Path(dirpath)
        base = here.relative_to(src).as_posix()
        prefix = "" if base == "." else base + "/"
        dirnames.sort()
        for name in list(dirnames):
            rel = prefix + name
            if (here / name).is_symlink():
                anon.flags.append(Flag(rel, "symbolic link not followed, left out"))
                dirnames.remove(name)
            elif anon.drop(src, rel, is_dir=True):
                dirnames.remove(name)
        for name in sorted(filenames):
            rel = prefix + name
            st = os.lstat(here / name)
            if not stat.S_ISREG(st.st_mode):
                kind = "symbolic link" if stat.S_ISLNK(st.st_mode) else "special file"
                anon.flags.append(Flag(rel, f"{kind} not followed, left out"))
                continue
            if anon.drop(src, rel, is_dir=False):
                continue
            rel_out = anon.out_path(rel, taken)
            data = (here / name).read_bytes()
            out = anon.content(data, rel_out)
            target = dest / rel_out
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "xb") as fh:
                fh.write(out)
            os.chmod(target, 0o755 if st.st_mode & 0o111 else 0o644)
            anon.counts["files.written"] += 1
            anon.counts["files.rewritten"] += out != data
    # The label doubles as the "file name": its suffix is not a code suffix, so it reads as prose.
    rewritten = tuple((label, anon.rewrite(text, label, label))
                      for label, text in (fields or {}).items())
    anon.counts["paths.renamed"] = len(anon.renamed)
    flags = sorted(set(anon.flags), key=lambda f: (f.path, f.reason))
    anon.counts["flags"] = len(flags)
    kept = [Kept("keep", e, anon.keep.counts[e], anon.text_terms.contains_term(e))
            for e in anon.keep.entries]
    kept += [Kept("third-party-api", name, n) for name, n in sorted(anon.kept_api.items())]
    anon.counts["kept.keep"] = sum(anon.keep.counts.values())
    anon.counts["kept.third-party-api"] = anon.kept_api.total()
    report = AnonReport(
        replacements=tuple(sorted(anon.replacements, key=lambda r: r.file)),
        dropped=tuple(sorted(anon.dropped, key=lambda d: d.path)),
        renamed=tuple(RenamedPath(b, a) for b, a in sorted(anon.renamed.items())),
        flags=tuple(flags),
        counts=tuple(sorted(anon.counts.items())),
        fields=rewritten,
        kept=tuple(kept),
    )
    log.info(
        "anonymised %s: %d files written, %d replacements, %d dropped, %d renamed, %d flags",
        src, anon.counts["files.written"], len(report.replacements), len(report.dropped),
        len(report.renamed), len(report.flags),
    )
    return report
