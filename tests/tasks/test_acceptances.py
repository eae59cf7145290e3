"""Accepting post-scan findings in the real SQLite schema: acceptances are per revision and
append-only, a revision publishes only when every finding of its report is accepted, and flags
acknowledged never stand in for them."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
import sqlite_utils

from server.settings import Settings
from tasks import acceptances, revisions
from tasks.errors import AcceptanceRefused, FindingNotFound, InvalidAcceptance, NotPublishable
from tests.conftest import open_db

FINDINGS = [
    {"path": "data/bundle.zip › inner/notes.txt", "line": 1, "kind": "deny-term",
     "excerpt": "Zephyrine"},
    {"path": "data/bundle.zip › inner/more.txt", "line": 3, "kind": "person",
     "excerpt": "José Núñez"},
    {"path": "docs/chart.png › PNG zTXt Comment", "line": 1, "kind": "deny-term",
     "excerpt": "Zephyrine"},
]


@pytest.fixture
def db(settings: Settings) -> Iterator[sqlite_utils.Database]:
    database = open_db(settings)
    yield database
    database.conn.close()


def new_revision(db: sqlite_utils.Database) -> revisions.Revision:
    with db.atomic():
        return revisions.insert_revision(db, revisions.NewRevision(
            task_id="enc-task", title="t", kind="pipeline-bug", roles=("ml-engineer",),
            duration_minutes=30, requirements=(), visible_check="python -m pytest -q tests",
            source_url="https://git.example.com/t.git", source_ref="", source_subdir="",
            source_commit="0" * 40, tree_commit="1" * 40,
            blockers=("postscan:the post-scan found 3 leftover item(s)",
                      "flag:2 flagged file(s) need an admin's acknowledgement"),
            created_by="admin@example.com",
        ))


def accept(db: sqlite_utils.Database, rev: revisions.Revision, reason: str = "synthetic data",
           **which: str) -> list[acceptances.Acceptance]:
    with db.atomic():
        status = revisions.get_revision(db, rev.id).status
        return acceptances.accept(db, rev.id, status, FINDINGS, reason, "admin@example.com",
                                  **which)


def test_a_revision_publishes_once_every_finding_is_accepted(db: sqlite_utils.Database) -> None:
    rev = new_revision(db)
    with db.atomic():
        revisions.acknowledge_flags(db, rev.id, "admin@example.com")
    with pytest.raises(NotPublishable, match="3 of them not accepted"):
        revisions.publish(db, rev.id, FINDINGS)
    with pytest.raises(NotPublishable, match="post-scan found 3"):
        revisions.publish(db, rev.id)  # without the report's findings nothing is cleared
    done = accept(db, rev, path="data/bundle.zip")
    assert {a.path for a in done} == {f["path"] for f in FINDINGS[:2]}
    with pytest.raises(NotPublishable, match="1 of them not accepted"):
        revisions.publish(db, rev.id, FINDINGS)
    accept(db, rev, finding=acceptances.finding_id(FINDINGS[2]))
    with db.atomic():
        assert revisions.publish(db, rev.id, FINDINGS).status == "published"
    with pytest.raises(AcceptanceRefused, match="already published"):
        accept(db, rev, finding=acceptances.finding_id(FINDINGS[0]))


def test_acceptances_do_not_carry_over_to_another_revision(db: sqlite_utils.Database) -> None:
    first, second = new_revision(db), new_revision(db)
    for f in FINDINGS:
        accept(db, first, finding=acceptances.finding_id(f))
    with db.atomic():
        revisions.acknowledge_flags(db, second.id, "admin@example.com")
    with pytest.raises(NotPublishable, match="3 of them not accepted"):
        revisions.publish(db, second.id, FINDINGS)


def test_flags_acknowledged_do_not_clear_the_post_scan(db: sqlite_utils.Database) -> None:
    rev = new_revision(db)
    with db.atomic():
        revisions.acknowledge_flags(db, rev.id, "admin@example.com")
    with pytest.raises(NotPublishable, match="post-scan"):
        revisions.publish(db, rev.id, FINDINGS)
    for f in FINDINGS:
        accept(db, rev, finding=acceptances.finding_id(f))
    fresh = new_revision(db)  # all accepted, flags not acknowledged: still blocked
    for f in FINDINGS:
        accept(db, fresh, finding=acceptances.finding_id(f))
    with pytest.raises(NotPublishable, match="acknowledgement"):
        revisions.publish(db, fresh.id, FINDINGS)


@pytest.mark.parametrize(("which", "reason", "error", "words"), [
    ({"finding": "x"}, "", InvalidAcceptance, "the reason is empty"),
    ({"finding": "x"}, " \n\t ", InvalidAcceptance, "the reason is empty"),
    ({"finding": "x"}, "y" * 2001, InvalidAcceptance, "keep it to 2000"),
    ({}, "fine", InvalidAcceptance, "not both"),
    ({"finding": "0" * 16}, "fine", FindingNotFound, "no post-scan finding"),
    ({"path": "docs/other.txt"}, "fine", FindingNotFound, "no post-scan finding in"),
    ({"path": "data/bundle"}, "fine", FindingNotFound, "no post-scan finding in"),
], ids=["empty", "blank", "too-long", "nothing-named", "unknown-id", "unknown-file",
        "a-prefix-is-not-a-file"])
def test_bad_acceptances_are_refused_with_a_sentence(
    db: sqlite_utils.Database, which: dict[str, str], reason: str, error: type[Exception],
    words: str,
) -> None:
    rev = new_revision(db)
    with pytest.raises(error, match=words):
        accept(db, rev, reason, **which)
    assert acceptances.list_acceptances(db, rev.id) == {}


def test_acceptances_are_append_only(db: sqlite_utils.Database) -> None:
    rev = new_revision(db)
    accept(db, rev, finding=acceptances.finding_id(FINDINGS[0]))
    for sql in ("UPDATE task_finding_acceptances SET reason = 'other'",
                "DELETE FROM task_finding_acceptances",
                "INSERT INTO task_finding_acceptances VALUES"
                " (?, 'f', 'p', 1, 'k', 'e', '   ', 'a', 'now')"):
        with pytest.raises(sqlite3.IntegrityError):
            db.execute(sql, [rev.id] if "?" in sql else [])
    (only,) = acceptances.list_acceptances(db, rev.id).values()
    assert only.reason == "synthetic data"


def test_accepting_a_file_does_not_cover_a_real_file_named_like_its_part(
    db: sqlite_utils.Database,
) -> None:
    """The attack: a real file ``data/bundle.zip › x.txt`` naming the company, hoping to ride
    on the acceptance of ``data/bundle.zip``."""
    rev = new_revision(db)
    fake = "data/bundle.zip › x.txt"
    findings = [*FINDINGS,
                {"path": fake, "line": None, "kind": "confusing-name", "excerpt": "a name"},
                {"path": fake, "line": 1, "kind": "deny-term", "excerpt": "Zephyrine"}]
    with db.atomic():
        done = acceptances.accept(db, rev.id, "review", findings, "the archive is ours",
                                  "admin@example.com", path="data/bundle.zip")
    assert sorted(a.path for a in done) == [f["path"] for f in FINDINGS[:2]][::-1]
    left = acceptances.unaccepted(db, rev.id, findings)
    assert sorted((f["path"], f["kind"]) for f in left) == [
        ("data/bundle.zip › x.txt", "confusing-name"), ("data/bundle.zip › x.txt", "deny-term"),
        ("docs/chart.png › PNG zTXt Comment", "deny-term")]
    assert acceptances.file_of(fake, {fake}) == fake
    assert acceptances.file_of("data/bundle.zip › inner/notes.txt", {fake}) == "data/bundle.zip"


def test_a_row_standing_for_unlisted_findings_is_accepted_only_with_its_whole_file(
    db: sqlite_utils.Database,
) -> None:
    rev = new_revision(db)
    summary = {"path": "data/big.csv", "line": None, "kind": "deny-term",
               "excerpt": "… and 250 more"}
    findings = [*FINDINGS, summary]
    with pytest.raises(InvalidAcceptance, match="not listed one by one"), db.atomic():
        acceptances.accept(db, rev.id, "review", findings, "looked", "admin@example.com",
                           finding=acceptances.finding_id(summary))
    with db.atomic():
        done = acceptances.accept(db, rev.id, "review", findings, "all 350 are the vendor's",
                                  "admin@example.com", path="data/big.csv")
    assert [a.path for a in done] == ["data/big.csv"]
