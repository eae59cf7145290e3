"""What running task code in the sandbox costs: one pytest run of a small task's tests through
``CheckSandbox.run`` (bubblewrap, a leased check uid, cgroups, the tree handed to the uid and
removed after) against the same command run directly as a subprocess (the baseline: how the
import ran its checks before, as root, which pairlab no longer does). Both arms run the same
fixed test file of this script, never repository code; the runs alternate, pair by pair.

    .venv/bin/python -m bench.checks [--runs 20] [--warmup 2]
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import SHARED_ENVS, header, load_line, median, percentile, row
from workspaces.environments import ensure_environment
from workspaces.sandbox.run import CheckSandbox, SandboxJob

TESTS = ("def test_sum():\n    assert sum(range(10)) == 45\n\n\n"
         "def test_str():\n    assert 'a' * 3 == 'aaa'\n")
COMMAND = ("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests")


def make_tree(base: Path) -> Path:
    tree = Path(tempfile.mkdtemp(dir=base))
    (tree / "tests").mkdir()
    (tree / "tests" / "test_small.py").write_text(TESTS)
    return tree


def direct(python: Path, tree: Path) -> float:
    started = time.perf_counter()
    subprocess.run([str(python), *COMMAND[1:]], cwd=tree, check=True,  # noqa: S603
                   capture_output=True, env={"PATH": "/usr/bin:/bin", "HOME": str(tree)})
    return time.perf_counter() - started


def sandboxed(sandbox: CheckSandbox, python: Path, tree: Path) -> float:
    started = time.perf_counter()
    with sandbox.run(SandboxJob(COMMAND, python, tree, 120)) as run:
        if run.exit_code != 0:
            raise SystemExit(f"the sandboxed run failed:\n{run.output}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    header("bench.checks: a pytest run in the check sandbox vs directly", sys.argv)
    python = ensure_environment(SHARED_ENVS, ())
    base = Path(tempfile.mkdtemp(prefix="plbc-", dir="/tmp"))
    base.chmod(0o700)
    sandbox = CheckSandbox(random.randrange(200_000, 3_000_000, 2000), base, base / "checks")
    times: dict[str, list[float]] = {"direct": [], "sandboxed": []}
    try:
        for i in range(args.warmup + args.runs):
            pair = {"direct": direct(python, make_tree(base)),
                    "sandboxed": sandboxed(sandbox, python, make_tree(base))}
            if i >= args.warmup:
                for name, value in pair.items():
                    times[name].append(value)
        print(row("direct (baseline)", times["direct"]))
        print(row("sandboxed", times["sandboxed"]))
        extra = [s - d for s, d in zip(times["sandboxed"], times["direct"], strict=True)]
        print(row("sandbox overhead per run", extra))
        print(f"ratio sandboxed/direct, p50: "
              f"{median(times['sandboxed']) / median(times['direct']):.2f}x; "
              f"p95 overhead {percentile(extra, 95) * 1000:.0f} ms")
    finally:
        shutil.rmtree(base, ignore_errors=True)
        print(load_line("end"))


if __name__ == "__main__":
    main()
