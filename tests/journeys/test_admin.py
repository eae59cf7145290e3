"""The admin's side of the catalogue, on the demo that README command 1 starts.

What these journeys prove, in a real browser against the real ``pairlab demo``:

- An admin imports a task from a git server (loopback, plain HTTP, as an operator with an
  internal git server would allow it), watches the import page step through its work on its
  own, reviews the revision (no blockers; visible tests pass, hidden checks pass on the
  solution and fail on the starter) and publishes it; an interviewer then schedules a session
  on it through the sessions form, and the candidate link's landing page shows that task.
- A task whose environment cannot be installed is imported with a blocker that names the
  environment and uv's reason, and Publish is refused with that reason. A task whose
  environment was built but then made unreadable to other users (an operator's ``chmod``)
  cannot be published either (the sandbox cannot run it), and ``pairlab doctor`` fails on
  that environment by its key.
- A hostile repository whose test code, at import time, tries to write outside its tree, read
  the data dir and reach the network gets nothing: nothing lands on the host, the test's
  listener is never connected to, the cookie secret appears nowhere, its code runs as a
  non-root uid without capabilities, and its failing test blocks publishing.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, Page, expect
from playwright.async_api import Error as PlaywrightError

from tests.journeys.conftest import (
    WAIT_MS,
    Product,
    browsing,
    document,
    schedule_through_the_page,
)
from tests.task_repos import COMPANY, COMPANY_REPLACEMENT, commit_files, publish_bare, tiny_task
from tests.tasks.githttp import serve_git
from workspaces.environments import environment_key

pytestmark = [pytest.mark.journey, pytest.mark.integration, pytest.mark.browser,
              pytest.mark.timeout(1500)]

ADMIN = "admin@example.com"
INTERVIEWER = "interviewer@example.com"
IMPORT_DEADLINE_S = 900.0
"""An import may build an environment from the package index."""
IMPORT_STEPS = (
    "queued", "validating the source", "fetching one snapshot", "reading the manifest",
    "anonymising", "post-scanning every byte of the result",
    "looking for identifiers nobody declared", "building the task environment",
    "looking up the kept third-party names in the task environment",
    "running the visible tests on the anonymised tree",
    "running the hidden checks on the solution", "running the hidden checks on the starter",
    "writing the report", "done",
)
MISSING_PACKAGE = "pairlab-no-such-package==0.0.1"
RESULTS_MARK = "HOSTILE-RESULTS"


# ---- task repositories ------------------------------------------------------------------------


def unique_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def task_files(task_id: str, *, requirements: str = "[]",
               extra: dict[str, bytes] | None = None) -> dict[str, bytes]:
    """``tiny_task`` with a title of its own (to recognise it) and the given requirements."""
    files = tiny_task(task_id, extra=extra)
    manifest = files["pairlab-task.toml"].decode()
    manifest = manifest.replace('title = "Nightly totals are too low"',
                                f"title = {json.dumps(title_of(task_id))}")
    manifest = manifest.replace("requirements = []", f"requirements = {requirements}")
    files["pairlab-task.toml"] = manifest.encode()
    return files


PEOPLE_TABLE = '\n[anonymise.people]\n"José Núñez" = "Jane Doe"\n'
CITED = "\nThe feed follows Núñez, J. (2021) and Jose Nunez's notes.\n"
CITATION = ("cff-version: 1.2.0\nmessage: Cite it.\nauthors:\n"
            "  - family-names: Núñez\n    given-names: José\n")


def title_of(task_id: str) -> str:
    return f"Nightly totals are too low ({task_id})"


@contextmanager
def served(tmp_path: Path, repos: dict[str, dict[str, bytes]]) -> Iterator[dict[str, str]]:
    """Each ``name -> files`` committed and served over loopback HTTP; yields name -> URL."""
    root = tmp_path / "served"
    root.mkdir()
    for name, files in repos.items():
        work = tmp_path / "work" / name
        commit_files(work, files)
        publish_bare(work, root, name)
    with serve_git(root) as (base, _pid):
        yield {name: f"{base}/{name}.git" for name in repos}


# ---- the admin's pages ------------------------------------------------------------------------


async def watch_import(page: Page) -> list[str]:
    """Watch the import page refresh itself until the import is over; returns every distinct
    status line seen, in order."""
    status = page.locator("#import-status")
    seen: list[str] = []
    deadline = asyncio.get_running_loop().time() + IMPORT_DEADLINE_S
    while asyncio.get_running_loop().time() < deadline:
        try:
            state = await status.get_attribute("data-status", timeout=10_000)
            text = " ".join((await status.inner_text(timeout=10_000)).split())
        except PlaywrightError:
            pass  # the page was reloading itself at that moment
        else:
            if not seen or seen[-1] != text:
                seen.append(text)
            if state != "running":
                return seen
        await page.wait_for_timeout(250)
    raise AssertionError(f"the import page still says running; it showed {seen}")


def step_of(status_line: str) -> str:
    """``Status: running — fetching one snapshot`` -> ``fetching one snapshot``."""
    return status_line.split("—", 1)[1].strip()


async def open_revision_of_import(page: Page) -> str:
    """On an import page: follow it to its end and open its revision; returns the revision id."""
    await page.wait_for_url(re.compile(r"/admin/tasks/imports/imp_\w+$"), timeout=WAIT_MS)
    await watch_import(page)
    await expect(page.locator("#import-status")).to_have_attribute(
        "data-status", "succeeded", timeout=WAIT_MS)
    await page.click("#revision-link")
    await page.wait_for_url(re.compile(r"/admin/tasks/revisions/[\w-]+$"), timeout=WAIT_MS)
    return page.url.rsplit("/", 1)[1]


async def submit_import(page: Page, product: Product, url: str, rules: str = "") -> None:
    """The Tasks page's import form: the source, the rules pasted (when given), submitted."""
    await page.goto(f"{product.app_url}/admin/tasks")
    await page.fill("#url", url)
    if rules:
        await page.fill("#rules", rules)
    await page.click('form[action="/admin/tasks/imports"] button[type=submit]')


async def import_with_rules(page: Page, product: Product, url: str, rules: str) -> str:
    """Import through the form with ``rules`` and open the revision it made; its id."""
    await submit_import(page, product, url, rules)
    return await open_revision_of_import(page)


async def import_through_the_page(page: Page, product: Product, url: str) -> list[str]:
    """Fill the import form, follow the import to its end and open the revision it made."""
    await submit_import(page, product, url)
    await page.wait_for_url(re.compile(r"/admin/tasks/imports/imp_\w+$"), timeout=WAIT_MS)
    seen = await watch_import(page)
    await expect(page.locator("#import-status")).to_have_attribute(
        "data-status", "succeeded", timeout=WAIT_MS)
    await page.click("#revision-link")
    await page.wait_for_url(re.compile(r"/admin/tasks/revisions/[\w-]+$"), timeout=WAIT_MS)
    return seen


async def check_result(page: Page, name: str) -> str:
    """The Result cell of the check named ``name`` (``visible``, ``hidden on solution`` ...)."""
    row = page.locator("#checks tbody tr").filter(
        has=page.locator("td:first-child", has_text=re.compile(rf"^\s*{name}\s*$")))
    await expect(row).to_have_count(1, timeout=WAIT_MS)
    return (await row.locator("td").nth(1).inner_text()).strip()


async def check_output(page: Page, name: str) -> str:
    """Open the check's output (a <details>) as a person would, and read it."""
    row = page.locator("#checks tbody tr").filter(
        has=page.locator("td:first-child", has_text=re.compile(rf"^\s*{name}\s*$")))
    await row.locator("summary").click()
    output = row.locator("pre")
    await expect(output).to_be_visible(timeout=WAIT_MS)
    return await output.inner_text()


async def blockers(page: Page) -> list[str]:
    return [text.strip() for text in await page.locator("#blockers li").all_inner_texts()]


async def click_publish(page: Page) -> None:
    await page.click('form[action$="/publish"] button[type=submit]')
    await page.wait_for_load_state()


async def publish_refusal(page: Page) -> str:
    """Click Publish and return the reason on the refusal page."""
    await click_publish(page)
    refusal = page.locator('p.error[data-code="not_publishable"]')
    await expect(refusal).to_be_visible(timeout=WAIT_MS)
    return await refusal.inner_text()


# ---- 1. import, review, publish, schedule -----------------------------------------------------


async def test_admin_imports_reviews_and_publishes_a_task(product: Product, browser: Browser,
                                                          tmp_path: Path) -> None:
    task_id = unique_id("journey-totals")
    # The title names the company and a maintainer is declared, cited in the brief in the forms
    # people write names and in CITATION.cff: the candidate sees only the stand-ins.
    files = task_files(task_id)
    manifest = files["pairlab-task.toml"].decode().replace(
        f"title = {json.dumps(title_of(task_id))}",
        f"title = {json.dumps(f'{COMPANY} {title_of(task_id)}')}")
    files["pairlab-task.toml"] = (manifest + PEOPLE_TABLE).encode()
    files["BRIEF.md"] += CITED.encode()
    files["CITATION.cff"] = CITATION.encode()
    title = f"{COMPANY_REPLACEMENT} {title_of(task_id)}"
    async with browsing(browser, product, "admin-publish") as people:
        admin = await people.as_user(ADMIN, "admin")
        with served(tmp_path, {task_id: files}) as urls:
            seen = await import_through_the_page(admin, product, urls[task_id])

        # The page showed the import running, then refreshed itself (nobody reloaded it)
        # through its steps, in order, to "done". A small task imports in about two seconds,
        # so one refresh may be all there is to see.
        steps = [step_of(line) for line in seen]
        assert seen[0].startswith("Status: running"), seen
        assert seen[-1].startswith("Status: succeeded"), seen
        assert steps[-1] == "done", seen
        assert all(step in IMPORT_STEPS for step in steps), seen
        order = [IMPORT_STEPS.index(step) for step in steps]
        assert order == sorted(order), f"steps out of order: {seen}"

        # The revision: nothing blocks it, and the checks say what they should.
        await expect(admin.locator("h1")).to_contain_text(title)
        await expect(admin.locator("#no-blockers")).to_be_visible()
        await expect(admin.locator("#blockers")).to_have_count(0)
        assert await check_result(admin, "visible") == "passed"
        assert await check_result(admin, "hidden on solution") == "passed"
        assert await check_result(admin, "hidden on starter") == "failed"
        await expect(admin.locator("#rev-status")).to_have_text("review")
        await document(admin, "revision")

        await click_publish(admin)
        await expect(admin.locator("#rev-status")).to_have_text("published", timeout=WAIT_MS)

        # An interviewer schedules a session on it through the form.
        sessions = await people.as_user(INTERVIEWER, "interviewer")
        link = await schedule_through_the_page(sessions, product, task_id, "Ada Journey")
        assert link.startswith(product.workspace_url), link

        # The candidate's landing page (workspace origin) shows the new task.
        landing = await people.anonymous("candidate")
        await landing.goto(link)
        assert landing.url.startswith(product.workspace_url), landing.url
        await expect(landing.locator("h1")).to_have_text(title, timeout=WAIT_MS)
        brief = landing.locator("#brief")
        await expect(brief).to_contain_text(f"{COMPANY_REPLACEMENT}'s nightly totals look low")
        await expect(brief).to_contain_text("Doe, J. (2021)")
        await expect(brief).to_contain_text("Jane Doe's notes")
        for leak in ("Núñez", "Nunez", "José", COMPANY):
            await expect(brief).not_to_contain_text(leak)
            await expect(landing.locator("h1")).not_to_contain_text(leak)
        await expect(landing.locator("#start")).to_be_visible()
        print("import page showed:", *seen, sep="\n  ")


# ---- 2. environments that cannot be used ------------------------------------------------------


def doctor(product: Product) -> tuple[int, list[str]]:
    """``pairlab doctor`` as the operator runs it: its exit code and its check lines."""
    done = product.cli("doctor", timeout=600)
    marks = ("ok  ", "warn", "FAIL", "skip")
    return done.returncode, [line for line in done.stdout.splitlines() if line.startswith(marks)]


async def test_a_broken_environment_is_refused_with_its_reason(product: Product,
                                                               browser: Browser,
                                                               tmp_path: Path) -> None:
    missing_id = unique_id("journey-missing-env")
    locked_id = unique_id("journey-locked-env")
    locked_requirements = ["iniconfig"]  # installable; no other task of the demo asks for it
    key = environment_key(locked_requirements)
    env_dir = product.data_dir / "envs" / key
    repos = {
        missing_id: task_files(missing_id, requirements=json.dumps([MISSING_PACKAGE])),
        locked_id: task_files(locked_id, requirements=json.dumps(locked_requirements)),
    }
    async with browsing(browser, product, "admin-broken-environment") as people:
        page = await people.as_user(ADMIN, "admin")
        with served(tmp_path, repos) as urls:
            # (a) uv cannot install the requirement: a blocker says so, with uv's reason.
            await import_through_the_page(page, product, urls[missing_id])
            revision_url = page.url
            found = await blockers(page)
            assert len(found) == 1, found
            assert "task environment could not be built" in found[0], found
            assert MISSING_PACKAGE in found[0], found
            assert "was not found in the package registry" in found[0], found
            assert await check_result(page, "visible") == "not run"

            reason = await publish_refusal(page)
            print("refused:", reason)
            assert "cannot be published" in reason, reason
            assert "task environment could not be built" in reason, reason
            assert "was not found in the package registry" in reason, reason
            await page.goto(revision_url)
            await expect(page.locator("#rev-status")).to_have_text("review")

            # (b) an environment that was built, then locked away from other users.
            await import_through_the_page(page, product, urls[locked_id])
            revision_url = page.url
        await expect(page.locator("#no-blockers")).to_be_visible()
        assert (env_dir / "bin" / "python").exists(), f"no environment {env_dir}"
        code, before = doctor(product)
        assert code == 0, before
        assert any(line.startswith(f"ok   environment {key}:") for line in before), before

        subprocess.run(["chmod", "-R", "go-rwx", str(env_dir / "lib")], check=True)

        reason = await publish_refusal(page)
        print("refused:", reason)
        assert "cannot be published" in reason, reason
        assert "cannot run in the sandbox" in reason and key in reason, reason
        await page.goto(revision_url)
        await expect(page.locator("#rev-status")).to_have_text("review")

        code, after = doctor(product)
        assert code == 1, after
        failing = [line for line in after if line.startswith(f"FAIL environment {key}:")]
        assert len(failing) == 1 and "-- fix:" in failing[0], after
        print("doctor before:", *before, "doctor after:", *after, sep="\n  ")


# ---- 3. a hostile import ----------------------------------------------------------------------


HOSTILE_CONFTEST = '''\
"""Imported by pytest before any test runs."""
import os
import socket

import pytest

# Paths are joined from short parts: the anonymiser would redact one long random literal.
HOST_DROP = os.path.join("/", *{host_drop!r})
DATA_DIR = os.path.join("/", *{data_dir!r})
ROOT_DROP = os.path.join("/", *{root_drop!r})
LISTENER_PORT = {listener_port!r}
APP_PORT = {app_port!r}
RESULTS = {{}}


def attempt(name, action):
    try:
        RESULTS[name] = "SUCCEEDED " + repr(action())[:120]
    except BaseException as exc:
        RESULTS[name] = "failed " + type(exc).__name__ + ": " + str(exc)[:80]


def write(path):
    with open(path, "w") as fh:
        fh.write("planted by an imported task")
    return path


def read(path):
    with open(path) as fh:
        return fh.read()


def connect(port):
    with socket.create_connection(("127.0.0.1", port), timeout=3):
        return port


RESULTS["targets"] = [HOST_DROP, DATA_DIR, ROOT_DROP]
attempt("write_host_tmp", lambda: write(HOST_DROP))
attempt("write_data_dir", lambda: write(os.path.join(DATA_DIR, "planted")))
attempt("write_root", lambda: write(ROOT_DROP))
attempt("list_data_dir", lambda: os.listdir(DATA_DIR))
attempt("list_envs", lambda: os.listdir(os.path.join(DATA_DIR, "envs")))
attempt("read_cookie", lambda: read(os.path.join(DATA_DIR, "cookie" + "_secret")))
attempt("connect_listener", lambda: connect(LISTENER_PORT))
attempt("connect_app", lambda: connect(APP_PORT))
attempt("resolve_public_name", lambda: socket.getaddrinfo("pypi.org", 443))
for line in read("/proc/self/status").splitlines():
    if line.startswith(("Uid:", "CapEff:")):
        field, value = line.split(":", 1)
        RESULTS[field] = value.split()


@pytest.fixture
def attempts():
    return RESULTS
'''

HOSTILE_TEST = f'''\
import json

import pytest


def test_report_what_the_import_could_do(attempts):
    pytest.fail("{RESULTS_MARK} " + json.dumps(attempts, sort_keys=True))
'''


def reported_results(output: str) -> dict[str, object]:
    for line in output.splitlines():
        if m := re.search(rf"{RESULTS_MARK} (\{{.*\}})", line):
            try:
                found: dict[str, object] = json.loads(m.group(1))
            except json.JSONDecodeError:
                continue  # a summary line cut short
            return found
    raise AssertionError(f"no {RESULTS_MARK} line in the check output:\n{output}")


async def test_a_hostile_import_gets_nothing(product: Product, browser: Browser,
                                             tmp_path: Path) -> None:
    task_id = unique_id("journey-hostile")
    mark = secrets.token_hex(8)
    host_tmp = Path(f"/tmp/pairlab-journey-{mark}")
    host_drop = host_tmp / "planted"
    root_drop = Path(f"/root/pairlab-journey-{mark}")
    data_drop = product.data_dir / "planted"
    app_port = urlsplit(product.app_url).port
    assert app_port is not None
    cookie = (product.data_dir / "cookie_secret").read_text().strip()
    assert len(cookie) >= 32

    # A folder on the host that anyone may write to: only the sandbox stands in the way.
    host_tmp.mkdir(mode=0o777)
    host_tmp.chmod(0o777)
    try:
        async with browsing(browser, product, "admin-hostile-import") as people:
            page = await people.as_user(ADMIN, "admin")
            await attack(page, product, tmp_path, task_id, host_drop, data_drop, root_drop,
                         app_port, cookie)
    finally:
        for path in (host_drop, root_drop):
            path.unlink(missing_ok=True)
        host_tmp.rmdir()


async def attack(page: Page, product: Product, tmp_path: Path, task_id: str, host_drop: Path,
                 data_drop: Path, root_drop: Path, app_port: int, cookie: str) -> None:
    """Import the hostile repository and read what happened, on the host and on the page."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        listener.setblocking(False)
        conftest = HOSTILE_CONFTEST.format(
            host_drop=host_drop.parts[1:], data_dir=product.data_dir.parts[1:],
            root_drop=root_drop.parts[1:], listener_port=listener.getsockname()[1],
            app_port=app_port)
        files = task_files(task_id, extra={"tests/conftest.py": conftest.encode(),
                                           "tests/test_hostile.py": HOSTILE_TEST.encode()})
        with served(tmp_path, {task_id: files}) as urls:
            await import_through_the_page(page, product, urls[task_id])

        # On the host: nothing written, no connection, no secret on the page.
        assert not host_drop.exists()
        assert not root_drop.exists()
        assert not data_drop.exists()
        with pytest.raises(BlockingIOError):
            accepted, peer = listener.accept()
            accepted.close()
            raise AssertionError(f"the listener was connected to from {peer}")
        assert cookie not in await page.content()

        # The revision is blocked by its failing visible tests.
        found = await blockers(page)
        assert "the visible tests fail on the anonymised tree" in found, found
        assert await check_result(page, "visible") == "failed"
        output = await check_output(page, "visible")
        assert cookie not in output

        # What the code saw from inside: every attempt failed, not root, no capabilities.
        # The one thing it can list under the data dir's path is the skeleton bubblewrap
        # makes for the task's own environment, mounted read-only at its host path (a
        # virtual environment only works where it was built): "envs" and that one key.
        results = reported_results(output)
        print("the hostile code reported:", json.dumps(results, indent=1, sort_keys=True))
        assert results["targets"] == [str(host_drop), str(product.data_dir),
                                      str(root_drop)], results
        attempts = {k: v for k, v in results.items()
                    if k not in ("targets", "Uid", "CapEff")}
        assert set(attempts) == {"write_host_tmp", "write_data_dir", "write_root",
                                 "list_data_dir", "list_envs", "read_cookie",
                                 "connect_listener", "connect_app",
                                 "resolve_public_name"}, results
        listings = {"list_data_dir": "SUCCEEDED ['envs']",
                    "list_envs": f"SUCCEEDED [{environment_key([])!r}]"}
        for name, only_the_environment in listings.items():
            if attempts[name] == only_the_environment:
                del attempts[name]
        succeeded = {k: v for k, v in attempts.items() if not str(v).startswith("failed ")}
        assert succeeded == {}, results
        uids = results["Uid"]
        assert isinstance(uids, list) and len(uids) == 4, results
        assert "0" not in uids, results
        cap_eff = results["CapEff"]
        assert isinstance(cap_eff, list) and int(cap_eff[0], 16) == 0, results
