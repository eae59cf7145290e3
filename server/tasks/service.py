"""Wiring of the task catalogue into the server: import configuration and background imports.

Imports run on daemon threads (git, anonymisation and checks are blocking work); the web call
returns an import id at once and the import's step is written to SQLite as it goes, so the
admin page can show progress. A server stopped mid-import leaves nothing half-done: the staging
folder is cleared and the import is marked failed at the next start.
"""

from __future__ import annotations

import asyncio
import logging
import shlex
import shutil
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from common import audit
from server.http.keys import DB, SETTINGS
from server.settings import Settings, env_name, how_to_set
from tasks import acceptances, revisions
from tasks.checks import CheckResult, CheckRunner
from tasks.errors import NotPublishable, TaskError
from tasks.gitfetch import FetchLimits
from tasks.importer import ImportConfig, ImportRequest, install_revision, prepare_import
from tasks.source import SettingNames, Source, SourcePolicy, scrub_url, validate_source
from tasks.store import TaskStore
from workspaces.environments import EnvironmentBuildFailed, ensure_environment
from workspaces.errors import SandboxUnavailable
from workspaces.grading.harness import harness_job, parse_report, prepare_for_grading
from workspaces.grading.hidden import visible_target
from workspaces.sandbox.run import CheckSandbox, SandboxJob

log = logging.getLogger(__name__)
T = TypeVar("T")


def record_revision_created(db: Any, actor: audit.Actor, rev_id: str,
                            summary: dict[str, Any]) -> None:
    """The audit rows of a new revision (inside the caller's write transaction): its creation,
    and, when the rules declared exceptions, each ``keep`` entry with its count of occurrences
    (an exception leaves deny-listed words in a published tree: someone chose that)."""
    audit.record(db, actor, "task.revision.create", "task_revision", rev_id)
    kept = summary.get("kept") or []
    if kept:
        audit.record(db, actor, "task.anonymise.keep", "task_revision", rev_id, keep=kept)


def accept_findings(db: Any, actor: audit.Actor, rev_id: str, findings: Sequence[Any],
                    reason: str, who: str, *, finding: str, path: str,
                    ) -> list[acceptances.Acceptance]:
    """Accept one post-scan finding (or every finding of one file) of ``rev_id`` with a reason,
    each acceptance audited (inside the caller's write transaction; the revision's status is
    read there)."""
    rev = revisions.get_revision(db, rev_id)
    done = acceptances.accept(db, rev_id, rev.status, findings, reason, who,
                              finding=finding, path=path)
    for a in done:
        audit.record(db, actor, "task.finding.accept", "task_revision", rev_id,
                     finding=a.finding_id, path=a.path, kind=a.kind, reason=a.reason)
    return done


def task_store(settings: Settings) -> TaskStore:
    return TaskStore(settings.data_dir / "tasks")


def sandbox_for(settings: Settings) -> CheckSandbox:
    """The sandbox task code runs in outside a workspace (its runs' folders under the data dir,
    which is itself never mounted)."""
    return CheckSandbox(settings.sandbox_uid_base, settings.data_dir, settings.data_dir / "checks",
                        require_cgroups=not settings.unsafe_no_cgroups)


def sandboxed_check(sandbox: CheckSandbox) -> CheckRunner:
    """The import's ``run_check``: the manifest's command, through ``sandbox``; a plain
    ``python -m pytest`` run on one path (the visible tests, the hidden checks) goes through
    pairlab's harness on a tree prepared as every session's is (``prepare_for_grading``), so
    the import's verdicts are the ones sessions will get."""

    def run_check(command: str, tree: Path, python: Path, timeout_s: float, *,
                  revision: Path, hidden: Path | None = None) -> CheckResult:
        try:
            argv = shlex.split(command)
        except ValueError as exc:
            return CheckResult(command, False, None, False, f"cannot parse the command: {exc}")
        if not argv:
            return CheckResult(command, False, None, False, "empty check command")
        job = SandboxJob(argv, python, tree, timeout_s)
        target = visible_target(command)
        if target is None and hidden is not None:
            return CheckResult(command, False, None, False,
                               "not run: the hidden checks' path cannot be graded by pairlab's "
                               "harness (letters, digits, '_', '.', '-' and '/' only)")
        if target is not None:  # a plain pytest run: pairlab's harness, as in every session
            try:
                prepare_for_grading(tree, target, revision_tree=revision, hidden=hidden)
            except (OSError, ValueError) as exc:
                return CheckResult(command, False, None, False, f"not run: {exc}")
            job = harness_job(target, tree, python, timeout_s, checks=hidden)
        try:
            with sandbox.run(job) as run:
                passed = run.exit_code == 0
                if job.report:  # and the harness said it finished
                    passed = passed and parse_report(run.report)[0] is not None
                return CheckResult(command, passed, run.exit_code, run.timed_out, run.output)
        except SandboxUnavailable as exc:
            return CheckResult(command, False, None, False, f"not run: {exc.message}")

    return run_check


def runnable_python(settings: Settings, requirements: Sequence[str],
                    sandbox: CheckSandbox | None = None) -> Path | str:
    """The environment's Python for ``requirements`` (built if missing), once a sandbox uid has
    started it; else why not, as a sentence. Blocking: a build, then one sandboxed start."""
    try:
        python = ensure_environment(settings.envs_root, requirements)
    except EnvironmentBuildFailed as exc:
        return f"the task environment could not be built: {exc.message}"
    problem: str | None
    try:
        problem = (sandbox or sandbox_for(settings)).probe_python(python)
    except SandboxUnavailable as exc:
        problem = exc.message
    return python if problem is None else f"the task environment cannot run in the sandbox: " \
                                          f"{problem}"


def require_runnable(settings: Settings, rev: revisions.Revision,
                     sandbox: CheckSandbox | None = None, unaccepted: int | None = None) -> None:
    """Before publishing by hand (blocking; the API, the page and the CLI call it): what blocks
    the revision itself first (``unaccepted``: post-scan findings not accepted, see
    ``revisions.check_publishable``), then whether a candidate could use its environment now."""
    revisions.check_publishable(rev, unaccepted)
    python = runnable_python(settings, rev.requirements, sandbox)
    if isinstance(python, str):
        raise NotPublishable(f"{rev.id} cannot be published: {python}")


def source_policy(settings: Settings, *, allow_local: bool = False,
                  cli: bool = False) -> SourcePolicy:
    """What an import may fetch from: the settings (``git_allow_local`` on, or ``allow_local``,
    the CLI's ``--allow-local``, opens local sources), its refusals naming those settings."""
    local = how_to_set("git_allow_local", "true")
    return SourcePolicy(
        allow_local=allow_local or settings.git_allow_local,
        allowed_hosts=settings.allowed_git_hosts,
        allow_http=settings.git_allow_http,
        relative_paths=cli,  # the operator's working directory; never the server's
        names=SettingNames(
            allow_local=f"pass --allow-local, or set {local}" if cli else f"set {local}",
            allow_http=f"set {how_to_set('git_allow_http', 'true')}",
            # {host} is filled in by the refusal (a validated host name: no braces)
            allowed_hosts="add {host!r} to " + env_name("git_allowed_hosts")
                          + " (setting git_allowed_hosts, comma-separated)",
        ),
    )


def check_source(settings: Settings, url: str, ref: str | None, subdir: str | None) -> Source:
    """The admin's source checked as the import will check it (blocking: DNS), so that a refused
    one is said at once, on the form; the import checks it again and pins what it resolved."""
    return validate_source(url, ref, subdir, source_policy(settings))


def import_sources(settings: Settings) -> str:
    """What this server's admins may import from, as a sentence for the import form."""
    hosts = ", ".join(sorted(settings.allowed_git_hosts))
    what = ["https:// from public hosts"]
    if hosts:
        what.append(f"http{'(s)' if settings.git_allow_http else 's'}:// from {hosts}")
    if settings.git_allow_local:
        what.append("local paths, file:// URLs and hosts on loopback or private networks")
    return "This server imports " + "; ".join(what) + "."


def import_config(settings: Settings, *, allow_local: bool = False, cli: bool = False,
                  sandbox: CheckSandbox | None = None) -> ImportConfig:
    sandbox = sandbox or sandbox_for(settings)
    return ImportConfig(
        store=task_store(settings),
        policy=source_policy(settings, allow_local=allow_local, cli=cli),
        limits=FetchLimits(
            max_entries=settings.import_max_entries,
            max_total_bytes=settings.import_max_total_bytes,
            max_blob_bytes=settings.import_max_blob_bytes,
        ),
        fetch_timeout_s=settings.import_timeout_seconds,
        check_timeout_s=settings.check_timeout_seconds,
        environment=lambda requirements: runnable_python(settings, requirements, sandbox),
        run_check=sandboxed_check(sandbox),
    )


def in_daemon_thread(fn: Callable[[], T]) -> asyncio.Future[T]:
    """Run blocking ``fn`` on a daemon thread: a stopping server never waits for it."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def target() -> None:
        try:
            result = fn()
        except BaseException as exc:  # handed to the awaiting coroutine
            try:
                loop.call_soon_threadsafe(settle, None, exc)
            except RuntimeError:
                pass  # the loop is closed: the server stopped
            return
        try:
            loop.call_soon_threadsafe(settle, result, None)
        except RuntimeError:
            pass

    threading.Thread(target=target, daemon=True, name="pairlab-import").start()
    return future


class ImportRunner:
    """Starts imports in the background and records their progress and outcome."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.tasks: set[asyncio.Task[None]] = set()

    async def start(self, request: ImportRequest, actor: audit.Actor) -> str:
        db = self.app[DB]
        url = scrub_url(request.url)

        def begin(d: Any) -> str:
            import_id = revisions.start_import(
                d, url, request.ref or "", request.subdir or "", actor.label
            )
            audit.record(d, actor, "task.import", "task_import", import_id, url=url)
            return import_id

        import_id = await db.write(begin)
        task = asyncio.create_task(self._run(import_id, request, actor))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return import_id

    async def _run(self, import_id: str, request: ImportRequest, actor: audit.Actor) -> None:
        try:
            await self._import(import_id, request, actor)
        finally:
            if request.rules_file is not None:  # written from the request in a private folder
                shutil.rmtree(request.rules_file.parent, ignore_errors=True)

    async def _import(self, import_id: str, request: ImportRequest, actor: audit.Actor) -> None:
        db = self.app[DB]
        loop = asyncio.get_running_loop()
        config = import_config(self.app[SETTINGS])

        def progress(step: str) -> None:
            asyncio.run_coroutine_threadsafe(
                db.write(lambda d: revisions.set_import_step(d, import_id, step)), loop
            )

        try:
            prepared = await in_daemon_thread(lambda: prepare_import(request, config, progress))
        except TaskError as exc:
            message = exc.message
            log.info("import %s refused: %s", import_id, message)
            await db.write(lambda d: revisions.finish_import(d, import_id, None, message))
            return
        except Exception:
            log.exception("import %s failed", import_id)
            await db.write(lambda d: revisions.finish_import(
                d, import_id, None, "the import failed unexpectedly; the server log has details"
            ))
            return

        def finish(d: Any) -> str:
            rev = install_revision(d, config.store, prepared)
            revisions.finish_import(d, import_id, rev.id, None)
            record_revision_created(d, actor, rev.id, prepared.summary)
            return rev.id

        try:
            await db.write(finish)
        except TaskError as exc:
            failure = exc.message
            await db.write(lambda d: revisions.finish_import(d, import_id, None, failure))
        except Exception:  # never leave the import "running" for ever
            log.exception("import %s could not be stored", import_id)
            await db.write(lambda d: revisions.finish_import(
                d, import_id, None, "the import could not be stored; the server log has details"
            ))


IMPORTS = web.AppKey("task_imports", ImportRunner)
STORE = web.AppKey("task_store", TaskStore)


async def tasks_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    store = task_store(settings)
    store.clear_staging()
    # Check runs a killed pairlab left (any run still going is younger than its time limit).
    left = await asyncio.to_thread(sandbox_for(settings).sweep,
                                   settings.check_timeout_seconds + 300)
    if left:
        log.info("removed %d folders and cgroups of check runs left by an earlier pairlab", left)
    await app[DB].write(revisions.fail_interrupted_imports)
    app[STORE] = store
    runner = ImportRunner(app)
    app[IMPORTS] = runner
    yield
    for task in list(runner.tasks):
        task.cancel()
    await asyncio.gather(*runner.tasks, return_exceptions=True)
