"""The rubric editor form through the real app: editing an anchor saves a new version (the
old one kept), a new dimension is added from the empty fields, and invalid input is refused
with sentences naming the dimension by title next to its field, the typed text kept."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from scoring import rubric_form
from scoring.rubrics import builtin_rubrics, get_rubric
from server.db import open_migrated
from server.http.keys import SETTINGS
from server.settings import Settings
from tests.conftest import create_user, form_csrf_token, login, query

Client = TestClient[Any, Any]
RUBRIC = builtin_rubrics()[0]


def form_of(draft: rubric_form.RubricDraft, token: str) -> list[tuple[str, str]]:
    """The fields the editor sends for ``draft``, plus the empty "add a dimension" fields."""
    data = [("csrf_token", token), ("title", draft.title), ("description", draft.description)]
    data += [("kinds", k) for k in draft.kinds] + [("roles", r) for r in draft.roles]
    for d in [*draft.dimensions, rubric_form.DimensionDraft()]:
        data += [("dim_id", d.id), ("dim_title", d.title), ("dim_description", d.description),
                 ("dim_weight", d.weight)]
        data += [(f"dim_anchor_{n}", d.anchors[n]) for n in (1, 2, 3, 4)]
    return data


def latest(settings: Settings) -> Any:
    db = open_migrated(settings.db_path)
    try:
        return get_rubric(db, RUBRIC.id)
    finally:
        db.conn.close()


async def test_the_form_saves_a_new_version_and_adds_a_dimension(client: Client) -> None:
    settings = client.app[SETTINGS]
    create_user(settings, "admin@example.com", "admin")
    await login(client, "admin@example.com")
    page = await client.get(f"/rubrics/{RUBRIC.id}")
    html = await page.text()
    assert 'id="rubric-form"' in html and 'id="anchor-preview"' in html
    draft = rubric_form.draft_of(RUBRIC)
    draft.dimensions[0].anchors[4] = "Finds the root cause and proves it with a failing test."
    first, second = draft.dimensions[0], draft.dimensions[1]
    first.weight = str(int(first.weight) - 10)
    draft.dimensions.append(rubric_form.DimensionDraft(
        "", "Asks for help", "", "10", {n: f"Level {n}: asks for help this well" for n in
                                         (1, 2, 3, 4)}))
    draft.dimensions[0], draft.dimensions[1] = second, first  # reordered
    saved = await client.post(f"/rubrics/{RUBRIC.id}", data=form_of(draft, form_csrf_token(html)),
                              allow_redirects=False)
    assert saved.status == 303, await saved.text()
    rubric = latest(settings)
    assert rubric.version == 2
    assert [d.id for d in rubric.dimensions][:2] == [second.id, first.id]
    assert rubric.dimensions[-1].id == "asks-for-help" and rubric.dimensions[-1].weight == 10
    assert rubric.dimension(first.id).anchors[4] == first.anchors[4]
    assert query(settings, "SELECT version FROM rubrics WHERE id = ? ORDER BY version",
                 (RUBRIC.id,)) == [(1,), (2,)]  # version 1 is kept for its sessions
    shown = await (await client.get(f"/rubrics/{RUBRIC.id}?saved=1")).text()
    assert "Saved as version 2." in shown


async def test_bad_levels_are_named_by_dimension_title_next_to_the_field(client: Client) -> None:
    settings = client.app[SETTINGS]
    create_user(settings, "admin@example.com", "admin")
    await login(client, "admin@example.com")
    html = await (await client.get(f"/rubrics/{RUBRIC.id}")).text()
    draft = rubric_form.draft_of(RUBRIC)
    draft.dimensions[0].anchors[3] = "too short"
    draft.dimensions[1].weight = "lots"
    refused = await client.post(f"/rubrics/{RUBRIC.id}",
                                data=form_of(draft, form_csrf_token(html)))
    text = await refused.text()
    assert refused.status == 422
    one, two = draft.dimensions[0].title, draft.dimensions[1].title
    assert (f'<ul class="error field-error" id="err-0-anchor-3"><li>The anchor for level 3 of'
            f" “{one}”: too short (at least 10 characters).</li></ul>") in text
    assert (f'id="err-1-weight"><li>The weight of “{two}”: must be a whole number from 1 to'
            " 100.</li>") in text
    assert 'aria-describedby="err-0-anchor-3">too short</textarea>' in text  # kept as typed
    assert latest(settings).version == 1
    # a new dimension with a problem: named by its title, its id still to be made from it
    draft = rubric_form.draft_of(RUBRIC)
    draft.dimensions.append(rubric_form.DimensionDraft(
        "", "Asks for help", "", "5", {n: "" for n in (1, 2, 3, 4)}))
    refused = await client.post(f"/rubrics/{RUBRIC.id}",
                                data=form_of(draft, form_csrf_token(html)))
    text = await refused.text()
    n = len(draft.dimensions) - 1
    assert refused.status == 422
    assert (f'id="err-{n}-anchor-1"><li>The anchor for level 1 of “Asks for help”: missing.'
            in text)
    assert 'id="err-weights"><li>The weights: add up to 105, they must add up to 100.' in text
    assert text.count('name="dim_id" value=""') == 2  # the new one and the empty fields
    assert latest(settings).version == 1
    no_csrf = await client.post(f"/rubrics/{RUBRIC.id}", data=form_of(draft, ""))
    assert no_csrf.status == 403
    create_user(settings, "ivy@example.com", "interviewer")
    await login(client, "ivy@example.com")
    page = await (await client.get(f"/rubrics/{RUBRIC.id}")).text()
    assert 'id="rubric-form"' not in page
    draft = rubric_form.draft_of(RUBRIC)
    interviewer = await client.post(f"/rubrics/{RUBRIC.id}",
                                    data=form_of(draft, form_csrf_token(page)))
    assert interviewer.status == 403 and latest(settings).version == 1


def test_place_reads_back_every_kind_of_problem() -> None:
    draft = rubric_form.draft_of(RUBRIC)
    data, where = rubric_form.definition(RUBRIC.id, draft)
    dim = draft.dimensions[1]
    placed = rubric_form.place(draft, data, where, [
        "title: missing", f"dimension {dim.id!r}.anchors.2: missing",
        f"dimensions[1].id: {dim.id!r} is used twice", "weights: add up to 90, they must add"
        " up to 100", "something new"])
    assert placed.top == {"title": ["The title: missing."], "weights": [
        "The weights: add up to 90, they must add up to 100."]}
    assert placed.dims[(1, "anchor_2")] == [f"The anchor for level 2 of “{dim.title}”: missing."]
    assert placed.dims[(1, "title")][0].startswith(f"“{dim.title}” cannot be saved")
    assert placed.other == ["something new"]
    assert data["dimensions"][0]["weight"] == RUBRIC.dimensions[0].weight
