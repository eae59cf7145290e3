"""Bounded, inert text excerpts of candidate output: truncation with a visible marker, removal
of terminal control sequences (ANSI CSI, OSC, DCS, C1 controls, carriage-return overwrites and
backspaces), and event payloads encoded as JSON of a bounded size, so that what is stored and
shown is plain text of a known size.

Escaping for HTML is still the page's job; this only makes the text small and free of controls.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "PAYLOAD_LIMIT",
    "HeadTail",
    "clean_terminal",
    "encode_payload",
    "escape_line",
    "quote_lines",
    "safe_text",
    "strip_ansi",
    "truncate",
    "truncation_marker",
]


def truncation_marker(dropped: int) -> str:
    """The visible marker left where ``dropped`` characters were cut out."""
    return f"…[truncated {dropped} chars]"


def truncate(text: str, limit: int) -> str:
    """``text`` unchanged if it fits in ``limit`` characters, else its head and a marker."""
    if len(text) <= limit:
        return text
    return text[:limit] + truncation_marker(len(text) - limit)


_SEQUENCES = re.compile(
    r"""
      \x1b\][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?      # OSC ... BEL | ST (or cut off)
    | \x9d[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?        # 8-bit OSC
    | \x1b[PX^_].*?(?:\x1b\\|\x07|\x9c|$)              # DCS, SOS, PM, APC strings
    | \x1b\[[0-?]*[\x20-/]*[@-~]?                       # CSI (or cut off at the end)
    | \x9b[0-?]*[\x20-/]*[@-~]?                         # 8-bit CSI
    | \x1b[\x20-/]*[0-~]                                # two-character and nF escapes
    | \x1b$                                             # a lone ESC at the very end
    """,
    re.VERBOSE | re.DOTALL,
)
# C0 controls except \t \n \r \b, DEL and the C1 range.
_CONTROLS = re.compile(r"[\x00-\x07\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_BACKSPACE = re.compile(r"[^\n\x08]\x08")


def strip_ansi(text: str) -> str:
    """Remove escape sequences and control characters; keeps text, tabs and line breaks."""
    text = _SEQUENCES.sub("", text)
    return _CONTROLS.sub("", text.replace("\x08", ""))


def clean_terminal(text: str) -> str:
    """Plain text as a terminal would roughly show it: escapes removed, ``\\r`` overwrites and
    backspaces applied (a progress bar keeps only its last state), controls dropped."""
    text = _SEQUENCES.sub("", text).replace("\r\n", "\n")
    if "\x08" in text:
        previous = None
        while previous != text:
            previous, text = text, _BACKSPACE.sub("", text)
        text = text.replace("\x08", "")
    if "\r" in text:
        lines = []
        for line in text.split("\n"):
            parts = [part for part in line.split("\r") if part]
            lines.append(_overwrite(parts) if len(parts) > 1 else "".join(parts))
        text = "\n".join(lines)
    return _CONTROLS.sub("", text)


def _overwrite(parts: list[str]) -> str:
    """Each part written from column 0 over the previous ones."""
    line = ""
    for part in parts:
        line = part + line[len(part):]
    return line


class HeadTail:
    """Keep the first and last characters of a stream of text, counting what was dropped.

    Memory stays bounded by ``limit`` however much is added; ``render`` joins head and tail with
    a visible marker when anything was cut out.
    """

    def __init__(self, limit: int) -> None:
        self.limit = max(limit, 2)
        self._head_limit = self.limit // 2
        self._tail_limit = self.limit - self._head_limit
        self._head = ""
        self._tail = ""
        self.total = 0

    def add(self, text: str) -> None:
        if not text:
            return
        self.total += len(text)
        room = self._head_limit - len(self._head)
        if room > 0:
            self._head += text[:room]
            text = text[room:]
        if not text:
            return
        if len(text) >= self._tail_limit:
            self._tail = text[-self._tail_limit:]
        else:
            self._tail = (self._tail + text)[-self._tail_limit:]

    @property
    def dropped(self) -> int:
        return self.total - len(self._head) - len(self._tail)

    def __bool__(self) -> bool:
        return self.total > 0

    def render(self, *, clean: bool = True) -> str:
        head, tail = self._head, self._tail
        if self.dropped <= 0:
            return clean_terminal(head + tail) if clean else head + tail
        if clean:
            head, tail = clean_terminal(head), clean_terminal(tail)
        return f"{head}\n{truncation_marker(self.dropped)}\n{tail}"


PAYLOAD_LIMIT = 16 * 1024
"""Bytes of UTF-8 JSON an event payload may take; longer strings are cut with a visible marker."""
_FAST = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_SAFE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)


def safe_text(text: str) -> str:
    """``text`` with lone surrogates (undecodable file names) replaced: SQLite wants UTF-8."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def _bounded(value: Any, cap: int, depth: int = 0) -> Any:
    if isinstance(value, str):
        return truncate(value, cap)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if depth > 20:
        return truncate(str(value), cap)
    if isinstance(value, Mapping):
        return {truncate(str(k), cap): _bounded(v, cap, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_bounded(v, cap, depth + 1) for v in value]
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return value


def encode_payload(payload: Mapping[str, Any], limit: int = PAYLOAD_LIMIT) -> str:
    """``payload`` as JSON text of at most ``limit`` UTF-8 bytes.

    Strings are cut (ever shorter, with ``…[truncated N chars]``) until it fits; a payload that
    still does not fit (too many entries) becomes ``{"truncated": true, "excerpt": …}``.
    """
    try:  # the common case: small, plain JSON, valid UTF-8
        text = _FAST.encode(payload)
        if len(text) <= limit and text.isascii() or len(text.encode("utf-8")) <= limit:
            return text  # (ASCII: as many bytes as characters, and no lone surrogate)
    except (TypeError, ValueError):
        pass
    text = safe_text(_SAFE.encode(_bounded(payload, limit)))
    size = len(text.encode("utf-8"))
    cap = limit // 2
    while size > limit and cap >= 32:
        text = safe_text(_SAFE.encode(_bounded(payload, cap)))
        size = len(text.encode("utf-8"))
        cap //= 2
    if size > limit:
        text = safe_text(_SAFE.encode({"truncated": True, "bytes": size,
                                       "excerpt": truncate(text, limit // 8)}))
    return text


# ---- candidate text in pairlab's own log ---------------------------------------------------
LOG_LINE_LIMIT = 300
"""Longest line of sandboxed output (after escaping) put in pairlab's log."""
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def _escape_char(char: str) -> str:
    if char in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[char]
    if char.isprintable():
        return char
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else (
        f"\\U{code:08x}")


def escape_line(text: str, limit: int = LOG_LINE_LIMIT) -> str:
    """``text`` with every unprintable character shown as a backslash escape (newline, CR, ANSI
    ESC, Unicode line separators, bidi overrides ...), then cut to ``limit`` characters.

    Escaped, not stripped (as ``strip_ansi`` does for what people read): in a log, what the
    sandbox sent must stay visible, but inert. Hand-written rather than ``repr()`` (which adds
    quotes chosen by content) or the ``unicode_escape`` codec (which escapes every non-ASCII
    letter, making ordinary non-English output unreadable).
    """
    if not text.isprintable() or "\\" in text:
        text = "".join(map(_escape_char, text))
    return truncate(text, limit)


def quote_lines(source: str, lines: Iterable[str]) -> str:
    """Text from a sandbox for pairlab's log: each line escaped and prefixed with ``source``
    (e.g. ``workspace <id> | ...``), so that none can pass for a line pairlab wrote itself.
    Raw text may still go to host-only files (a workspace's ``server.log``)."""
    return "\n".join(f"{source} | {escape_line(line)}" for line in lines)
