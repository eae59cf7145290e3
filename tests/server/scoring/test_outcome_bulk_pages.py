"""The outcomes page's bulk forms through the real app: the whole table saved with one Save
(only changed rows stored and audited, all or nothing), and pasted CSV previewed (nothing
stored), refused per line (nothing stored) and imported."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.http.keys import SETTINGS
from tests.conftest import (
    assert_no_traceback,
    audit_actions,
    create_user,
    form_csrf_token,
    login,
    query,
)
from tests.fixture_tasks import publish_fake_task
from tests.scoring.interviews import START, add_session
from tests.server.scoring.test_outcomes_api import Setup

Client = TestClient[Any, Any]


@pytest.fixture
async def ready(client: Client) -> Setup:
    """As test_outcomes_api's ``setup``: an admin logged in, two ended sessions, a live one."""
    settings = client.app[SETTINGS]
    create_user(settings, "admin@example.com", "admin")
    ivy = create_user(settings, "ivy@example.com", "interviewer")
    rev = publish_fake_task(settings)
    ended = add_session(settings, rev, [ivy.id], candidate="Ada Lovelace",
                        email="ada@example.com")
    later = add_session(settings, rev, [ivy.id], candidate="Bob Baker", role="data-scientist",
                        starts_at=START + timedelta(days=10))
    live = add_session(settings, rev, [ivy.id], candidate="Cy Live", state="live")
    headers = {"X-CSRF-Token": await login(client, "admin@example.com")}
    return Setup(headers, ended, later, live, ivy.id)


def stored(client: Client) -> list[tuple[Any, ...]]:
    return query(client.app[SETTINGS], "SELECT session_id, hired, employed_6m, performance,"
                 " note FROM outcomes ORDER BY session_id")


def table(s: Setup, token: str, **rows: dict[str, str]) -> list[tuple[str, str]]:
    """The table form as the page sends it: every row, ``rows`` overriding the blanks."""
    data = [("csrf_token", token)]
    for sid, key in ((s.ended, "ended"), (s.later, "later")):
        data.append(("session", sid))
        values = {"hired": "", "employed_6m": "", "performance": "", "note": "",
                  **rows.get(key, {})}
        data += [(f"{name}:{sid}", value) for name, value in values.items()]
    return data


async def test_the_table_saves_every_changed_row_at_once(client: Client, ready: Setup) -> None:
    token = form_csrf_token(await (await client.get("/outcomes")).text())
    saved = await client.post("/outcomes/table", data=table(
        ready, token, ended={"hired": "yes", "performance": "4", "note": "strong"},
        later={"hired": "no"}))
    assert saved.status == 200 and "Saved 2 changed outcomes." in await saved.text()
    assert stored(client) == sorted([(ready.ended, 1, None, 4.0, "strong"),
                                     (ready.later, 0, None, None, "")])
    # the same table again changes nothing and records nothing more
    before = audit_actions(client.app[SETTINGS]).count("outcome.recorded")
    again = await client.post("/outcomes/table", data=table(
        ready, token, ended={"hired": "yes", "performance": "4.0", "note": "strong"},
        later={"hired": "no"}))
    assert "Saved 0 changed outcomes." in await again.text()
    assert audit_actions(client.app[SETTINGS]).count("outcome.recorded") == before


async def test_one_bad_row_stores_nothing_and_keeps_what_was_typed(client: Client,
                                                                   ready: Setup) -> None:
    token = form_csrf_token(await (await client.get("/outcomes")).text())
    refused = await client.post("/outcomes/table", data=table(
        ready, token, ended={"hired": "yes", "note": "typed but not stored"},
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
        ("csrf_token", token), ("session", ready.live), (f"hired:{ready.live}", "yes")])
    assert forged.status == 422 and stored(client) == []
    no_csrf = await client.post("/outcomes/table", data=table(ready, "", ended={"hired": "yes"}))
    assert no_csrf.status == 403 and stored(client) == []


async def test_pasted_csv_is_previewed_refused_per_line_and_imported(client: Client,
                                                                     ready: Setup) -> None:
    token = form_csrf_token(await (await client.get("/outcomes")).text())
    bad = f"session_id,hired,performance\n{ready.ended},yes,4\n{ready.later},maybe,\n"
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
    assert f'data-session="{ready.ended}" data-field="performance"' in text
    assert "Ada Lovelace" in text
    assert stored(client) == []  # a preview stores nothing

    imported = await client.post("/outcomes/paste", data={
        "csrf_token": token, "csv": good, "action": "import"})
    assert "Imported 2 outcomes from the pasted text." in await imported.text()
    assert stored(client) == sorted([(ready.ended, 1, None, 4.0, ""),
                                     (ready.later, 0, None, None, "")])
    empty = await client.post("/outcomes/paste", data={"csrf_token": token, "csv": " "})
    assert empty.status == 422 and "Paste the CSV text first." in await empty.text()
