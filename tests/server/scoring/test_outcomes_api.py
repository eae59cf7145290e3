"""Outcomes and the scores export through the real app: admin only, JSON API, the CSV import
with row errors, the baseline, the CSV download with filters, and the admin page's forms."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient

from server.db import open_migrated
from server.http.keys import SETTINGS
from tests.conftest import (
    assert_no_traceback,
    audit_actions,
    create_token,
    form_csrf_token,
    query,
)
from tests.scoring.interviews import submit_card
from tests.server.scoring.conftest import OutcomeSetup

Client = TestClient[Any, Any]


def outcome_rows(client: Client) -> list[tuple[Any, ...]]:
    return query(client.app[SETTINGS], "SELECT * FROM outcomes ORDER BY session_id")


async def test_interviewers_and_strangers_are_refused(client: Client, setup: OutcomeSetup) -> None:
    interviewer = {"Authorization": "Bearer " + create_token(client.app[SETTINGS],
                                                             "ivy@example.com")}
    calls = [
        ("GET", f"/api/v1/sessions/{setup.ended}/outcome", {}),
        ("PUT", f"/api/v1/sessions/{setup.ended}/outcome", {"json": {"hired": True}}),
        ("POST", "/api/v1/outcomes/import",
         {"data": f"session_id,hired\n{setup.ended},yes\n",
          "headers": {"Content-Type": "text/csv"}}),
        ("GET", "/api/v1/outcomes/baseline", {}),
        ("PUT", "/api/v1/outcomes/baseline", {"json": {"value": 0.5}}),
        ("GET", "/api/v1/scores.csv", {}),
    ]
    for method, path, kw in calls:
        headers = {**kw.pop("headers", {}), **interviewer}
        response = await client.request(method, path, headers=headers, **kw)
        assert response.status == 403, (method, path)
        assert (await response.json())["error"]["message"] == "Only admins may do this."
    page = await client.get("/outcomes", headers=interviewer)
    assert page.status == 403
    assert "Only admins may do this." in await page.text()
    client.session.cookie_jar.clear()
    anonymous = await client.get("/api/v1/scores.csv")
    assert anonymous.status == 401
    assert outcome_rows(client) == []


async def test_record_and_read_an_outcome(client: Client, setup: OutcomeSetup) -> None:
    url = f"/api/v1/sessions/{setup.ended}/outcome"
    empty = await client.get(url)
    assert await empty.json() == {"session_id": setup.ended, "outcome": None}

    put = await client.put(url, json={"hired": True, "note": "offer made"},
                           headers=setup.headers)
    assert put.status == 200, await put.text()
    later = await client.put(url, json={"employed_6m": True, "performance": 4},
                             headers=setup.headers)
    outcome = (await later.json())["outcome"]
    assert {k: outcome[k] for k in ("hired", "employed_6m", "performance", "note",
                                    "recorded_by")} == {
        "hired": True, "employed_6m": True, "performance": 4.0, "note": "offer made",
        "recorded_by": "admin@example.com"}
    assert (await (await client.get(url)).json())["outcome"] == outcome
    assert audit_actions(client.app[SETTINGS])[-2:] == ["outcome.recorded", "outcome.recorded"]
    detail = query(client.app[SETTINGS],
                   "SELECT object_id, detail FROM audit_log ORDER BY id DESC LIMIT 1")[0]
    assert detail[0] == setup.ended
    assert '"employed_6m": true' in detail[1]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"hired": False}, 422, "employed_6m: cannot be yes while hired is no"),
        ({"performance": 9}, 422, "performance: must be from 1 to 5, not 9"),
        ({"hired": "yes"}, 422, "hired: must be true, false or null (not known)"),
        ({"hird": True}, 422, "Unknown field(s): hird."),
        ({}, 422, "send at least one of hired, employed_6m, performance, note"),
        ("not json", 400, "The request body is not valid JSON."),
    ],
)
async def test_bad_outcomes_are_refused_and_nothing_changes(
    client: Client, setup: OutcomeSetup, body: Any, status: int, message: str
) -> None:
    url = f"/api/v1/sessions/{setup.ended}/outcome"
    await client.put(url, json={"hired": True, "employed_6m": True}, headers=setup.headers)
    before = outcome_rows(client)
    if isinstance(body, str):
        response = await client.put(url, data=body, headers={
            **setup.headers, "Content-Type": "application/json"})
    else:
        response = await client.put(url, json=body, headers=setup.headers)
    assert response.status == status
    assert message in (await response.json())["error"]["message"]
    assert outcome_rows(client) == before


async def test_outcomes_need_an_existing_ended_session_and_a_csrf_token(
    client: Client, setup: OutcomeSetup
) -> None:
    missing = await client.put("/api/v1/sessions/s_nope/outcome", json={"hired": True},
                               headers=setup.headers)
    assert missing.status == 404
    assert (await missing.json())["error"]["code"] == "session_not_found"
    assert (await client.get("/api/v1/sessions/s_nope/outcome")).status == 404
    live = await client.put(f"/api/v1/sessions/{setup.live}/outcome", json={"hired": True},
                            headers=setup.headers)
    assert live.status == 409
    assert "is live; outcomes are recorded once the interview has ended" in (
        await live.json())["error"]["message"]
    no_csrf = await client.put(f"/api/v1/sessions/{setup.ended}/outcome", json={"hired": True})
    assert no_csrf.status == 403
    assert outcome_rows(client) == []


async def test_csv_import_reports_every_row_error_and_stores_nothing(
    client: Client, setup: OutcomeSetup
) -> None:
    await client.put(f"/api/v1/sessions/{setup.ended}/outcome", json={"hired": False},
                     headers=setup.headers)
    before = outcome_rows(client)
    text = (
        "session_id,candidate_email,hired,performance\n"
        f"{setup.later},,yes,4\n"
        ",ada@example.com,yes,11\n"
        f"{setup.live},,no,\n"
    )
    response = await client.post("/api/v1/outcomes/import", data=text.encode(),
                                 headers={**setup.headers, "Content-Type": "text/csv"})
    assert response.status == 422
    body = await response.json()
    assert body["error"]["code"] == "import_rejected"
    assert body["error"]["message"].startswith("The file has 2 problems; nothing was imported.")
    assert body["rows"] == [
        "row 3: performance: must be from 1 to 5, not 11.0",
        "row 4: session_id: the session is live; outcomes are recorded once the interview has"
        " ended",
    ]
    assert outcome_rows(client) == before

    good = await client.post(
        "/api/v1/outcomes/import",
        data=f"session_id,candidate_email,hired,performance\n{setup.later},,yes,4\n"
             ",ada@example.com,yes,3.5\n".encode(),
        headers={**setup.headers, "Content-Type": "text/csv; charset=utf-8"},
    )
    assert good.status == 200, await good.text()
    assert await good.json() == {"imported": 2, "skipped": 0}
    stored = query(client.app[SETTINGS],
                   "SELECT session_id, hired, performance FROM outcomes ORDER BY session_id")
    assert sorted(stored) == sorted([(setup.ended, 1, 3.5), (setup.later, 1, 4.0)])
    assert audit_actions(client.app[SETTINGS]).count("outcome.recorded") == 3


async def test_csv_import_by_api_token_and_bad_bodies(client: Client, setup: OutcomeSetup) -> None:
    bearer = {"Authorization": "Bearer " + create_token(client.app[SETTINGS],
                                                        "admin@example.com")}
    client.session.cookie_jar.clear()
    wrong_type = await client.post("/api/v1/outcomes/import", json={"csv": "x"}, headers=bearer)
    assert wrong_type.status == 400
    assert "Content-Type: text/csv" in (await wrong_type.json())["error"]["message"]
    latin = await client.post("/api/v1/outcomes/import", data="hired\n\xe9\n".encode("latin-1"),
                              headers={**bearer, "Content-Type": "text/csv"})
    assert latin.status == 422
    latin_body = await latin.json()
    assert latin_body["error"]["message"].startswith("The file is not UTF-8 text (line 2")
    assert latin_body["rows"] == []
    ok = await client.post("/api/v1/outcomes/import",
                           data=f"session_id,hired\n{setup.ended},no\n",
                           headers={**bearer, "Content-Type": "text/csv"})
    assert ok.status == 200
    assert await ok.json() == {"imported": 1, "skipped": 0}


async def test_retention_baseline_api(client: Client, setup: OutcomeSetup) -> None:
    url = "/api/v1/outcomes/baseline"
    assert await (await client.get(url)).json() == {"baseline": None}
    for bad in (0, 1.5, "0.8", True):
        refused = await client.put(url, json={"value": bad}, headers=setup.headers)
        assert refused.status == 422
        assert "value: must be" in (await refused.json())["error"]["message"]
    put = await client.put(url, json={"value": 0.75}, headers=setup.headers)
    assert put.status == 200
    baseline = (await (await client.get(url)).json())["baseline"]
    assert {k: baseline[k] for k in ("name", "value", "set_by")} == {
        "name": "retention_6m", "value": 0.75, "set_by": "admin@example.com"}
    assert audit_actions(client.app[SETTINGS])[-1] == "outcome.baseline_set"


async def test_scores_csv_download_with_filters(client: Client, setup: OutcomeSetup) -> None:
    db = open_migrated(client.app[SETTINGS].db_path)
    try:
        with db.atomic():
            submit_card(db, setup.ended, setup.ivy_id, {"debugging": 3})
            submit_card(db, setup.later, setup.ivy_id, {"debugging": 2, "testing": 1})
    finally:
        db.conn.close()
    response = await client.get("/api/v1/scores.csv")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="pairlab-scores.csv"')
    lines = (await response.text()).splitlines()
    assert lines[0].startswith("session_id,session_date,task_id,role,candidate,interviewer,")
    assert len(lines) == 4
    assert "Ada Lovelace" in lines[1]

    filtered = await client.get("/api/v1/scores.csv",
                                params={"role": "data-scientist", "from": "2026-03-10"})
    rows = (await filtered.text()).splitlines()[1:]
    assert len(rows) == 2
    assert all("Bob Baker" in row for row in rows)
    none = await client.get("/api/v1/scores.csv", params={"interviewer": "max@example.com"})
    assert len((await none.text()).splitlines()) == 1

    bad = await client.get("/api/v1/scores.csv", params={"from": "31/12/2026"})
    assert bad.status == 422
    assert (await bad.json())["error"]["message"] == (
        "'from' must be a date like 2026-05-31, not '31/12/2026'")


async def test_outcomes_page_and_its_forms(client: Client, setup: OutcomeSetup) -> None:
    page = await client.get("/outcomes")
    assert page.status == 200
    html = await page.text()
    assert "Ada Lovelace" in html and "Bob Baker" in html
    assert "Cy Live" not in html  # not ended
    token = form_csrf_token(html)

    saved = await client.post(f"/outcomes/sessions/{setup.ended}", allow_redirects=False, data={
        "csrf_token": token, "hired": "yes", "employed_6m": "", "performance": "4",
        "note": "great pairing"})
    assert saved.status == 303
    stored = query(client.app[SETTINGS], "SELECT hired, employed_6m, performance, note"
                   " FROM outcomes WHERE session_id = ?", (setup.ended,))
    assert stored == [(1, None, 4.0, "great pairing")]
    html = await (await client.get("/outcomes")).text()
    assert 'value="great pairing"' in html

    refused = await client.post(f"/outcomes/sessions/{setup.ended}", data={
        "csrf_token": token, "hired": "no", "employed_6m": "yes", "performance": "",
        "note": ""})
    assert refused.status == 422
    text = await refused.text()
    assert "employed_6m: cannot be yes while hired is no" in text
    assert_no_traceback(text)
    assert query(client.app[SETTINGS], "SELECT hired FROM outcomes") == [(1,)]

    form = FormData()
    form.add_field("csrf_token", token)
    form.add_field("file", f"session_id,hired\n{setup.later},perhaps\nnope,yes\n".encode(),
                   filename="outcomes.csv", content_type="text/csv")
    upload = await client.post("/outcomes/import", data=form)
    assert upload.status == 422
    text = await upload.text()
    assert "row 2: hired: &#39;perhaps&#39; is not yes, no or blank" in text
    assert "row 3: session_id: there is no session &#39;nope&#39;" in text
    assert query(client.app[SETTINGS], "SELECT count(*) FROM outcomes") == [(1,)]

    form = FormData()
    form.add_field("csrf_token", token)
    form.add_field("file", f"session_id,hired\n{setup.later},no\n".encode(),
                   filename="outcomes.csv", content_type="text/csv")
    upload = await client.post("/outcomes/import", data=form)
    assert upload.status == 200
    assert "Imported 1 outcome." in await upload.text()

    bad_rate = await client.post("/outcomes/baseline", data={"csrf_token": token, "value": "80"})
    assert bad_rate.status == 422
    assert "value: must be above 0 and at most 1 (a rate), not 80.0" in await bad_rate.text()
    rate = await client.post("/outcomes/baseline", data={"csrf_token": token, "value": "0.8"},
                             allow_redirects=False)
    assert rate.status == 303
    assert "Current: <strong>0.8</strong>" in await (await client.get("/outcomes")).text()
