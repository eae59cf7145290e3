"""The post-scan reads inside encodings: the company name, a declared person and an internal host
hidden in a gzip, a zip member, a zlib pickle, a notebook attachment's PNG, a PNG, a JPEG, a
base64 run and a UTF-16 file are each found under a label saying where; zip and gzip bombs,
deep nesting and archives of many members are stopped by limits and said so."""

from __future__ import annotations

import base64
import bz2
import gzip
import io
import lzma
import time
import zipfile
from pathlib import Path

import pytest

from tasks.postscan import Finding, post_scan
from tasks.unwrap import Budget, Decoded, Limited, Limits, unwrap
from tests.task_repos import COMPANY
from tests.tasks.encoded import EXPECTED, HOST, PERSON, planted

MIB = 1024 * 1024


def write(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def scan(root: Path) -> list[Finding]:
    return post_scan(root, [COMPANY], [PERSON])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_name_hidden_inside_an_encoding_is_found_under_its_label(
    tmp_path: Path, name: str
) -> None:
    tree = write(tmp_path / "tree", {name: planted()[name]})
    found = {(f.path, f.kind) for f in scan(tree)}
    assert EXPECTED[name] <= found, found


def test_the_internal_host_in_a_zlib_pickle_is_found_with_its_text(tmp_path: Path) -> None:
    tree = write(tmp_path / "tree", {"data/model.joblib": planted()["data/model.joblib"]})
    excerpts = {f.excerpt.lower() for f in scan(tree) if f.path == "data/model.joblib › zlib"}
    assert COMPANY.lower() in excerpts
    assert HOST not in (tree / "data/model.joblib").read_bytes().decode("latin-1")


@pytest.mark.parametrize("kind", ["gzip", "bzip2", "xz"])
def test_a_name_in_a_later_stream_of_a_concatenated_file_is_found(
    tmp_path: Path, kind: str
) -> None:
    """``cat clean.gz leak.gz``: the standard decompressors stop after the first stream."""
    compress = {"gzip": gzip.compress, "bzip2": bz2.compress, "xz": lzma.compress}[kind]
    data = compress(b"nothing to see\n" * 50) + compress(f"owned by {COMPANY}\n".encode())
    tree = write(tmp_path / "tree", {f"data/log.{kind}": data})
    found = {(f.path, f.kind) for f in scan(tree)}
    assert (f"data/log.{kind} › {kind}", "deny-term") in found, found


def test_nested_archives_and_double_encodings_are_opened(tmp_path: Path) -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("deep/leak.txt", f"mail ops@{COMPANY.lower()}.io\n")
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w", zipfile.ZIP_STORED) as z:
        z.writestr("inner.zip", inner.getvalue())
    text = " ".join(f"{COMPANY} weights v{i} at {i * 7919 % 1000}" for i in range(40))
    twice = base64.b64encode(gzip.compress(text.encode())).decode()
    assert len(twice) > 140
    tree = write(tmp_path / "tree", {
        "outer.zip": outer.getvalue(),
        "cfg.yaml": f"blob: |\n  {twice[:70]}\n  {twice[70:]}\n".encode(),
    })
    found = {(f.path, f.kind) for f in scan(tree)}
    assert ("outer.zip › inner.zip › deep/leak.txt", "email") in found
    assert ("outer.zip › inner.zip › deep/leak.txt", "deny-term") in found
    assert ("cfg.yaml › base64 at line 2 › gzip", "deny-term") in found


def test_ordinary_text_and_hashes_give_no_finding(tmp_path: Path) -> None:
    digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    tree = write(tmp_path / "tree", {
        "src/app.py": f'SHA = "{digest}"\nNAME = "{"ab" * 40}"\nx = 1\n'.encode(),
        "README.md": b"# Totals\n\n" + b"A plain readme. " * 200 + b"\n",
        "weights.bin": bytes(range(256)) * 64,
    })
    assert scan(tree) == []


def test_a_zip_bomb_is_stopped_by_the_byte_limit_and_says_so(tmp_path: Path) -> None:
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for i in range(3):
            with z.open(f"zeros{i}.bin", "w", force_zip64=True) as member:
                for _ in range(40):
                    member.write(b"\x00" * MIB)  # 120 MiB in all, about 120 KiB packed
    data = bomb.getvalue()
    assert len(data) < 1 * MIB
    tree = write(tmp_path / "tree", {"bomb.zip": data, "gz/bomb.gz": gzip.compress(
        b"\x00" * (100 * MIB), compresslevel=9)})
    start = time.monotonic()
    findings = scan(tree)
    elapsed = time.monotonic() - start
    limits = {f.path: f.excerpt for f in findings if f.kind == "encoding-limit"}
    assert set(limits) == {"bomb.zip › zeros1.bin", "gz/bomb.gz › gzip"}, findings
    assert all("more than 64 MiB decoded" in reason for reason in limits.values())
    assert elapsed < 60, f"the bombs took {elapsed:.1f} s"


def test_many_small_bombs_share_one_budget_for_the_tree() -> None:
    bomb = gzip.compress(b"\0" * (3 * MIB))
    budget = Budget(Limits(max_bytes=4 * MIB, max_tree_bytes=10 * MIB))
    stopped = []
    for i in range(6):  # 6 x 3 MiB: each under the file's limit, together over the tree's
        pieces = list(unwrap(f"b{i}.gz", bomb, Limits(max_bytes=4 * MIB,
                                                      max_tree_bytes=10 * MIB), tree=budget))
        stopped += [p for p in pieces if isinstance(p, Limited)]
    assert [p.label for p in stopped] == ["b3.gz › gzip", "b4.gz › gzip", "b5.gz › gzip"]
    assert all("10 MiB decoded from the whole tree" in p.reason for p in stopped)


def test_names_written_with_json_escapes_are_found(tmp_path: Path) -> None:
    import json
    data = json.dumps({"owner": PERSON, "team": [f"{COMPANY} data"]}).encode()  # ensure_ascii
    assert PERSON.encode() not in data and b"\\u00fa" in data
    tree = write(tmp_path / "tree", {"meta/owners.json": data})
    found = {(f.path, f.kind) for f in scan(tree)}
    assert ("meta/owners.json › JSON strings", "person") in found, found


def test_nesting_and_member_counts_are_bounded(tmp_path: Path) -> None:
    data = f"{COMPANY}\n".encode()
    for _ in range(10):  # ten zips, one inside the other
        box = io.BytesIO()
        with zipfile.ZipFile(box, "w") as z:
            z.writestr("next.zip", data)
        data = box.getvalue()
    pieces = list(unwrap("deep.zip", data, Limits(max_depth=4)))
    assert isinstance(pieces[-1], Limited) and "nested more than 4 deep" in pieces[-1].reason
    assert pieces[-1].label.count(" › ") == 5

    many = io.BytesIO()
    with zipfile.ZipFile(many, "w") as z:
        for i in range(50):
            z.writestr(f"m{i}.txt", "x")
    pieces = list(unwrap("many.zip", many.getvalue(), Limits(max_parts=10)))
    assert sum(isinstance(p, Decoded) for p in pieces) == 10
    assert isinstance(pieces[-1], Limited) and "more than 10 encoded parts" in pieces[-1].reason


def test_base64_one_level_past_the_depth_limit_is_said_so_not_skipped() -> None:
    hidden = base64.b64encode(f"Ask {COMPANY} about the feed, then {COMPANY} again.".encode())
    data = b"LOGO = '" + hidden + b"'\n"
    for _ in range(2):
        data = gzip.compress(data)
    pieces = list(unwrap("x.gz", data, Limits(max_depth=2)))
    assert isinstance(pieces[-1], Limited), pieces
    assert "nested more than 2 deep" in pieces[-1].reason
    assert pieces[-1].label == "x.gz › gzip › gzip › base64 at line 1"


def test_a_real_file_named_like_a_part_inside_another_is_a_finding_of_its_own(
    tmp_path: Path,
) -> None:
    """Else accepting the file ``a.zip`` would also cover ``a.zip › notes.txt``, a real file."""
    tree = write(tmp_path / "tree", {"a.zip": b"PK\x05\x06" + b"\x00" * 18,
                                     "a.zip › notes.txt": f"{COMPANY}\n".encode()})
    found = {(f.path, f.kind) for f in scan(tree)}
    assert ("a.zip › notes.txt", "confusing-name") in found, found


@pytest.mark.parametrize(("magic", "name"), [(b"\x28\xb5\x2f\xfd", "zstd"),
                                           (b"7z\xbc\xaf\x27\x1c", "7z")])
def test_a_format_the_post_scan_cannot_open_is_a_finding(
    tmp_path: Path, magic: bytes, name: str
) -> None:
    tree = write(tmp_path / "tree", {"data/blob.bin": magic + b"\x00\x01packed" * 10})
    found = {(f.path, f.kind) for f in scan(tree)}
    assert (f"data/blob.bin › {name}", "encoding-limit") in found, found


def test_an_unreadable_archive_is_said_so_not_skipped(tmp_path: Path) -> None:
    tree = write(tmp_path / "tree", {"broken.gz": b"\x1f\x8b\x08\x00" + b"\xff" * 40})
    findings = scan(tree)
    assert [(f.path, f.kind) for f in findings] == [("broken.gz › gzip", "encoding-limit")]
    assert "could not be decoded" in findings[0].excerpt


def test_text_that_starts_like_a_compressed_stream_is_read_as_text(tmp_path: Path) -> None:
    # "x^" is a valid zlib header and "BZh" the start of bzip2: neither may end the scan
    tree = write(tmp_path / "tree", {
        "maths.md": f"x^2 + y^2 = r^2, as {COMPANY} wrote\n".encode(),
        "notes.txt": f"BZh9 is not a stream; {COMPANY}\n".encode(),
        "src/names.py": ("LONG_NAME = 'test_" + "a_name_hidden_inside_an_encoding_" * 3 + "'\n")
        .encode(),
    })
    found = [(f.path, f.line, f.kind) for f in scan(tree)]
    assert found == [("maths.md", 1, "deny-term"), ("notes.txt", 1, "deny-term")]
