"""Open the encodings inside a file so the post-scan can read what they hold.

:func:`unwrap` yields the texts found *inside* one file, each as a :class:`Decoded` piece with a
label saying where it came from (``data/cache.pkl.gz › gzip``, ``bundle.zip › inner/notes.txt``,
``nb.ipynb › cell 3 attachment logo.png › PNG zTXt Comment``), and a :class:`Limited` piece
wherever a limit stopped it (a zip bomb, too deep a nesting, too many parts). The file itself is
not yielded: the caller scans it as it is.

What is opened: gzip, bzip2 and xz streams, zlib streams at the start of a file (joblib's
``.joblib``/``.z`` pickles, also joblib's old ``ZF`` header), zip archives member by member
(``.docx``, ``.whl`` and ``.pt`` are zips too), base64 runs in text (long enough to be data),
notebook cell attachments and base64 outputs, PNG text chunks (``tEXt``, ``zTXt``, ``iTXt``,
``eXIf``), JPEG comment and APPn segments (EXIF, XMP, IPTC), and UTF-16 text (a BOM, or NULs in
every other byte). Anything decoded is opened again (up to :attr:`Limits.max_depth`); what is
not text is given as its bytes read as UTF-8 with errors replaced (``binary=True``), which is how
strings inside pickles are read: a pickle holds them as raw UTF-8 bytes.

Only the standard library: the container formats have stdlib readers (``gzip``/``zlib``,
``bz2``, ``lzma``, ``zipfile``, ``base64``, ``json``); PNG and JPEG metadata are read by hand
from their length-prefixed segments because no image library is a dependency of pairlab, and
the one there is (Pillow) reads PNG text chunks after the image data only by decoding every pixel,
work (and a decompression-bomb risk) a scan for words does not need. No pixel is ever decoded.
"""

from __future__ import annotations

import base64
import binascii
import bz2
import io
import json
import lzma
import re
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["Budget", "Decoded", "Limited", "Limits", "unwrap"]

SEP = " › "


@dataclass(frozen=True)
class Limits:
    max_depth: int = 6  # encodings inside encodings
    max_bytes: int = 64 * 1024 * 1024  # decoded bytes from one file, all parts together
    max_parts: int = 2000  # decoded parts (members, runs, chunks) from one file
    max_tree_bytes: int = 512 * 1024 * 1024  # decoded bytes from all the files of one tree
    min_base64: int = 64  # characters of a base64 run worth decoding (48 bytes)


@dataclass(frozen=True)
class Decoded:
    label: str
    text: str
    binary: bool  # True: bytes read as text (no lines)


@dataclass(frozen=True)
class Limited:
    label: str
    reason: str


Piece = Decoded | Limited
# Compressed formats the standard library cannot open: said so (an encoding-limit finding an
# admin must accept or drop), never passed as merely "binary".
_NOT_OPENED = ((b"\x28\xb5\x2f\xfd", "zstd"), (b"7z\xbc\xaf\x27\x1c", "7z"),
               (b"Rar!\x1a\x07", "RAR"), (b"\x04\x22\x4d\x18", "LZ4"),
               (b"MSCF\x00\x00\x00\x00", "CAB"))
Decompress = Callable[[bytes, int], bytes]


def _streams(make: Callable[[], Any]) -> Decompress:
    """Decompress every stream of ``data`` one after the other (``cat a.gz b.gz``, pbzip2's
    bzip2 streams, xz streams), not only the first, where the standard decompressor objects
    stop: at most ``max_length`` bytes in all. Data after the last whole stream that is not
    another stream is left to the scan of the file's own bytes."""

    def run(data: bytes, max_length: int) -> bytes:
        out = bytearray()
        first = True
        while data and len(out) < max_length:
            stream = make()
            try:
                out += stream.decompress(data, max_length - len(out))
            except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError):
                if first:
                    raise
                break
            if not stream.eof:
                break  # cut short, or max_length reached
            data, first = stream.unused_data.lstrip(b"\x00"), False  # gzip may pad with zeros
        return bytes(out)

    return run

_BASE64_RUN = re.compile(
    r"[A-Za-z0-9+/_\-]{64,}={0,2}(?:[ \t]*\r?\n[ \t]*[A-Za-z0-9+/_\-]{4,}={0,2})*"
)
_PNG = b"\x89PNG\r\n\x1a\n"
_ZLIB_SECOND = frozenset({0x01, 0x5E, 0x9C, 0xDA})
_JOBLIB_ZF_HEADER = 2 + 19  # b"ZF" + the hex length padded to len(hex(2**64)) characters


def _is_zlib(data: bytes) -> bool:
    """A zlib header (``x^`` is one too, so text can start like it) whose first bytes inflate."""
    if not (len(data) > 2 and data[0] == 0x78 and data[1] in _ZLIB_SECOND):
        return False
    try:
        zlib.decompressobj().decompress(data[:2048], 16)
    except zlib.error:
        return False
    return True


def _is_bzip2(data: bytes) -> bool:
    """``BZh`` and a block size (text can start with ``BZh`` too) whose first bytes decode."""
    if not (data[:3] == b"BZh" and data[3:4].isdigit()):
        return False
    try:
        bz2.BZ2Decompressor().decompress(data[:2048], 16)
    except OSError:
        return False
    return True


def _is_pickle(data: bytes) -> bool:
    return len(data) > 3 and data[0] == 0x80 and 2 <= data[1] <= 5 and data.endswith(b".")


def _looks_encoded(data: bytes) -> bool:
    """Bytes decoded from base64 that are worth opening though they are not text."""
    return (data[:3] == b"\x1f\x8b\x08" or data[:4] == b"PK\x03\x04" or data[:8] == _PNG
            or data[:3] == b"\xff\xd8\xff" or data[:6] == b"\xfd7zXZ\x00" or _is_bzip2(data)
            or _is_zlib(data) or _is_pickle(data))


def _printable(text: str) -> bool:
    if not text:
        return False
    sample = text[:4096]
    good = sum(1 for c in sample if c.isprintable() or c in "\n\r\t")
    return good >= 0.9 * len(sample)


def _utf16_kind(data: bytes) -> str | None:
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "utf-16"
    sample = data[:4096]
    if len(sample) < 16 or len(sample) % 2:
        sample = sample[: len(sample) - len(sample) % 2]
        if len(sample) < 16:
            return None
    even, odd = sample[0::2], sample[1::2]
    half = len(sample) // 2
    if odd.count(0) >= 0.9 * half and even.count(0) <= 0.1 * half:
        return "utf-16-le"
    if even.count(0) >= 0.9 * half and odd.count(0) <= 0.1 * half:
        return "utf-16-be"
    return None


class Budget:
    """Decoded bytes left for a whole tree, shared by the walks of its files (else a tree of many
    small bombs costs files x the per-file limit)."""

    def __init__(self, limits: Limits) -> None:
        self.left = limits.max_tree_bytes


class _Walk:
    def __init__(self, limits: Limits, tree: Budget | None = None) -> None:
        self.limits = limits
        self.file_left = limits.max_bytes
        self.tree = tree
        self.parts = 0
        self.stopped = False

    @property
    def left(self) -> int:
        """Bytes that may still be decoded: the file's budget or the tree's, the smaller."""
        return self.file_left if self.tree is None else min(self.file_left, self.tree.left)

    def _spend(self, n: int) -> None:
        self.file_left -= n
        if self.tree is not None:
            self.tree.left -= n

    # ---- bookkeeping -----------------------------------------------------------------------

    def _part(self, label: str) -> Limited | None:
        """Count one more decoded part; a :class:`Limited` once there are too many."""
        self.parts += 1
        if self.parts > self.limits.max_parts:
            self.stopped = True
            return Limited(label, f"more than {self.limits.max_parts} encoded parts in one file; "
                                  "the rest was not scanned")
        return None

    def _too_big(self, label: str) -> Limited:
        self.stopped = True
        if self.tree is not None and self.tree.left < self.file_left:
            mib = self.limits.max_tree_bytes // (1024 * 1024)
            return Limited(label, f"more than {mib} MiB decoded from the whole tree; this file "
                                  "was not scanned inside")
        mib = self.limits.max_bytes // (1024 * 1024)
        return Limited(label, f"more than {mib} MiB decoded from one file (a zip bomb?); "
                              "the rest was not scanned")

    def _stream(self, label: str, decompress: Decompress, data: bytes
                ) -> tuple[bytes, Piece | None]:
        """Decompress with at most the bytes left (+1 to tell 'exactly' from 'more')."""
        try:
            out = decompress(data, self.left + 1)
        except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError) as exc:
            return b"", Limited(label, f"could not be decoded ({type(exc).__name__}); "
                                       "not scanned inside")
        if len(out) > self.left:
            return b"", self._too_big(label)
        self._spend(len(out))
        return out, None

    # ---- the walk --------------------------------------------------------------------------

    def blob(self, label: str, data: bytes, depth: int, text_given: bool = False
             ) -> Iterator[Piece]:
        """The pieces inside ``data`` (and ``data`` itself, as text or bytes, unless the caller
        scans it: ``text_given``)."""
        if self.stopped:
            return
        if depth > self.limits.max_depth:
            self.stopped = True
            yield Limited(label, f"encodings nested more than {self.limits.max_depth} deep; "
                                 "not scanned further")
            return
        inner = self._inner(label, data, depth)
        if inner is not None:
            yield from inner
            return
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            if not text_given:
                yield Decoded(label, _strings(data.decode("utf-8", errors="replace")), True)
            return
        if not text_given:
            binary = "\x00" in text
            yield Decoded(label, _strings(text) if binary else text, binary)
        yield from self.text(label, text, depth)

    def _inner(self, label: str, data: bytes, depth: int) -> Iterator[Piece] | None:
        """The decoder for ``data``'s format, or None when it is none of them."""
        if data[:2] == b"\x1f\x8b":
            return self._decompressed(label, "gzip", _streams(lambda: zlib.decompressobj(47)),
                                      data, depth)
        if _is_bzip2(data):
            return self._decompressed(label, "bzip2", _streams(bz2.BZ2Decompressor), data,
                                      depth)
        if data[:6] == b"\xfd7zXZ\x00":
            return self._decompressed(label, "xz", _streams(lzma.LZMADecompressor), data,
                                      depth)
        if _is_zlib(data):
            return self._decompressed(label, "zlib", zlib.decompressobj().decompress, data, depth)
        if data[:2] == b"ZF" and _is_zlib(data[_JOBLIB_ZF_HEADER:]):
            return self._decompressed(label, "zlib", zlib.decompressobj().decompress,
                                      data[_JOBLIB_ZF_HEADER:], depth)
        if data[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
            return self._zip(label, data, depth)
        if data[:8] == _PNG:
            return self._png(label, data, depth)
        if data[:3] == b"\xff\xd8\xff":
            return self._jpeg(label, data, depth)
        kind = _utf16_kind(data)
        if kind is not None and _printable(data[:4096].decode(kind, errors="replace")):
            return self._utf16(label, data, kind, depth)
        for magic, name in _NOT_OPENED:
            if data.startswith(magic):
                return iter([Limited(label + SEP + name, f"a {name} archive or stream, which "
                                     "the post-scan cannot open: not scanned inside")])
        return None

    def _decompressed(self, label: str, name: str, decompress: Decompress, data: bytes,
                      depth: int) -> Iterator[Piece]:
        here = label + SEP + name
        out, problem = self._stream(here, decompress, data)
        if problem is not None:
            yield problem
            return
        yield from self.blob(here, out, depth + 1)

    def _utf16(self, label: str, data: bytes, kind: str, depth: int) -> Iterator[Piece]:
        here = label + SEP + "UTF-16"
        text = data.decode(kind, errors="replace").lstrip("\ufeff")
        yield Decoded(here, text, False)
        yield from self.text(here, text, depth + 1)

    def _zip(self, label: str, data: bytes, depth: int) -> Iterator[Piece]:
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
        except (zipfile.BadZipFile, ValueError, OSError, EOFError):
            yield Limited(label + SEP + "zip", "not a readable zip archive; not scanned inside")
            return
        with archive:
            for info in archive.infolist():
                here = label + SEP + info.filename
                if info.is_dir():
                    continue
                limited = self._part(here)
                if limited is not None:
                    yield limited
                    return
                if info.flag_bits & 0x1:
                    yield Limited(here, "an encrypted zip member; not scanned inside")
                    continue
                try:
                    with archive.open(info) as member:
                        out = member.read(self.left + 1)
                except (zipfile.BadZipFile, NotImplementedError, OSError, EOFError,
                        zlib.error, lzma.LZMAError, ValueError) as exc:
                    yield Limited(here, f"could not be read ({type(exc).__name__}); "
                                        "not scanned inside")
                    continue
                if len(out) > self.left:
                    yield self._too_big(here)
                    return
                self._spend(len(out))
                yield from self.blob(here, out, depth + 1)
                if self.stopped:
                    return

    def _png(self, label: str, data: bytes, depth: int) -> Iterator[Piece]:
        pos = 8
        while pos + 12 <= len(data):
            size, kind = struct.unpack(">I4s", data[pos:pos + 8])
            body = data[pos + 8:pos + 8 + size]
            pos += 12 + size
            if kind == b"IEND":
                return
            if kind not in (b"tEXt", b"zTXt", b"iTXt", b"eXIf"):
                continue
            name = kind.decode("ascii")
            keyword, _, rest = body.partition(b"\x00")
            here = f"{label}{SEP}PNG {name} {keyword.decode('latin-1')}".rstrip()
            limited = self._part(here)
            if limited is not None:
                yield limited
                return
            if kind == b"eXIf":
                yield from self.blob(f"{label}{SEP}PNG eXIf", body, depth + 1)
                continue
            if kind == b"tEXt":
                yield Decoded(here, rest.decode("latin-1"), False)
                continue
            if kind == b"zTXt":
                payload, compressed, encoding = rest[1:], True, "latin-1"
            else:  # iTXt: flag, method, language\0, translated keyword\0, text (UTF-8)
                compressed = rest[:1] == b"\x01"
                _lang, _, after = rest[2:].partition(b"\x00")
                translated, _, payload = after.partition(b"\x00")
                encoding = "utf-8"
                if translated:
                    yield Decoded(here, translated.decode("utf-8", errors="replace"), False)
            if compressed:
                payload, problem = self._stream(here, zlib.decompressobj().decompress, payload)
                if problem is not None:
                    yield problem
                    continue
            text = payload.decode(encoding, errors="replace")
            yield Decoded(here, text, False)
            yield from self.text(here, text, depth + 1)

    def _jpeg(self, label: str, data: bytes, depth: int) -> Iterator[Piece]:
        pos = 2
        while pos + 4 <= len(data) and data[pos] == 0xFF:
            marker = data[pos + 1]
            if marker == 0xFF:  # fill byte
                pos += 1
                continue
            if marker in (0xD9, 0xDA):  # end of image, start of scan: no metadata after
                return
            if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # no length
                pos += 2
                continue
            (size,) = struct.unpack(">H", data[pos + 2:pos + 4])
            body = data[pos + 4:pos + 2 + size]
            pos += 2 + size
            if marker == 0xFE:
                name, payload = "JPEG comment", body
            elif 0xE0 <= marker <= 0xEF:
                name, payload = f"JPEG APP{marker - 0xE0}", body
                if body.startswith(b"Exif\x00\x00"):
                    name, payload = "JPEG EXIF", body[6:]
                elif body.startswith(b"http://ns.adobe.com/xap/1.0/\x00"):
                    name, payload = "JPEG XMP", body.split(b"\x00", 1)[1]
                elif body.startswith(b"Photoshop 3.0\x00"):
                    name = "JPEG IPTC"
            else:
                continue
            here = label + SEP + name
            limited = self._part(here)
            if limited is not None:
                yield limited
                return
            yield from self.blob(here, payload, depth + 1)

    def text(self, label: str, text: str, depth: int) -> Iterator[Piece]:
        """Base64 runs in ``text``: those that decode to text or to another encoding."""
        if len(text) < self.limits.min_base64:
            return  # (past the depth limit, blob() says so for the run instead of skipping it)
        for m in _BASE64_RUN.finditer(text):
            if self.stopped:
                return
            run = re.sub(r"\s+", "", m.group(0))
            if len(run) < self.limits.min_base64:
                continue
            data = _b64(run)
            if data is None or not (_looks_encoded(data) or _printable(_utf8(data))):
                continue
            line = text.count("\n", 0, m.start()) + 1
            here = f"{label}{SEP}base64 at line {line}"
            limited = self._part(here)
            if limited is not None:
                yield limited
                return
            if len(data) > self.left:
                yield self._too_big(here)
                return
            self._spend(len(data))
            yield from self.blob(here, data, depth + 1)

    def notebook(self, label: str, raw: str, depth: int) -> Iterator[Piece]:
        """Cell attachments and base64 outputs; base64 runs in cell sources."""
        try:
            nb = json.loads(raw)
        except json.JSONDecodeError:
            yield from self.text(label, raw, depth)
            return
        cells = nb.get("cells") if isinstance(nb, dict) else None
        if not isinstance(cells, list):
            yield from self.text(label, raw, depth)
            return
        for i, cell in enumerate(cells, start=1):
            if not isinstance(cell, dict):
                continue
            source = cell.get("source")
            source = "".join(map(str, source)) if isinstance(source, list) else str(source or "")
            yield from self.text(f"{label}{SEP}cell {i}", source, depth)
            parts: list[tuple[str, object]] = []
            attachments = cell.get("attachments")
            if isinstance(attachments, dict):
                for name, bundle in attachments.items():
                    if isinstance(bundle, dict):
                        parts += [(f"cell {i} attachment {name}", v) for v in bundle.values()]
            outputs = cell.get("outputs")
            for output in outputs if isinstance(outputs, list) else []:
                data = output.get("data") if isinstance(output, dict) else None
                if isinstance(data, dict):
                    parts += [(f"cell {i} output {mime}", v) for mime, v in data.items()
                              if not str(mime).startswith("text/") and "json" not in str(mime)]
            for where, value in parts:
                if self.stopped:
                    return
                encoded = "".join(map(str, value)) if isinstance(value, list) else str(value)
                here = label + SEP + where
                decoded = _b64(re.sub(r"\s+", "", encoded))
                if decoded is None:
                    continue  # not base64 (an SVG's text is scanned with the notebook's)
                limited = self._part(here)
                if limited is not None:
                    yield limited
                    return
                if len(decoded) > self.left:
                    yield self._too_big(here)
                    return
                self._spend(len(decoded))
                yield from self.blob(here, decoded, depth + 1)


_FILLER = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffd]{16,}")


def _strings(text: str) -> str:
    """Bytes read as text, long runs of control bytes (zeroed memory, a zip bomb's payload)
    shortened to two NULs: words are never made of them, and the scanners' patterns cost time
    on every character. Single NULs stay (UTF-16 text, which the scanner reads without them)."""
    return _FILLER.sub("\x00\x00", text)


def _utf8(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return ""


def _b64(run: str) -> bytes | None:
    altchars = b"-_" if ("-" in run or "_" in run) else None
    if altchars and ("+" in run or "/" in run):
        return None
    body = run.rstrip("=")
    if len(body) % 4 == 1:
        return None
    try:
        return base64.b64decode(body + "=" * (-len(body) % 4), altchars=altchars, validate=True)
    except (binascii.Error, ValueError):
        return None


def unwrap(rel: str, data: bytes, limits: Limits | None = None,
           tree: Budget | None = None) -> Iterator[Piece]:
    """Every piece decoded from inside the file ``rel`` holding ``data`` (not the file itself);
    ``tree``: the budget shared with the other files of its tree."""
    walk = _Walk(limits or Limits(), tree)
    if rel.endswith((".json", ".ipynb")) and b"\\u" in data:
        yield from _json_strings(rel, data)
    if rel.endswith(".ipynb"):
        try:
            raw = data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            yield from walk.notebook(rel, raw, 0)
            return
    yield from walk.blob(rel, data, 0, text_given=True)


def _json_strings(rel: str, data: bytes) -> Iterator[Piece]:
    """The strings of a JSON file written with ``\\uXXXX`` escapes (``json.dump``'s default
    writes ``N\\u00fa\\u00f1ez`` for Núñez), as text: the file's own bytes never show them."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        return
    out: list[str] = []
    stack = [doc]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict):
            out += [str(k) for k in item]
            stack += item.values()
        elif isinstance(item, list):
            stack += item
    yield Decoded(rel + SEP + "JSON strings", "\n".join(out), False)
