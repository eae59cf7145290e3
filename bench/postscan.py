"""What opening encodings costs the post-scan on an ordinary text tree: ``post_scan`` over a copy
of the project's own Python, Markdown and TOML files (repeated to ``--files``), with the decoding
of :mod:`tasks.unwrap` on, against the same scan with it off (how the post-scan ran before);
the arms alternate, run by run, in one process; the figures are CPU seconds of this process
(the machine is shared, so wall-clock time would measure the neighbours).

    .venv/bin/python -m bench.postscan [--files 3000] [--runs 3]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

from bench.common import load_line, median
from tasks import postscan

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("common", "server", "tasks", "workspaces", "scoring", "tests", "bench")


def make_tree(dest: Path, files: int) -> int:
    originals = sorted(p for d in SOURCES for p in (ROOT / d).rglob("*")
                       if p.is_file() and p.suffix in (".py", ".md", ".toml", ".html", ".js"))
    total = 0
    for i in range(files):
        src = originals[i % len(originals)]
        target = dest / f"copy{i // len(originals)}" / src.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
        total += target.stat().st_size
    return total


def _nothing_inside(*_args: object) -> Iterator[postscan.Finding]:
    return iter(())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(load_line("start"))
    with tempfile.TemporaryDirectory(prefix="plb-postscan-") as tmp:
        tree = Path(tmp)
        size = make_tree(tree, args.files)
        print(f"tree: {args.files} text files, {size / 1e6:.1f} MB")
        deny, people = ["Quintessa Analytics", "Hollowmere"], ["José Núñez", "Maya Chen"]
        times: dict[str, list[float]] = {"before (no decoding)": [], "after (decoding)": []}
        found: dict[str, int] = {}
        for _ in range(args.runs):
            for arm in times:
                start = time.process_time()
                if arm.startswith("before"):
                    with mock.patch.object(postscan, "_inside", _nothing_inside):
                        findings = postscan.post_scan(tree, deny, people)
                else:
                    findings = postscan.post_scan(tree, deny, people)
                times[arm].append(time.process_time() - start)
                found[arm] = len(findings)
        for arm, values in times.items():
            print(f"{arm:22s} median {median(values):.2f} s CPU  (runs: "
                  f"{', '.join(f'{v:.2f}' for v in values)}; findings: {found[arm]})")
        before, after = (median(v) for v in times.values())
        print(f"overhead: {(after / before - 1) * 100:+.1f} %")
    print(load_line("end"))


if __name__ == "__main__":
    main()
