"""A new rubric made on the Rubrics page's form (no JSON): from scratch, with its id made from
the title; from a copy of a built-in rubric; refused with the problems next to their fields and
the typed text kept, nothing stored; the JSON form still there for power users."""

from __future__ import annotations

import json
from typing import Any

from aiohttp.test_utils import TestClient

from scoring import rubric_form
from scoring.rubrics import builtin_rubrics, get_rubric, list_rubrics
from server.db import open_migrated
from server.http.keys import SETTINGS
from server.settings import Settings
from tests.conftest import create_user, form_csrf_token, login
from tests.server.scoring.test_rubric_form_page import form_of

Client = TestClient[Any, Any]
BUILTIN = builtin_rubrics()[0]


def anchors(what: str) -> dict[int, str]:
    return {n: f"Level {n}: {what} as seen at this level" for n in (1, 2, 3, 4)}


def draft(title: str) -> rubric_form.RubricDraft:
    return rubric_form.RubricDraft(
        title, "For the serving-layer tasks.", ["serving-feature"], ["mlops-engineer"],
        [rubric_form.DimensionDraft("", "Reads the traces", "Latency", "60",
                                    anchors("reads traces")),
         rubric_form.DimensionDraft("", "Rolls out safely", "", "40", anchors("rolls out"))])


def stored(settings: Settings) -> dict[str, int]:
    db = open_migrated(settings.db_path)
    try:
        return {r.id: r.version for r in list_rubrics(db)}
    finally:
        db.conn.close()


async def as_admin(client: Client) -> tuple[Settings, str]:
    settings = client.app[SETTINGS]
    create_user(settings, "admin@example.com", "admin")
    await login(client, "admin@example.com")
    page = await client.get("/rubrics")
    html = await page.text()
    assert 'id="rubric-form"' in html and 'id="rubric-id"' in html
    return settings, form_csrf_token(html)


async def test_a_rubric_is_created_from_the_form_with_an_id_from_its_title(
        client: Client) -> None:
    settings, token = await as_admin(client)
    made = await client.post("/rubrics", data=[("id", ""), *form_of(draft("Serving: on call!"),
                                                                      token)],
                             allow_redirects=False)
    assert made.status == 303, await made.text()
    assert made.headers["Location"] == "/rubrics/serving-on-call?saved=1"
    db = open_migrated(settings.db_path)
    try:
        rubric = get_rubric(db, "serving-on-call")
        rows = db.execute("SELECT actor, action FROM audit_log WHERE object_id = ?",
                          ["serving-on-call"]).fetchall()
    finally:
        db.conn.close()
    assert (rubric.version, rubric.title, rubric.kinds, rubric.roles) == (
        1, "Serving: on call!", ("serving-feature",), ("mlops-engineer",))
    assert [(d.id, d.title, d.weight) for d in rubric.dimensions] == [
        ("reads-the-traces", "Reads the traces", 60), ("rolls-out-safely", "Rolls out safely", 40)]
    assert rubric.dimensions[1].anchors[3] == "Level 3: rolls out as seen at this level"
    assert rows == [("admin@example.com", "rubric.created")]
    page = await client.get("/rubrics/serving-on-call?saved=1")
    assert 'id="rubric-created"' in await page.text()
    # The same title again: a second id, never an overwrite of the first rubric.
    again = await client.post("/rubrics", data=[("id", ""), *form_of(draft("Serving: on call!"),
                                                                       token)],
                              allow_redirects=False)
    assert again.headers["Location"] == "/rubrics/serving-on-call-2?saved=1"
    assert stored(settings)["serving-on-call"] == 1


async def test_a_copy_of_a_builtin_rubric_prefills_the_form(client: Client) -> None:
    settings, token = await as_admin(client)
    page = await client.get(f"/rubrics?from={BUILTIN.id}")
    html = await page.text()
    assert f'value="{BUILTIN.title} (copy)"' in html
    for d in BUILTIN.dimensions:
        assert f'value="{d.id}"' in html and d.anchors[4] in html
    copy = rubric_form.draft_of(BUILTIN)
    copy.title = "Our pipeline rubric"
    made = await client.post("/rubrics", data=[("id", "our-pipeline"), *form_of(copy, token)],
                             allow_redirects=False)
    assert made.status == 303, await made.text()
    after = stored(settings)
    assert after["our-pipeline"] == 1 and after[BUILTIN.id] == 1
    missing = await client.get("/rubrics?from=no-such-rubric")
    assert missing.status == 404
    assert "no-such-rubric" in await missing.text()


async def test_problems_are_placed_by_field_and_nothing_is_stored(client: Client) -> None:
    settings, token = await as_admin(client)
    before = stored(settings)
    bad = draft("Half a rubric")
    bad.dimensions[1].anchors[2] = "short"
    bad.dimensions[1].weight = "30"
    sent = await client.post("/rubrics", data=[("id", "Not An Id"), *form_of(bad, token)])
    assert sent.status == 422
    html = await sent.text()
    assert 'id="err-id"' in html and "The id:" in html
    assert "The anchor for level 2 of “Rolls out safely”" in html
    assert 'id="err-weights"' in html
    assert 'value="Half a rubric"' in html and 'value="Not An Id"' in html
    assert "Level 3: rolls out as seen at this level" in html  # what was typed is kept
    # An id that is taken: refused at the id, the existing rubric untouched.
    taken = await client.post("/rubrics", data=[("id", BUILTIN.id),
                                                *form_of(draft("Another"), token)])
    assert taken.status == 422
    assert "exists already" in await taken.text()
    assert stored(settings) == before


async def test_the_json_form_still_creates(client: Client) -> None:
    settings, token = await as_admin(client)
    data, _ = rubric_form.definition("from-json", draft("From JSON"))
    made = await client.post("/rubrics", data={"csrf_token": token,
                                               "definition": json.dumps(data)},
                             allow_redirects=False)
    assert made.status == 303, await made.text()
    assert stored(settings)["from-json"] == 1
