"""Find e-mail addresses, internal hosts, IP addresses and URL credentials in text.

Only finds: numbering the placeholders (``person1@example.com``, ``host1.example.internal``,
``192.0.2.1``) happens in the anonymiser so that it stays consistent across a whole tree. Every
finder returns :class:`NetHit` spans over the text it was given.

What counts as internal: a URL host without a dot, a host under an internal-only suffix
(``.internal``, ``.corp``, ``.local``, ``.lan``, ...), or a host the caller's ``denied`` predicate
recognises (it holds a deny-listed term). Outside URLs, two-label internal names are taken only
where they cannot be code, so Python attribute chains such as ``threading.local`` survive.
Reserved names (``example.com``, ``*.example``, ``*.test``, ``*.invalid``, ``localhost``) and the
documentation and loopback IP ranges are left alone, which also makes the output a fixed point.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass

INTERNAL_SUFFIXES = ("internal", "corp", "local", "lan", "intranet", "localdomain", "home.arpa")
_RESERVED_SUFFIXES = ("example", "test", "invalid", "localhost")
_EXAMPLE_DOMAINS = ("example.com", "example.org", "example.net", "example.internal")
_EMAIL_KEPT = ("example.com", "example.org", "example.net")
_COMMON_TLDS = frozenset(
    "com org net edu gov mil int io ai dev app cloud tech info biz name pro xyz site online "
    "systems solutions company consulting digital network services agency group global "
    "internal corp local lan intranet localdomain arpa".split()
)
# Identifier-ish "domains" that are really code: ``x@self.fc`` is matrix multiplication.
_CODE_OWNERS = frozenset({"self", "cls", "this", "super", "np", "torch", "tf", "jnp"})
_CODE_NAMES = _CODE_OWNERS | frozenset(
    "os sys settings config cfg conf args opts options ctx app threading pd".split()
)

EMAIL_RE = re.compile(
    r"(?<![A-Za-z0-9._%+\-])[A-Za-z0-9._%+\-]+@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?\.)+[A-Za-z0-9]{2,24}(?![A-Za-z0-9\-])"
)
_URL_RE = re.compile(r"(?i)(?<![a-z0-9+.\-])[a-z][a-z0-9+.\-]*://([^\s/?#'\"<>`\\|{}()]*)")
_HOSTNAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9\-.]*[A-Za-z0-9])?$")
_HOST_RE = re.compile(
    r"(?i)(?<![A-Za-z0-9.\-@])(?:[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?\.)+"
    r"(?:" + "|".join(re.escape(s) for s in INTERNAL_SUFFIXES) + r")(?![\w\-(]|\.\w)"
)
_IPV4_RE = re.compile(r"(?<![\w.=<>~^!])(?:\d{1,3}\.){3}\d{1,3}(?!\w|\.\d)")
_IPV6_RE = re.compile(r"(?i)(?<![\w:.])(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}(?![\w:]|\.\d)")
_DOC_NETS = tuple(
    ipaddress.ip_network(n)
    for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
)


@dataclass(frozen=True)
class NetHit:
    """A span to rewrite. ``kind``: email, host, ip or url-credentials."""

    start: int
    end: int
    kind: str
    value: str
    claim: bool = False  # URL parts win over any overlapping finding


def _mail_domain(domain: str) -> str | None:
    """The longest leading part of ``domain`` that ends in a plausible TLD, or None.

    ``maya@corp.com.csv`` (a file name) holds ``corp.com``; ``x@self.fc`` is code, not mail.
    """
    labels = domain.split(".")
    if labels[0].lower() in _CODE_OWNERS:
        return None
    for end in range(len(labels), 1, -1):
        tld = labels[end - 1].lower()
        if tld.isalpha() and (len(tld) == 2 or tld in _COMMON_TLDS):
            return ".".join(labels[:end])
    return None


def is_example_domain(domain: str) -> bool:
    d = domain.lower().rstrip(".")
    return any(d == e or d.endswith("." + e) for e in _EXAMPLE_DOMAINS) or any(
        d == s or d.endswith("." + s) for s in _RESERVED_SUFFIXES
    )


def find_emails(text: str) -> list[NetHit]:
    hits: list[NetHit] = []
    for m in EMAIL_RE.finditer(text):
        local, _, domain = m.group(0).rpartition("@")
        kept = _mail_domain(domain)
        if kept is None or any(kept.lower() == k or kept.lower().endswith("." + k)
                               for k in _EMAIL_KEPT):
            continue
        value = f"{local}@{kept}"
        hits.append(NetHit(m.start(), m.start() + len(value), "email", value))
    return hits


def kept_ip(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Loopback, unspecified, netmasks and documentation addresses are not identifying."""
    if address.is_loopback or address.is_unspecified:
        return True
    if any(address in net for net in _DOC_NETS):
        return True
    if isinstance(address, ipaddress.IPv4Address):
        bits = int(address)
        inverted = ~bits & 0xFFFFFFFF
        return bits >> 24 == 0xFF and (inverted & (inverted + 1)) == 0  # 255.x netmask
    return False


def parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _plausible_ipv6(text: str) -> bool:
    groups = [g for g in text.split(":") if g]
    if len(groups) >= 3:
        return True
    # Two groups ("fe80::1") only with a full four-digit hex group: not a slice like x[1::2].
    return any(len(g) == 4 and re.search(r"[a-fA-F]", g) for g in groups)


def _rewritable_ip(value: str) -> bool:
    address = parse_ip(value)
    if address is None or kept_ip(address):
        return False
    return address.version == 4 or _plausible_ipv6(value)


def find_ips(text: str) -> list[NetHit]:
    hits: list[NetHit] = []
    verdicts: dict[str, bool] = {}
    for regex in (_IPV4_RE, _IPV6_RE):
        for m in regex.finditer(text):
            value = m.group(0)
            if value not in verdicts:
                verdicts[value] = _rewritable_ip(value)
            if verdicts[value]:
                hits.append(NetHit(m.start(), m.end(), "ip", value))
    return hits


def is_internal_host(host: str, denied: Callable[[str], bool]) -> bool:
    h = host.lower().rstrip(".")
    if not h or is_example_domain(h) or parse_ip(h) is not None:
        return False
    if "." not in h or denied(h):
        return True
    return any(h == s or h.endswith("." + s) for s in INTERNAL_SUFFIXES)


def _looks_like_host(text: str, m: re.Match[str], code: bool) -> bool:
    """``a.b.internal`` always; ``db.corp`` only where it cannot be code (``threading.local``):
    its first label has a digit or ``-``, or it stands in quotes or after ``@`` or ``/``, or (in
    a file that is not code) after ``=`` or ``: ``."""
    host = m.group(0)
    if is_example_domain(host):
        return False
    suffix = next(s for s in INTERNAL_SUFFIXES if host.lower().endswith("." + s))
    labels = host[: -len(suffix) - 1].split(".")
    if code and labels[0] in _CODE_NAMES:
        return False  # self.cache.local, settings.db.internal
    if len(labels) >= 2 or any(c.isdigit() or c == "-" for c in labels[0]):
        return True
    before = text[max(0, m.start() - 2) : m.start()]
    if before[-1:] in ("'", '"', "@", "/"):
        return True
    return not code and (before[-1:] == "=" or before in (": ", "= "))


def find_bare_hosts(text: str, *, code: bool = False) -> list[NetHit]:
    """Internal host names outside URLs; ``code``: the text is source code (stricter)."""
    return [
        NetHit(m.start(), m.end(), "host", m.group(0))
        for m in _HOST_RE.finditer(text)
        if _looks_like_host(text, m, code)
    ]


def _split_hostport(hostport: str) -> tuple[str, int]:
    """→ (host, offset of host in hostport); IPv6 literals lose their brackets."""
    if hostport.startswith("["):
        close = hostport.find("]")
        if close > 0:
            return hostport[1:close], 1
    host, sep, port = hostport.rpartition(":")
    if sep and port.isdigit():
        return host, 0
    return hostport, 0


def find_url_parts(text: str, denied: Callable[[str], bool]) -> list[NetHit]:
    """Credentials (``user:pass@``) and internal hosts inside ``scheme://`` URLs.

    A user name in front of an internal host is removed as well: ``maya@host1.example.internal``
    would otherwise still name a person.
    """
    hits: list[NetHit] = []
    for m in _URL_RE.finditer(text):
        authority, base = m.group(1), m.start(1)
        userinfo, at, hostport = authority.rpartition("@")
        host_base = base + len(userinfo) + 1 if at else base
        host, offset = _split_hostport(hostport)
        start = host_base + offset
        host_hit: NetHit | None = None
        address = parse_ip(host) if host else None
        if address is not None:
            if not kept_ip(address):
                host_hit = NetHit(start, start + len(host), "ip", host, claim=True)
        elif host and _HOSTNAME_RE.match(host) and is_internal_host(host, denied):
            host_hit = NetHit(start, start + len(host), "host", host, claim=True)
        if at:
            scheme = text[m.start() : base].lower()
            token = scheme.startswith("http") and len(userinfo) >= 16
            if ":" in userinfo or token or host_hit is not None:
                hits.append(
                    NetHit(base, host_base, "url-credentials", userinfo + "@", claim=True)
                )
        if host_hit is not None:
            hits.append(host_hit)
    return hits
