"""Failures are events: what the workspace refused, and a check run that had no verdict, reach
the timeline with their reason (never "nothing happened", never "0 of 0")."""

from __future__ import annotations

import gzip
from pathlib import Path

from tests.server.recording.conftest import RecFactory, assert_gap_free, kinds
from tests.server.recording.fake_jupyter import (
    KERNEL_REFUSAL,
    TERMINAL_REFUSAL,
    UNRUNNABLE,
    error_body,
)
from workspaces.grading.hidden import summarise
from workspaces.recording import events as E
from workspaces.sandbox.run import TIME_LIMIT


async def test_a_refused_kernel_and_terminal_are_events_with_the_workspaces_reason(
        make_rec: RecFactory) -> None:
    rec = await make_rec()
    sid, _ = await rec.start()
    response = await rec.ws.post(rec.url(sid, "api/sessions"), json={
        "path": "explore.ipynb", "type": "notebook", "kernel": {"name": UNRUNNABLE}},
        headers={"Origin": rec.origin(sid)})
    assert response.status == 500
    body = await response.json()  # the candidate's JupyterLab still gets the error itself
    assert body["message"] == KERNEL_REFUSAL
    response = await rec.ws.post(rec.url(sid, "api/terminals"), json={"name": UNRUNNABLE},
                                 headers={"Origin": rec.origin(sid)})
    assert response.status == 500
    await rec.call(sid, "POST", "api/kernels", {"name": "python3"})  # a good one: no failure

    # the good kernel's start can be recorded after the terminal's refusal: wait for both
    found = await rec.wait_for(sid, lambda f: bool(kinds(f, E.TERMINAL_FAILED))
                               and bool(kinds(f, E.KERNEL_STARTED)))
    assert_gap_free(found)
    (kernel,) = kinds(found, E.KERNEL_FAILED)
    assert kernel["actor"] == "candidate"
    assert kernel["payload"]["reason"] == KERNEL_REFUSAL
    assert kernel["payload"]["status"] == 500
    assert kernel["payload"]["request"] == "POST /api/sessions"
    (terminal,) = kinds(found, E.TERMINAL_FAILED)
    assert terminal["payload"]["reason"] == TERMINAL_REFUSAL
    assert len(kinds(found, E.KERNEL_STARTED)) == 1


async def test_a_session_whose_environment_cannot_be_built_is_a_workspace_failed_event(
        make_rec: RecFactory, tmp_path: Path) -> None:
    # An environments folder that cannot be created (a file is in the way): as an operator's
    # read-only or full disk would break it.
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    rec = await make_rec(environments_dir=str(blocker / "envs"))
    created = await rec.schedule()
    sid = created["session_id"]
    path = "/" + created["candidate_link"].split("/", 3)[3]
    assert (await rec.ws.get(path, allow_redirects=False)).status == 303
    response = await rec.press_start(sid)
    assert response.status >= 400
    found = await rec.wait_for(sid, lambda f: bool(kinds(f, E.WORKSPACE_FAILED)))
    (failed,) = kinds(found, E.WORKSPACE_FAILED)
    assert failed["payload"]["reason"] == (
        f"the task environment could not be built: the environments folder {blocker / 'envs'} "
        "cannot be used: Not a directory")


def test_a_run_without_a_verdict_says_why() -> None:
    usage = summarise(None, 4, None, "ERROR: usage: python -m pytest\nno such option: --x\n",
                      120, "python -m pytest -q hidden_checks")
    assert usage["status"] == "error"
    assert usage["reason"] == ("pytest could not start (a usage or configuration error): "
                               "no such option: --x")
    timed_out = summarise(None, None, TIME_LIMIT, "....", 300_000, "python -m pytest -q tests")
    assert timed_out["reason"] == "the run was stopped at its time limit (300 s)"
    nothing = summarise([], 5, None, "no tests ran in 0.01s\n", 10, "python -m pytest -q t")
    assert nothing["reason"] == "no tests were collected: no tests ran in 0.01s"
    passed = summarise([{"name": "t::a", "status": "passed"}], 0, None, "1 passed", 10, "c")
    assert "reason" not in passed


def test_a_run_that_left_no_results_has_no_verdict() -> None:
    broken = summarise(None, 1, None, "/envs/x/bin/python: No module named pytest\n", 40,
                       "python -m pytest -q hidden_checks")
    assert (broken["status"], broken["total"]) == ("error", 0)
    assert broken["reason"] == ("the run ended with exit code 1 and left no per-check results: "
                                "/envs/x/bin/python: No module named pytest")
    forged = summarise(None, 0, None, "", 40, "python -m pytest -q hidden_checks")
    assert forged["status"] == "error"  # exit 0 but nothing to show for it: not "passed"


async def test_the_same_failure_again_is_one_event_and_a_404_is_none(make_rec: RecFactory) -> None:
    rec = await make_rec()
    sid, _ = await rec.start()
    for _ in range(5):  # a page retrying, or a loop in the candidate's terminal
        response = await rec.ws.post(rec.url(sid, "api/kernels"), json={"name": UNRUNNABLE},
                                     headers={"Origin": rec.origin(sid)})
        assert response.status == 500
    for _ in range(3):  # restarting kernels that do not exist
        response = await rec.ws.post(rec.url(sid, "api/kernels/0000-nope/restart"),
                                     headers={"Origin": rec.origin(sid)})
        assert response.status == 404
    await rec.ws.post(rec.url(sid, "api/terminals"), json={"name": UNRUNNABLE},
                      headers={"Origin": rec.origin(sid)})
    found = await rec.wait_for(sid, lambda f: bool(kinds(f, E.TERMINAL_FAILED)))
    assert len(kinds(found, E.KERNEL_FAILED)) == 1
    assert not rec.service.taps._sessions[sid].kernels  # nothing kept for made-up kernel ids


async def test_error_answers_reach_the_browser_whole(make_rec: RecFactory) -> None:
    """The proxy reads an error answer (for the timeline's reason) only when it is small and
    plain; a large or compressed one streams through untouched, and HEAD keeps its length."""
    rec = await make_rec()
    sid, _ = await rec.start()
    for size in (100, 64 * 1024, 64 * 1024 + 1, 300 * 1024):
        response = await rec.ws.get(rec.url(sid, f"api/pairlab-fake/error?size={size}"),
                                    headers={"Origin": rec.origin(sid)})
        assert response.status == 500
        assert await response.read() == error_body(size)
    packed = await rec.ws.get(rec.url(sid, "api/pairlab-fake/error?size=5000&gzip=1"),
                              headers={"Origin": rec.origin(sid), "Accept-Encoding": "gzip"},
                              auto_decompress=False)
    assert packed.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(await packed.read()) == error_body(5000)
    head = await rec.ws.head(rec.url(sid, "api/pairlab-fake/error?size=777"),
                             headers={"Origin": rec.origin(sid)})
    assert head.status == 500
    assert head.headers.get("Content-Length") == "777"
