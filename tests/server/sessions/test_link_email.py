"""Emailing the candidate link from the session's page, to a real SMTP server on loopback
(aiosmtpd): the current link is sent (not re-issued), the result is said on the page and
audited without the link, failures are sentences that keep what was typed, sends are limited
per session, and only whoever scheduled the session (or an admin) holds the link."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncIterator

import pytest

from common.clock import iso, now
from server.sessions.link_email import SENDS_PER_HOUR, USER_SENDS_PER_HOUR
from tests.conftest import audit_actions, create_user, form_csrf_token, login, query
from tests.harness import LEAD, OTHER, Env, EnvFactory
from tests.server.sessions.test_scheduling_page import shown_link
from tests.smtp_server import Served, closed_port, smtp_server

CANDIDATE = "ada@example.org"


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    async with smtp_server(refuse={"nobody@example.org"}) as server:
        yield server


async def mail_env(make_env: EnvFactory, port: int) -> Env:
    return await make_env(smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False,
                          smtp_from="pairlab@example.com")


async def send_form(env: Env, session_id: str, to: str | None = None) -> tuple[int, str]:
    """Press "Send the link by email" (the field as the page filled it, or ``to``); the status
    and the page it leads to."""
    page = await (await env.client.get(f"/sessions/{session_id}")).text()
    typed = re.search(r'id="mail-to" name="to" value="([^"]*)"', page)
    assert typed, "the page has no email field"
    response = await env.client.post(f"/sessions/{session_id}/link/email", data={
        "csrf_token": form_csrf_token(page), "to": typed.group(1) if to is None else to})
    return response.status, await response.text()


async def test_the_current_link_is_emailed_said_on_the_page_and_audited_without_it(
        make_env: EnvFactory, served: Served) -> None:
    env = await mail_env(make_env, served.port)
    created = await env.schedule(candidate_email=CANDIDATE)
    session_id, link = created["session_id"], created["candidate_link"]
    status, page = await send_form(env, session_id)
    assert status == 200  # after the redirect to ?mailed=1
    assert re.search(r'id="mailed-notice" role="status">Sent to ada@example.org at <time', page)
    assert shown_link(page) == link  # not re-issued
    [got] = served.inbox.received
    assert got.rcpt_tos == [CANDIDATE] and link in got.text
    assert got.message["Subject"].strip().startswith("Your interview: Title of demo-task, ")
    assert "Hello Ada Lovelace," in got.text and "How long: 60 minutes" in got.text
    assert await env.open_link(link) == f"/s/{session_id}"  # the emailed link works

    # An address edited on the page before sending.
    status, page = await send_form(env, session_id, to="Grace@Example.org ")
    assert status == 200 and "Sent to grace@example.org at" in page
    assert served.inbox.received[-1].rcpt_tos == ["grace@example.org"]

    rows = query(env.settings, "SELECT detail FROM audit_log WHERE action = 'session.link_email'"
                 " AND object_id = ?", (session_id,))
    assert [r[0] for r in rows] == [
        '{"error": "", "recipient": "ada@example.org", "sent": true}',
        '{"error": "", "recipient": "grace@example.org", "sent": true}']
    everything = " ".join(str(r) for r in query(env.settings, "SELECT * FROM audit_log"))
    assert link.rsplit("/", 1)[1] not in everything
    assert "session.link_reissue" not in audit_actions(env.settings)


async def test_failures_are_sentences_that_keep_the_typed_address(
        make_env: EnvFactory, served: Served) -> None:
    env = await mail_env(make_env, served.port)
    created = await env.schedule(candidate_email=CANDIDATE)
    session_id, link = created["session_id"], created["candidate_link"]

    status, page = await send_form(env, session_id, to="nobody@example.org")
    assert status == 502
    assert "refused the address nobody@example.org (550 5.1.1 no such mailbox here)" in page
    assert 'value="nobody@example.org"' in page and shown_link(page) == link

    status, page = await send_form(env, session_id, to="not an address")
    assert status == 422 and "is not an email address" in page
    assert 'value="not an address"' in page

    # The header injection attack through the field: refused, nothing reaches the server.
    status, page = await send_form(
        env, session_id, to="ada@example.org\r\nBcc: thief@attacker.example")
    assert status == 422 and "is not an email address" in page
    assert served.inbox.received == []
    assert query(env.settings, "SELECT sent_at, error != '' FROM candidate_link_emails") == [
        (None, 1)]  # the refused address reached the server; the two bad ones did not
    assert await env.open_link(link) == f"/s/{session_id}"  # nothing lost: the link still works


async def test_a_server_that_is_down_is_said_on_the_page(make_env: EnvFactory) -> None:
    port = closed_port()
    env = await mail_env(make_env, port)
    created = await env.schedule(candidate_email=CANDIDATE)
    status, page = await send_form(env, created["session_id"])
    assert status == 502
    assert f"Not sent: pairlab could not connect to the SMTP server 127.0.0.1:{port}" in page
    assert shown_link(page) == created["candidate_link"]
    assert query(env.settings, "SELECT detail FROM audit_log WHERE action = 'session.link_email'"
                 )[0][0].startswith('{"error": "Not sent: pairlab could not connect')


async def test_sends_are_limited_per_session(make_env: EnvFactory, served: Served) -> None:
    env = await mail_env(make_env, served.port)
    first = (await env.schedule(candidate_email=CANDIDATE))["session_id"]
    for _ in range(SENDS_PER_HOUR):
        assert (await send_form(env, first))[0] == 200
    status, page = await send_form(env, first)
    assert status == 429
    assert f"already emailed {SENDS_PER_HOUR} times in the last hour" in page
    api = await env.client.post(f"/api/v1/sessions/{first}/link/email", json={},
                                headers={"X-CSRF-Token": env.csrf})
    assert api.status == 429 and int(api.headers["Retry-After"]) > 3000
    assert len(served.inbox.received) == SENDS_PER_HOUR
    other = (await env.schedule(candidate_email=CANDIDATE))["session_id"]  # its own allowance
    sent = await env.client.post(f"/api/v1/sessions/{other}/link/email", json={},
                                 headers={"X-CSRF-Token": env.csrf})
    assert sent.status == 200 and (await sent.json())["sent_to"] == CANDIDATE


async def test_a_second_interviewer_gets_no_link_and_cannot_reissue_or_email_it(
        make_env: EnvFactory, served: Served) -> None:
    """The attack: an interviewer of the session who did not schedule it (blind scoring; the
    link lets its holder enter as the candidate) tries to read, re-issue and email the link."""
    env = await mail_env(make_env, served.port)
    create_user(env.settings, OTHER, "interviewer")
    created = await env.schedule(candidate_email=CANDIDATE, interviewers=[LEAD, OTHER])
    session_id, link = created["session_id"], created["candidate_link"]
    token = link.rsplit("/", 1)[1]

    csrf = await login(env.client, OTHER)
    page = await env.client.get(f"/sessions/{session_id}")
    html = await page.text()
    assert page.status == 200 and token not in html and "/c/" not in html
    assert 'id="candidate-link"' not in html and "/link/email" not in html
    assert "who scheduled the session, or an admin can show, copy, re-issue or email it" in html
    api = await (await env.client.get(f"/api/v1/sessions/{session_id}")).json()
    assert api["candidate_link"] is None and token not in str(api)
    form = form_csrf_token(html)
    for path in (f"/sessions/{session_id}/link", f"/sessions/{session_id}/link/email"):
        refused = await env.client.post(path, data={"csrf_token": form, "to": "me@example.org"},
                                        allow_redirects=False)
        assert refused.status == 403, path
        assert token not in await refused.text()
    for path in (f"/api/v1/sessions/{session_id}/link",
                 f"/api/v1/sessions/{session_id}/link/email"):
        refused = await env.client.post(path, json={} if "email" in path else None,
                                        headers={"X-CSRF-Token": csrf})
        assert refused.status == 403, path
        assert token not in await refused.text()
    assert served.inbox.received == []
    assert await env.open_link(link) == f"/s/{session_id}"  # not re-issued
    assert "session.link_reissue" not in audit_actions(env.settings)

    # An admin may hold it.
    create_user(env.settings, "boss@example.com", "admin")
    await login(env.client, "boss@example.com")
    html = await (await env.client.get(f"/sessions/{session_id}")).text()
    assert shown_link(html) == link and 'action="/sessions/' + session_id + '/link/email"' in html


async def test_without_smtp_the_page_says_how_to_enable_email(make_env: EnvFactory) -> None:
    env = await make_env()
    created = await env.schedule(candidate_email=CANDIDATE)
    html = await (await env.client.get(f"/sessions/{created['session_id']}")).text()
    assert 'id="email-not-configured"' in html and "/link/email" not in html
    for setting in ("PAIRLAB_SMTP_HOST", "PAIRLAB_SMTP_FROM", "PAIRLAB_SMTP_PASSWORD"):
        assert setting in html
    refused = await env.client.post(f"/api/v1/sessions/{created['session_id']}/link/email",
                                    json={}, headers={"X-CSRF-Token": env.csrf})
    assert refused.status == 409
    assert "PAIRLAB_SMTP_HOST" in (await refused.json())["error"]["message"]


async def test_a_blind_sessions_address_is_not_shown_answered_logged_or_audited(
        make_env: EnvFactory, served: Served) -> None:
    """Blind scoring hides the candidate's address from the panel: sending to it says "the
    candidate's address" in the answer, the failure sentence and the audit log."""
    env = await mail_env(make_env, served.port)
    created = await env.schedule(candidate_email="nobody@example.org", blind=True)
    session_id = created["session_id"]
    refused = await env.client.post(f"/api/v1/sessions/{session_id}/link/email", json={},
                                    headers={"X-CSRF-Token": env.csrf})
    assert refused.status == 502
    said = await refused.text()
    assert "refused the address the candidate's address" in said
    session_id = (await env.schedule(candidate_email=CANDIDATE, blind=True))["session_id"]
    sent = await env.client.post(f"/api/v1/sessions/{session_id}/link/email", json={},
                                 headers={"X-CSRF-Token": env.csrf})
    assert sent.status == 200 and (await sent.json())["sent_to"] == "the candidate's address"
    assert served.inbox.received[-1].rcpt_tos == [CANDIDATE]
    everything = " ".join(str(r) for r in query(env.settings, "SELECT * FROM audit_log")
                          + query(env.settings, "SELECT * FROM candidate_link_emails"))
    assert "nobody@example.org" not in everything
    assert CANDIDATE not in everything
    # A typed address is the interviewer's own: it is said as typed.
    typed = await env.client.post(f"/api/v1/sessions/{session_id}/link/email",
                                  json={"to": "grace@example.org"},
                                  headers={"X-CSRF-Token": env.csrf})
    assert (await typed.json())["sent_to"] == "grace@example.org"


async def test_an_address_a_mail_header_would_read_otherwise_is_refused(
        make_env: EnvFactory, served: Served) -> None:
    env = await mail_env(make_env, served.port)
    session_id = (await env.schedule(candidate_email=CANDIDATE))["session_id"]
    for odd in ("a,b@example.org", "a(c)@example.org", "a;b@example.org"):
        response = await env.client.post(f"/api/v1/sessions/{session_id}/link/email",
                                         json={"to": odd}, headers={"X-CSRF-Token": env.csrf})
        said = await response.text()
        assert response.status == 422 and "is not an address pairlab can send mail to" in said, \
            (odd, response.status, said)
    assert served.inbox.received == []


async def test_sends_are_limited_per_person_over_all_their_sessions(
        make_env: EnvFactory, served: Served) -> None:
    env = await mail_env(make_env, served.port)
    session_id = (await env.schedule(candidate_email=CANDIDATE))["session_id"]
    lead = query(env.settings, "SELECT id FROM users WHERE email = ?", (LEAD,))[0][0]
    others = [(await env.schedule(candidate_email=CANDIDATE))["session_id"] for _ in range(6)]
    with sqlite3.connect(env.settings.db_path) as conn:  # as if sent from their other sessions
        conn.executemany(
            "INSERT INTO candidate_link_emails (session_id, recipient, requested_by,"
            " requested_at, sent_at) VALUES (?, ?, ?, ?, ?)",
            [(others[n % 6], CANDIDATE, lead, iso(now()), iso(now()))
             for n in range(USER_SENDS_PER_HOUR - 1)])
    conn.close()
    last = await env.client.post(f"/api/v1/sessions/{session_id}/link/email", json={},
                                 headers={"X-CSRF-Token": env.csrf})
    assert last.status == 200, await last.text()
    refused = await env.client.post(f"/api/v1/sessions/{others[0]}/link/email", json={},
                                    headers={"X-CSRF-Token": env.csrf})
    assert refused.status == 429
    assert f"emailed {USER_SENDS_PER_HOUR} candidate links in the last hour" in \
        await refused.text()
    assert len(served.inbox.received) == 1
