"""The texts people see besides the tree: the manifest's title, the brief and the guide go through
the same anonymiser rewrite and post-scan as the tree; the task commit carries nothing of the id
or title. Whole imports over real git repositories (checks in the sandbox), then the candidate's
landing page rendered by the real app (tests/harness.py, fake provisioner)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import git
import pytest
import sqlite_utils
from pytest_aiohttp import AiohttpClient

from server.settings import Settings
from server.tasks.service import import_config, task_store
from tasks import revisions
from tasks.errors import ManifestInvalid, NotPublishable
from tasks.importer import ImportRequest, Prepared, install_revision, prepare_import
from tasks.treerepo import STARTING_POINT
from tests.conftest import MakeSettings, create_user, open_db
from tests.fake_workspace import FakeProvisioner
from tests.harness import LEAD, Env, start_env
from tests.task_repos import COMPANY, COMPANY_REPLACEMENT, TASK_ID, make_repo, tiny_task

# slow: whole imports over real git, checks in the sandbox
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

MAINTAINER = "Maya Okafor"
MAINTAINER_REPLACEMENT = "Pat Example"
TITLE_LABEL = "pairlab-task.toml:task.title"
# Every form of the company and the maintainer that must not reach a candidate.
LEAKS = re.compile(r"zephyrine|maya|okafor", re.IGNORECASE)


def named_task(title: str, task_id: str = TASK_ID) -> dict[str, bytes]:
    """The tiny task with a title, brief and guide that name the company and a maintainer (both
    deny-listed)."""
    files = tiny_task(task_id)
    manifest = files["pairlab-task.toml"].decode()
    manifest = manifest.replace('title = "Nightly totals are too low"', f'title = "{title}"')
    manifest += f'"{MAINTAINER}" = "{MAINTAINER_REPLACEMENT}"\n'
    files["pairlab-task.toml"] = manifest.encode()
    files["BRIEF.md"] = (f"# {COMPANY} totals\n\n{MAINTAINER} says {COMPANY.upper()}'s nightly "
                         "totals look low. Find out why.\n").encode()
    files["GUIDE.md"] = (f"# Interviewer guide\n\n{MAINTAINER} wrote the {COMPANY} loader.\n\n"
                         f"## Hint ladder\n\n1. Look at the loop bounds in {COMPANY.lower()}"
                         f"_totals.\n2. Ask what {MAINTAINER} would count.\n").encode()
    return files


@pytest.fixture
def settings(make_settings: MakeSettings, envs_dir: Path) -> Settings:
    return make_settings(environments_dir=str(envs_dir), warm_pool_size=0,
                         continuous_checks=False, check_timeout_seconds=120.0)


@pytest.fixture
def db(settings: Settings) -> Iterator[sqlite_utils.Database]:
    database = open_db(settings)
    yield database
    database.conn.close()


def prepare(settings: Settings, repo: Path) -> Prepared:
    cfg = import_config(settings, allow_local=True)
    return prepare_import(ImportRequest(str(repo)), cfg, lambda step: None)


def install(db: sqlite_utils.Database, settings: Settings, prepared: Prepared) -> Any:
    with db.atomic():
        return install_revision(db, task_store(settings), prepared)


async def test_title_brief_and_guide_show_only_the_replacements_up_to_the_landing_page(
    settings: Settings, db: sqlite_utils.Database, tmp_path: Path,
    aiohttp_client: AiohttpClient,
) -> None:
    title = f"{COMPANY} totals are too low ({MAINTAINER}'s loader)"
    prepared = prepare(settings, make_repo(tmp_path / "src", named_task(title)))
    assert prepared.summary["blockers"] == [], prepared.summary
    rev = install(db, settings, prepared)
    with db.atomic():
        rev = revisions.publish(db, rev.id)
    expected = f"{COMPANY_REPLACEMENT} totals are too low ({MAINTAINER_REPLACEMENT}'s loader)"
    assert rev.title == expected

    store = task_store(settings)
    brief, guide = store.text(TASK_ID, rev.id, "brief.md"), store.text(TASK_ID, rev.id, "guide.md")
    assert brief == (f"# {COMPANY_REPLACEMENT} totals\n\n{MAINTAINER_REPLACEMENT} says "
                     f"{COMPANY_REPLACEMENT.upper()}'s nightly totals look low. Find out why.\n")
    assert f"{MAINTAINER_REPLACEMENT} wrote the {COMPANY_REPLACEMENT} loader." in guide
    report = store.report(TASK_ID, rev.id)
    assert report["task"]["title"] == expected
    assert report["hints"] == [
        f"Look at the loop bounds in {COMPANY_REPLACEMENT.lower()}_totals.",
        f"Ask what {MAINTAINER_REPLACEMENT} would count.",
    ]
    # the admin sees what was changed in the title, under its pseudo-path
    in_title = [(r["rule"], r["before"], r["after"]) for r in
                report["anonymisation"]["replacements"] if r["file"] == TITLE_LABEL]
    assert in_title == [("term", COMPANY, COMPANY_REPLACEMENT),
                        ("term", MAINTAINER, MAINTAINER_REPLACEMENT)]
    for text in (rev.title, brief, guide, *report["hints"]):
        assert not LEAKS.search(text), text
    # the workspace's git history: one commit whose message holds nothing of the task
    with git.Repo(store.tree(TASK_ID, rev.id)) as repo:
        commits = list(repo.iter_commits())
    assert [c.message.strip() for c in commits] == [STARTING_POINT]

    create_user(settings, LEAD, "interviewer")
    env = await start_env(aiohttp_client, settings, FakeProvisioner(tmp_path / "fake"), Env)
    created = await env.schedule(task=TASK_ID)
    landing = await env.open_link(created["candidate_link"])
    page = await env.ws.get(landing)
    assert page.status == 200
    html = await page.text()
    shown = expected.replace("'", "&#39;")
    assert f"<h1>{shown}</h1>" in html and f"<title>{shown} · interview</title>" in html
    assert f"{MAINTAINER_REPLACEMENT} says" in html
    assert not LEAKS.search(html), LEAKS.findall(html)
    api = await env.ws.get(f"/api/v1/sessions/{created['session_id']}")
    assert api.status == 200 and not LEAKS.search(await api.text())


async def test_a_title_form_the_rules_miss_but_the_post_scan_finds_blocks_publishing(
    settings: Settings, db: sqlite_utils.Database, tmp_path: Path,
) -> None:
    # "Zephy-rine" splits the one-word term: the rewrite (words with separators between them)
    # leaves it, the post-scan (separators ignored between any letters) finds it.
    prepared = prepare(settings, make_repo(tmp_path / "src", named_task("Zephy-rine totals")))
    assert prepared.summary["post_scan_findings"] == 1
    assert prepared.summary["blockers"] == ["the post-scan found 1 leftover item(s)"]
    rev = install(db, settings, prepared)
    assert rev.title == "Zephy-rine totals"  # in review only, for the admin to see
    report = task_store(settings).report(TASK_ID, rev.id)
    assert report["post_scan"]["findings"] == [
        {"path": TITLE_LABEL, "line": 1, "kind": "deny-term", "excerpt": "Zephy-rine"}]
    with pytest.raises(NotPublishable), db.atomic():
        revisions.publish(db, rev.id)
    assert revisions.get_revision(db, rev.id).status == "review"


def test_an_id_with_a_deny_listed_term_is_refused_before_anything_is_stored(
    settings: Settings, tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path / "src", named_task("Totals", task_id="maya-okafor-totals"))
    with pytest.raises(ManifestInvalid) as caught:
        prepare(settings, repo)
    assert caught.value.status == 422
    assert caught.value.message == (
        "the task manifest is invalid: pairlab-task.toml: task.id: 'maya-okafor-totals' contains "
        f"the deny-listed term '{MAINTAINER}'; an id is a stable key and is never rewritten: "
        "choose an id without it")
    assert not (settings.data_dir / "tasks" / "maya-okafor-totals").exists()
