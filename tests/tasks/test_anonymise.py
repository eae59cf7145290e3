"""anonymise_tree on a real git working tree seeded with a company's name, people, hosts and
secrets; the independent post_scan must then find nothing, and the code's own tests must pass."""

from __future__ import annotations

import base64
import json
import os
import struct
import subprocess
import sys
import tomllib
import zlib
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
import yaml

from tasks.anonymise import (
    DroppedPath,
    Flag,
    RenamedPath,
    Replacement,
    anonymise_tree,
)
from tasks.postscan import post_scan
from tasks.termforms import TermRewriter


@dataclass(frozen=True)
class Rules:
    drop: tuple[str, ...] = ()
    replace: tuple[tuple[str, str], ...] = ()
    people: tuple[tuple[str, str], ...] = ()
    keep: tuple[str, ...] = ()


RULES = Rules(
    drop=("data/raw/",),
    replace=(
        ("Quintessa Analytics", "Acme Analytics"),
        ("Quintessa", "Acme"),
        ("quintessa.io", "example.com"),
        ("quintessa.internal", "example.internal"),
        ("Maya Okafor", "Pat Example"),
    ),
)
DENY = [term for term, _ in RULES.replace]

AWS_KEY_ID = "AKIAQYLPMN5HHHFPZAM2"
AWS_SECRET = "tzNwF3oZDyYtn+9zGmcbDuZ6uoR8xHq1Gc2ePZkN"
DB_PASSWORD = "Xk9mP2vLqZ"
YAML_PASSWORD = "hunter2-Quintessa!"
GH_TOKEN = "ghp_4Fz9QkLmNpR7sTuVwXyZ0aBcDeFgHiJkLmNo"
KEY_BODY = (
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n"
    "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n"
)
PRIVATE_KEY = f"-----BEGIN RSA PRIVATE KEY-----\n{KEY_BODY}-----END RSA PRIVATE KEY-----"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


JWT = ".".join(
    [
        _b64url(b'{"alg":"HS256","typ":"JWT"}'),
        _b64url(b'{"sub":"maya","org":"quintessa","iat":1700000000}'),
        _b64url(b"not-a-real-signature-but-32-bytes!"),
    ]
)
SECRETS = (AWS_KEY_ID, AWS_SECRET, DB_PASSWORD, YAML_PASSWORD, GH_TOKEN, KEY_BODY.split()[0], JWT)


def png_bytes() -> bytes:
    """A real 2x2 RGB PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * 2 for _ in range(2))
    header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


NOTEBOOK = {
    "cells": [
        {
            "cell_type": "markdown",
            "id": "intro",
            "metadata": {"editable": False},
            "source": ["# Quintessa Analytics EDA\n", "Ask maya.okafor@quintessa.io"],
        },
        {
            "cell_type": "code",
            "execution_count": 7,
            "id": "load",
            "metadata": {"execution": {"iopub.execute_input": "2024-05-01T10:00:00Z"},
                         "tags": ["quintessa-setup"]},
            "outputs": [
                {"name": "stdout", "output_type": "stream",
                 "text": ["connected to warehouse.quintessa.internal as maya\n"]},
                {"data": {"image/png": base64.b64encode(png_bytes()).decode(),
                          "text/plain": ["<Figure by Maya Okafor>"]},
                 "metadata": {}, "output_type": "display_data"},
            ],
            "source": ["from quintessa_utils import f\n", "f(21)"],
        },
    ],
    "metadata": {
        "authors": [{"name": "Maya Okafor"}],
        "kernelspec": {"display_name": "Python (quintessa-env)", "language": "python",
                       "name": "quintessa-env"},
        "language_info": {"name": "python", "version": "3.11.4",
                          "file_extension": "/home/maya/.py"},
        "widgets": {"state": {}},
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}

FILES: dict[str, str | bytes] = {
    "README.md": (
        "# Quintessa Analytics forecasting\n"
        "\n"
        "Owned by Maya Okafor (maya.okafor@quintessa.io); see https://quintessa.io/docs.\n"
        "The warehouse is warehouse.quintessa.internal (10.20.30.40), the API 34.120.5.6,\n"
        "and the cache fd12:3456:789a::1. Token for CI: " + GH_TOKEN + "\n"
    ),
    "pyproject.toml": (
        "[project]\n"
        'name = "quintessa-forecast"\n'
        'version = "0.1.0"\n'
        'description = "Forecasts for Quintessa Analytics"\n'
        'authors = [{ name = "Maya Okafor", email = "maya.okafor@quintessa.io" }]\n'
    ),
    "quintessa_utils.py": (
        '"""Helpers for Quintessa Analytics pipelines."""\n'
        "\n"
        f'WAREHOUSE_URL = "https://etl_user:{DB_PASSWORD}@db.quintessa.internal:5432/x"\n'
        'WAREHOUSE_HOST = "warehouse.quintessa.internal"\n'
        'SUPPORT = "maya.okafor@quintessa.io"\n'
        "QUINTESSA_ANALYTICS_REGION = \"eu-west-1\"\n"
        f'SERVICE_TOKEN = "{JWT}"\n'
        "\n"
        "\n"
        "class QuintessaAnalyticsClient:\n"
        '    name = "quintessa-analytics"\n'
        "\n"
        "\n"
        "def f(x: int) -> int:\n"
        "    return x * 2\n"
    ),
    "QuintessaModels/__init__.py": "",
    "QuintessaModels/forecast.py": (
        "from quintessa_utils import f\n"
        "\n"
        "\n"
        "def forecast(values: list[int]) -> list[int]:\n"
        "    return [f(v) for v in values]\n"
    ),
    "tests/test_forecast.py": (
        "from QuintessaModels.forecast import forecast\n"
        "from quintessa_utils import (\n"
        "    QUINTESSA_ANALYTICS_REGION, SERVICE_TOKEN, SUPPORT, WAREHOUSE_HOST,\n"
        "    QuintessaAnalyticsClient, f,\n"
        ")\n"
        "\n"
        "\n"
        "def test_f():\n"
        "    assert f(21) == 42\n"
        "\n"
        "\n"
        "def test_forecast():\n"
        "    assert forecast([1, 2]) == [2, 4]\n"
        "\n"
        "\n"
        "def test_values_still_agree_with_each_other():\n"
        '    assert SUPPORT == "maya.okafor@quintessa.io"\n'
        '    assert WAREHOUSE_HOST == "warehouse.quintessa.internal"\n'
        f'    assert SERVICE_TOKEN == "{JWT}"\n'
        '    assert QuintessaAnalyticsClient.name == "quintessa-analytics"\n'
        '    assert QUINTESSA_ANALYTICS_REGION == "eu-west-1"\n'
    ),
    "config/settings.toml": (
        "[aws]\n"
        f'access_key_id = "{AWS_KEY_ID}"\n'
        f'secret_access_key = "{AWS_SECRET}"\n'
        "\n"
        "[tls]\n"
        f'key = """\n{PRIVATE_KEY}\n"""\n'
    ),
    "config/warehouse.yaml": (
        "warehouse:\n"
        "  host: warehouse.quintessa.internal\n"
        "  ip: 10.20.30.40\n"
        f"  password: {YAML_PASSWORD}\n"
        "  url: https://user:pass@db.quintessa.internal:5432/x\n"
    ),
    "data/customers.csv": "id,email\n1,jane.doe@gmail.com\n2,maya.okafor@quintessa.io\n",
    "data/raw/dump.csv": "secret,rows\n",
    "notebooks/Quintessa EDA.ipynb": json.dumps(NOTEBOOK),
    "assets/logo.png": png_bytes(),
    ".env": f"DB_PASSWORD={DB_PASSWORD}\n",
    ".github/workflows/ci.yml": "on: push\n",
    "id_rsa": PRIVATE_KEY + "\n",
    "QuintessaModels/__pycache__/forecast.cpython-311.pyc": b"\x00\x01compiled",
}


def git(cwd: Path, *args: str) -> None:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(cwd),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Maya Okafor",
        "GIT_AUTHOR_EMAIL": "maya.okafor@quintessa.io",
        "GIT_COMMITTER_NAME": "Maya Okafor",
        "GIT_COMMITTER_EMAIL": "maya.okafor@quintessa.io",
    }
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, timeout=60)


@pytest.fixture
def seeded(tmp_path: Path) -> Path:
    """A real git working tree (its ``.git`` included, as a careless export would have it)."""
    src = tmp_path / "src"
    for rel, content in FILES.items():
        path = src / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    git(src, "init", "-q", "-b", "main")
    git(src, "add", "-A")
    git(src, "commit", "-q", "-m", "Quintessa forecasting")
    return src


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_seeded_tree_is_anonymised_and_post_scan_finds_nothing(
    seeded: Path, tmp_path: Path
) -> None:
    # The post-scan does see everything in the source, names and binary data included.
    before = post_scan(seeded, DENY)
    kinds = {f.kind for f in before}
    assert {"deny-term", "deny-term-in-name", "email", "aws-access-key", "private-key", "jwt",
            "url-credentials"} <= kinds

    out = tmp_path / "out"
    report = anonymise_tree(seeded, out, RULES)
    assert post_scan(out, DENY) == []

    files = tree_bytes(out)
    assert sorted(files) == [
        "AcmeModels/__init__.py",
        "AcmeModels/forecast.py",
        "README.md",
        "acme_utils.py",
        "assets/logo.png",
        "config/settings.toml",
        "config/warehouse.yaml",
        "data/customers.csv",
        "notebooks/Acme EDA.ipynb",
        "pyproject.toml",
        "tests/test_forecast.py",
    ]
    everything = b"".join(files.values()) + report.to_json().encode()
    for secret in SECRETS:
        assert secret.encode() not in everything, secret[:4]

    utils = files["acme_utils.py"].decode()
    assert '"""Helpers for Acme Analytics pipelines."""' in utils
    assert 'WAREHOUSE_URL = "https://host3.example.internal:5432/x"' in utils
    assert 'WAREHOUSE_HOST = "host2.example.internal"' in utils
    assert "ACME_ANALYTICS_REGION" in utils and "class AcmeAnalyticsClient:" in utils
    assert 'name = "acme-analytics"' in utils
    assert 'SERVICE_TOKEN = "REDACTED_JWT_1"' in utils
    readme = files["README.md"].decode()
    assert (
        "Owned by Pat Example (person1@example.com); see https://host1.example.internal/docs."
        in readme
    )
    assert "warehouse is host2.example.internal (192.0.2.1), the API 192.0.2.2," in readme
    assert "the cache 2001:db8::1." in readme
    assert "Token for CI: REDACTED_TOKEN_1" in readme
    assert files["data/customers.csv"] == (
        b"id,email\n1,person2@example.com\n2,person1@example.com\n"
    )

    pyproject = tomllib.loads(files["pyproject.toml"].decode())["project"]
    assert pyproject["name"] == "acme-forecast"
    assert pyproject["authors"] == [{"name": "Pat Example", "email": "person1@example.com"}]
    settings = tomllib.loads(files["config/settings.toml"].decode())
    assert settings["aws"] == {
        "access_key_id": "REDACTED_AWS_ACCESS_KEY_1",
        "secret_access_key": "REDACTED_AWS_SECRET_KEY_1",
    }
    assert settings["tls"]["key"] == "REDACTED_PRIVATE_KEY_1\n"
    warehouse = yaml.safe_load(files["config/warehouse.yaml"].decode())["warehouse"]
    assert warehouse == {
        "host": "host2.example.internal",
        "ip": "192.0.2.1",
        "password": "REDACTED_SECRET_1",
        "url": "https://host3.example.internal:5432/x",
    }

    entries = set(report.replacements)
    utils_py = "acme_utils.py"
    assert Replacement("term", utils_py, 1, "Quintessa Analytics", "Acme Analytics") in entries
    assert Replacement("term", utils_py, 6, "QUINTESSA_ANALYTICS", "ACME_ANALYTICS") in entries
    assert Replacement("term", utils_py, 10, "QuintessaAnalytics", "AcmeAnalytics") in entries
    assert Replacement("term", "pyproject.toml", 2, "quintessa", "acme") in entries
    assert Replacement("email", "pyproject.toml", 5, "maya.okafor@quintessa.io",
                       "person1@example.com") in entries
    assert Replacement("host", "acme_utils.py", 3, "db.quintessa.internal",
                       "host3.example.internal") in entries
    assert Replacement("url-credentials", "acme_utils.py", 3, "etl_…[20 chars]", "") in entries
    assert Replacement("secret:aws-access-key", "config/settings.toml", 2, "AKIA…[20 chars]",
                       "REDACTED_AWS_ACCESS_KEY_1") in entries
    assert Replacement("ip", "README.md", 4, "10.20.30.40", "192.0.2.1") in entries
    assert Replacement("term", "notebooks/Acme EDA.ipynb#cell-2", 1, "quintessa", "acme") in entries
    rules = {r.rule for r in report.replacements}
    assert {"secret:private-key", "secret:jwt", "secret:token", "secret:secret"} <= rules

    assert {
        RenamedPath("QuintessaModels/", "AcmeModels/"),
        RenamedPath("notebooks/Quintessa EDA.ipynb", "notebooks/Acme EDA.ipynb"),
        RenamedPath("quintessa_utils.py", "acme_utils.py"),
    } == set(report.renamed)
    dropped = {d.path: d for d in report.dropped}
    assert dropped[".env"] == DroppedPath(".env", "environment file", 1)
    assert dropped[".github/"] == DroppedPath(".github/", "CI configuration", 1)
    assert dropped["id_rsa"] == DroppedPath("id_rsa", "key material", 1)
    assert dropped["data/raw/"] == DroppedPath("data/raw/", "task manifest: drop", 1)
    assert dropped["QuintessaModels/__pycache__/"].reason == "cache or build artefact"
    assert dropped[".git/"].reason == "version control" and dropped[".git/"].files > 5
    assert report.flags == (Flag("assets/logo.png", ".png file: review its content by eye"),)
    assert files["assets/logo.png"] == png_bytes()
    assert report.count("files.written") == 11 and report.count("paths.renamed") == 3

    data = json.loads(report.to_json())
    assert data["counts"]["replacements.email"] == report.count("replacements.email") > 0
    assert len(data["replacements"]) == len(report.replacements)


def test_the_code_own_tests_still_pass_on_the_output(seeded: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    anonymise_tree(seeded, out, RULES)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=out, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 passed" in proc.stdout


def test_two_runs_give_byte_identical_trees_and_reports(seeded: Path, tmp_path: Path) -> None:
    first = anonymise_tree(seeded, tmp_path / "one", RULES)
    second = anonymise_tree(seeded, tmp_path / "two", RULES)
    assert first.to_json() == second.to_json()
    assert tree_bytes(tmp_path / "one") == tree_bytes(tmp_path / "two")

    def modes(root: Path) -> dict[Path, int]:
        return {p.relative_to(root): p.stat().st_mode for p in root.rglob("*")}

    assert modes(tmp_path / "one") == modes(tmp_path / "two")


def test_notebook_outputs_and_identifying_metadata_are_gone(seeded: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    anonymise_tree(seeded, out, RULES)
    text = (out / "notebooks/Acme EDA.ipynb").read_text(encoding="utf-8")
    nb = nbformat.reads(text, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata == {"kernelspec": {"display_name": "Python (acme-env)", "name": "acme-env"},
                           "language_info": {"name": "python"}}
    code = nb.cells[1]
    assert code.outputs == [] and code.execution_count is None
    assert code.metadata == {"tags": ["acme-setup"]}
    assert code.source == "from acme_utils import f\nf(21)"
    assert nb.cells[0].source == "# Acme Analytics EDA\nAsk person1@example.com"
    assert nb.cells[0].metadata == {}
    # Written the way nbformat writes it, so a save from JupyterLab is not a spurious diff.
    assert text == nbformat.writes(nb) + "\n"


def test_drops_from_manifest_and_options_symlinks_and_binaries(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "notes").mkdir(parents=True)
    (src / "notes/private.md").write_text("internal notes\n")
    (src / "keep.md").write_text("hello\n")
    (src / "model.bin").write_bytes(b"\x00\x01weights")
    (src / "data.bin").write_bytes(b"\xff\xfe\xfd not utf-8")
    (src / "secrets.yaml").write_text("a: b\n")
    (src / "link.md").symlink_to(src / "keep.md")
    (src / "linkdir").symlink_to(src / "notes")
    (src / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (src / "run.sh").chmod(0o755)
    out = tmp_path / "out"
    report = anonymise_tree(src, out, Rules(drop=("*.bin",)), extra_drop=("notes/",))
    assert sorted(tree_bytes(out)) == ["keep.md", "run.sh"]
    assert os.access(out / "run.sh", os.X_OK)
    assert {(d.path, d.reason) for d in report.dropped} == {
        ("data.bin", "task manifest: drop"),
        ("model.bin", "task manifest: drop"),
        ("notes/", "import option: drop"),
        ("secrets.yaml", "credentials file"),
    }
    assert {f.path for f in report.flags} == {"link.md", "linkdir"}
    assert all("not followed" in f.reason for f in report.flags)

    report = anonymise_tree(src, tmp_path / "out2", Rules())
    flagged = {f.path: f.reason for f in report.flags}
    assert flagged["model.bin"] == flagged["data.bin"] == "binary file copied unchanged"
    assert (tmp_path / "out2/data.bin").read_bytes() == (src / "data.bin").read_bytes()


def test_dest_must_be_new_or_empty(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a\n")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy/x").write_text("x")
    with pytest.raises(FileExistsError):
        anonymise_tree(src, tmp_path / "busy", Rules())
    with pytest.raises(ValueError):
        anonymise_tree(src, src / "inside", Rules())
    (tmp_path / "empty").mkdir()
    assert anonymise_tree(src, tmp_path / "empty", Rules()).count("files.written") == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Quintessa Analytics", "Acme Analytics"),
        ("quintessa analytics", "acme analytics"),
        ("QUINTESSA ANALYTICS", "ACME ANALYTICS"),
        ("quintessa_analytics", "acme_analytics"),
        ("QUINTESSA_ANALYTICS", "ACME_ANALYTICS"),
        ("quintessa-analytics", "acme-analytics"),
        ("quintessa.analytics", "acme.analytics"),
        ("quintessaAnalytics", "acmeAnalytics"),
        ("QuintessaAnalytics", "AcmeAnalytics"),
        ("getQuintessaClient()", "getAcmeClient()"),
        ("import quintessa_io", "import example_com"),
        ("QUINTESSA.IO", "EXAMPLE.COM"),
        ("quintessa2 quintessas", "acme2 quintessas"),
    ],
)
def test_term_forms_map_to_the_same_form(text: str, expected: str) -> None:
    rewriter = TermRewriter([(t, r) for t, r in RULES.replace])
    assert rewriter.rewrite_text(text) == expected


def test_secrets_in_code_are_replaced_consistently_and_ml_tokens_survive(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "app.py").write_text(
        'db_password = "s3cr3t-Pass"\n'
        'pad_token = "[PAD]"\n'
        'eos_token = "</s>"\n'
        "max_tokens = 512\n"
        'digest = "d41d8cd98f00b204e9800998ecf8427e"\n'
        "x = threading.local()\n"
        "y = a[1::2]\n"
        "z = h@self.fc.weight\n"
    )
    (src / "test_app.py").write_text('assert db_password == "s3cr3t-Pass"\n')
    out = tmp_path / "out"
    report = anonymise_tree(src, out, Rules())
    app = (out / "app.py").read_text()
    assert app.startswith('db_password = "REDACTED_SECRET_1"\npad_token = "[PAD]"\n')
    assert app.endswith(
        'eos_token = "</s>"\nmax_tokens = 512\ndigest = "d41d8cd98f00b204e9800998ecf8427e"\n'
        "x = threading.local()\ny = a[1::2]\nz = h@self.fc.weight\n"
    )
    assert (out / "test_app.py").read_text() == 'assert db_password == "REDACTED_SECRET_1"\n'
    assert "s3cr3t-Pass" not in report.to_json()


def test_config_files_lose_internal_hosts_addresses_and_keys(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "app.ini").write_text(
        "[db]\n"
        "host: db.corp\n"
        "replica = replica-2.lan:5432\n"
        "secret_key = 9f8e7d6c5b4a39281706f5e4d3c2b1a0\n"
        "dsn = postgresql://maya@warehouse:5432/x\n"
        "peers = 10.0.0.7, 10.0.0.7., fe80::1ff:fe23:4567:890a\n"
        "docs = https://pypi.org/project/numpy/\n"
        "local = 127.0.0.1\n"
    )
    out = tmp_path / "out"
    anonymise_tree(src, out, Rules())
    assert (out / "app.ini").read_text() == (
        "[db]\n"
        "host: host1.example.internal\n"
        "replica = host2.example.internal:5432\n"
        "secret_key = REDACTED_SECRET_1\n"
        "dsn = postgresql://host3.example.internal:5432/x\n"
        "peers = 192.0.2.1, 192.0.2.1., 2001:db8::1\n"
        "docs = https://pypi.org/project/numpy/\n"
        "local = 127.0.0.1\n"
    )
    assert post_scan(out, ["warehouse"]) == []


def test_attribute_chains_in_code_are_not_hosts(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    code = (
        "x = settings.local_dir\n"
        "y = settings.local\n"
        "z = self.cache.local\n"
        "t = threading.local()\n"
        'h = "nas.lan"\n'
    )
    (src / "run.py").write_text(code)
    anonymise_tree(src, tmp_path / "out", Rules())
    expected = code.replace("nas.lan", "host1.example.internal")
    assert (tmp_path / "out/run.py").read_text() == expected


def test_manifest_fields_get_the_same_replacements_as_the_tree(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "quintessa_feed").mkdir(parents=True)
    (src / "quintessa_feed" / "load.py").write_text(
        'OWNER = "maya.okafor@quintessa.io"  # Quintessa Analytics\n')
    label = "pairlab-task.toml:task.title"
    title = "Quintessa Analytics feed: ask maya.okafor@quintessa.io or Maya Okafor"
    with_field = anonymise_tree(src, tmp_path / "a", RULES, fields={label: title})
    without = anonymise_tree(src, tmp_path / "b", RULES)

    # the same term and the same numbered address as in the code
    assert with_field.field(label) == (
        "Acme Analytics feed: ask person1@example.com or Pat Example")
    assert 'OWNER = "person1@example.com"' in (tmp_path / "a/acme_feed/load.py").read_text()
    # rewritten last: the tree's output and its part of the report do not depend on the fields
    assert (tmp_path / "a/acme_feed/load.py").read_bytes() == (
        tmp_path / "b/acme_feed/load.py").read_bytes()
    field_changes = [r for r in with_field.replacements if r.file == label]
    assert [(r.rule, r.before, r.after) for r in field_changes] == [
        ("term", "Quintessa Analytics", "Acme Analytics"),
        ("email", "maya.okafor@quintessa.io", "person1@example.com"),
        ("term", "Maya Okafor", "Pat Example"),
    ]
    assert [r for r in with_field.replacements if r.file != label] == list(without.replacements)
    assert post_scan(tmp_path / "a", DENY) == []
