"""The interview, as its two people live it, on the demo that README command 1 starts.

The candidate opens the link the demo printed, starts, lands in JupyterLab, runs the
notebook's cells and sees their output, edits the pipeline's code, opens a terminal and runs
the brief's own test command. Meanwhile the interviewer, in a browser of their own, watches
all of it arrive on the observe page, joins the workspace and edits a file there, notes a
moment, scores the rubric, ends the session and reads the hidden checks' real result in the
debrief: still failed, though the candidate planted a conftest that turns every failure into a
pass (and saw it work on a test of their own).
"""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Browser, Page, expect

from tests.journeys.conftest import (
    WAIT_MS,
    Product,
    browsing,
    db_rows,
    document,
    end_session,
    hidden_checks_on_the_debrief,
    submit_scorecard,
    timeline_has,
)

pytestmark = [pytest.mark.journey, pytest.mark.integration, pytest.mark.browser,
              pytest.mark.timeout(1500)]

INTERVIEWER = "interviewer@example.com"
CANDIDATE_EDIT = "# candidate: revenue is summed twice for refunds?"
INTERVIEWER_EDIT = "Interviewer was here."
NOTE = "Checked the revenue against billing before changing code"
PYTEST_SUMMARY = re.compile(r"\d+ passed")
# The candidate's forgery: a root conftest whose hookwrapper turns every failure into a pass, the
# same hookwrapper as a plugin their pytest.ini loads (addopts = -p), and a failing test of their
# own to see it work (the marker is computed, so the typed command
# itself never shows it).
FORGE = ("printf 'import pytest\\n@pytest.hookimpl(hookwrapper=True)\\n"
         "def pytest_runtest_makereport(item, call):\\n    outcome = yield\\n"
         "    report = outcome.get_result()\\n    report.outcome = \"passed\"\\n"
         "    report.longrepr = None\\n' > conftest.py && "
         "cp conftest.py forge_plugin.py && "
         "printf '[pytest]\\naddopts = -p forge_plugin\\n' > pytest.ini && "
         "printf 'def test_forged():\\n    assert False\\n' > test_forged.py && "
         "python -m pytest -q test_forged.py && echo FORGED-$((40+2))")


async def open_lab_path(page: Page, lab: str, path: str) -> None:
    await page.goto(f"{lab}/tree/{path}")
    await expect(page.locator(".jp-MainAreaWidget:visible").first).to_be_visible(
        timeout=WAIT_MS)


async def run_first_cells(page: Page, lab: str) -> None:
    """Open the demo task's notebook and run its first two code cells, until the second one's
    output ("features revenue") shows."""
    await open_lab_path(page, lab, "explore.ipynb")
    await expect(page.get_by_text("Python 3 (task) | Idle")).to_be_visible(timeout=WAIT_MS)
    await page.locator(".jp-Notebook .jp-CodeCell").first.locator(".jp-InputArea-editor").click()
    await page.keyboard.press("Shift+Enter")
    await page.keyboard.press("Shift+Enter")
    output = page.locator(".jp-OutputArea-output", has_text="features revenue")
    await expect(output.first).to_be_visible(timeout=WAIT_MS)


async def type_at_end(page: Page, text: str) -> None:
    """Type a line at the end of the open editor, then save it as a person would."""
    editor = page.locator(".jp-MainAreaWidget:visible .cm-content").first
    await expect(editor).to_be_visible(timeout=WAIT_MS)
    await editor.click()
    await page.keyboard.press("Control+End")
    await page.keyboard.press("Enter")
    await page.keyboard.type(text)
    await page.keyboard.press("Control+s")


def own_origin(product: Product, workspace: str) -> str:
    """A workspace's own origin: ``w-<id>.`` before the shared workspace origin's host."""
    scheme, rest = product.workspace_url.split("://", 1)
    return f"{scheme}://w-{workspace}.{rest}"


async def open_terminal(page: Page) -> None:
    await page.click("text=File")
    await page.click("ul.lm-Menu-content >> text=New")
    await page.click("ul.lm-Menu-content >> text=Terminal")
    await expect(page.locator(".jp-Terminal:visible").first).to_be_visible(timeout=WAIT_MS)


async def test_the_interview_as_candidate_and_interviewer(product: Product,
                                                          browser: Browser) -> None:
    assert product.candidate_link.startswith(product.workspace_url)
    session_url = product.interviewer_page
    async with browsing(browser, product, "interview") as people:
        # The interviewer opens the observe page before the candidate arrives.
        observe = await people.as_user(INTERVIEWER, "observe")
        await observe.goto(f"{session_url}/observe")
        await expect(observe.locator("#pl-stream")).to_have_text("live", timeout=WAIT_MS)

        # The candidate: link -> landing -> Start -> JupyterLab.
        lab_page = await people.anonymous("candidate")
        await lab_page.goto(product.candidate_link)
        assert "/c/" not in lab_page.url
        await expect(lab_page.locator("#start")).to_be_visible()
        await document(lab_page, "candidate-landing")
        await lab_page.click("#start")
        await lab_page.wait_for_url("**/lab**", timeout=WAIT_MS, wait_until="commit")
        await expect(lab_page.locator("#jp-main-dock-panel")).to_be_visible(timeout=WAIT_MS)
        lab = lab_page.url.split("/lab", 1)[0] + "/lab"
        workspace = lab.split("/")[-2]  # on its own host, not the shared workspace origin
        assert lab == f"{own_origin(product, workspace)}/w/{workspace}/lab"

        # Runs the notebook's first two code cells and sees their output.
        await run_first_cells(lab_page, lab)

        # Edits the pipeline's code.
        await open_lab_path(lab_page, lab, "acme_features/transform.py")
        await type_at_end(lab_page, CANDIDATE_EDIT)

        # Runs the brief's test command in a terminal and sees pytest's verdict.
        await open_terminal(lab_page)
        terminal = lab_page.locator(".jp-Terminal:visible").first
        await terminal.click()
        await lab_page.keyboard.type("python -m pytest -q tests\n")
        await expect(terminal).to_contain_text(PYTEST_SUMMARY, timeout=WAIT_MS)
        assert "command not found" not in (await terminal.inner_text())

        # Plants the conftest forgery and sees it turn a failing test green in their terminal.
        await lab_page.keyboard.type(FORGE + "\n")
        await expect(terminal).to_contain_text("FORGED-42", timeout=WAIT_MS)
        await document(lab_page, "candidate-jupyterlab")

        # The interviewer saw all three on the observe page.
        await expect(observe.locator("#pl-cells")).to_contain_text("features revenue",
                                                                  timeout=WAIT_MS)
        await timeline_has(observe, "file.changed", "acme_features/transform.py")
        await timeline_has(observe, "terminal.command", "python -m pytest -q tests")
        await expect(observe.locator("#pl-tests")).to_contain_text("passed", timeout=WAIT_MS)
        await document(observe, "observe")

        # Joins the workspace (a new tab) and edits a file there.
        async with observe.context.expect_page() as opened:
            await observe.click("#pl-join")
        pairing = people.keep("pairing", await opened.value)
        await pairing.wait_for_url("**/lab**", timeout=WAIT_MS, wait_until="commit")
        await expect(pairing.locator("#jp-main-dock-panel")).to_be_visible(timeout=WAIT_MS)
        pair_lab = pairing.url.split("/lab", 1)[0] + "/lab"
        assert pair_lab == lab  # Join lands in the same workspace, on its own host
        await open_lab_path(pairing, pair_lab, "README.md")
        await type_at_end(pairing, INTERVIEWER_EDIT)
        await timeline_has(observe, "file.changed", "README.md")
        # A new file made in JupyterLab (File > New: a contents-API POST) is theirs too, even
        # if the watcher sees it before the answer is back through the proxy.
        await pairing.click("text=File")
        await pairing.click("ul.lm-Menu-content >> text=New")
        await pairing.click("ul.lm-Menu-content >> text=Python File")
        await timeline_has(observe, "file.created", "untitled.py")
        made = db_rows(product, "SELECT actor, json_extract(payload, '$.via') AS via FROM events"
                       " WHERE session_id = ? AND kind = 'file.created' AND path = 'untitled.py'",
                       session_url.rsplit("/", 1)[1])
        assert [(r["actor"].split(":")[0], r["via"]) for r in made] == [
            ("interviewer", "contents")], [tuple(r) for r in made]

        # The session page's Join button (a form whose answer redirects through the workspace
        # origins, which the app's form-action allows) lands in the same workspace too.
        joined = await people.another_tab(observe, "session-join")
        await joined.goto(session_url)
        await joined.click("#join")
        await joined.wait_for_url("**/lab**", timeout=WAIT_MS, wait_until="commit")
        assert joined.url.split("/lab", 1)[0] + "/lab" == lab
        await joined.close()

        # Notes the moment.
        await observe.fill("#pl-note-text", NOTE)
        await observe.click("#pl-note-save")
        await expect(observe.locator("#pl-notes")).to_contain_text(NOTE, timeout=WAIT_MS)

        # Scores every dimension, submits, ends the session.
        card = await people.another_tab(observe, "scorecard")
        await submit_scorecard(card, session_url, "Asked about the data before the code.",
                               "Methodical; found the double counting.")
        await end_session(observe)

        # The debrief shows the hidden checks' real result (never "0 of 0", never an error):
        # the bug was never fixed, and the candidate's conftest changed nothing of it.
        debrief = await people.another_tab(observe, "debrief")
        line = await hidden_checks_on_the_debrief(debrief, session_url)
        assert re.search(r"failed: \d+ passed, [1-9]\d* failed of [1-9]\d*", line), line
        await document(debrief, "debrief")
        await expect(debrief.locator("#hidden-checks-how")).to_contain_text(
            "ran with pairlab's own pytest setup on the final code; the candidate's conftest, "
            "ini files and plugins are not used")
