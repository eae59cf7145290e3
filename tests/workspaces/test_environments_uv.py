"""Task environments built by uv from one shared cache: a set and the same set plus one package
share the cache (the second build unpacks only that package and copies the rest), an operator's
chmod of one environment leaves the others runnable by the sandbox, the files cannot be changed
by a sandbox uid, a task's own pin of pytest is kept, a sandbox uid imports from the built
environment, source distributions are never built, and a failed build says why in uv's words.

Environments are built as the ``pairlab`` command builds them: its umask
(``set_private_umask``), its data dir (``prepare_data_dir``) and ``settings.envs_root``."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from server.settings import Settings, prepare_data_dir
from workspaces.environments import (
    BASE_REQUIREMENTS,
    UV_CACHE,
    EnvironmentBuildFailed,
    ensure_environment,
    environment_key,
    wanted_requirements,
)
from workspaces.sandbox.permissions import set_private_umask
from workspaces.sandbox.run import CheckSandbox, SandboxJob

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]
UID_BASE = int(os.environ.get("PAIRLAB_SANDBOX_UID_BASE", "530000"))
EXTRA_CANDIDATES = ("six", "termcolor", "tabulate")
"""Small packages whose import name is their name; the first the base set lacks is added."""
SITE = Path("lib") / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"


@dataclass
class Built:
    data: Path
    base: Path
    """The Python of the environment of no requirements."""
    extra: str
    """One package the base set does not install (which ones it brings depends on the versions
    the configured indexes offer: built from this host's local indexes alone it has six)."""
    plus_one: Path
    """The Python of the same set plus ``extra``, built after it."""
    archives_before: set[str]
    archives_after: set[str]
    seconds_plus_one: float


def build(envs: Path, requirements: tuple[str, ...]) -> Path:
    old = os.umask(0o022)
    set_private_umask()  # as the pairlab command does first
    try:
        return ensure_environment(envs, requirements)
    finally:
        os.umask(old)


def product_data_dir() -> Settings:
    """A data dir as the pairlab command prepares it (short: sandbox socket paths)."""
    folder = Path(tempfile.mkdtemp(prefix="pluv-", dir="/tmp"))
    return prepare_data_dir(Settings(data_dir=folder / "data"))


def archives(envs: Path) -> set[str]:
    return {p.name for p in (envs / UV_CACHE / "archive-v0").iterdir()}


@pytest.fixture(scope="module")
def built() -> Iterator[Built]:
    """A fresh data dir and cache: the base set, then the base set plus one package."""
    settings = product_data_dir()
    data, envs = settings.data_dir, settings.envs_root
    base = build(envs, ())
    before = archives(envs)
    site = base.parent.parent / SITE
    extra = next(name for name in EXTRA_CANDIDATES if not list(site.glob(f"{name}*")))
    started = time.monotonic()
    plus_one = build(envs, (extra,))
    seconds = time.monotonic() - started
    yield Built(data, base, extra, plus_one, before, archives(envs), seconds)
    shutil.rmtree(data.parent, ignore_errors=True)


def sandbox(data: Path) -> CheckSandbox:
    return CheckSandbox(UID_BASE, data, data / "checks")


def test_one_more_package_unpacks_only_it_and_copies_the_rest(built: Built) -> None:
    assert built.base != built.plus_one
    added = built.archives_after - built.archives_before
    assert len(added) == 1  # the extra one, and nothing else was downloaded or unpacked again
    (extra_archive,) = added
    assert any(p.name.startswith(built.extra) for p in (built.data / "envs" / UV_CACHE
                                                        / "archive-v0" / extra_archive).iterdir())
    for module in ("pytest/__init__.py", "ipykernel/kernelapp.py", "_pytest/python.py"):
        first = built.base.parent.parent / SITE / module
        second = built.plus_one.parent.parent / SITE / module
        assert first.read_bytes() == second.read_bytes(), module
        # each environment has its own inode: a mode changed on one is that one's alone
        assert first.stat().st_ino != second.stat().st_ino, module
        assert first.stat().st_nlink == second.stat().st_nlink == 1, module
    assert not list((built.base.parent.parent / SITE).glob(f"{built.extra}*"))
    print(f"second build (+{built.extra}): {built.seconds_plus_one:.1f} s")


def test_a_chmod_of_one_environment_leaves_the_first_runnable_in_the_sandbox() -> None:
    """What broke the import journey: two environments built one after the other as pairlab
    builds them, then an operator's ``chmod -R go-rwx`` of the second's ``lib`` (as the journey
    does to lock one environment away); the first must still import zmq's compiled module and
    ipykernel as a sandbox uid (with hardlinks from the cache the chmod reached the first's
    ``_zmq`` shared object too: cannot open shared object file: Permission denied)."""
    settings = product_data_dir()
    try:
        first = build(settings.envs_root, ())
        second = build(settings.envs_root, ("iniconfig",))
        subprocess.run(["chmod", "-R", "go-rwx", str(second.parent.parent / "lib")], check=True)
        work = settings.data_dir / "checks" / "probe-first"
        work.mkdir(parents=True)
        code = ("import os, zmq, ipykernel; from zmq.backend.cython import _zmq; "
                "print(os.getuid(), _zmq.__file__)")
        box = sandbox(settings.data_dir)
        with box.run(SandboxJob(("python", "-I", "-c", code), first, work, 60)) as run:
            assert run.exit_code == 0, run.output
        uid, loaded = run.output.split()
        assert int(uid) in box.uids()
        assert loaded.startswith(str(first.parent.parent / SITE / "zmq")), loaded
        # the locked one is locked: its own files, not the first's, lost their modes
        zmq_so = Path(loaded)
        twin = second.parent.parent / zmq_so.relative_to(first.parent.parent)
        assert zmq_so.stat().st_mode & 0o005 == 0o005
        assert twin.stat().st_mode & 0o077 == 0
    finally:
        shutil.rmtree(settings.data_dir.parent, ignore_errors=True)


def test_a_sandbox_uid_cannot_change_the_environment_or_the_cache(built: Built) -> None:
    """The attack: a uid that can reach the files (its parents made searchable, as an operator
    might) writes to a file of the environment and to its source in the cache."""
    env_file = built.plus_one.parent.parent / SITE / "pytest" / "__init__.py"
    cache_twins = [p for p in (built.data / "envs" / UV_CACHE).rglob("pytest/__init__.py")
                   if p.read_bytes() == env_file.read_bytes()]
    assert cache_twins  # the cache holds the file the environment's was copied from
    reach = (built.data.parent, built.data, built.data / "envs", built.data / "envs" / UV_CACHE)
    for folder in reach:
        folder.chmod(0o711)
    try:
        for target in (env_file, cache_twins[0]):
            attack = subprocess.run(
                ["setpriv", f"--reuid={UID_BASE + 7}", f"--regid={UID_BASE + 7}",
                 "--clear-groups", sys.executable, "-I", "-c",
                 f"open({str(target)!r}, 'a').write('import os; os.system(\"id\")')"],
                capture_output=True, text=True, timeout=60)
            assert attack.returncode != 0, f"{target} was written by a sandbox uid"
            assert "Permission denied" in attack.stderr
            assert "os.system" not in target.read_text()
    finally:
        for folder in reach:
            folder.chmod(0o700)
    assert env_file.stat().st_mode & 0o222 == 0 and env_file.stat().st_uid == 0


def test_the_cache_is_roots_alone_whatever_the_umask(built: Built) -> None:
    """uv makes its cache's lock file writable by all: the cache folder must keep others out
    (a local user holding that lock would stall every build until its deadline)."""
    envs = built.data / "envs"
    cache = envs / UV_CACHE
    cache.chmod(0o755)  # as a umask 022 run would have left it
    old = os.umask(0o022)
    try:
        ensure_environment(envs, ("six", "pytest-timeout"))
    finally:
        os.umask(old)
    assert cache.stat().st_mode & 0o777 == 0o700
    assert cache.stat().st_uid == 0


def test_a_sandbox_uid_imports_from_the_built_environment(built: Built) -> None:
    env = built.plus_one.parent.parent
    work = built.data / "checks" / "probe-extra"
    work.mkdir(parents=True)
    code = (f"import os, {built.extra} as extra, pytest, ipykernel; "
            "print(os.getuid(), extra.__file__, pytest.__version__)")
    box = sandbox(built.data)
    assert box.probe_python(built.plus_one, ("ipykernel", "pytest", built.extra, "pip")) is None
    with box.run(SandboxJob(("python", "-I", "-c", code), built.plus_one, work, 60)) as run:
        assert run.exit_code == 0, run.output
    uid, extra_file, pytest_version = run.output.split()
    assert int(uid) in box.uids()  # one of the sandbox's unprivileged check uids
    assert extra_file.startswith(str(env / SITE / built.extra)), extra_file
    assert int(pytest_version.split(".")[0]) >= 8


def test_a_task_pinning_pytest_keeps_its_pin(built: Built) -> None:
    wanted = wanted_requirements(["pytest<9"])  # pytest 9 is out: the base set would take it
    assert wanted == sorted(["pytest<9", BASE_REQUIREMENTS[0]])
    python = build(built.data / "envs", ("pytest<9",))
    assert python.parent.parent.name == environment_key(["pytest<9"])
    assert json.loads((python.parent.parent / "pairlab-requirements.json").read_text()) == wanted
    work = built.data / "checks" / "probe-pin"
    work.mkdir(parents=True)
    code = "import pytest, ipykernel; print(pytest.__version__)"
    with sandbox(built.data).run(SandboxJob(("python", "-I", "-c", code), python, work, 60)) as run:
        assert run.exit_code == 0, run.output
    assert int(run.output.strip().split(".")[0]) == 8


def test_the_key_names_packages_not_strings() -> None:
    def old_key(requirements: list[str]) -> str:  # the key before uv: kept for such sets
        wanted = sorted({r.strip() for r in (*requirements, *BASE_REQUIREMENTS)})
        digest = hashlib.sha256(json.dumps(wanted).encode()).hexdigest()[:16]
        return f"py{sys.version_info.major}{sys.version_info.minor}-{digest}"

    for unchanged in ([], ["six"], ["pytest-asyncio"], ["numpy>=2", " six "]):
        assert environment_key(unchanged) == old_key(unchanged)  # built envs are reused
    assert wanted_requirements(["PyTest==7.4.4"]) == sorted(["PyTest==7.4.4",
                                                             BASE_REQUIREMENTS[0]])
    assert wanted_requirements(["ipykernel[foo]<7"]) == ["ipykernel[foo]<7", BASE_REQUIREMENTS[1]]
    assert wanted_requirements(["pytest_asyncio"]) == sorted(["pytest_asyncio",
                                                              *BASE_REQUIREMENTS])
    never = 'pytest<8; python_version < "3"'  # names pytest, installs nothing here
    assert wanted_requirements([never]) == sorted([never, *BASE_REQUIREMENTS])
    assert environment_key(["pytest<8"]) != environment_key(["pytest<7"])
    assert environment_key(["pytest<8", "six"]) == environment_key(["six", "pytest<8 "])


def test_a_source_distribution_is_never_built_and_the_error_is_uvs(
        built: Built, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The attack: a requirement only published as an sdist whose setup.py would run as root."""
    marker = tmp_path / "BUILT"
    source = tmp_path / "pairlabfake-1.0"
    source.mkdir()
    (source / "setup.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran as root')\n"
        "from setuptools import setup\nsetup(name='pairlabfake', version='1.0')\n")
    links = tmp_path / "links"
    links.mkdir()
    with tarfile.open(links / "pairlabfake-1.0.tar.gz", "w:gz") as tar:
        tar.add(source, arcname="pairlabfake-1.0")
    monkeypatch.setenv("UV_NO_INDEX", "1")  # no index: only the folder below (no network)
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    envs = built.data / "envs"
    with pytest.raises(EnvironmentBuildFailed) as failed:
        build(envs, ("pairlabfake==1.0",))
    message = failed.value.message
    assert message.startswith("installing ipykernel>=6.29,<8, pairlabfake==1.0, pytest>=8,<10 "
                              "failed: ")
    assert "pairlabfake==1.0 has no usable wheels" in message
    assert "--no-build" in message
    assert not marker.exists()
    assert not (envs / environment_key(["pairlabfake==1.0"])).exists()
    assert not list(envs.glob(".*.building"))
