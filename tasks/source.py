"""Our own allow-list for task sources, applied before git sees anything.

``validate_source`` turns an admin's URL + ref + subdir into a :class:`Source` or raises
:class:`~tasks.errors.InvalidSource` with a sentence that names what was wrong. Remote hosts are
resolved here and every address must be public unless the admin allow-listed the host; the
addresses are kept on the ``Source`` so the fetch can pin them (no second DNS answer is trusted).
Resolution blocks: call this from a worker thread (``asyncio.to_thread``) in the server.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import SplitResult, urlsplit, urlunsplit

from tasks.errors import InvalidSource

__all__ = [
    "Resolver",
    "SettingNames",
    "Source",
    "SourcePolicy",
    "path_component_problem",
    "ref_problem",
    "scrub_url",
    "validate_source",
]

Resolver = Callable[[str, int], Iterable[str]]
"""``(host, port) -> addresses``; the default uses ``socket.getaddrinfo``."""

MAX_URL_LENGTH = 2048
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_LABEL_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_URL_PATH_RE = re.compile(r"^[A-Za-z0-9._~/+@=,-]*$")
_LOCAL_PATH_RE = re.compile(r"^[A-Za-z0-9._~/+@=,-]+$")
_IPV6_LITERAL_RE = re.compile(r"^([A-Za-z]+://)\[[0-9A-Fa-f:.]+\]")
_SHA_RE = re.compile(r"^[0-9a-f]{7,40}$")
# A conservative subset of what git-check-ref-format allows: ASCII letters, digits, ``._/+=,@!#-``.
_REF_RE = re.compile(r"^[A-Za-z0-9._/+=,@!#-]+$")
_HFS_IGNORABLE = dict.fromkeys(
    [0x200C, 0x200D, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x206A, 0x2070), 0xFEFF]
)


# The networks ``allow_local`` opens: this machine and private networks (RFC 1918, ULA). Link-local
# (cloud metadata at 169.254.169.254), reserved, multicast and unspecified addresses stay closed.
_LOCAL_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "::1/128", "fc00::/7",
))
# Cloud metadata inside those ranges stays closed too: AWS's IPv6 endpoint fd00:ec2::254.
_METADATA_NETWORKS = (ipaddress.ip_network("fd00:ec2::/32"),)


@dataclass(frozen=True)
class SettingNames:
    """What a refusal tells the operator to do to allow it (the server names its settings);
    each completes "the operator can ..."."""

    allow_local: str = "allow local sources"
    allow_http: str = "allow plain http://"
    allowed_hosts: str = "allow-list the host"


@dataclass(frozen=True)
class SourcePolicy:
    allow_local: bool = False
    """Local paths, ``file://`` URLs and hosts on loopback/private networks (the server's
    ``git_allow_local`` setting, the CLI operator's ``--allow-local``)."""
    allowed_hosts: frozenset[str] = frozenset()
    """Hosts the admin allow-listed; these may resolve to loopback/private addresses."""
    allow_http: bool = False
    """Plain ``http://``, and only for ``allowed_hosts``."""
    names: SettingNames = SettingNames()
    """How the refusals say what would allow them."""
    relative_paths: bool = False
    """A local path may be relative (to the working directory): the CLI operator's. The web's
    must be absolute (the server's working directory is no admin's business)."""


@dataclass(frozen=True)
class Source:
    url: str
    """``https://…``, ``http://…`` (allow-listed host) or ``file:///abs/path`` (local)."""
    ref: str | None
    """Branch, tag, ``refs/…`` name or 7–40 hex commit id; ``None`` means the default branch."""
    subdir: str | None
    """Relative POSIX path inside the repository, normalised, or ``None`` for the root."""
    is_local: bool
    addresses: tuple[str, ...] = ()
    """The addresses the host resolved to when validated; the fetch pins them."""


def scrub_url(url: str) -> str:
    """Return ``url`` without userinfo, query or fragment, for logs and messages."""
    try:
        parts = urlsplit(url)
        if parts.scheme and parts.netloc:
            host = parts.netloc.rpartition("@")[2]
            return urlunsplit((parts.scheme, host, parts.path, "", ""))
    except ValueError:
        return "<unparseable url>"
    # scp-like ``user@host:path`` or a plain path: drop anything before an '@'.
    head, sep, tail = url.partition(":")
    if sep and "/" not in head and "@" in head:
        return head.rpartition("@")[2] + sep + tail
    return url


def _show(value: str) -> str:
    text = repr(scrub_url(value))
    return text if len(text) <= 120 else text[:117] + "...'"


def _char_problem(value: str) -> str | None:
    for ch in value:
        if ord(ch) < 0x20 or ord(ch) == 0x7F or (0x80 <= ord(ch) < 0xA0):
            return "a control character"
        if ch.isspace():
            return "whitespace"
        if ch == "$":
            return "'$'"
        if ch == "%":
            return "'%' (percent-encoding is not accepted)"
        if ch == "`":
            return "a backtick"
    return None


def ref_problem(ref: str) -> str | None:
    """Why ``ref`` is not an acceptable ref (git check-ref-format rules, ASCII only), or None."""
    if not ref:
        return "it is empty"
    if len(ref) > 255:
        return "it is longer than 255 characters"
    bad = _char_problem(ref)
    if bad:
        return f"it contains {bad}"
    if ref.startswith("-"):
        return "it starts with '-'"
    if _SHA_RE.match(ref):
        return None
    for token, what in (("..", "'..'"), ("@{", "'@{'"), ("//", "'//'")):
        if token in ref:
            return f"it contains {what}"
    for ch in "\\:?*[~^":
        if ch in ref:
            return f"it contains {ch!r}"
    if not _REF_RE.match(ref):
        return "it contains characters outside [A-Za-z0-9._/+=,@!#-]"
    if ref == "@":
        return "'@' alone is not a ref"
    if ref.startswith("/") or ref.endswith("/"):
        return "it starts or ends with '/'"
    if ref.endswith("."):
        return "it ends with '.'"
    for part in ref.split("/"):
        if part.startswith("."):
            return "a component starts with '.'"
        if part.endswith(".lock"):
            return "a component ends with '.lock'"
    return None


def path_component_problem(name: str) -> str | None:
    """Why one path component may not be written into a workspace, or None.

    Refuses empty, ``.``, ``..``, control characters, backslashes, names git itself treats as
    ``.git`` on some file system (case, trailing dots/spaces, ``git~1``, NTFS ``.git:stream``,
    HFS+ ignorable code points), and names over 255 bytes.
    """
    if name in ("", ".", ".."):
        return f"the component {name!r} is not allowed"
    if len(name.encode("utf-8", "surrogateescape")) > 255:
        return "a component is longer than 255 bytes"
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in name):
        return "it contains a control character"
    if "\\" in name:
        return "it contains a backslash"
    folded = name.translate(_HFS_IGNORABLE).lower()
    stem = folded.split(":", 1)[0].rstrip(". ")
    if stem in (".git", "git~1"):
        return f"{name!r} is a .git directory name"
    return None


def _subdir(subdir: str | None) -> str | None:
    if subdir is None:
        return None
    bad = _char_problem(subdir)
    if bad:
        raise InvalidSource(f"the subdir contains {bad}")
    if subdir.startswith("/"):
        raise InvalidSource("the subdir must be a relative path inside the repository")
    parts = subdir.strip("/").split("/")
    if parts == [""] or parts == ["."]:
        return None
    for part in parts:
        problem = path_component_problem(part)
        if problem:
            raise InvalidSource(f"the subdir {subdir!r} is refused: {problem}")
    return "/".join(parts)


def _check_ref(ref: str | None) -> str | None:
    if ref is None:
        return None
    problem = ref_problem(ref)
    if problem:
        raise InvalidSource(f"the ref {_show(ref)} is refused: {problem}")
    return ref


def default_resolver(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to (blocking; the webhook sender shares it)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _with_embedded(addr: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """``addr`` and any IPv4 address embedded in it (IPv4-mapped, 6to4, Teredo)."""
    ip = ipaddress.ip_address(addr.split("%", 1)[0])
    candidates: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        for embedded in (ip.ipv4_mapped, ip.sixtofour, ip.teredo[1] if ip.teredo else None):
            if embedded is not None:
                candidates.append(embedded)
    return candidates


def is_public_address(addr: str) -> bool:
    """Is ``addr`` (and any IPv4 address embedded in it) a public one? Loopback, private,
    link-local, reserved, multicast and unspecified addresses are not."""
    return all(
        c.is_global
        and not (c.is_private or c.is_loopback or c.is_link_local or c.is_reserved)
        and not (c.is_multicast or c.is_unspecified)
        for c in _with_embedded(addr)
    )


def is_local_network_address(addr: str) -> bool:
    """Is ``addr`` (and any IPv4 address embedded in it) public, or on loopback or a private
    network (what ``allow_local`` opens)?"""
    return all(is_public_address(str(c)) or (any(c in net for net in _LOCAL_NETWORKS)
                                              and not any(c in n for n in _METADATA_NETWORKS))
               for c in _with_embedded(addr))


def check_host(hostname: str) -> str:
    """A valid host name or IPv6 literal (normalised), else ``InvalidSource``."""
    if hostname.startswith("[") or ":" in hostname:
        try:
            return str(ipaddress.IPv6Address(hostname.strip("[]")))
        except ValueError:
            raise InvalidSource(f"the host {hostname!r} is not a valid IPv6 address") from None
    labels = hostname.split(".")
    if len(hostname) > 253 or not all(_LABEL_RE.match(label) for label in labels):
        raise InvalidSource(f"the host {hostname!r} is not a valid host name")
    return hostname


def _split(url: str) -> SplitResult:
    try:
        return urlsplit(url)
    except ValueError:
        raise InvalidSource(f"the URL {_show(url)} cannot be parsed") from None


def _remote(url: str, scheme: str, policy: SourcePolicy, resolver: Resolver) -> Source:
    parts = _split(url)
    if "@" in parts.netloc:
        raise InvalidSource("the URL contains credentials (user@ or user:password@); remove them")
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise InvalidSource("the URL may not carry a query string or fragment")
    if not parts.hostname:
        raise InvalidSource(f"the URL {_show(url)} has no host")
    try:
        port = parts.port
    except ValueError:
        raise InvalidSource(f"the URL {_show(url)} has an invalid port") from None
    if port == 0:
        raise InvalidSource("port 0 is not a valid port")
    host = check_host(parts.hostname)
    if not _URL_PATH_RE.match(parts.path) or "/../" in parts.path + "/":
        raise InvalidSource(f"the URL path {parts.path!r} contains characters we do not accept")
    allowed = host in {h.strip("[]").lower() for h in policy.allowed_hosts}
    if scheme == "http" and not policy.allow_http:
        raise InvalidSource(
            "plain http:// is refused: use https://, or the operator can "
            f"{policy.names.allow_http}, which takes it from allow-listed hosts only"
        )
    if scheme == "http" and not allowed:
        raise InvalidSource(
            f"plain http:// is taken only from allow-listed hosts: use https://, or the operator "
            f"can {policy.names.allowed_hosts.format(host=host)}"
        )
    try:
        addresses = tuple(dict.fromkeys(resolver(host, port or (443 if scheme == "https" else 80))))
    except (OSError, UnicodeError) as exc:
        raise InvalidSource(f"the host {host!r} does not resolve ({exc})") from None
    if not addresses:
        raise InvalidSource(f"the host {host!r} does not resolve")
    if not allowed:
        acceptable = is_local_network_address if policy.allow_local else is_public_address
        private = [a for a in addresses if not acceptable(a)]
        if private:
            remedy = policy.names.allowed_hosts.format(host=host)
            if not policy.allow_local and is_local_network_address(private[0]):
                remedy += f", or {policy.names.allow_local}"
            raise InvalidSource(
                f"the host {host!r} resolves to a non-public address ({private[0]}): "
                f"the operator can {remedy}"
            )
    return Source(url=url, ref=None, subdir=None, is_local=False, addresses=addresses)


def _local(path_text: str, policy: SourcePolicy) -> Source:
    if not policy.allow_local:
        raise InvalidSource(
            f"local paths and file:// URLs are refused: the operator can "
            f"{policy.names.allow_local}"
        )
    if not _LOCAL_PATH_RE.match(path_text):
        raise InvalidSource(f"the local path {path_text!r} contains characters we do not accept")
    # One refusal for a relative, missing or unreadable path and for a file: it never says
    # which, so that a refused path tells nothing of what exists on the server.
    what = "a directory" if policy.relative_paths else "an absolute path to a directory"
    refusal = InvalidSource(f"the local path {path_text!r} is not {what} pairlab can read")
    if not (policy.relative_paths or path_text.startswith("/")):
        raise refusal
    try:
        resolved = Path(path_text).resolve(strict=True)
        if not resolved.is_dir():
            raise refusal
    except (OSError, RuntimeError):
        raise refusal from None
    if not _LOCAL_PATH_RE.match(str(resolved)):
        raise InvalidSource(f"the resolved path {str(resolved)!r} contains characters we refuse")
    return Source(url=f"file://{resolved}", ref=None, subdir=None, is_local=True)


def validate_source(
    url: str,
    ref: str | None,
    subdir: str | None,
    policy: SourcePolicy,
    *,
    resolver: Resolver = default_resolver,
) -> Source:
    """Validate an import request; return a normalised :class:`Source` or raise InvalidSource."""
    if not url:
        raise InvalidSource("the URL is empty")
    if len(url) > MAX_URL_LENGTH:
        raise InvalidSource(f"the URL is longer than {MAX_URL_LENGTH} characters")
    bad = _char_problem(url)
    if bad:
        raise InvalidSource(f"the URL contains {bad}")
    if url.startswith("-"):
        raise InvalidSource("the URL may not start with '-'")
    if "::" in _IPV6_LITERAL_RE.sub(r"\1", url):
        raise InvalidSource("git remote-helper syntax ('transport::address') is refused")
    checked_ref = _check_ref(ref)
    checked_subdir = _subdir(subdir)
    match = _SCHEME_RE.match(url)
    if match is None:
        head = url.split("/", 1)[0]
        if ":" in head:
            raise InvalidSource("scp-style 'host:path' URLs (ssh) are refused; use https://")
        source = _local(url, policy)
    else:
        scheme = match.group(1).lower()
        if scheme in ("https", "http"):
            source = _remote(url, scheme, policy, resolver)
        elif scheme == "file":
            parts = _split(url)
            if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
                raise InvalidSource("a file:// URL must be file:///absolute/path")
            if "?" in url or "#" in url:
                raise InvalidSource("a file:// URL may not carry a query string or fragment")
            source = _local(parts.path, policy)
        else:
            raise InvalidSource(f"the scheme {scheme!r} is refused; use https://")
    return Source(
        url=source.url,
        ref=checked_ref,
        subdir=checked_subdir,
        is_local=source.is_local,
        addresses=source.addresses,
    )
