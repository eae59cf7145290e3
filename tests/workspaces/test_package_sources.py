"""The package sources of a task environment's build are the ones pip is configured with: pip
reads its own configuration (files, sections, ``PIP_*`` variables) and pairlab gives what it
settled on to uv, each setting unless uv's own variable is set; and a build succeeds with PyPI
unreachable when the host's configured local sources hold the packages, as ``pip`` does."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from server.settings import Settings, prepare_data_dir
from workspaces.environments import BASE_REQUIREMENTS, ensure_environment
from workspaces.package_sources import UvSources, pip_configuration, uv_sources
from workspaces.sandbox.permissions import set_private_umask
from workspaces.sandbox.run import CheckSandbox

UID_BASE = int(os.environ.get("PAIRLAB_SANDBOX_UID_BASE", "530000"))
CLOSED = "http://127.0.0.1:1/simple"
"""PyPI as this test makes it: a loopback port nothing listens on."""

PIP_CONF = """\
[global]
index-url = http://127.0.0.1:1/global
extra-index-url = file://{tmp}/a
    file://{tmp}/missing
find-links = global/wheels
constraint = limits.txt
trusted-host = 127.0.0.1:1
cert = /nowhere/ca.pem
timeout = 12.4
no-index = false
proxy = http://127.0.0.1:3

[install]
find-links = install/wheels
"""


def pip_environment(tmp_path: Path, **variables: str) -> dict[str, str]:
    """pairlab's environment with this test's pip.conf loaded last (over the host's files) and
    only the ``PIP_*`` variables given (none of the host's pip, uv, certificate or proxy
    variables)."""
    conf = tmp_path / "pip.conf"
    conf.write_text(PIP_CONF.format(tmp=tmp_path))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "UV_", "SSL_CERT_")) and not k.lower().endswith("_proxy")}
    return {**env, "PIP_CONFIG_FILE": str(conf), **variables}


def test_pip_settles_its_configuration_and_uv_gets_what_can_be_reached(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for folder in ("a", "from-variable", "uv", "install/wheels"):
        (tmp_path / folder).mkdir(parents=True)
    monkeypatch.chdir(tmp_path)  # relative paths are pip's working folder's: pairlab's
    env = pip_environment(tmp_path, PIP_EXTRA_INDEX_URL=f"file://{tmp_path}/from-variable",
                          PIP_NO_INDEX="0")
    pip = pip_configuration(env)
    assert pip == {
        "index-url": "http://127.0.0.1:1/global",
        "extra-index-url": f"file://{tmp_path}/from-variable",  # a variable over the files
        "find-links": "install/wheels",  # [install] over [global]
        "no-index": "0",
        "constraint": "limits.txt",
        "trusted-host": "127.0.0.1:1",
        "cert": "/nowhere/ca.pem",
        "timeout": "12.4",
        "proxy": "http://127.0.0.1:3",
    }
    sources = uv_sources(env, pip)
    assert sources.options == [  # the closed index is skipped, as pip skips it
        "--index-url", f"file://{tmp_path}/from-variable",
        "--index-strategy", "unsafe-best-match",
        "--find-links", str(tmp_path / "install" / "wheels"),
        "--constraint", str(tmp_path / "limits.txt"),
        "--allow-insecure-host", "127.0.0.1:1",
    ]
    assert sources.env == {"SSL_CERT_FILE": "/nowhere/ca.pem", "UV_HTTP_TIMEOUT": "12",
                           "HTTP_PROXY": "http://127.0.0.1:3",
                           "HTTPS_PROXY": "http://127.0.0.1:3"}

    # The file's two extra indexes (one missing) and a default index that answers.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        served = f"http://127.0.0.1:{listener.getsockname()[1]}/simple"
        env = pip_environment(tmp_path, PIP_INDEX_URL=served)
        pip = pip_configuration(env)
        assert pip["extra-index-url"].split() == [f"file://{tmp_path}/a",
                                                  f"file://{tmp_path}/missing"]
        assert uv_sources(env, pip).options[:4] == ["--index-url", served,
                                                    "--extra-index-url", f"file://{tmp_path}/a"]

    # The operator's uv variables win, setting by setting; a uv configuration file, entirely.
    uv_set = {**env, "UV_DEFAULT_INDEX": CLOSED, "UV_EXTRA_INDEX_URL": f"file://{tmp_path}/uv",
              "UV_INDEX_STRATEGY": "first-index", "SSL_CERT_FILE": "/uv/ca.pem",
              "https_proxy": "http://127.0.0.1:4"}
    sources = uv_sources(uv_set, pip)
    # behind a proxy every index counts as reachable (the proxy decides); uv's strategy is kept
    assert sources.options[:6] == ["--index-url", CLOSED,
                                   "--extra-index-url", f"file://{tmp_path}/uv",
                                   "--find-links", str(tmp_path / "install" / "wheels")]
    assert sources.env == {"UV_HTTP_TIMEOUT": "12"}
    assert {"UV_DEFAULT_INDEX", "UV_EXTRA_INDEX_URL"} <= sources.replaces  # not passed twice
    assert uv_sources({**env, "UV_CONFIG_FILE": "/etc/uv/uv.toml"}, pip) == UvSources()

    # A no-index in pip's configuration is uv's --no-index.
    pip = pip_configuration(pip_environment(tmp_path, PIP_NO_INDEX="yes"))
    assert uv_sources(env, pip).options[0] == "--no-index"


def test_without_pip_its_variables_are_still_read(tmp_path: Path) -> None:
    """pairlab installed without pip: ``pip config list`` fails; the ``PIP_*`` variables are
    what is left (the files need pip to be read as pip reads them)."""
    env = {**pip_environment(tmp_path, PIP_FIND_LINKS="/from/variable"), "PYTHONNOUSERSITE": "1",
           "PYTHONPATH": str(tmp_path / "no-pip")}
    shadow = tmp_path / "no-pip" / "pip"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("")
    (shadow / "__main__.py").write_text("raise SystemExit('No module named pip')\n")
    assert pip_configuration(env) == {"find-links": "/from/variable"}


def local_only(pip: dict[str, str]) -> str | None:
    """Why the host's configured sources would reach beyond this machine, or None."""
    for option in ("extra-index-url", "find-links"):
        for location in pip.get(option, "").split():
            parts = urlsplit(location)
            if parts.scheme in ("http", "https") and parts.hostname not in ("127.0.0.1",
                                                                            "localhost"):
                return f"pip's {option} {location} is not on this machine"
    return None


@pytest.mark.integration
@pytest.mark.timeout(900)
def test_a_build_succeeds_with_pypi_unreachable(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    """The host's own pip configuration (its local indexes and wheel folders), PyPI replaced by
    a closed loopback port: if pip can get the packages so, the environment builds."""
    monkeypatch.setenv("PIP_INDEX_URL", CLOSED)  # for pip
    monkeypatch.setenv("UV_INDEX_URL", CLOSED)  # for uv: the operator's uv variable wins
    pip = pip_configuration(os.environ)
    assert pip["index-url"] == CLOSED
    beyond = local_only(pip)
    if beyond is not None:
        pytest.skip(f"only loopback may be reached by a test: {beyond}")
    wanted = [*BASE_REQUIREMENTS, "six", "pip"]
    fetched = subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--retries=0",
         "--disable-pip-version-check", "-d", str(tmp_path / "pip-got"), "--", *wanted],
        capture_output=True, text=True, timeout=600)
    if fetched.returncode != 0:
        pytest.skip("pip itself cannot get the packages here without PyPI: "
                    + fetched.stderr.strip()[-300:])

    folder = Path(tempfile.mkdtemp(prefix="plsrc-", dir="/tmp"))
    old = os.umask(0o022)
    try:
        set_private_umask()  # as the pairlab command builds them
        settings = prepare_data_dir(Settings(data_dir=folder / "data"))
        python = ensure_environment(settings.envs_root, ("six",))
        box = CheckSandbox(UID_BASE, settings.data_dir, settings.data_dir / "checks")
        assert box.probe_python(python, ("ipykernel", "pytest", "six", "pip")) is None
    finally:
        os.umask(old)
        shutil.rmtree(folder, ignore_errors=True)
