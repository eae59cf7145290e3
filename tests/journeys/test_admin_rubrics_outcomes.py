"""The admin's rubric editor and outcomes pages, on the demo that README command 1 starts, in
Chromium.

The admin edits the level-4 anchor of a built-in rubric's first dimension in the form and sees
the preview beside it change as they type; saves (a new version); the interviewer then
schedules a new session and its scorecard shows the new anchor. Moving a dimension down and up
reorders the preview; Add gives an empty dimension, Remove takes it away. The admin blanks most of a
level's anchor and is told, next to that field, which dimension (by title) and level is wrong,
with what they typed kept and nothing saved. On the outcomes page of the demo's past
interviews they change two rows and save both with one Save; they paste CSV with one bad line
and are told that line's number, with nothing changed; they fix the line, preview the change
and import it, and both rows show the pasted values.
"""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page, expect

from tests.journeys.conftest import WAIT_MS, Product, browsing, schedule_through_the_page
from tests.journeys.test_admin import ADMIN, INTERVIEWER, unique_id
from tests.journeys.test_design import sideways_overflow, too_wide

pytestmark = [pytest.mark.journey, pytest.mark.integration, pytest.mark.browser,
              pytest.mark.timeout(1500)]

RUBRIC = "pipeline-bug"
"""The built-in rubric of the demo task's kind (``pairlab demo`` schedules on a pipeline bug)."""
DEMO_TASK = "daily-features-bug"
NEW_ANCHOR = "Finds the root cause, proves it with a failing test and explains the fix."
HOSTILE = '<img src="x" onerror="window.pwnedByPreview = 1">'
PAST_INTERVIEWS = 24
"""The ended sessions with outcomes ``pairlab demo`` creates (server/cli/demo_history.py)."""


async def note_of(page: Page, session_id: str) -> str:
    return await page.locator(f'input[name="note:{session_id}"]').input_value()


async def test_the_admin_edits_a_rubric_and_outcomes_in_bulk(product: Product,
                                                             browser: Browser) -> None:
    async with browsing(browser, product, "rubrics-outcomes") as people:
        admin = await people.as_user(ADMIN, "admin")

        # The rubric editor: a form, with the anchors previewed as the scorecard shows them.
        await admin.goto(f"{product.app_url}/rubrics/{RUBRIC}")
        first = admin.locator("fieldset.dimension-edit").first
        title = (await first.locator("input[name=dim_title]").input_value()).strip()
        preview = admin.locator("#anchor-preview .preview-dimension").first
        await expect(preview.locator(".preview-title strong")).to_have_text(title)
        await expect(preview.locator('.anchor[data-level="4"]')).not_to_contain_text(NEW_ANCHOR)
        await first.locator("textarea[name=dim_anchor_4]").fill(NEW_ANCHOR)
        await expect(preview.locator('.anchor[data-level="4"]')).to_have_text(f"4 {NEW_ANCHOR}")
        await admin.click("#save-rubric")
        await expect(admin.locator("#rubric-saved")).to_contain_text("Saved as version 2")
        row = admin.locator("#dimensions tbody tr").first
        await expect(row.locator("td").last).to_have_text(NEW_ANCHOR)

        # A new session is scored with the new version: its scorecard shows the new anchor.
        interviewer = await people.as_user(INTERVIEWER, "interviewer")
        await schedule_through_the_page(interviewer, product, DEMO_TASK, unique_id("Rubric"))
        session_url = interviewer.url.split("#", 1)[0].split("?", 1)[0]
        card = await people.another_tab(interviewer, "scorecard")
        await card.goto(f"{session_url}/scorecard")
        await expect(card.locator("fieldset.dimension").first.locator("label.anchor").nth(3)
                     ).to_contain_text(NEW_ANCHOR, timeout=WAIT_MS)
        await expect(card.locator(f'a[href="/rubrics/{RUBRIC}?version=2"]')).to_have_count(1)

        # The small script: reordering moves the preview too; Add gives empty fields.
        fieldsets = admin.locator("fieldset.dimension-edit")
        count = await fieldsets.count()
        second = (await fieldsets.nth(1).locator("input[name=dim_title]").input_value()).strip()
        titles = admin.locator("#anchor-preview .preview-title strong")
        await fieldsets.first.get_by_role("button", name="Move down").click()
        await expect(titles.first).to_have_text(second)
        await expect(titles.nth(1)).to_have_text(title)
        await fieldsets.nth(1).get_by_role("button", name="Move up").click()
        await expect(titles.first).to_have_text(title)
        await admin.click("#add-dimension")
        await expect(fieldsets).to_have_count(count + 1)
        await expect(fieldsets.last.locator("input[name=dim_title]")).to_have_value("")
        await expect(fieldsets.last.locator("input[name=dim_title]")).to_be_focused()
        # what is typed is previewed as text, never as markup
        await fieldsets.last.locator("input[name=dim_title]").fill(HOSTILE)
        await fieldsets.last.locator("textarea[name=dim_anchor_1]").fill(HOSTILE)
        await expect(titles.last).to_have_text(HOSTILE)
        assert await admin.locator("#anchor-preview img").count() == 0
        assert await admin.evaluate("() => window.pwnedByPreview") is None
        await fieldsets.last.get_by_role("button", name="Remove this dimension").click()
        await expect(fieldsets).to_have_count(count)

        # An invalid level: the sentence names the dimension by title beside the field, and
        # the form keeps what was typed; nothing is saved.
        first = admin.locator("fieldset.dimension-edit").first
        await first.locator("textarea[name=dim_anchor_2]").fill("vague")
        await first.locator("input[name=dim_description]").fill("Typed, not yet saved.")
        await admin.click("#save-rubric")
        error = admin.locator("#err-0-anchor-2")
        await expect(error).to_have_text(
            f"The anchor for level 2 of “{title}”: too short (at least 10 characters).")
        await expect(admin.locator("#rubric-problems")).to_contain_text(title)
        first = admin.locator("fieldset.dimension-edit").first
        anchor = first.locator("textarea[name=dim_anchor_2]")
        await expect(anchor).to_have_value("vague")
        await expect(anchor).to_have_attribute("aria-describedby", "err-0-anchor-2")
        await expect(first.locator("input[name=dim_description]")).to_have_value(
            "Typed, not yet saved.")
        await admin.goto(f"{product.app_url}/rubrics/{RUBRIC}")
        await expect(admin.locator("#versions li")).to_have_count(2)

        # Outcomes: two rows changed, one Save.
        await admin.goto(f"{product.app_url}/outcomes")
        rows = admin.locator("#outcomes tbody tr[data-session]")
        # the demo's past interviews, and any session another journey has ended before this one
        await expect(rows.nth(PAST_INTERVIEWS - 1)).to_be_attached()
        # The wide table stays within the page, at a laptop's width and at half of it.
        for width in (1400, 700):
            await admin.set_viewport_size({"width": width, "height": 900})
            assert await sideways_overflow(admin) == 0, (width, await too_wide(admin))
        await admin.set_viewport_size({"width": 1400, "height": 900})
        ids = [str(await rows.nth(n).get_attribute("data-session")) for n in range(4)]
        await admin.fill(f'input[name="note:{ids[0]}"]', "Table note one")
        await admin.fill(f'input[name="note:{ids[1]}"]', "Table note two")
        await admin.click("#save-outcomes")
        await expect(admin.locator("#table-result")).to_have_text("Saved 2 changed outcomes.")
        assert [await note_of(admin, ids[0]), await note_of(admin, ids[1])] == [
            "Table note one", "Table note two"]

        # Pasted CSV with one bad line: that line's number and what is wrong; nothing changed.
        before = [await note_of(admin, ids[2]), await note_of(admin, ids[3])]
        bad = f"session_id,note\n{ids[2]},Pasted note three\ns_no_such_session,Pasted four\n"
        await admin.fill("#csv", bad)
        await admin.click("#paste-preview-button")
        await expect(admin.locator('#paste-errors li[data-line="3"]')).to_have_text(
            "Line 3, session_id: there is no session 's_no_such_session'.")
        await expect(admin.locator("#paste-import")).to_have_count(0)
        await expect(admin.locator("#csv")).to_have_value(bad)
        assert [await note_of(admin, ids[2]), await note_of(admin, ids[3])] == before

        # Fixed: the preview shows both changes, nothing stored yet; Import stores both.
        await admin.fill("#csv", bad.replace("s_no_such_session", ids[3]))
        await admin.click("#paste-preview-button")
        changes = admin.locator("#paste-preview tbody tr")
        await expect(changes).to_have_count(2)
        await expect(changes.nth(1)).to_contain_text("Pasted four")
        assert [await note_of(admin, ids[2]), await note_of(admin, ids[3])] == before
        await admin.click("#paste-import")
        await expect(admin.locator("#paste-result")).to_have_text(
            "Imported 2 outcomes from the pasted text.")
        assert [await note_of(admin, ids[2]), await note_of(admin, ids[3])] == [
            "Pasted note three", "Pasted four"]

        # The file form sent with no file: its error shows where that form is, on screen
        # (it was 3,800 px down a page that reloaded at its top).
        await admin.locator('form[action^="/outcomes/import"] button[type=submit]').click()
        errors = admin.locator("#import-errors")
        await expect(errors).to_have_text("Choose a CSV file (or paste its text).")
        await expect(errors).to_be_in_viewport()
