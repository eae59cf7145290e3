"""Which paths of an exported tree never reach a task: VCS data, CI, env files, keys, caches.

Built-in patterns have gitignore-like meaning and match case-insensitively:

- ``name`` / ``*.pem``: any file or folder with that name, at any depth;
- a trailing ``/`` (``.github/``): folders only;
- a leading ``**/`` (``**/.docker/config.json``): that path at any depth.

The manifest's ``drop`` globs (and ``extra_drop``) keep the meaning ``tasks.manifest`` documents:
case-sensitive and anchored at the tree's root, ``*`` also crossing ``/``; a trailing ``/`` names
a folder and drops everything below it.

A dropped folder is reported once (``".github/"``), with the reason of the rule that caught it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

_BUILTIN: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("version control", (".git", ".hg/", ".svn/")),
    (
        "CI configuration",
        (".github/", ".gitlab-ci.yml", ".circleci/", "Jenkinsfile", ".travis.yml",
         "azure-pipelines.yml", ".buildkite/"),
    ),
    ("environment file", (".env*",)),
    (
        "key material",
        ("*.pem", "*.key", "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", "*.p12", "*.pfx",
         "*.keystore", "*.jks"),
    ),
    (
        "credentials file",
        (".netrc", ".npmrc", ".pypirc", ".git-credentials", "credentials*", ".aws/",
         "**/.docker/config.json", "secrets.*"),
    ),
    (
        "cache or build artefact",
        ("__pycache__/", "*.pyc", "*.pyo", ".pytest_cache/", ".mypy_cache/", ".ruff_cache/",
         ".ipynb_checkpoints/", ".venv/", "node_modules/", ".DS_Store", ".tox/"),
    ),
)


@dataclass(frozen=True)
class DropRule:
    pattern: str
    reason: str
    builtin: bool = False  # gitignore-like and case-insensitive; else anchored (manifest)

    def matches(self, parts: Sequence[str], is_dir: bool) -> bool:
        pat = self.pattern
        folder_only = pat.endswith("/")
        if folder_only:
            if not is_dir:
                return False
            pat = pat.rstrip("/")
        if not self.builtin:
            # Anchored; a pattern without "/" at the end matches whole file paths only.
            return (folder_only or not is_dir) and fnmatchcase("/".join(parts), pat)
        pat = pat.lower()
        parts = [p.lower() for p in parts]
        if pat.startswith("**/"):
            pat = pat[3:]
            return any(fnmatchcase("/".join(parts[i:]), pat) for i in range(len(parts)))
        return fnmatchcase(parts[-1], pat)


def builtin_rules() -> tuple[DropRule, ...]:
    return tuple(
        DropRule(pattern, reason, builtin=True)
        for reason, patterns in _BUILTIN
        for pattern in patterns
    )


def make_rules(manifest_drop: Iterable[str], extra_drop: Iterable[str]) -> tuple[DropRule, ...]:
    return (
        builtin_rules()
        + tuple(DropRule(p, "task manifest: drop") for p in manifest_drop if p.strip())
        + tuple(DropRule(p, "import option: drop") for p in extra_drop if p.strip())
    )


def match_drop(
    rel: str, rules: Sequence[DropRule], *, is_dir: bool = False
) -> tuple[str, str] | None:
    """→ (dropped path, reason) for the topmost dropped part of ``rel``, or None to keep it.

    ``rel`` names a file, or a folder with ``is_dir=True``. The dropped path ends with ``/``
    when a whole folder goes.
    """
    parts = rel.split("/")
    for depth in range(1, len(parts) + 1):
        folder = is_dir or depth < len(parts)
        for rule in rules:
            if rule.matches(parts[:depth], folder):
                return "/".join(parts[:depth]) + ("/" if folder else ""), rule.reason
    return None
