"""The interviewer's whole scoring flow in a real headless Chromium: open a live session, add a
note, submit a scorecard, see the debrief.

Two interviewers, Alice and Bob, are on one live session of a ``pipeline-bug`` task (its
built-in rubric: navigating-code 15, questions 10, debugging 25, data-quality 20,
working-solution 20, communication 10). Alice notes a moment on the observe page, fills in her
scorecard (autosaved, kept over a reload), submits it and waits on the sealed debrief; Bob,
in a browser of his own, submits a scorecard two levels apart from hers on debugging; the
debrief then shows both, flags the disagreement, gives the weighted score and links the
evidence to the replay at the noted moment. A second test checks blind mode on the observe
page.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Locator, Page, Response, expect

from common import audit
from scoring import scorecards
from server.http.keys import DB
from server.http.pages import seconds
from server.http.times import human_utc
from server.people import accounts as people
from server.people.passwords import hash_password
from server.settings import Settings
from tests.browser import Browsing, login_in_browser
from tests.conftest import PASSWORD, MakeSettings, open_db
from tests.fixture_tasks import publish_fake_task
from tests.harness import WAIT_S, Live, interviewer, live_session, serving
from workspaces import sessions as S
from workspaces.recording import events as E

pytestmark = [pytest.mark.browser, pytest.mark.integration]
SAVED_AT = re.compile(r"^Draft saved at \d{1,2}:\d\d:\d\d( [AP]M)?\.$")
"""The autosave's word: the time of day in the browser's zone and locale."""

ALICE = "alice@example.com"
BOB = "bob@example.com"
TASK = "pipe-task"
CANDIDATE = "Grace Hopper"

# The built-in rubric of the pipeline-bug kind (scoring/builtin_rubrics.toml), in its order.
WEIGHTS = {"navigating-code": 15, "questions": 10, "debugging": 25, "data-quality": 20,
           "working-solution": 20, "communication": 10}
ALICE_LEVELS = {"navigating-code": 3, "questions": 3, "debugging": 4, "data-quality": 3,
                "working-solution": 3, "communication": 4}
BOB_LEVELS = {"navigating-code": 3, "questions": 2, "debugging": 2, "data-quality": 3,
              "working-solution": 4, "communication": 4}
# Only debugging is 2 levels apart (4 vs 2); questions and working-solution are 1 apart.
DISAGREE = "debugging"
NOTED = "debugging"  # the dimension whose evidence points at Alice's note
NOTE_TEXT = "Candidate spotted the dropped rows before touching the join"
BOB_DRAFT = "Bob's unsubmitted first impression: slow start"


def weighted(levels: dict[str, int]) -> float:
    return sum(levels[d] * w for d, w in WEIGHTS.items()) / sum(WEIGHTS.values())


# By hand: Alice 3*15 + 3*10 + 4*25 + 3*20 + 3*20 + 4*10 = 335 -> 3.35;
# Bob 3*15 + 2*10 + 2*25 + 3*20 + 4*20 + 4*10 = 295 -> 2.95; the panel's mean 3.15.
ALICE_SCORE, BOB_SCORE, PANEL_SCORE = "3.35", "2.95", "3.15"


def evidence_of(who: str, dim: str) -> str:
    return f"{who} on {dim}: saw it <b>happen</b>"


@dataclass
class Panel:
    live: Live
    alice_id: int
    bob_id: int

    async def api(self, email: str, method: str, path: str,
                  body: dict[str, Any] | None = None) -> Any:
        return await call_api(self.live.url, email, method, path, body)

    async def draft(self, user_id: int) -> scorecards.Draft:
        sid = self.live.session_id
        return await self.live.app[DB].read(lambda d: scorecards.get_draft(d, sid, user_id))


async def call_api(url: str, email: str, method: str, path: str,
                   body: dict[str, Any] | None = None) -> Any:
    """One call to the JSON API as ``email`` (logged in through the API first)."""
    async with interviewer(url, email) as (http, csrf):
        response = await http.request(method, path, json=body, headers=csrf)
        assert response.status < 300, await response.text()
        return await response.json()


def add_interviewer(settings: Any, email: str, name: str) -> int:
    db = open_db(settings)
    try:
        with db.atomic():
            user = people.add_user(db, audit.CLI, email, "interviewer",
                                   hash_password(PASSWORD), display_name=name)
    finally:
        db.conn.close()
    return user.id


@pytest.fixture
async def panel(make_settings: MakeSettings, tmp_path: Path) -> AsyncIterator[Panel]:
    """The app on loopback ports with a live session of a pipeline-bug task for Alice and Bob
    (the fake provisioner, the real recording service)."""
    ids: list[int] = []

    def prepare(settings: Settings) -> None:
        publish_fake_task(settings, TASK, kind="pipeline-bug")
        ids.extend((add_interviewer(settings, ALICE, "Alice"),
                    add_interviewer(settings, BOB, "Bob")))

    async with serving(make_settings, tmp_path, prepare) as served:
        scheduled = await call_api(served.settings.app_url, ALICE, "POST", "/api/v1/sessions", {
            "task": TASK, "candidate_name": CANDIDATE, "interviewers": [ALICE, BOB],
            "blind": False})
        session_id = scheduled["session_id"]
        await call_api(served.settings.app_url, ALICE, "POST",
                       f"/api/v1/sessions/{session_id}/start")
        session = await served.app[DB].read(lambda d: S.get_session(d, session_id))
        assert set(session.interviewer_ids) == set(ids)
        yield Panel(await live_session(served, session_id), ids[0], ids[1])


# ---- page helpers -----------------------------------------------------------------------------


def is_autosave(text: str) -> Any:
    """A predicate for the scorecard's autosave PUT whose body contains ``text``."""
    def check(response: Response) -> bool:
        request = response.request
        return (request.method == "PUT" and request.url.endswith("/scorecards/mine")
                and text in (request.post_data or ""))
    return check


async def fill_and_autosave(page: Page, selector: str, text: str) -> None:
    """Type into a field and wait for the autosave (debounced) that carries it."""
    async with page.expect_response(is_autosave(text), timeout=WAIT_S * 1000) as saved:
        await page.fill(selector, text)
    response = await saved.value
    assert response.status == 200, await response.text()
    await expect(page.locator("#autosave-status")).to_have_text(
        SAVED_AT)


async def pick_levels(page: Page, who: str, levels: dict[str, int],
                      moments: dict[str, int]) -> None:
    for dim, level in levels.items():
        fieldset = page.locator(f'fieldset.dimension[data-dimension="{dim}"]')
        await fieldset.locator(f'input[name="level-{dim}"][value="{level}"]').check()
        await fieldset.locator(f"#evidence-{dim}").fill(evidence_of(who, dim))
        if dim in moments:  # picked from the timeline beside the questions
            await page.select_option("#moment-target", dim)
            await page.locator(f'#moment-timeline li[data-seq="{moments[dim]}"]'
                               " button.moment-add").click()
            await expect(fieldset.locator("li.moment-chip")).to_have_attribute(
                "data-seq", str(moments[dim]))


async def assert_form_holds(page: Page, who: str, levels: dict[str, int],
                            moments: dict[str, int]) -> None:
    for dim, level in levels.items():
        for other in range(1, 5):
            radio = page.locator(f'input[name="level-{dim}"][value="{other}"]')
            if other == level:
                await expect(radio).to_be_checked()
            else:
                await expect(radio).not_to_be_checked()
        await expect(page.locator(f"#evidence-{dim}")).to_have_value(evidence_of(who, dim))
        await expect(page.locator(f"#moments-{dim}")).to_have_value(
            str(moments[dim]) if dim in moments else "")


def cells(row: Locator) -> Locator:
    return row.locator("td.level")


async def header_names(page: Page) -> list[str]:
    return [t.strip() for t in await page.locator("#debrief thead th").all_inner_texts()]


def no_errors(console: list[str], page_errors: list[str]) -> None:
    assert [m for m in console if "Content Security Policy" in m] == []
    assert page_errors == []


# ---- the flow ---------------------------------------------------------------------------------


async def test_note_scorecard_and_debrief(panel: Panel, browsing: Browsing,
                                          tmp_path: Path) -> None:
    live, sid = panel.live, panel.live.session_id
    page = browsing.page

    # 1. Alice observes the live session and notes a moment through the note form.
    await login_in_browser(page, live.url, f"/sessions/{sid}/observe", ALICE)
    await expect(page.locator("#pl-stream")).to_have_text("live", timeout=WAIT_S * 1000)
    await expect(page.locator("#pl-state")).to_have_text("live")
    await page.fill("#pl-note-text", NOTE_TEXT)
    await page.click("#pl-note-save")
    await expect(page.locator("#pl-note-result")).to_have_text("saved")
    on_timeline = page.locator('#pl-timeline li[data-kind="note"]', has_text=NOTE_TEXT)
    await expect(on_timeline).to_have_count(1)
    note_seq = int(await on_timeline.get_attribute("data-seq") or "0")
    assert note_seq > 0
    await expect(on_timeline.locator(".pl-seq")).to_have_text(f"#{note_seq}")
    await expect(page.locator(f'#pl-notes li.pl-kind-note[data-seq="{note_seq}"]')).to_contain_text(
        NOTE_TEXT)
    stored = await live.app[DB].read(lambda d: d.execute(
        "SELECT kind, actor, payload FROM events WHERE session_id = ? AND seq = ?",
        [sid, note_seq]).fetchone())
    assert stored[0] == E.NOTE and stored[1] == E.interviewer_actor(panel.alice_id)
    assert NOTE_TEXT in stored[2]

    # Bob, in a browser of his own, has started a draft he has not submitted.
    bob_context = await browsing.browser.new_context(viewport={"width": 1366, "height": 900})
    try:
        bob = await bob_context.new_page()
        bob_console: list[str] = []
        bob_errors: list[str] = []
        bob.on("console", lambda m: bob_console.append(f"{m.type}: {m.text}"))
        bob.on("pageerror", lambda exc: bob_errors.append(str(exc)))
        await login_in_browser(bob, live.url, f"/sessions/{sid}/scorecard", BOB)
        await bob.locator('input[name="level-questions"][value="1"]').check()
        await fill_and_autosave(bob, "#evidence-questions", BOB_DRAFT)
        assert (await panel.draft(panel.bob_id)).card.scores["questions"].evidence == BOB_DRAFT
        sealed = await bob.goto(f"{live.url}/sessions/{sid}/debrief")
        assert sealed is not None and sealed.status == 403  # sealed until he submits

        # 2. Alice opens "My scorecard" from the session page and fills it in.
        await page.goto(f"{live.url}/sessions/{sid}")
        await page.click("#scorecard-link")
        await page.wait_for_url(f"{live.url}/sessions/{sid}/scorecard")
        await expect(page.locator("#scorecard-state")).to_have_text("draft")
        await expect(page.locator("#autosave-status")).to_have_text("")
        noted = page.locator("#moment-timeline li", has_text=NOTE_TEXT)
        await expect(noted.locator("a.moment-replay")).to_have_attribute(
            "href", f"/sessions/{sid}/replay#seq={note_seq}")
        moments = {NOTED: note_seq}
        last = list(ALICE_LEVELS)[-1]
        await pick_levels(page, "Alice", {d: v for d, v in ALICE_LEVELS.items() if d != last},
                          moments)
        await page.locator(f'input[name="level-{last}"][value="{ALICE_LEVELS[last]}"]').check()
        await fill_and_autosave(page, f"#evidence-{last}", evidence_of("Alice", last))

        # The autosave really stored the whole draft (not submitted, nothing else yet).
        draft = await panel.draft(panel.alice_id)
        assert draft.version == 0 and draft.submitted_at is None and draft.updated_at
        assert draft.card.levels() == ALICE_LEVELS
        assert {d: s.evidence for d, s in draft.card.scores.items()} == {
            d: evidence_of("Alice", d) for d in ALICE_LEVELS}
        assert {d: s.moments for d, s in draft.card.scores.items() if s.moments} == {
            NOTED: (note_seq,)}
        assert draft.card.recommendation is None and draft.card.summary == ""
        mine = await panel.api(ALICE, "GET", f"/api/v1/sessions/{sid}/scorecards/mine")
        assert mine["state"] == "draft" and mine["scores"][NOTED]["moments"] == [note_seq]

        # A reload keeps her choices.
        await page.reload()
        await expect(page.locator("#autosave-status")).to_have_text(SAVED_AT)
        saved = page.locator("#autosave-status time[data-clock]")
        await expect(saved).to_have_attribute("datetime", seconds(draft.updated_at))
        # the viewer's clock, with the server's date and time in UTC as its tooltip
        await expect(saved).to_have_attribute("title", human_utc(draft.updated_at))
        await assert_form_holds(page, "Alice", ALICE_LEVELS, moments)

        await page.locator('input[name="recommendation"][value="yes"]').check()
        await page.fill("#summary", "Alice: careful, found the bug, tested the fix.")
        await page.click("#submit-scorecard")
        await page.wait_for_url(f"{live.url}/sessions/{sid}/debrief")

        # She waits for Bob; his draft stays sealed.
        await expect(page.locator("#waiting-for")).to_have_text("Bob")
        await expect(page.locator("#debrief-complete")).to_have_count(0)
        assert await header_names(page) == ["Dimension", "Weight", "Alice", "Mean"]
        await expect(page.locator("#weighted-score")).to_have_text(ALICE_SCORE)
        await expect(page.locator("main")).not_to_contain_text(BOB_DRAFT)
        await expect(page.locator("main")).not_to_contain_text("first impression")
        assert BOB_DRAFT not in await page.content()
        submitted = await panel.draft(panel.alice_id)
        assert submitted.version == 1 and submitted.card.recommendation == "yes"

        # 3. Bob completes his scorecard in his browser and submits it.
        await bob.goto(f"{live.url}/sessions/{sid}/scorecard")
        await expect(bob.locator('input[name="level-questions"][value="1"]')).to_be_checked()
        await expect(bob.locator("#evidence-questions")).to_have_value(BOB_DRAFT)
        await pick_levels(bob, "Bob", BOB_LEVELS, {})
        await bob.locator('input[name="recommendation"][value="no"]').check()
        await bob.fill("#summary", "Bob: needed a push to look at the data.")
        await bob.click("#submit-scorecard")
        await bob.wait_for_url(f"{live.url}/sessions/{sid}/debrief")
        await expect(bob.locator("#debrief-complete")).to_have_count(1)
        no_errors(bob_console, bob_errors)
    finally:
        await bob_context.close()

    # 4. Alice reloads the debrief: both columns, the disagreement, the score, the evidence.
    await page.reload()
    await expect(page.locator("#debrief-complete")).to_have_count(1)
    await expect(page.locator("#waiting-for")).to_have_count(0)
    await page.screenshot(path=str(tmp_path / "debrief.png"), full_page=True)
    assert await header_names(page) == ["Dimension", "Weight", "Alice", "Bob", "Mean"]
    rows = page.locator("#debrief tbody tr[data-dimension]")
    assert await rows.evaluate_all("rs => rs.map(r => r.dataset.dimension)") == list(WEIGHTS)
    for dim in WEIGHTS:
        row = page.locator(f'#debrief tr[data-dimension="{dim}"]')
        await expect(cells(row)).to_have_text([str(ALICE_LEVELS[dim]), str(BOB_LEVELS[dim])])
        await expect(row.locator("td").nth(0)).to_have_text(str(WEIGHTS[dim]))
        if dim == DISAGREE:
            await expect(row).to_have_class(re.compile(r"\bdisagree\b"))
            await expect(row.locator(".flag")).to_have_text("disagree by 2")
        else:
            await expect(row).not_to_have_class(re.compile(r"\bdisagree\b"))
    assert f"{weighted(ALICE_LEVELS):.2f}" == ALICE_SCORE
    assert f"{weighted(BOB_LEVELS):.2f}" == BOB_SCORE
    assert f"{(weighted(ALICE_LEVELS) + weighted(BOB_LEVELS)) / 2:.2f}" == PANEL_SCORE
    await expect(page.locator("#weighted-score")).to_have_text(PANEL_SCORE)
    await expect(page.locator("#debrief tr.total td")).to_have_text(
        ["100", ALICE_SCORE, BOB_SCORE, PANEL_SCORE])
    await expect(page.locator("main")).not_to_contain_text(BOB_DRAFT)  # replaced on submit
    await expect(page.locator("main")).to_contain_text(evidence_of("Bob", "questions"))
    await expect(page.locator("main")).to_contain_text(evidence_of("Alice", NOTED))

    links = page.locator("section.evidence a.moment")
    await expect(links).to_have_count(1)
    await expect(links).to_have_text(f"#{note_seq}")
    await expect(links).to_have_attribute("href", f"/sessions/{sid}/replay#seq={note_seq}")
    await expect(page.locator(f'section.evidence[data-dimension="{NOTED}"] a.moment')
                 ).to_have_count(1)

    await links.click()
    await page.wait_for_url(f"{live.url}/sessions/{sid}/replay#seq={note_seq}")
    await expect(page.locator("body[data-replay-ready]")).to_have_count(1)
    await expect(page.locator("#pl-pos")).to_contain_text(f"#{note_seq} of ")
    await expect(page.locator("#pl-current")).to_contain_text(NOTE_TEXT)
    no_errors(browsing.console, browsing.page_errors)


async def test_blind_session_shows_a_pseudonym_on_the_observe_page(
        panel: Panel, browsing: Browsing) -> None:
    live = panel.live
    secret = "Ada Secretname"
    scheduled = await panel.api(ALICE, "POST", "/api/v1/sessions", {
        "task": TASK, "candidate_name": secret, "candidate_email": "ada@example.org",
        "interviewers": [ALICE, BOB], "blind": True})
    sid = scheduled["session_id"]
    await panel.api(ALICE, "POST", f"/api/v1/sessions/{sid}/start")
    row = await live.app[DB].read(lambda d: d.execute(
        "SELECT blind, pseudonym FROM session_scoring WHERE session_id = ?", [sid]).fetchone())
    assert row[0] == 1
    pseudonym = str(row[1])
    assert pseudonym.startswith("Candidate ")

    page = browsing.page
    await login_in_browser(page, live.url, f"/sessions/{sid}/observe", ALICE)
    await expect(page.locator("#pl-stream")).to_have_text("live", timeout=WAIT_S * 1000)
    last = await live.app[DB].read(lambda d: E.last_seq(d, sid))
    await expect(page.locator(f'#pl-timeline li[data-seq="{last}"]')).to_have_count(1)
    await expect(page.locator("h1")).to_contain_text(pseudonym)
    assert pseudonym in await page.title()
    for where in (secret, "Secretname", "ada@example.org"):
        await expect(page.locator("body")).not_to_contain_text(where)
        assert where not in await page.content()
    no_errors(browsing.console, browsing.page_errors)
