"""post_scan: each kind of leak planted into an otherwise clean tree is found, and no finding
ever carries a secret value. The scanner is checked to stay independent of the anonymiser."""

from __future__ import annotations

import ast
import base64
import json
from pathlib import Path

import pytest

from tasks.postscan import Finding, deny_terms_in, post_scan, post_scan_texts
from tests.conftest import REPO

DENY = ["Quintessa Analytics", "Quintessa", "quintessa.io"]
AWS_KEY_ID = "AKIAQYLPMN5HHHFPZAM2"
AWS_SECRET = "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"
KEY_LINE = "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun"
JWT = ".".join(
    base64.urlsafe_b64encode(part).rstrip(b"=").decode()
    for part in (b'{"alg":"HS256","typ":"JWT"}', b'{"sub":"someone"}', b"signature-bytes-here")
)
PASSWORD = "Xk9mP2vLqZ"
TOKEN = "q8Zr2Lk5Vx9Tn3Bw7Hd1Mf6"


def clean_tree(root: Path) -> Path:
    """What a good anonymiser leaves behind: placeholders, example addresses, plain code."""
    files = {
        "README.md": "# Acme Analytics\n\nContact person1@example.com or ops@example.org.\n",
        "src/app.py": (
            'DB_URL = "postgresql://host1.example.internal:5432/db"\n'
            'PASSWORD = "REDACTED_SECRET_1"\n'
            'api_token = "REDACTED_TOKEN_2"\n'
            "out = x@self.fc.weight\n"
            'pad_token = "[PAD]"\n'
            'tmpl = "postgresql://${USER}:${PASSWORD}@db/x"\n'
        ),
        "config/settings.yaml": "host: host1.example.internal\npassword: REDACTED_SECRET_1\n",
        "assets/logo@2x.png": "not really a png\n",
        "data/blob.bin": "\x00\x01\x02 random binary \xff".encode("latin-1"),
    }
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


def test_a_clean_tree_has_no_findings(tmp_path: Path) -> None:
    assert post_scan(clean_tree(tmp_path / "t"), DENY) == []


PLANTS: list[tuple[str, str, str | bytes, str, int | None]] = [
    # (case, path, content, expected kind, expected line)
    ("term in content", "docs/about.md", "Intro\nBuilt at Quintessa for fun\n", "deny-term", 2),
    ("term in upper snake", "src/c.py", "X = 1\nQUINTESSA_ANALYTICS_URL = 2\n", "deny-term", 2),
    ("term without separators", "src/d.py", "quintessaanalytics = 1\n", "deny-term", 1),
    ("term split by _", "src/e.py", "name = 'quin_tessa'\n", "deny-term", 1),
    ("domain split by -", "src/f.py", "x = 'quintessa-io'\n", "deny-term", 1),
    ("term in file name", "src/quintessa_utils.py", "x = 1\n", "deny-term-in-name", None),
    ("term in folder name", "QuintessaModels/m.py", "x = 1\n", "deny-term-in-name", None),  # *
    ("email", "data/people.csv", "id,email\n1,jane.doe@gmail.com\n", "email", 2),
    ("email in name", "maya@corp-mail.com.txt", "x\n", "email-in-name", None),
    ("aws access key", "config/aws.toml", f'key_id = "{AWS_KEY_ID}"\n', "aws-access-key", 1),
    ("aws secret key", "config/aws.ini", f"aws_secret_access_key = {AWS_SECRET}\n",
     "aws-secret-key", 1),
    ("private key block", "deploy/tls.txt",
     f"-----BEGIN OPENSSH PRIVATE KEY-----\n{KEY_LINE}\n-----END OPENSSH PRIVATE KEY-----\n",
     "private-key", 1),
    ("jwt", "src/auth.py", f'HEADER = "Bearer {JWT}"\n', "jwt", 1),
    ("credential url", "src/db.py", f'URL = "postgres://etl:{PASSWORD}@db.acme.test/x"\n',
     "url-credentials", 1),
    ("high-entropy assignment", "config/app.yaml", f"service:\n  api_token: {TOKEN}\n",
     "secret-assignment", 2),
    ("term in binary", "assets/logo.png",
     b"\x89PNG\r\n\x1a\n\x00\x00\x00\x19tEXtAuthor\x00Quintessa Analytics\x00\xae", "deny-term",
     None),
    ("term in utf-16 binary", "docs/report.doc",
     b"\xd0\xcf\x11\xe0" + "made by Quintessa".encode("utf-16-le"), "deny-term", None),
]


@pytest.mark.parametrize(
    ("path", "content", "kind", "line"),
    [p[1:] for p in PLANTS],
    ids=[p[0] for p in PLANTS],
)
def test_each_planted_leak_is_found(
    tmp_path: Path, path: str, content: str | bytes, kind: str, line: int | None
) -> None:
    tree = clean_tree(tmp_path / "t")
    target = tree / path
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        target.write_bytes(content)
    else:
        target.write_text(content, encoding="utf-8")

    findings = post_scan(tree, DENY)

    # A folder's name is reported once, on the folder (path ending with "/"), marked * above.
    expected_path = "QuintessaModels/" if path.startswith("QuintessaModels/") else path
    assert any(f.path == expected_path and f.kind == kind and f.line == line for f in findings), \
        findings
    serialised = json.dumps([f.to_dict() for f in findings])
    for secret in (AWS_KEY_ID, AWS_SECRET, KEY_LINE, JWT, PASSWORD, TOKEN, "jane.doe@gmail.com"):
        assert secret not in serialised


def test_findings_are_sorted_deduplicated_and_masked(tmp_path: Path) -> None:
    tree = clean_tree(tmp_path / "t")
    (tree / "b.txt").write_text(f"{AWS_KEY_ID}\nQuintessa\n")
    (tree / "a.txt").write_text("quintessa.io\n")
    findings = post_scan(tree, DENY)
    assert findings == sorted(findings, key=lambda f: (f.path, f.line or 0, f.kind, f.excerpt))
    assert Finding("b.txt", 1, "aws-access-key", "AKIA…[20 chars]") in findings
    assert Finding("b.txt", 2, "deny-term", "Quintessa") in findings
    assert {f.path for f in findings} == {"a.txt", "b.txt"}
    assert len(findings) == len(set(findings))


def test_symlinks_are_reported_not_followed(tmp_path: Path) -> None:
    tree = clean_tree(tmp_path / "t")
    outside = tmp_path / "outside.txt"
    outside.write_text("Quintessa\n")
    (tree / "link.txt").symlink_to(outside)
    findings = post_scan(tree, DENY)
    assert [f.kind for f in findings] == ["symlink"]


def _our_imports(module: str) -> set[str]:
    source = (REPO / module).read_text(encoding="utf-8")
    imported: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    return {m for m in imported if m.split(".")[0] == "tasks"}


def test_post_scan_does_not_import_the_anonymiser() -> None:
    """Only its own term search and the decoder of encodings, which import nothing of ours."""
    assert _our_imports("tasks/postscan.py") == {"tasks.scanterms", "tasks.unwrap"}
    assert _our_imports("tasks/scanterms.py") == set()
    assert _our_imports("tasks/unwrap.py") == set()


def test_texts_are_scanned_like_files_and_reported_under_their_label() -> None:
    label = "pairlab-task.toml:task.title"
    texts = {label: "Fix the Quin-tessa feed (ask ops@quintessa.io)", "other": "all clean"}
    found = post_scan_texts(texts, ["Quintessa"])
    assert [(f.path, f.line, f.kind, f.excerpt) for f in found] == [
        (label, 1, "deny-term", "Quin-tessa"),
        (label, 1, "deny-term", "quintessa"),
        (label, 1, "email", "o…@quintessa.io"),
    ]
    assert post_scan_texts({label: "Fix the Acme feed"}, ["Quintessa"]) == []
    assert deny_terms_in("fix-quin-tessa-feed", ["Quintessa", "Maya Okafor"]) == ["Quintessa"]
    assert deny_terms_in("mayaokafor-q", ["Quintessa", "Maya Okafor"]) == ["Maya Okafor"]
    assert deny_terms_in("acme-feed", ["Quintessa", "Maya Okafor"]) == []


def test_a_declared_person_in_the_title_is_a_finding_in_any_form() -> None:
    label = "pairlab-task.toml:task.title"
    for title in ("Fix Núñez, J.'s feed", "Jose Nunez's churn model", "Work with José\nNúñez"):
        found = post_scan_texts({label: title}, [], ["José Núñez"])
        assert [(f.path, f.kind) for f in found][:1] == [(label, "person")], (title, found)
    assert post_scan_texts({label: "Jane Doe's churn model"}, [], ["José Núñez"]) == []
