"""What building a task environment costs: uv from a shared cache (``ensure_environment``, as
pairlab builds them now) against pip (the baseline: how pairlab built them before, ``python -m
venv`` then ``pip install --only-binary=:all:``), both in the same run on the same machine.

- cold: the task's set (``--requirements``, none by default: ipykernel and pytest alone) with an
  empty cache (a fresh one each run, each arm);
- warm: then the same set plus one package (``--extra``, ``six``), with the cache the cold build
  filled;
- disk: what the two environments and the cache take together (``du``: a file hardlinked into
  both environments and the cache counts once), and each environment alone.

Both arms download from the sources pip is configured with on the machine (``pip config
list``, which the uv build translates); the runs alternate arm by arm.

    .venv/bin/python -m bench.environments [--runs 3] [--extra six] [--requirements "numpy pandas"]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import header, load_line, median, row
from workspaces.environments import BASE_REQUIREMENTS, UV_CACHE, ensure_environment
from workspaces.package_sources import pip_configuration
from workspaces.sandbox.permissions import PRIVATE_UMASK, publish_read_only, remove_tree


@dataclass
class Arm:
    cold: list[float] = field(default_factory=list)
    warm: list[float] = field(default_factory=list)
    total_mb: list[float] = field(default_factory=list)
    env_mb: list[float] = field(default_factory=list)
    extra_mb: list[float] = field(default_factory=list)
    """What the warm build added on disk (its environment and what the cache gained)."""


def du_mb(*paths: Path) -> float:
    """Disk used by ``paths`` together, each hardlinked file once (``du`` counts an inode once
    per invocation); a path that is not there (pip keeps no cache of local files) is 0."""
    there = [str(p) for p in paths if p.exists()]
    out = subprocess.run(["du", "-s", "-k", "-c", *there], check=True,
                         capture_output=True, text=True).stdout
    return int(out.strip().splitlines()[-1].split()[0]) / 1024


def pip_build(root: Path, name: str, requirements: list[str], cache: Path) -> Path:
    """The environment as pairlab's pip build made it (venv with pip, wheels only, quiet)."""
    env = root / name
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    pip_env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(root), "LANG": "C.UTF-8",
               "PIP_CACHE_DIR": str(cache)}
    for key in ("PIP_CONFIG_FILE", "http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY",
                "HTTPS_PROXY", "NO_PROXY"):
        if key in os.environ:
            pip_env[key] = os.environ[key]
    # the sources pip is configured with here (its user pip.conf too, which HOME above hides),
    # as the uv build reads them: both arms download from the same places
    pip_env.update({"PIP_" + name.upper().replace("-", "_"): value
                    for name, value in pip_configuration(os.environ).items()})
    subprocess.run([str(env / "bin" / "python"), "-m", "pip", "install", "-q",
                    "--disable-pip-version-check", "--no-input", "--only-binary=:all:", "--",
                    *sorted({*requirements, *BASE_REQUIREMENTS})],
                   check=True, env=pip_env, capture_output=True)
    publish_read_only(env)
    return env


def timed_pip(arm: Arm, base: Path, task: list[str], extra: str) -> None:
    root = Path(tempfile.mkdtemp(prefix="pip-", dir=base))
    cache = root / "pip-cache"
    started = time.perf_counter()
    first = pip_build(root, "cold", task, cache)
    arm.cold.append(time.perf_counter() - started)
    before = du_mb(first, cache)
    started = time.perf_counter()
    second = pip_build(root, "warm", [*task, extra], cache)
    arm.warm.append(time.perf_counter() - started)
    arm.total_mb.append(du_mb(first, second, cache))
    arm.env_mb.append(du_mb(first))
    arm.extra_mb.append(arm.total_mb[-1] - before)
    remove_tree(root)


def timed_uv(arm: Arm, base: Path, task: list[str], extra: str) -> None:
    root = Path(tempfile.mkdtemp(prefix="uv-", dir=base))
    envs = root / "envs"
    started = time.perf_counter()
    first = ensure_environment(envs, task).parent.parent
    arm.cold.append(time.perf_counter() - started)
    before = du_mb(first, envs / UV_CACHE)
    started = time.perf_counter()
    second = ensure_environment(envs, [*task, extra]).parent.parent
    arm.warm.append(time.perf_counter() - started)
    arm.total_mb.append(du_mb(first, second, envs / UV_CACHE))
    arm.env_mb.append(du_mb(first))
    arm.extra_mb.append(arm.total_mb[-1] - before)
    remove_tree(root)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--extra", default="six", help="the one package the warm set adds")
    parser.add_argument("--requirements", default="",
                        help="the task's requirements, space-separated (besides ipykernel, pytest)")
    args = parser.parse_args()
    header("bench.environments: task environments built by uv (shared cache) vs pip", sys.argv)
    task = args.requirements.split()
    print("set:", ", ".join(sorted({*task, *BASE_REQUIREMENTS})), f"(warm: + {args.extra})")
    os.umask(PRIVATE_UMASK)  # as the pairlab command builds them
    base = Path(tempfile.mkdtemp(prefix="plbe-", dir="/tmp"))
    pip, uv = Arm(), Arm()
    try:
        for run in range(args.runs):
            order = [(timed_pip, pip), (timed_uv, uv)]
            for timed, arm in order if run % 2 == 0 else reversed(order):
                timed(arm, base, task, args.extra)
            print(f"run {run + 1}/{args.runs}: pip cold {pip.cold[-1]:.1f} s warm "
                  f"{pip.warm[-1]:.1f} s | uv cold {uv.cold[-1]:.1f} s warm {uv.warm[-1]:.1f} s")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print()
    for label, arm in (("pip (baseline)", pip), ("uv, shared cache", uv)):
        print(row(f"{label}: cold (empty cache)", arm.cold, unit="s"))
        print(row(f"{label}: warm (+{args.extra}, cache filled)", arm.warm, unit="s"))
    print(f"ratio uv/pip p50: cold {median(uv.cold) / median(pip.cold):.2f}, "
          f"warm {median(uv.warm) / median(pip.warm):.2f}")
    for label, arm in (("pip", pip), ("uv", uv)):
        print(f"disk {label:<3}: one environment {median(arm.env_mb):.0f} MB; both environments "
              f"and the cache {median(arm.total_mb):.0f} MB; the warm build added "
              f"{median(arm.extra_mb):.0f} MB")
    print(load_line("end"))


if __name__ == "__main__":
    main()
