"""An admin makes a new rubric on the Rubrics page's form, on the demo that README command 1
starts, in Chromium: no JSON.

From scratch: a title, the task kind and role ticked, one dimension typed and a second added
with "Add another dimension", each previewed as the scorecard shows it as they type. A weight
that leaves the total short is refused beside the weights, with everything typed kept; fixed,
the rubric is created (its id made from the title), listed, and its page shows both dimensions
with their anchors. Then a copy of a built-in rubric, prefilled by "Copy into the form", saved
under a new title with one anchor changed: the built-in rubric is left as it was.
"""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Browser, Locator, expect

from tests.journeys.conftest import Product, browsing
from tests.journeys.test_admin import ADMIN, unique_id

pytestmark = [pytest.mark.journey, pytest.mark.integration, pytest.mark.browser,
              pytest.mark.timeout(900)]

BUILTIN = "pipeline-bug"
KIND, ROLE = "serving-feature", "mlops-engineer"


async def fill_dimension(fieldset: Locator, title: str, weight: str) -> None:
    await fieldset.locator("input[name=dim_title]").fill(title)
    await fieldset.locator("input[name=dim_description]").fill(f"What {title.lower()} covers")
    await fieldset.locator("input[name=dim_weight]").fill(weight)
    for level in (1, 2, 3, 4):
        await fieldset.locator(f"textarea[name=dim_anchor_{level}]").fill(
            f"Level {level}: {title.lower()} as the interviewer saw it")


async def test_the_admin_creates_a_rubric_on_the_form(product: Product,
                                                      browser: Browser) -> None:
    title = unique_id("On call")
    async with browsing(browser, product, "new-rubric") as people:
        admin = await people.as_user(ADMIN, "admin")
        await admin.goto(f"{product.app_url}/rubrics")
        form = admin.locator("#rubric-form")
        await expect(form).to_be_visible()
        await expect(admin.locator("#raw-json")).not_to_have_attribute("open", "")

        await admin.fill("#rubric-id", "")
        await admin.fill("#rubric-title", title)
        await admin.fill("#rubric-description", "For the serving-layer tasks.")
        await form.get_by_label(KIND).check()
        await form.get_by_label(ROLE).check()
        fieldsets = admin.locator("fieldset.dimension-edit")
        await expect(fieldsets).to_have_count(1)
        await fill_dimension(fieldsets.first, "Reads the traces", "60")
        await admin.click("#add-dimension")
        await expect(fieldsets).to_have_count(2)
        await fill_dimension(fieldsets.nth(1), "Rolls out safely", "30")
        preview = admin.locator("#anchor-preview .preview-dimension")
        await expect(preview).to_have_count(2)
        await expect(preview.nth(1).locator('.anchor[data-level="3"]')).to_have_text(
            "3 Level 3: rolls out safely as the interviewer saw it")

        # 60 + 30: refused beside the weights, the typed text kept, nothing created.
        await admin.click("#save-rubric")
        await expect(admin.locator("#err-weights")).to_contain_text("100")
        await expect(admin.locator("#rubric-title")).to_have_value(title)
        await expect(fieldsets.nth(1).locator("input[name=dim_title]")).to_have_value(
            "Rolls out safely")
        await expect(admin.locator("#rubrics tbody tr", has_text=title)).to_have_count(0)

        await fieldsets.nth(1).locator("input[name=dim_weight]").fill("40")
        await admin.click("#save-rubric")
        await expect(admin.locator("#rubric-created")).to_contain_text("Created")
        rubric_id = admin.url.split("/rubrics/", 1)[1].split("?", 1)[0]
        assert re.fullmatch(r"on-call-[a-z0-9-]+", rubric_id), rubric_id
        await expect(admin.locator("h1")).to_contain_text(title)
        rows = admin.locator("#dimensions tbody tr")
        await expect(rows).to_have_count(2)
        await expect(rows.nth(0)).to_contain_text("Reads the traces")
        await expect(rows.nth(1).locator("td").last).to_have_text(
            "Level 4: rolls out safely as the interviewer saw it")
        await admin.goto(f"{product.app_url}/rubrics")
        await expect(admin.locator(f'#rubrics tr[data-rubric="{rubric_id}"]')).to_contain_text(
            title)

        # A copy of the built-in rubric, one anchor changed, saved under its own title.
        builtin_row = admin.locator(f'#rubrics tr[data-rubric="{BUILTIN}"]')
        builtin_version = (await builtin_row.locator("td").nth(1).inner_text()).strip()
        await admin.select_option("#from", BUILTIN)
        await admin.click("#copy-rubric button")
        await expect(admin.locator("#rubric-title")).to_have_value(re.compile(r"\(copy\)$"))
        count = await fieldsets.count()
        assert count >= 3, count
        copy_title = unique_id("Our pipeline")
        await admin.fill("#rubric-title", copy_title)
        await fieldsets.first.locator("textarea[name=dim_anchor_4]").fill(
            "Proves the root cause with a failing test, then fixes it.")
        await admin.click("#save-rubric")
        await expect(admin.locator("#rubric-created")).to_be_visible()
        await expect(admin.locator("#dimensions tbody tr")).to_have_count(count - 1)
        await expect(admin.locator("#dimensions tbody tr").first.locator("td").last).to_have_text(
            "Proves the root cause with a failing test, then fixes it.")
        await admin.goto(f"{product.app_url}/rubrics")
        await expect(admin.locator(f'#rubrics tr[data-rubric="{BUILTIN}"] td').nth(1)
                     ).to_have_text(builtin_version)
