"""Deny-listed term search against text size x number of terms: the rewriter's and the
post-scan's, now (one pass: Aho-Corasick, then each hit checked) against the old way (one
combined regex for the rewriter, ``TermRewriter.reference_finditer``; one regex per term for
the post-scan, written out below as it was), in the same process, the runs alternating.

Part 1 times the term search alone on generated code-like text; part 2 the whole
``anonymise_tree`` + ``post_scan`` on a generated tree, with its peak memory (``tracemalloc``,
in a run of its own, not timed), now and with the old term search put back.

    .venv/bin/python -m bench.anonymise [--runs 3] [--sizes 1,4,16] [--terms 5,50,500]
                                        [--baseline-max 64] [--tree-mb 4]

The old way is run only where text MB x terms <= ``--baseline-max`` (it grows with the product:
16 MB x 500 terms would take many minutes).
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from bench.common import header, load_line, median, percentile
from tasks import postscan
from tasks.anonymise import anonymise_tree
from tasks.postscan import post_scan
from tasks.scanterms import TermHit, TermScan
from tasks.termforms import TermRewriter

MB = 1024 * 1024
_SYLLABLES = "ka lo mi nu re sa ti vo xe zu pra gle dro fin hal".split()


def words(rnd: random.Random, n: int, prefix: str) -> list[str]:
    out: set[str] = set()
    while len(out) < n:
        out.add(prefix + "".join(rnd.choice(_SYLLABLES) for _ in range(rnd.randint(2, 4))))
    return sorted(out)


def make_text(rnd: random.Random, size: int, vocab: Sequence[str], terms: Sequence[str]) -> str:
    """Code-like lines; about one term occurrence per 4 KB, in the forms code writes them."""
    lines: list[str] = []
    total = 0
    while total < size:
        a, b, c = rnd.choice(vocab), rnd.choice(vocab), rnd.choice(vocab)
        line = f"    {a}_{b} = compute_{c}(x, \"{a} {b}\")  # the {c} of {a}\n"
        if rnd.random() < len(line) / 4096:
            t = rnd.choice(terms)
            line = rnd.choice([f"from {t.lower()}_client import {t}Client\n",
                               f"# ask the {t} team, see {t.lower()}.internal\n",
                               f"{t.upper()}_URL = get{t}Url()\n"])
        lines.append(line)
        total += len(line)
    return "".join(lines)


class OldScan(TermScan):
    """The post-scan's term search as it was: one regex per term, separators between any two
    characters, case-insensitive (no word start, no exceptions)."""

    def __init__(self, deny_terms: Sequence[str], keep: Sequence[str] = (),
                 own_modules: frozenset[str] = frozenset()) -> None:
        super().__init__(deny_terms, keep, own_modules)
        self._old: list[tuple[str, re.Pattern[str]]] = []
        for term in self.terms:
            bare = "".join(ch for ch in term if ch not in "_-. " and not ch.isspace())
            body = "[_\\-. ]*".join(re.escape(ch) for ch in bare)
            self._old.append((term, re.compile(body, re.IGNORECASE)))

    def hits(self, text: str) -> Iterator[TermHit]:
        for term, regex in self._old:
            for m in regex.finditer(text):
                yield TermHit(m.start(), m.end(), term, m.group(0))


@dataclass(frozen=True)
class Rules:
    drop: tuple[str, ...]
    replace: tuple[tuple[str, str], ...]
    people: tuple[tuple[str, str], ...] = ()
    keep: tuple[str, ...] = ()


def search(rewrite: Callable[[str], Iterator[object]], scan: Callable[[str], Iterator[object]],
           text: str) -> None:
    list(rewrite(text))
    list(scan(text))


def anonymise_and_scan(src: Path, dest: Path, rules: Rules, terms: Sequence[str]) -> None:
    anonymise_tree(src, dest, rules)
    post_scan(dest, terms)
    shutil.rmtree(dest)


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def fmt_s(values: Sequence[float]) -> str:
    return f"p50 {median(values):8.3f} s  p95 {percentile(values, 95):8.3f} s"


def part1(args: argparse.Namespace, rnd: random.Random) -> None:
    print("\n== term search alone (rewriter finditer + post-scan hits) ==")
    print(f"{'MB':>4} {'terms':>5} | {'now':<32} | {'old':<32} | old/now | now s/MB | "
          "now peak MiB")
    vocab = words(rnd, 2000, "")
    for n_terms in args.terms:
        terms = [t.capitalize() for t in words(rnd, n_terms, "q")]
        rewriter = TermRewriter([(t, f"Stand{i}") for i, t in enumerate(terms)], subdomains=True)
        scan, old_scan = TermScan(terms), OldScan(terms)
        for mb in args.sizes:
            text = make_text(rnd, mb * MB, vocab, terms)

            now = partial(search, rewriter.finditer, scan.hits, text)
            old = partial(search, rewriter.reference_finditer, old_scan.hits, text)

            run_old = mb * n_terms <= args.baseline_max
            now_t: list[float] = []
            old_t: list[float] = []
            for _ in range(args.runs):  # alternating
                now_t += timed(now, 1)
                if run_old:
                    old_t += timed(old, 1)
            ratio = f"{median(old_t) / median(now_t):7.1f}" if old_t else "      -"
            old_s = fmt_s(old_t) if old_t else "(skipped: MB x terms > baseline-max)"
            print(f"{mb:>4} {n_terms:>5} | {fmt_s(now_t):<32} | {old_s:<32} | {ratio} | "
                  f"{median(now_t) / mb:8.3f} | {peak(now) / MB:8.1f}", flush=True)


def make_tree(root: Path, rnd: random.Random, mb: int, terms: Sequence[str]) -> None:
    vocab = words(rnd, 2000, "")
    for i in range(mb * 4):  # 256 KB files
        path = root / f"pkg{i % 8}" / f"mod{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(make_text(rnd, MB // 4, vocab, terms))


def part2(args: argparse.Namespace, rnd: random.Random) -> None:
    print(f"\n== anonymise_tree + post_scan on a {args.tree_mb} MB tree of .py files ==")
    print(f"{'terms':>5} | {'now':<32} | {'old term search':<32} | old/now | peak MiB now/old")
    work = Path(tempfile.mkdtemp(prefix="plb-anon-"))
    try:
        for n_terms in args.terms:
            terms = [t.capitalize() for t in words(rnd, n_terms, "q")]
            src = work / f"src{n_terms}"
            make_tree(src, rnd, args.tree_mb, terms)
            rules = Rules((), tuple((t, f"Stand{i}") for i, t in enumerate(terms)))
            once = partial(anonymise_and_scan, src, work / "out", rules, terms)

            def with_old(fn: Callable[[], None]) -> Callable[[], None]:
                def run() -> None:
                    saved = TermRewriter.finditer
                    TermRewriter.finditer = TermRewriter.reference_finditer  # type: ignore
                    postscan.TermScan = OldScan  # type: ignore
                    try:
                        fn()
                    finally:
                        TermRewriter.finditer = saved  # type: ignore
                        postscan.TermScan = TermScan  # type: ignore
                return run

            run_old = args.tree_mb * n_terms <= args.baseline_max
            now_t: list[float] = []
            old_t: list[float] = []
            for _ in range(args.runs):
                now_t += timed(once, 1)
                if run_old:
                    old_t += timed(with_old(once), 1)
            peaks = [peak(once)] + ([peak(with_old(once))] if run_old else [])
            ratio = f"{median(old_t) / median(now_t):7.1f}" if old_t else "      -"
            old_s = fmt_s(old_t) if old_t else "(skipped)"
            print(f"{n_terms:>5} | {fmt_s(now_t):<32} | {old_s:<32} | {ratio} | "
                  + " / ".join(f"{p / MB:.0f}" for p in peaks), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def peak(fn: Callable[[], None]) -> float:
    tracemalloc.start()
    try:
        fn()
        return float(tracemalloc.get_traced_memory()[1])
    finally:
        tracemalloc.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes", default="1,4,16", help="text sizes in MB")
    parser.add_argument("--terms", default="5,50,500", help="numbers of deny-listed terms")
    parser.add_argument("--baseline-max", type=int, default=64,
                        help="run the old way only where MB x terms is at most this")
    parser.add_argument("--tree-mb", type=int, default=4)
    parser.add_argument("--only", default="search,tree")
    args = parser.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",")]
    args.terms = [int(t) for t in args.terms.split(",")]
    header("bench.anonymise", sys.argv if argv is None else list(argv))
    rnd = random.Random(13)
    if "search" in args.only:
        part1(args, rnd)
    if "tree" in args.only:
        part2(args, rnd)
    print(load_line("end"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
