"""Where a task environment's packages come from: the sources pip is configured with on this
host, given to uv as its options, so that if ``pip install`` works here the build works too.

pip's configuration is read by pip itself (``python -m pip config list``, run with pairlab's
own environment: its ``PIP_*`` variables, ``PIP_CONFIG_FILE``, and the global, user and site
``pip.conf`` files pip finds from ``HOME``/``XDG_*``): pip's merging of files, sections and
variables is pip's to decide, and uv reads none of them. Of what pip settles on, for
``pip install`` (the ``:env:`` variables over the ``install`` section over ``global``), the
source settings are translated, each one unless the operator set its uv equivalent (then the
uv variable's value is used the same way, and not passed to uv a second time):

====================  =========================================  ===========================
pip                   uv                                         unless set
====================  =========================================  ===========================
``index-url``         ``--index-url``                            ``UV_DEFAULT_INDEX``,
                                                                 ``UV_INDEX_URL``
``extra-index-url``   ``--extra-index-url`` (each)               ``UV_EXTRA_INDEX_URL``
``find-links``        ``--find-links`` (each; paths made         ``UV_FIND_LINKS``
                      absolute)
``no-index``          ``--no-index``                             ``UV_NO_INDEX``
``constraint``        ``--constraint`` (each, absolute)          ``UV_CONSTRAINT``
``trusted-host``      ``--allow-insecure-host`` (each)           ``UV_INSECURE_HOST``
``cert``              ``SSL_CERT_FILE``                          ``SSL_CERT_FILE``
``timeout``           ``UV_HTTP_TIMEOUT``                        ``UV_HTTP_TIMEOUT``
``proxy``             ``HTTP_PROXY`` and ``HTTPS_PROXY``         any ``*_proxy`` variable
====================  =========================================  ===========================

Two things pip does that uv does not are done here:

- pip skips an index or links location it cannot reach; uv fails the whole install. So the
  indexes (the extra ones, then the default, PyPI unless set) and links are given to uv only if
  ``reachable``; with none left, ``--no-index`` (the links alone). A host without PyPI then
  builds from its local indexes, as pip would.
- pip takes the best version from all indexes together; uv by default only looks at the first
  index that has the package. ``--index-strategy unsafe-best-match`` is pip's behaviour (a pin
  such as ``pytest<8`` that a local index cannot meet is found on PyPI); ``UV_INDEX_STRATEGY``
  set by the operator (e.g. ``first-index``) is kept.

With ``UV_CONFIG_FILE`` set, that uv configuration file decides and nothing of pip's is added.
"""

from __future__ import annotations

import ast
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit
from urllib.request import url2pathname

log = logging.getLogger(__name__)
PIP_OPTIONS = ("index-url", "extra-index-url", "find-links", "no-index", "constraint",
               "trusted-host", "cert", "timeout", "default-timeout", "proxy")
"""The options of ``pip install`` that say where packages come from and how they are fetched."""
_SECTIONS = (":env:", "install", "global")
"""pip's precedence for ``pip install``: its ``PIP_*`` variables, then the ``[install]`` then
the ``[global]`` section of the configuration files (pip merged the files already)."""
_PROXIES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


@dataclass(frozen=True)
class UvSources:
    options: list[str] = field(default_factory=list)
    """``uv pip install`` options."""
    env: dict[str, str] = field(default_factory=dict)
    """Variables added to uv's environment."""
    replaces: frozenset[str] = frozenset()
    """The operator's uv variables these options stand for: not passed to uv as well."""


RESOLVED = frozenset({"UV_DEFAULT_INDEX", "UV_INDEX_URL", "UV_EXTRA_INDEX_URL", "UV_FIND_LINKS",
                      "UV_NO_INDEX", "UV_CONSTRAINT", "UV_INSECURE_HOST"})


def _from_variables(environ: Mapping[str, str]) -> dict[str, str]:
    found = {}
    for option in PIP_OPTIONS:
        value = environ.get("PIP_" + option.upper().replace("-", "_"))
        if value:
            found[option] = value
    return found


def pip_configuration(environ: Mapping[str, str]) -> dict[str, str]:
    """The values of ``PIP_OPTIONS`` pip would use for ``pip install`` in ``environ`` (as pip
    writes them: a list is one space-separated string). If pip cannot be run (not installed in
    pairlab's environment), its ``PIP_*`` variables alone, with a warning."""
    try:
        listed = subprocess.run(  # noqa: S603 - pairlab's own Python, fixed arguments
            [sys.executable, "-m", "pip", "config", "list"], env=dict(environ),
            capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("pip's configuration could not be read (%s): only PIP_* variables are used",
                    exc)
        return _from_variables(environ)
    if listed.returncode != 0:
        log.warning("pip's configuration could not be read (%s): only PIP_* variables are used",
                    (listed.stderr.strip().splitlines() or ["pip config list failed"])[-1])
        return _from_variables(environ)
    items: dict[str, str] = {}
    for line in listed.stdout.splitlines():  # "<section>.<name>=<Python repr of the value>"
        key, sep, shown = line.partition("=")
        if not sep:
            continue
        try:
            value = ast.literal_eval(shown)
        except (ValueError, SyntaxError):
            continue
        items[key] = str(value)
    found: dict[str, str] = {}
    for option in PIP_OPTIONS:
        for section in _SECTIONS:
            if f"{section}.{option}" in items:
                found[option] = items[f"{section}.{option}"]
                break
    return found


def _true(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on", "y", "t")


def _absolute(location: str) -> str:
    """A local path as an absolute one (uv runs in the environments folder, not where pip's
    configuration was written for); a URL as it is."""
    if "://" in location:
        return location
    return os.path.abspath(os.path.expanduser(location))


PYPI = "https://pypi.org/simple"
"""pip's and uv's default index."""
CONNECT_TIMEOUT_S = 5.0


def reachable(location: str, environ: Mapping[str, str]) -> bool:
    """Whether pip would get an answer from the index or links ``location``: a local path or
    ``file:`` URL that exists; an http(s) URL whose host accepts a TCP connection (a failed name
    lookup, a refused or timed-out connection is unreachable), or any http(s) URL when a proxy
    is configured (the proxy decides). Hand-written because it is pip's behaviour uv lacks: pip
    skips a source it cannot reach ("Could not fetch URL"), uv fails the whole install."""
    parts = urlsplit(location)
    if parts.scheme in ("http", "https"):
        if any(environ.get(name) for name in _PROXIES):
            return True
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            with socket.create_connection((parts.hostname or "", port), CONNECT_TIMEOUT_S):
                return True
        except (OSError, ValueError):
            return False
    if parts.scheme == "file":
        return os.path.exists(url2pathname(parts.path))
    if "://" in location:
        return True  # a scheme of uv's own (e.g. git+): uv says what is wrong
    return os.path.exists(location)


def uv_sources(environ: Mapping[str, str], pip: Mapping[str, str]) -> UvSources:
    """pip's source settings ``pip`` as uv options and variables, each unless ``environ`` (the
    operator's) already configures uv for it (see the module's table); the indexes and links
    are then those of them that can be reached, as pip would use them."""
    if environ.get("UV_CONFIG_FILE"):
        return UvSources()
    options: list[str] = []
    env: dict[str, str] = {}

    def unset(*names: str) -> bool:
        return not any(environ.get(name) for name in names)

    def chosen(option: str, uv_names: tuple[str, ...], local: bool = False) -> list[str]:
        for name in uv_names:
            if environ.get(name):
                values = environ[name].replace(",", " ").split()
                break
        else:
            values = pip.get(option, "").split()
        return [_absolute(v) for v in values] if local else values

    if environ.get("UV_NO_INDEX") or _true(pip.get("no-index", "")):
        options.append("--no-index")
    else:
        default = (chosen("index-url", ("UV_DEFAULT_INDEX", "UV_INDEX_URL")) or [PYPI])[0]
        indexes = [*chosen("extra-index-url", ("UV_EXTRA_INDEX_URL",)), default]
        kept = [url for url in indexes if reachable(url, environ)]
        for url in indexes:
            if url not in kept:
                log.warning("package index %s cannot be reached: skipped, as pip does", url)
        if not kept:
            options.append("--no-index")  # only the links below, as pip would do
        else:  # in uv's order of preference: the extra indexes, then the default
            options += ["--index-url", kept[-1]]
            for url in kept[:-1]:
                options += ["--extra-index-url", url]
        if unset("UV_INDEX_STRATEGY"):  # pip's choice: the best version of all the indexes
            options += ["--index-strategy", "unsafe-best-match"]
    for link in chosen("find-links", ("UV_FIND_LINKS",), local=True):
        if reachable(link, environ):
            options += ["--find-links", link]
        else:
            log.warning("package links %s cannot be reached: skipped, as pip does", link)
    for constraint in chosen("constraint", ("UV_CONSTRAINT",), local=True):
        options += ["--constraint", constraint]
    for host in chosen("trusted-host", ("UV_INSECURE_HOST",)):
        options += ["--allow-insecure-host", host]
    if pip.get("cert") and unset("SSL_CERT_FILE"):
        env["SSL_CERT_FILE"] = _absolute(pip["cert"])
    timeout = pip.get("timeout") or pip.get("default-timeout")
    if timeout and unset("UV_HTTP_TIMEOUT"):
        try:
            env["UV_HTTP_TIMEOUT"] = str(max(1, round(float(timeout))))
        except ValueError:
            log.warning("pip's timeout %r is not a number: not given to uv", timeout)
    if pip.get("proxy") and unset(*_PROXIES):
        env["HTTP_PROXY"] = env["HTTPS_PROXY"] = pip["proxy"]
    return UvSources(options, env, RESOLVED)
