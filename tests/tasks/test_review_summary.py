"""The review page's summary counts what each section of a revision's report holds."""

from __future__ import annotations

from typing import Any

from tasks.review_summary import check_result, summarise

REPORT: dict[str, Any] = {
    "anonymisation": {
        "flags": [{"path": "data/a.bin", "reason": "binary"}],
        "kept": [{"text": "Delta method", "stops_rewrite": True, "rule": "keep", "count": 1},
                 {"text": "boto3", "stops_rewrite": False, "rule": "api", "count": 3}],
        "replacements": [{"rule": "Delta", "file": "README.md", "line": 1},
                         {"rule": "Delta", "file": "README.md", "line": 4},
                         {"rule": "Delta", "file": "docs/method.md", "line": 2}],
    },
    "post_scan": {"clean": False, "findings": [{}, {}, {}]},
    "possible_identifiers": {"hints": [{"id": "h1"}, {"id": "h2"}], "left_off": 5},
    "checks": {"visible": {"passed": True}, "hidden_on_solution": {"passed": False,
                                                                   "timed_out": True},
               "hidden_on_starter": {"passed": False, "timed_out": False}, "lint": None},
}
DIFF = [{"path": "README.md", "status": "changed"},
        {"path": "src/a.py", "status": "same"},
        {"path": "old/", "new_path": "new/", "status": "renamed and changed"},
        {"path": "x.txt", "new_path": "y.txt", "status": "renamed"},
        {"path": "secret.env", "status": "dropped"},
        {"path": "ghost", "status": "left out"},
        {"path": "logo.png", "status": "changed (binary)"}]


def test_counts_each_section() -> None:
    s = summarise(REPORT, DIFF, ["f1", "f2", "f3"], {"f2"}, ["post-scan found 3"], None)
    assert not s.publishable and s.blocking == ("post-scan found 3",)
    assert (s.findings_accepted, s.findings_left, s.postscan_clean) == (1, 2, False)
    assert (s.flagged, s.flags_acknowledged_by) == (1, None)
    assert s.identifiers == 7  # two shown, five left off the page
    assert (s.kept, s.kept_stopping_rewrite) == (2, 1)
    assert (s.replacements, s.replaced_files) == (3, 2)
    assert (s.files, s.files_changed, s.files_renamed, s.files_dropped) == (7, 3, 2, 2)
    assert [(c.name, c.result) for c in s.checks] == [
        ("visible", "passed"), ("hidden_on_solution", "timed out"),
        ("hidden_on_starter", "failed"), ("lint", "not run")]


def test_a_clean_revision_is_publishable_and_says_what_was_not_looked_for() -> None:
    report = {"post_scan": {"clean": True, "findings": []}}
    s = summarise(report, [], [], {}, [], "admin@example.com")
    assert s.publishable and s.postscan_clean
    assert s.identifiers is None  # an import from before identifiers were looked for
    assert (s.flagged, s.kept, s.replacements, s.files, s.checks) == (0, 0, 0, 0, ())
    assert check_result(None) == "not run"
