"""The import pipeline: source -> validated fetch -> anonymised, scanned, checked revision.

``prepare_import`` is blocking (callers use ``asyncio.to_thread``) and writes only under the
store's staging folder, which is removed on every path; ``install_revision`` then records the
revision in SQLite and moves its folder into the store in the same write transaction.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from tasks import revisions
from tasks.anonreport import AnonReport
from tasks.anonymise import anonymise_tree
from tasks.apicheck import unverified_names
from tasks.checks import CheckResult, CheckRunner, EnvironmentFor
from tasks.diffview import build_diff
from tasks.errors import ManifestInvalid, TaskError
from tasks.gitfetch import FetchLimits, fetch_snapshot
from tasks.hints import find_hints
from tasks.import_steps import (
    ANONYMISING,
    BUILDING_ENVIRONMENT,
    FETCHING,
    FINDING_IDENTIFIERS,
    HIDDEN_ON_SOLUTION,
    HIDDEN_ON_STARTER,
    LOOKING_UP_NAMES,
    POST_SCANNING,
    READING_MANIFEST,
    VALIDATING,
    VISIBLE_TESTS,
    WRITING_REPORT,
)
from tasks.manifest import MANIFEST_NAME, Manifest, hints_from_guide, load_manifest
from tasks.postscan import Finding, post_scan, post_scan_texts
from tasks.source import SourcePolicy, scrub_url, validate_source
from tasks.store import TaskStore
from tasks.treerepo import STARTING_POINT, commit_tree

log = logging.getLogger(__name__)
Progress = Callable[[str], None]
TITLE_LABEL = f"{MANIFEST_NAME}:task.title"
"""How the title is named in the report's replacements and post-scan findings."""
HISTORY_COMMITS = 200
"""How many of the source's latest commits are read for their authors (possible identifiers)."""


@dataclass(frozen=True)
class ImportRequest:
    url: str
    ref: str | None = None
    subdir: str | None = None
    rules_file: Path | None = None
    created_by: str = "cli"


@dataclass(frozen=True)
class ImportConfig:
    store: TaskStore
    policy: SourcePolicy
    limits: FetchLimits
    fetch_timeout_s: float
    check_timeout_s: float
    environment: EnvironmentFor
    run_check: CheckRunner


@dataclass(frozen=True)
class Prepared:
    staged: Path
    revision: revisions.NewRevision
    summary: dict[str, Any]


def _renamed(report: AnonReport, rel: str) -> str:
    """Where an original path ended up after the anonymiser renamed files and folders."""
    rel = rel.rstrip("/")
    for r in sorted(report.renamed, key=lambda r: -len(r.before)):
        before = r.before.rstrip("/")
        if rel == before or rel.startswith(before + "/"):
            return r.after.rstrip("/") + rel[len(before):]
    return rel


def _move(src: Path, dest: Path) -> None:
    if src.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(src), str(dest))


def _overlay(src: Path, dest: Path) -> None:
    for path in sorted(src.rglob("*")):
        if path.is_file() and not path.is_symlink():
            target = dest / path.relative_to(src)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)


CheckResults = dict[str, CheckResult | None]


def _run_checks(
    manifest: Manifest, out: Path, hidden_rel: str | None, work: Path, cfg: ImportConfig,
    progress: Progress, api_names: Sequence[str],
) -> tuple[CheckResults, str | None, list[Finding]]:
    """Each check on its own throwaway copy, through ``cfg.run_check`` (the sandbox). Returns
    the results, if the environment cannot be built or run there why (nothing ran), and a
    finding for each kept third-party name (``api_names``) the environment does not have."""
    results: CheckResults = {
        "visible": None, "hidden_on_solution": None, "hidden_on_starter": None,
    }
    progress(BUILDING_ENVIRONMENT)
    python = cfg.environment(manifest.environment.requirements)
    if isinstance(python, str):
        return results, python, []
    unverified: list[Finding] = []
    if api_names:
        progress(LOOKING_UP_NAMES)
        unverified = unverified_names(api_names, cfg.run_check, python, work,
                                      cfg.check_timeout_s)
    progress(VISIBLE_TESTS)
    visible_copy = work / "check-visible"
    shutil.copytree(out / "tree", visible_copy, symlinks=True)
    results["visible"] = cfg.run_check(
        manifest.checks.visible, visible_copy, python, cfg.check_timeout_s, revision=out / "tree"
    )
    if hidden_rel is None or not (out / "hidden").is_dir():
        return results, None, unverified
    hidden_cmd = f"python -m pytest -q {hidden_rel}"
    for name, with_solution in (("hidden_on_solution", True), ("hidden_on_starter", False)):
        if with_solution and not (out / "solution").is_dir():
            continue
        progress(HIDDEN_ON_SOLUTION if with_solution else HIDDEN_ON_STARTER)
        copy = work / f"check-{name}"
        shutil.copytree(out / "tree", copy, symlinks=True)
        if with_solution:
            _overlay(out / "solution", copy)
        # the checks go in place as in every session (run_check: the candidate's conftests
        # and bytecode out, the revision's conftests in)
        results[name] = cfg.run_check(hidden_cmd, copy, python, cfg.check_timeout_s,
                                      revision=out / "tree", hidden=out / "hidden")
    return results, None, unverified


def prepare_import(req: ImportRequest, cfg: ImportConfig, progress: Progress) -> Prepared:
    cfg.store.staging.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="import-", dir=cfg.store.staging))
    try:
        return _prepare(req, cfg, progress, work)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _prepare(req: ImportRequest, cfg: ImportConfig, progress: Progress, work: Path) -> Prepared:
    progress(VALIDATING)
    source = validate_source(req.url, req.ref, req.subdir, cfg.policy)
    progress(FETCHING)
    original = work / "original"
    fetched = fetch_snapshot(
        source, original, cfg.limits, cfg.fetch_timeout_s, tmp_root=work,
        history_commits=HISTORY_COMMITS,
    )
    progress(READING_MANIFEST)
    if not (original / MANIFEST_NAME).is_file():
        raise ManifestInvalid([(MANIFEST_NAME, "(file)", "missing from the source")])
    manifest = load_manifest(original, req.rules_file)
    task = manifest.task
    # The rules text as given (validated by load_manifest): a re-import starts from it.
    rules_text = req.rules_file.read_text("utf-8") if req.rules_file is not None else ""

    progress(ANONYMISING)
    anon = work / "anon"
    # The brief and the guide are files of the tree (rewritten and scanned with it); the title
    # is the one manifest text people see (the candidate's <h1>), so it goes the same way.
    report = anonymise_tree(original, anon, manifest.anonymise, extra_drop=(MANIFEST_NAME,),
                            fields={TITLE_LABEL: task.title})
    title = report.field(TITLE_LABEL)
    progress(POST_SCANNING)
    deny, people = manifest.anonymise.deny_terms, manifest.anonymise.person_names
    keep = manifest.anonymise.keep
    findings = (post_scan(anon, deny, people, keep)
                + post_scan_texts({TITLE_LABEL: title}, deny, people, keep))
    progress(FINDING_IDENTIFIERS)
    identifiers = find_hints(
        anon, manifest.anonymise.replace, manifest.anonymise.people, history=fetched.people,
        history_commits=fetched.history_commits, history_problem=fetched.history_problem,
        fields={TITLE_LABEL: title},
    )

    out = work / "revision"
    out.mkdir()
    guide_rel = _renamed(report, task.guide)
    brief_rel = _renamed(report, task.brief)
    hidden_rel = _renamed(report, manifest.checks.hidden) if manifest.checks.hidden else None
    solution_rel = _renamed(report, manifest.checks.solution) if manifest.checks.solution else None
    guide_text = (anon / guide_rel).read_text("utf-8") if (anon / guide_rel).is_file() else ""
    _move(anon / guide_rel, out / "guide.md")
    if hidden_rel:
        _move(anon / hidden_rel, out / "hidden")
    if solution_rel:
        _move(anon / solution_rel, out / "solution")
    if (anon / brief_rel).is_file():
        shutil.copyfile(anon / brief_rel, out / "brief.md")
    _move(anon, out / "tree")
    tree_commit = commit_tree(out / "tree", STARTING_POINT)

    api_names = [k.text for k in report.kept if k.rule == "third-party-api"]
    checks, environment_problem, unverified = _run_checks(manifest, out, hidden_rel, work, cfg,
                                                          progress, api_names)
    findings += unverified
    progress(WRITING_REPORT)
    blockers = []
    if environment_problem is not None:
        blockers.append(f"environment:{environment_problem}")
    if findings:
        blockers.append(f"postscan:the post-scan found {len(findings)} leftover item(s)")
    if report.flags:
        blockers.append(f"flag:{len(report.flags)} flagged file(s) need an admin's acknowledgement")
    if checks["visible"] is not None and not checks["visible"].passed:
        blockers.append("visible:the visible tests fail on the anonymised tree")
    if checks["hidden_on_solution"] is not None and not checks["hidden_on_solution"].passed:
        blockers.append("hidden:the hidden checks fail on the reference solution")

    full_report = {
        "task": {"id": task.id, "title": title, "kind": task.kind, "roles": list(task.roles)},
        "source": {"url": scrub_url(source.url), "ref": source.ref or "", "commit":
                   fetched.commit_sha, "subdir": source.subdir or ""},
        "fetch": {"files": len(fetched.files), "bytes": fetched.total_bytes,
                  "skipped": [list(s) for s in fetched.skipped]},
        "anonymisation": report.to_dict(),
        "post_scan": {"clean": not findings, "findings": [f.to_dict() for f in findings]},
        "possible_identifiers": identifiers.to_dict(),
        "import_rules": rules_text,
        "checks": {k: (v.to_dict() if v else None) for k, v in checks.items()},
        "environment": {"requirements": list(manifest.environment.requirements),
                        "problem": environment_problem},
        "role_warnings": list(manifest.role_warnings()),
        "hints": hints_from_guide(guide_text),
        "blockers": [b.split(":", 1)[1] for b in blockers],
        "tree_commit": tree_commit,
    }
    (out / "report.json").write_text(json.dumps(full_report, indent=1, sort_keys=True) + "\n")
    (out / "diff.json").write_text(json.dumps(build_diff(original, out / "tree", report)))
    staged = work / "staged"
    out.rename(staged)
    new = revisions.NewRevision(
        task_id=task.id, title=title, kind=task.kind, roles=tuple(task.roles),
        duration_minutes=task.duration_minutes,
        requirements=tuple(manifest.environment.requirements),
        visible_check=manifest.checks.visible, source_url=scrub_url(source.url),
        source_ref=source.ref or "", source_subdir=source.subdir or "",
        source_commit=fetched.commit_sha, tree_commit=tree_commit, blockers=tuple(blockers),
        created_by=req.created_by,
    )
    summary = {
        "files": len(fetched.files),
        "replacements": len(report.replacements),
        "dropped": len(report.dropped),
        "renamed": len(report.renamed),
        "flags": len(report.flags),
        "post_scan_findings": len(findings),
        "environment": environment_problem or "ok",
        "visible_tests": _verdict(checks["visible"]),
        "hidden_on_solution": _verdict(checks["hidden_on_solution"]),
        "hidden_on_starter": _verdict(checks["hidden_on_starter"]),
        "blockers": full_report["blockers"],
        "role_warnings": full_report["role_warnings"],
        # Declared exceptions, each with its count: shown by the CLI, audited at the import.
        "kept": [{"entry": k.text, "count": k.count, "stops_rewrite": k.stops_rewrite}
                 for k in report.kept if k.rule == "keep"],
        "possible_identifiers": [
            f"{h.kind} {h.value} ({h.examples[0]}): add " + "; ".join(r.toml() for r in h.rules)
            for h in identifiers.hints
        ],
        "possible_identifiers_left_off": identifiers.left_off,
    }
    return Prepared(staged, new, summary)


def _verdict(result: CheckResult | None) -> str:
    if result is None:
        return "not run"
    return "passed" if result.passed else ("timed out" if result.timed_out else "failed")


def install_revision(
    db: sqlite_utils.Database, store: TaskStore, prepared: Prepared
) -> revisions.Revision:
    """Record the revision and move its files into the store (inside one write transaction)."""
    try:
        rev = revisions.insert_revision(db, prepared.revision)
        store.install(prepared.staged, rev.task_id, rev.id)
    finally:
        shutil.rmtree(prepared.staged.parent, ignore_errors=True)
    return rev


__all__ = ["ImportConfig", "ImportRequest", "Prepared", "TaskError", "install_revision",
           "prepare_import"]
