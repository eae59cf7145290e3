"""Files that hide the company name, a declared person or an internal host inside an encoding,
built with the real formats (gzip, zip, zlib pickles, PNG and JPEG metadata, notebooks, base64,
UTF-16), and the label each finding must carry. Used by the post-scan's tests and the import's.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import pickle
import struct
import zipfile
import zlib

from tests.task_repos import COMPANY

PERSON = "José Núñez"
HOST = f"db01.{COMPANY.lower()}.internal"
PEOPLE_TABLE = f'\n[anonymise.people]\n"{PERSON}" = "Jane Doe"\n'


def png(**texts: tuple[bytes, str]) -> bytes:
    """A 1x1 grey PNG with text chunks: ``keyword=(b"zTXt", text)``, after the image data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
    out += chunk(b"IDAT", zlib.compress(b"\x00\x80"))
    for keyword, (kind, text) in texts.items():
        key = keyword.encode("latin-1") + b"\x00"
        if kind == b"tEXt":
            body = key + text.encode("latin-1")
        elif kind == b"zTXt":
            body = key + b"\x00" + zlib.compress(text.encode("latin-1"))
        else:  # iTXt, compressed
            body = key + b"\x01\x00" + b"en\x00" + b"\x00" + zlib.compress(text.encode())
        out += chunk(kind, body)
    return out + chunk(b"IEND", b"")


def jpeg(comment: str, exif_text: str) -> bytes:
    """A JPEG's metadata segments (a comment, an EXIF block with an ImageDescription), then the
    start of scan and the end: what an image with that metadata starts with."""
    desc = exif_text.encode() + b"\x00"
    ifd = struct.pack(">H", 1) + struct.pack(">HHII", 0x010E, 2, len(desc), 26) + b"\x00" * 4
    tiff = b"MM\x00*" + struct.pack(">I", 8) + ifd + desc
    exif = b"Exif\x00\x00" + tiff
    com = comment.encode()
    return (b"\xff\xd8" + b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif
            + b"\xff\xfe" + struct.pack(">H", len(com) + 2) + com
            + b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00" + b"\x12\x34" + b"\xff\xd9")


def notebook_with_attachment(image: bytes) -> bytes:
    cell = {"cell_type": "markdown", "id": "m1", "metadata": {},
            "source": ["# The chart\n", "![chart](attachment:logo.png)\n"],
            "attachments": {"logo.png": {"image/png": base64.b64encode(image).decode()}}}
    nb = {"cells": [{"cell_type": "code", "execution_count": None, "id": "c0", "metadata": {},
                     "outputs": [], "source": ["x = 1\n"]}, cell],
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3"}},
          "nbformat": 4, "nbformat_minor": 5}
    return (json.dumps(nb, indent=1, sort_keys=True) + "\n").encode()


def planted() -> dict[str, bytes]:
    """Path -> bytes of every planted file."""
    bundle = io.BytesIO()
    with zipfile.ZipFile(bundle, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("inner/readme.txt", "Nothing to see here.\n")
        z.writestr("inner/notes.txt", f"Reviewed by {PERSON} last spring.\n")
    hidden_text = f"Ask {PERSON} before touching the {COMPANY} feed. " * 2
    return {
        "data/cache.pkl.gz": gzip.compress(pickle.dumps({"owner": COMPANY, "rows": [1, 2]})),
        "data/bundle.zip": bundle.getvalue(),
        "data/model.joblib": zlib.compress(pickle.dumps({"source": f"postgres://{HOST}/feed"})),
        "notebooks/explore.ipynb": notebook_with_attachment(
            png(Comment=(b"zTXt", f"drawn for {COMPANY}")),
        ),
        "docs/chart.png": png(Comment=(b"zTXt", f"(c) {COMPANY} 2024")),
        "docs/photo.jpg": jpeg(f"taken at {COMPANY}", f"portrait of {PERSON}"),
        # MIME-style lines in a triple-quoted string (a one-line literal this long is redacted
        # by the anonymiser as a high-entropy value; lines of 76 are not)
        "tools/logo_text.py": (
            'LOGO_TEXT = """\n' + base64.encodebytes(hidden_text.encode()).decode() + '"""\n'
        ).encode(),
        "docs/notes.txt": f"Notes from the {COMPANY} offsite.\n".encode("utf-16"),
    }


EXPECTED: dict[str, set[tuple[str, str]]] = {
    # file -> (label, kind) of the findings it must give (more may come from the same file)
    "data/cache.pkl.gz": {("data/cache.pkl.gz › gzip", "deny-term")},
    "data/bundle.zip": {("data/bundle.zip › inner/notes.txt", "person")},
    "data/model.joblib": {("data/model.joblib › zlib", "deny-term")},
    "notebooks/explore.ipynb": {
        ("notebooks/explore.ipynb › cell 2 attachment logo.png › PNG zTXt Comment", "deny-term"),
    },
    "docs/chart.png": {("docs/chart.png › PNG zTXt Comment", "deny-term")},
    "docs/photo.jpg": {("docs/photo.jpg › JPEG comment", "deny-term"),
                       ("docs/photo.jpg › JPEG EXIF", "person")},
    "tools/logo_text.py": {("tools/logo_text.py › base64 at line 2", "deny-term"),
                           ("tools/logo_text.py › base64 at line 2", "person")},
    "docs/notes.txt": {("docs/notes.txt › UTF-16", "deny-term")},
}
