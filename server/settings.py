"""Typed, frozen settings: defaults -> TOML file -> ``PAIRLAB_*`` environment -> CLI flags.

Every field has a default and a help string (``metadata["help"]``); the CLI builds its flags and
the README's settings table from the same fields, and a test checks the README lists them all.
Only this module reads the environment.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import os
import re
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from yarl import URL

from server.people.accounts import EMAIL_RE  # an address as accounts take it
from workspaces.admission import check_max_parallel
from workspaces.sandbox.limits import MIN_CPUS

ENV_PREFIX = "PAIRLAB_"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_BOOLS = {"1": True, "true": True, "yes": True, "on": True,
          "0": False, "false": False, "no": False, "off": False}
COOKIE_SECRET_FILE = "cookie_secret"  # noqa: S105 - a file name
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class SettingsError(Exception):
    """An invalid setting: the message names the setting, its source and the problem."""


class Secret:
    """A string that never shows itself in ``repr`` or logs (as starlette's ``Secret``)."""

    def __init__(self, value: str) -> None:
        self._value = value

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __str__(self) -> str:
        return self._value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and secrets.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def reveal(self) -> str:
        return self._value


def _f(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Settings:
    data_dir: Path = _f(Path("./var"), "folder for the SQLite database, task store and workspaces")
    host: str = _f("127.0.0.1", "address the interviewer/admin app listens on")
    port: int = _f(8800, "port of the interviewer/admin app")
    workspace_host: str = _f("127.0.0.1", "address of the candidate workspace origin")
    workspace_port: int = _f(8801, "port of the candidate workspace origin (a separate origin)")
    workspace_domain: str = _f(
        "localhost", "host name workspaces are served under: each workspace on its own origin"
        " w-<id>.DOMAIN, the links and handoffs on DOMAIN itself (needs wildcard DNS and TLS)"
    )
    public_url: str = _f("", "external URL of the app origin (default http://HOST:PORT)")
    workspace_public_url: str = _f(
        "", "external URL of the shared workspace origin, whose host is workspace_domain"
        " (default http://WORKSPACE_DOMAIN:WORKSPACE_PORT)"
    )
    cookie_secret: Secret = _f(
        Secret(""), "key for signing cookies; generated into DATA_DIR/cookie_secret if empty"
    )
    log_level: str = _f("INFO", "logging level: DEBUG, INFO, WARNING, ERROR or CRITICAL")
    session_hours: int = _f(12, "how long a login session lasts, in hours")
    max_body_bytes: int = _f(1_048_576, "largest request body accepted, in bytes")
    login_max_failures: int = _f(
        5, "failed logins of one account from one address before that pair backs off (429)"
    )
    login_window_seconds: int = _f(
        60, "first login back-off (doubling, at most 16 times) and the window for counting"
        " failures per account and per address, in seconds"
    )
    trusted_proxies: str = _f(
        "", "comma-separated addresses or networks (CIDR) of reverse proxies whose"
        " X-Forwarded-For is believed; empty: the header is ignored"
    )
    shutdown_timeout: float = _f(10.0, "seconds to wait for requests to finish on shutdown")
    git_allowed_hosts: str = _f(
        "", "comma-separated git hosts allowed even if they resolve to loopback/private addresses"
    )
    git_allow_http: bool = _f(False, "allow plain http:// imports, only from git_allowed_hosts")
    git_allow_local: bool = _f(
        False, "let admins import (web page and API) from local paths, file:// URLs and hosts on"
        " loopback/private networks, as the CLI's --allow-local does"
    )
    import_max_entries: int = _f(5000, "largest number of files and folders in an imported tree")
    import_max_total_bytes: int = _f(50 * 1024 * 1024, "largest imported tree, in bytes")
    import_max_blob_bytes: int = _f(10 * 1024 * 1024, "largest single imported file, in bytes")
    import_timeout_seconds: float = _f(120.0, "time limit for fetching a task source with git")
    check_timeout_seconds: float = _f(300.0, "time limit for a task's tests during import")
    continuous_checks: bool = _f(
        True, "run the task's visible tests in a sandbox after each snapshot (tests.run events)"
    )
    blind_scoring: bool = _f(
        False, "new sessions are blind by default: interviewers see a pseudonym, not the"
        " candidate's name and email, until an audited reveal after every scorecard is in"
    )
    warm_pool_size: int = _f(1, "started idle workspaces kept ready per task environment")
    max_parallel_starts: int = _f(
        0, "cold workspace starts run at once (0: one per CPU core); more wait in a queue, and"
        " candidates see their place and an estimate")
    start_queue_timeout_seconds: float = _f(
        300.0, "longest a workspace start waits in the start queue before it fails with a"
        " message")
    sandbox_uid_base: int = _f(
        40000, "first of 1064 unprivileged uids the sandboxes run as (1000 for workspaces, then"
        " 64 for check runs); none may belong to a host account")
    unsafe_no_sandbox: bool = _f(
        False, "DEVELOPMENT ONLY: run workspaces without bubblewrap (never in production)"
    )
    workspace_disk_mib: int = _f(
        4096, "disk limit of each workspace, in MiB (its own loop-mounted ext4 image)")
    workspace_max_files: int = _f(
        200_000, "files, folders and links each workspace may have (inodes of its image)")
    workspace_cpus: float = _f(
        1.0, "CPUs each workspace may use together (a hard cap, cgroup cpu quota; 0.01 up to"
        " the host's cores); its weight under contention stays below pairlab's own")
    unsafe_no_disk_image: bool = _f(
        False, "DEVELOPMENT ONLY: workspaces without their disk image; disk use is only polled"
        " and file counts are unlimited (never in production)")
    unsafe_no_cgroups: bool = _f(
        False, "DEVELOPMENT ONLY: workspaces and check runs without the memory and pids cgroups;"
        " only per-process rlimits bound them (never in production)")
    environments_dir: str = _f(
        "", "folder for the shared per-requirements Python environments (default DATA_DIR/envs)"
    )
    min_agreement_sessions: int = _f(
        5, "sessions scored by 2+ interviewers needed before an agreement figure is shown"
    )
    min_validity_sample: int = _f(
        10, "sessions with a known outcome needed before a validity figure is shown"
    )
    webhook_allowed_hosts: str = _f(
        "", "comma-separated webhook hosts allowed even if they resolve to loopback/private"
        " addresses"
    )
    webhook_retry_base_seconds: float = _f(
        5.0, "first retry delay of a failed webhook delivery, in seconds (then x6, x24, x120, x720)"
    )
    smtp_host: str = _f(
        "", "SMTP server that emails candidate links from a session's page; empty: pairlab sends"
        " no email (the interviewer copies the link)")
    smtp_port: int = _f(587, "port of the SMTP server (587 with STARTTLS, 465 with smtp_tls)")
    smtp_username: str = _f("", "SMTP login name; empty: no AUTH")
    smtp_password: Secret = _f(Secret(""), "SMTP password (never logged or shown)")
    smtp_from: str = _f("", "From address of pairlab's emails (needed with smtp_host)")
    smtp_starttls: bool = _f(
        True, "upgrade the SMTP connection with STARTTLS; a server that does not offer it is"
        " refused")
    smtp_tls: bool = _f(False, "SMTP over TLS from the first byte (port 465), not STARTTLS")
    smtp_timeout_seconds: float = _f(20.0, "time limit for one email's SMTP exchange")

    @property
    def smtp_configured(self) -> bool:
        """Can pairlab send email (a session page's "Send the link by email")?"""
        return bool(self.smtp_host)

    @property
    def allowed_git_hosts(self) -> frozenset[str]:
        return frozenset(h.strip().lower() for h in self.git_allowed_hosts.split(",") if h.strip())

    @functools.cached_property
    def trusted_proxy_networks(self) -> tuple[Network, ...]:
        """Parsed once (read on every request that asks for the client's address)."""
        return parse_networks(self.trusted_proxies)

    @property
    def allowed_webhook_hosts(self) -> frozenset[str]:
        hosts = self.webhook_allowed_hosts.split(",")
        return frozenset(h.strip().strip("[]").lower() for h in hosts if h.strip())

    def __post_init__(self) -> None:
        # Every path is made absolute once, here, against the folder pairlab was started in:
        # a relative data dir (the default ``./var``) would otherwise mean something else to
        # each subprocess that runs with its own working folder (checks, git, sandboxes).
        object.__setattr__(self, "data_dir", Path(os.path.abspath(self.data_dir)))
        object.__setattr__(self, "workspace_domain", self.workspace_domain.lower())
        if self.environments_dir:
            object.__setattr__(self, "environments_dir", os.path.abspath(self.environments_dir))
        problems = list(_validate(self))
        if problems:
            raise SettingsError(problems[0])

    @property
    def db_path(self) -> Path:
        return self.data_dir / "pairlab.db"

    @property
    def envs_root(self) -> Path:
        """Where the shared task environments live (``environments_dir`` or ``DATA_DIR/envs``)."""
        return Path(self.environments_dir) if self.environments_dir else self.data_dir / "envs"

    @property
    def app_url(self) -> str:
        return self.public_url.rstrip("/") or f"http://{_url_host(self.host)}:{self.port}"

    @property
    def workspace_url(self) -> str:
        """The shared workspace origin: candidate links, landing pages and handoffs."""
        default = f"http://{self.workspace_domain}:{self.workspace_port}"
        return self.workspace_public_url.rstrip("/") or default

    @property
    def workspace_form_targets(self) -> list[str]:
        """CSP sources for the shared workspace origin and every workspace's own origin (the
        interviewer's Join form is answered by a redirect through both)."""
        shared = URL(self.workspace_url)
        port = "" if shared.is_default_port() else f":{shared.port}"
        return [str(shared.origin()), f"{shared.scheme}://*.{shared.host}{port}"]

    def workspace_origin(self, workspace_id: str) -> str:
        """The workspace's own origin, ``w-<id>.<workspace domain>`` (same scheme and port as
        the shared one), so that a script in one workspace reaches no other."""
        shared = URL(self.workspace_url)
        return str(shared.with_host(f"w-{workspace_id}.{shared.host}").origin())

    @property
    def secure_workspace_cookies(self) -> bool:
        return self.workspace_url.startswith("https://")

    @property
    def secure_cookies(self) -> bool:
        return self.app_url.startswith("https://")


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def parse_networks(text: str) -> tuple[Network, ...]:
    """Comma-separated IP addresses or CIDR networks (``[v6]`` brackets allowed).

    Raises ValueError naming the first entry that is neither."""
    networks = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item.strip("[]"), strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or network") from None
    return tuple(networks)


def _validate(s: Settings) -> list[str]:
    problems = []
    try:
        parse_networks(s.trusted_proxies)
    except ValueError as exc:
        problems.append(f"trusted_proxies: {exc}")
    for name in ("port", "workspace_port"):
        value = getattr(s, name)
        if not 0 <= value <= 65535:
            problems.append(f"{name}: {value} is not a port number (0-65535)")
    if s.log_level not in LOG_LEVELS:
        problems.append(f"log_level: {s.log_level!r} is not one of {', '.join(LOG_LEVELS)}")
    for name in ("host", "workspace_host"):
        value = getattr(s, name)
        if value != "localhost":
            try:
                ipaddress.ip_address(value)
            except ValueError:
                problems.append(f"{name}: {value!r} is not an IP address or 'localhost'")
    for name in ("public_url", "workspace_public_url"):
        value = getattr(s, name)
        if value and not value.startswith(("http://", "https://")):
            problems.append(f"{name}: {value!r} must start with http:// or https://")
    problems += _workspace_domain_problems(s)
    for name in ("session_hours", "max_body_bytes", "login_max_failures", "login_window_seconds",
                 "import_max_entries", "import_max_total_bytes", "import_max_blob_bytes",
                 "import_timeout_seconds", "check_timeout_seconds", "min_agreement_sessions",
                 "min_validity_sample"):
        if getattr(s, name) < 1:
            problems.append(f"{name}: must be at least 1")
    if (s.host, s.port) == (s.workspace_host, s.workspace_port) and s.port != 0:
        problems.append("workspace_port: must differ from port (the workspace is its own origin)")
    if s.warm_pool_size < 0 or s.warm_pool_size > 50:
        problems.append("warm_pool_size: must be 0 to 50")
    try:
        check_max_parallel(s.max_parallel_starts)
    except ValueError as exc:
        problems.append(str(exc))
    if not 1 <= s.start_queue_timeout_seconds <= 3600:
        problems.append("start_queue_timeout_seconds: must be 1 to 3600")
    if not 64 <= s.workspace_disk_mib <= 16 * 1024 * 1024:
        problems.append("workspace_disk_mib: must be 64 to 16777216 (16 TiB)")
    if not 1000 <= s.workspace_max_files <= 2**31:
        problems.append("workspace_max_files: must be at least 1000")
    problems += _cpu_problems(s.workspace_cpus)
    if not 1000 <= s.sandbox_uid_base <= 4_000_000_000:
        problems.append("sandbox_uid_base: must be an unprivileged uid (1000 or more)")
    if not 0 < s.webhook_retry_base_seconds <= 3600:
        problems.append("webhook_retry_base_seconds: must be more than 0 and at most 3600")
    if s.cookie_secret and len(str(s.cookie_secret)) < 32:
        problems.append("cookie_secret: must be at least 32 characters")
    problems += _smtp_problems(s)
    return problems




def _cpu_problems(cpus: float) -> list[str]:
    cores = os.cpu_count() or 1
    if not MIN_CPUS <= cpus <= cores:  # NaN fails this too
        return [f"workspace_cpus: {cpus:g} is not between {MIN_CPUS} and this host's "
                f"{cores} cores (CPUs each workspace may use, e.g. 1 or 1.5)"]
    return []


def _smtp_problems(s: Settings) -> list[str]:
    problems = []
    if not 1 <= s.smtp_port <= 65535:
        problems.append(f"smtp_port: {s.smtp_port} is not a port number (1-65535)")
    if not 0 < s.smtp_timeout_seconds <= 600:
        problems.append("smtp_timeout_seconds: must be more than 0 and at most 600")
    if s.smtp_tls and s.smtp_starttls:
        problems.append("smtp_tls: TLS from the first byte and STARTTLS exclude each other; set"
                        " smtp_starttls to false with smtp_tls")
    if bool(s.smtp_password) != bool(s.smtp_username):
        problems.append("smtp_username: give both smtp_username and smtp_password, or neither")
    if not s.smtp_host:
        return problems
    if any(c.isspace() or ord(c) < 32 for c in s.smtp_host):
        problems.append(f"smtp_host: {s.smtp_host[:80]!r} is not a host name or address")
    if not EMAIL_RE.match(s.smtp_from):
        problems.append(f"smtp_from: {s.smtp_from[:80]!r} is not an email address (needed"
                        " with smtp_host)")
    if s.smtp_password and not (s.smtp_tls or s.smtp_starttls) and not _is_loopback(s.smtp_host):
        problems.append("smtp_password: would cross the network in clear text; enable"
                        " smtp_starttls or smtp_tls")
    return problems


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def _host_of(url: str) -> str:
    try:
        return (URL(url).host or "").lower()
    except ValueError:  # a bad port or URL: reported by its own check
        return ""


def _workspace_domain_problems(s: Settings) -> list[str]:
    domain = s.workspace_domain
    labels = domain.split(".")
    if len(domain) > 200 or not all(_LABEL.match(label) for label in labels):
        return [f"workspace_domain: {domain!r} is not a valid host name (letters, digits,"
                " hyphens and dots, such as workspaces.example.com)"]
    if labels[-1].isdigit():
        return [f"workspace_domain: {domain!r} is an IP address; workspaces need a host name"
                " that can have sub-domains (w-<id>.DOMAIN), such as localhost"]
    problems = []
    if s.workspace_public_url:
        host = _host_of(s.workspace_public_url)
        if host != domain:
            problems.append(f"workspace_public_url: its host {host!r} must be workspace_domain"
                            f" ({domain!r})")
    app_host = _host_of(s.app_url)
    if app_host == domain or app_host.endswith("." + domain):
        problems.append(f"public_url: the app ({app_host!r}) must not be served on the"
                        f" workspace domain {domain!r} or under it (it would share cookies"
                        " with workspaces)")
    return problems


def shared_site_warning(s: Settings) -> str | None:
    """A sentence when the app and the workspaces share a registrable domain (app.example.com
    beside ws.example.com): a workspace's script can then set cookies for the parent domain
    that reach the app. Over https the app's cookies are ``__Host-`` (never read from a planted
    cookie), but a workspace domain of its own is the sound deployment. No public suffix
    library is installed, so the registrable domain is approximated by the last two labels:
    hosts sharing one always share those, so a shared site is never missed; two sites under a
    longer public suffix (a.co.uk, b.co.uk) get a needless warning."""
    app_host, domain = _host_of(s.app_url), s.workspace_domain
    try:
        ipaddress.ip_address(app_host.strip("[]"))
        return None  # an app on an address shares no cookies with a host name
    except ValueError:
        pass
    app_site, workspace_site = app_host.split(".")[-2:], domain.split(".")[-2:]
    if len(app_site) < 2 or app_site != workspace_site:
        return None
    site = ".".join(app_site)
    return (f"the app ({app_host}) and the workspaces ({domain}) are both under {site}: a"
            f" candidate's script can set cookies for {site} that the app receives; serve"
            f" workspaces from a domain of their own (e.g. ws.example-workspaces.com)")


def setting_fields() -> list[dataclasses.Field[Any]]:
    return list(fields(Settings))


def _cast(name: str, raw: Any, source: str) -> Any:
    """Cast one raw value (a TOML value or an environment string) to the field's type."""
    kind = {f.name: f.type for f in fields(Settings)}[name]
    try:
        if kind == "int":
            if isinstance(raw, bool):
                raise ValueError
            return int(raw)
        if kind == "float":
            if isinstance(raw, bool):
                raise ValueError
            return float(raw)
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            if isinstance(raw, str) and raw.strip().lower() in _BOOLS:
                return _BOOLS[raw.strip().lower()]
            raise ValueError
        if kind == "Path":
            if not isinstance(raw, str | Path) or not str(raw):
                raise ValueError
            return Path(raw)
        if kind == "Secret":
            if not isinstance(raw, str):
                raise ValueError
            return Secret(raw)
        if not isinstance(raw, str):
            raise ValueError
        return raw.upper() if name == "log_level" else raw
    except (TypeError, ValueError):
        expected = {"int": "an integer", "float": "a number", "Path": "a path",
                    "bool": "true or false"}.get(
            str(kind), "a string"
        )
        shown = "(hidden)" if kind == "Secret" else repr(raw)
        raise SettingsError(f"{name}: {shown} from {source} is not {expected}") from None


def env_name(name: str) -> str:
    """The environment variable of setting ``name``."""
    return ENV_PREFIX + name.upper()


def how_to_set(name: str, value: str) -> str:
    """How an operator sets setting ``name`` to ``value``, for error messages:
    ``PAIRLAB_GIT_ALLOW_LOCAL=true (setting git_allow_local)``."""
    return f"{env_name(name)}={value} (setting {name})"


def load_settings(
    cli: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> Settings:
    """Build settings from the four layers. ``cli`` holds only flags the user gave."""
    environ = os.environ if environ is None else environ
    cli = dict(cli or {})
    names = {f.name for f in fields(Settings)}
    values: dict[str, Any] = {}

    env_config = environ.get("PAIRLAB_CONFIG")
    path = config_file or (Path(env_config) if env_config else None)
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise SettingsError(f"config: cannot read {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"config: {path} is not valid TOML: {exc}") from None
        for key, raw in data.items():
            if key not in names:
                raise SettingsError(f"{key}: unknown setting in {path}")
            values[key] = _cast(key, raw, str(path))

    for name in names:
        env_name = ENV_PREFIX + name.upper()
        if env_name in environ:
            values[name] = _cast(name, environ[env_name], env_name)

    for name, raw in cli.items():
        if name not in names:
            raise SettingsError(f"{name}: unknown setting")
        if raw is not None:
            flag = "--" + name.replace("_", "-")
            values[name] = raw if not isinstance(raw, str) else _cast(name, raw, flag)
    return Settings(**values)


def prepare_data_dir(settings: Settings) -> Settings:
    """Create the data dir (mode 0700) and the cookie secret (mode 0600) if missing.

    Returns the settings with ``cookie_secret`` filled in.
    """
    data_dir = settings.data_dir
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(data_dir, 0o700)
    except OSError as exc:
        raise SettingsError(f"data_dir: cannot create {data_dir}: {exc.strerror}") from None
    if settings.cookie_secret:
        return settings
    secret_path = data_dir / COOKIE_SECRET_FILE
    if not secret_path.exists():
        fd = os.open(secret_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
    os.chmod(secret_path, 0o600)
    value = secret_path.read_text(encoding="utf-8").strip()
    if len(value) < 32:
        raise SettingsError(f"cookie_secret: {secret_path} holds fewer than 32 characters")
    return dataclasses.replace(settings, cookie_secret=Secret(value))
