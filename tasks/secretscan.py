"""Find secrets in text for the anonymiser: our own patterns plus detect-secrets' plugins.

Our patterns cover what must be replaced as a unit (a whole ``-----BEGIN ... PRIVATE KEY-----``
block, a full JWT, an AWS key pair) and ``password = "..."``-style assignments. detect-secrets
adds its vendor token detectors and the base64 high-entropy detector with the library's own
false-positive heuristics.

The plugins are instantiated here and asked only for ``analyze_string``: that never verifies a
secret against a remote service (no network) and never touches detect-secrets' process-global
settings, so concurrent scans in worker threads cannot interfere with each other.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
from detect_secrets.filters import heuristic
from detect_secrets.plugins.base import RegexBasedDetector
from detect_secrets.plugins.high_entropy_strings import Base64HighEntropyString

PLACEHOLDER_PREFIX = {
    "private-key": "REDACTED_PRIVATE_KEY",
    "aws-access-key": "REDACTED_AWS_ACCESS_KEY",
    "aws-secret-key": "REDACTED_AWS_SECRET_KEY",
    "jwt": "REDACTED_JWT",
    "token": "REDACTED_TOKEN",
    "secret": "REDACTED_SECRET",
}
PLACEHOLDER_RE = re.compile(r"REDACTED_[A-Z_]+_\d+")
LIBRARY_MAX_LINE = 1000

_KEY_BEGIN = re.compile(r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
_KEY_END = re.compile(r"-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
_KEY_BODY = re.compile(r"(?:(?:\s|\\n)+[A-Za-z0-9+/=:,\-]{8,})*")  # when the END line is missing
AWS_KEY_ID_RE = re.compile(
    r"(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}(?![A-Za-z0-9])"
)
_AWS_SECRET_RE = re.compile(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
_AWS_CONTEXT_RE = re.compile(r"(?i)aws.{0,30}secret|secret.{0,30}aws")
JWT_RE = re.compile(
    r"(?<![A-Za-z0-9_\-])eyJ[A-Za-z0-9_\-]{2,}\.eyJ[A-Za-z0-9_\-]{2,}\.[A-Za-z0-9_\-+/=]*"
)
TOKEN_RES = tuple(
    re.compile(p)
    for p in (
        r"(?<![A-Za-z0-9])(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})",
        r"(?<![A-Za-z0-9])glpat-[A-Za-z0-9_\-]{20,}",
        r"(?<![A-Za-z0-9])xox[abposre]-[A-Za-z0-9\-]{10,}",
        r"https://hooks\.slack\.com/services/[A-Za-z0-9/]+",
        r"(?<![A-Za-z0-9])(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{10,}",
        r"(?<![A-Za-z0-9])whsec_[A-Za-z0-9]{20,}",
        r"(?<![A-Za-z0-9\-])sk-(?:proj-|ant-)?[A-Za-z0-9_\-]{20,}",
        r"(?<![A-Za-z0-9])AIza[0-9A-Za-z_\-]{35}",
        r"(?<![A-Za-z0-9])hf_[A-Za-z0-9]{30,}",
        r"(?<![A-Za-z0-9])npm_[A-Za-z0-9]{36}",
        r"(?<![A-Za-z0-9])pypi-[A-Za-z0-9_\-]{50,}",
        r"(?i)(?<=bearer )[A-Za-z0-9._~+/\-]{20,}=*",
    )
)
_KEYWORD_RE = re.compile(r"(?i)pass|pwd|secret|token|key|credential")
_NAME = (
    r"(?P<name>[A-Za-z0-9_.\-]*?(?:password|passwd|pwd|passphrase|secret|token|api[_\-]?key|"
    r"apikey|(?:access|secret|private|auth|encryption|signing|master|license)[_\-]?key|"
    r"credentials?))"
)
ASSIGN_QUOTED_RE = re.compile(
    rf"(?i)(?<![A-Za-z0-9_.\-]){_NAME}['\"]?(?:\s*:\s*[A-Za-z_][\w\[\], .|]*?)?"
    r"\s*(?:=|:|:=|=>|==|!=)\s*[rbuRBU]?(?P<q>['\"])(?P<value>[^'\"\n]{4,})(?P=q)"
)
ASSIGN_BARE_RE = re.compile(
    rf"(?im)^[ \t]*(?:export[ \t]+)?{_NAME}[ \t]*[=:][ \t]*(?P<value>[^\s'\"#;,]{{4,}})"
)
_CODE_SUFFIXES = frozenset(
    ".py .pyi .ipynb .js .jsx .ts .tsx .java .go .rs .c .h .cc .cpp .hpp .rb .r .scala .kt "
    ".swift .cs .php .sql .jl .lua .pl".split()
)
_NOT_SECRET_NAMES = re.compile(
    r"(?i)(?:^|[._\-])(?:pad|eos|bos|unk|cls|sep|mask|start|end|stop|special)[_\-]?token$"
)
_NOT_SECRET_VALUES = frozenset(
    "none null nil true false required optional string str bearer basic token password "
    "secret changeme example placeholder".split()
)
_EXCLUDED_PLUGINS = frozenset(
    {
        "IPPublicDetector",  # IP addresses are rewritten by their own rule
        "PrivateKeyDetector",  # finds only the header; we replace the whole block
        "BasicAuthDetector",  # URL credentials are removed by their own rule
        "KeywordDetector",  # our assignment patterns, tuned not to break code
        "HexHighEntropyString",  # digests and checksums in tests are not secrets
        "Base64HighEntropyString",  # added below with the library's filters
    }
)


@dataclass(frozen=True)
class SecretHit:
    start: int
    end: int
    kind: str
    value: str


def is_code(filename: str) -> bool:
    """Source code (by suffix): bare ``name = value`` and ``a.b`` there are references."""
    return PurePosixPath(filename).suffix.lower() in _CODE_SUFFIXES


def mask(value: str) -> str:
    """Never the secret: at most its first 4 characters (fewer for short ones) and its length."""
    keep = min(4, len(value) // 4)
    return f"{value[:keep]}…[{len(value)} chars]"


def placeholder(kind: str, number: int) -> str:
    return f"{PLACEHOLDER_PREFIX.get(kind, 'REDACTED_SECRET')}_{number}"


def _plugins() -> list[Any]:
    classes: list[type[Any]] = list(get_mapping_from_secret_type_to_class().values())
    chosen = [
        c for c in classes
        if issubclass(c, RegexBasedDetector) and c.__name__ not in _EXCLUDED_PLUGINS
    ]
    return [c() for c in sorted(chosen, key=lambda c: c.__name__)]


def _line_at(text: str, pos: int) -> str:
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    return text[start : end if end >= 0 else len(text)]


def _occurrences(text: str, value: str) -> Iterator[int]:
    """Where ``value`` occurs; a short value only where it stands on its own (not in a word)."""
    for m in re.finditer(re.escape(value), text):
        if len(value) < 16:
            before = text[m.start() - 1] if m.start() else ""
            after = text[m.end()] if m.end() < len(text) else ""
            if (value[0].isalnum() and (before.isalnum() or before == "_")) or (
                value[-1].isalnum() and (after.isalnum() or after == "_")
            ):
                continue
        yield m.start()


def _value_ok(value: str) -> bool:
    v = value.strip()
    if len(v) < 4 or PLACEHOLDER_RE.fullmatch(v) or v.lower() in _NOT_SECRET_VALUES:
        return False
    if v[0] in "$<[{%!" or "{{" in v or "${" in v or any(c.isspace() for c in v):
        return False
    return not heuristic.is_not_alphanumeric_string(v) and len(set(v)) > 1


def _private_keys(text: str) -> Iterator[SecretHit]:
    """Whole BEGIN … END blocks (also with literal ``\\n`` escapes), in linear time."""
    begins = list(_KEY_BEGIN.finditer(text))
    ends = [m.end() for m in _KEY_END.finditer(text)]
    pos = 0
    for i, begin in enumerate(begins):
        if begin.start() < pos:
            continue
        j = bisect.bisect_left(ends, begin.end())
        limit = begins[i + 1].start() if i + 1 < len(begins) else len(text)
        if j < len(ends) and ends[j] <= limit:
            stop = ends[j]
        else:
            body = _KEY_BODY.match(text, begin.end())
            stop = body.end() if body else begin.end()
        yield SecretHit(begin.start(), stop, "private-key", text[begin.start() : stop])
        pos = stop


def _own_hits(text: str, suffix: str) -> Iterator[SecretHit]:
    yield from _private_keys(text)
    key_lines: list[int] = []
    for m in AWS_KEY_ID_RE.finditer(text):
        key_lines.append(text.count("\n", 0, m.start()))
        yield SecretHit(m.start(), m.end(), "aws-access-key", m.group(0))
    for m in _AWS_SECRET_RE.finditer(text):
        v = m.group(0)
        if not (re.search(r"[a-z]", v) and re.search(r"[A-Z]", v) and re.search(r"[0-9]", v)):
            continue
        line_no = text.count("\n", 0, m.start())
        near = any(abs(line_no - k) <= 5 for k in key_lines)
        if near or _AWS_CONTEXT_RE.search(_line_at(text, m.start())):
            yield SecretHit(m.start(), m.end(), "aws-secret-key", v)
    for m in JWT_RE.finditer(text):
        yield SecretHit(m.start(), m.end(), "jwt", m.group(0))
    for regex in TOKEN_RES:
        for m in regex.finditer(text):
            yield SecretHit(m.start(), m.end(), "token", m.group(0))
    if not _KEYWORD_RE.search(text):
        return
    regexes = [ASSIGN_QUOTED_RE]
    if not is_code(f"x{suffix}"):
        regexes.append(ASSIGN_BARE_RE)
    for regex in regexes:
        for m in regex.finditer(text):
            if _NOT_SECRET_NAMES.search(m.group("name")) or not _value_ok(m.group("value")):
                continue
            yield SecretHit(m.start("value"), m.end("value"), "secret", m.group("value"))


def _short_lines(text: str) -> str:
    """``text`` with lines over LIBRARY_MAX_LINE blanked: some detect-secrets patterns (e.g.
    NpmDetector's ``//.+/:_authToken``) take quadratic time on long lines. Our own patterns
    still see those lines."""
    if len(text) <= LIBRARY_MAX_LINE:
        return text
    return "\n".join("" if len(line) > LIBRARY_MAX_LINE else line for line in text.split("\n"))


def _library_hits(full_text: str, filename: str) -> Iterator[SecretHit]:
    text = _short_lines(full_text)
    for plugin in _plugins():
        kind = {"AWSKeyDetector": "aws-secret-key", "JwtTokenDetector": "jwt"}.get(
            type(plugin).__name__, "token"
        )
        for value in sorted(set(plugin.analyze_string(text))):
            if not isinstance(value, str) or len(value) < 8:
                continue
            this_kind = "aws-access-key" if AWS_KEY_ID_RE.fullmatch(value) else kind
            for pos in _occurrences(full_text, value):
                yield SecretHit(pos, pos + len(value), this_kind, value)
    if heuristic.is_lock_file(filename):
        return
    entropy = Base64HighEntropyString()
    for value in sorted(set(entropy.analyze_string(full_text))):
        # Entropy is at most log2(length): short strings cannot pass the limit.
        if len(value) < 8 or math.log2(len(value)) <= entropy.entropy_limit:
            continue
        if entropy.calculate_shannon_entropy(value) <= entropy.entropy_limit:
            continue
        if (
            heuristic.is_sequential_string(value)
            or heuristic.is_potential_uuid(value)
            or heuristic.is_templated_secret(value)
            or heuristic.is_not_alphanumeric_string(value)
            or PLACEHOLDER_RE.fullmatch(value)
        ):
            continue
        for pos in _occurrences(full_text, value):
            line = _line_at(full_text, pos)
            if heuristic.is_likely_id_string(value, line) or heuristic.is_indirect_reference(line):
                continue
            yield SecretHit(pos, pos + len(value), "secret", value)


def find_secrets(text: str, filename: str) -> list[SecretHit]:
    """Every secret span in ``text`` (may overlap; the caller keeps the longest)."""
    suffix = PurePosixPath(filename).suffix.lower()
    hits = set(_own_hits(text, suffix)) | set(_library_hits(text, filename))
    return sorted(hits, key=lambda h: (h.start, -h.end, h.kind, h.value))
