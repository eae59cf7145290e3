"""The outcomes page's bulk forms through the real app: the whole table saved with one Save
(only changed rows stored and audited, all or nothing), and pasted CSV previewed (nothing
stored), refused per line (nothing stored) and imported."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from server.http.keys import SETTINGS
from tests.conftest import (
    assert_no_traceback,
    audit_actions,
    form_csrf_token,
    query,
)
from tests.server.scoring.conftest import OutcomeSetup

Client = TestClient[Any, Any]


def stored(client: Client) -> list[tuple[Any, ...]]:
    return query(client.app[SETTINGS], "SELECT session_id, hired, employed_6m, performance,"
                 " note FROM outcomes ORDER BY session_id")


def table(s: OutcomeSetup, token: str, **rows: dict[str, str]) -> list[tuple[str, str]]:
    """The table form as the page sends it: every row, ``rows`` overriding the blanks."""
    data = [("csrf_token", token)]
    for sid, key in ((s.ended, "ended"), (s.later, "later")):
        data.append(("session", sid))
        values = {"hired": "", "employed_6m": "", "performance": "", "note": "",
                  **rows.get(key, {})}
        data += [(f"{name}:{sid}", value) for name, value in values.items()]
    return data


async def test_the_table_saves_every_changed_row_at_once(client: Client,
                                                         setup: OutcomeSetup) -> None:
    token = form_csrf_token(await (await client.get("/outcomes")).text())
    saved = await client.post("/outcomes/table", data=table(
        setup, token, ended={"hired": "yes", "performance": "4", "note": "strong"},
        later={"hired": "no"}))
    assert saved.status == 200 and "Saved 2 changed outcomes." in await saved.text()
    assert stored(client) == sorted([(setup.ended, 1, None, 4.0, "strong"),
                                     (setup.later, 0, None, None, "")])
    # the same table again changes nothing and records nothing more
    before = audit_actions(client.app[SETTINGS]).count("outcome.recorded")
    again = await client.post("/outcomes/table", data=table(
        setup, token, ended={"hired": "yes", "performance": "4.0", "note": "strong"},
        later={"hired": "no"}))
    assert "Saved 0 changed outcomes." in await again.text()
    assert audit_actions(client.app[SETTINGS]).count("outcome.recorded") == before


async def test_one_bad_row_stores_nothing_and_keeps_what_was_typed(client: Client,
                                                                   setup: OutcomeSetup) -> None:
    token = form_csrf_token(await (await client.get("/outcomes")).text())
    refused = await client.post("/outcomes/table", data=table(
        setup, token, ended={"hired": "yes", "note": "typed but not stored"},
        later={"hired": "no", "performance": "4"}))
    text = await refused.text()
    assert refused.status == 422
    assert "1 row has problems; nothing was saved." in text
    assert "Performance: needs hired to be yes (it is no)." in text
    assert 'value="typed but not stored"' in text
    assert_no_traceback(text)
    assert stored(client) == []
    # a session that is not an ended interview is refused, not created
    forged = await client.post("/outcomes/table", data=[
        ("csrf_token", token), ("session", setup.live), (f"hired:{setup.live}", "yes")])
    assert forged.status == 422 and stored(client) == []
    no_csrf = await client.post("/outcomes/table", data=table(setup, "", ended={"hired": "yes"}))
    assert no_csrf.status == 403 and stored(client) == []


async def test_pasted_csv_is_previewed_refused_per_line_and_imported(client: Client,
                                                                     setup: OutcomeSetup) -> None:
    token = form_csrf_token(await (await client.get("/outcomes")).text())
    bad = f"session_id,hired,performance\n{setup.ended},yes,4\n{setup.later},maybe,\n"
    refused = await client.post("/outcomes/paste", data={
        "csrf_token": token, "csv": bad, "action": "import"})
    text = await refused.text()
    assert refused.status == 422
    assert "Line 3, hired: &#39;maybe&#39; is not yes, no or blank." in text
    assert "session_id,hired,performance" in text  # the pasted text is kept
    assert stored(client) == []

    good = bad.replace("maybe", "no")
    preview = await client.post("/outcomes/paste", data={
        "csrf_token": token, "csv": good, "action": "preview"})
    text = await preview.text()
    assert preview.status == 200 and 'id="paste-import"' in text
    assert f'data-session="{setup.ended}" data-field="performance"' in text
    assert "Ada Lovelace" in text
    assert stored(client) == []  # a preview stores nothing

    imported = await client.post("/outcomes/paste", data={
        "csrf_token": token, "csv": good, "action": "import"})
    assert "Imported 2 outcomes from the pasted text." in await imported.text()
    assert stored(client) == sorted([(setup.ended, 1, None, 4.0, ""),
                                     (setup.later, 0, None, None, "")])
    empty = await client.post("/outcomes/paste", data={"csrf_token": token, "csv": " "})
    assert empty.status == 422 and "Paste the CSV text first." in await empty.text()
