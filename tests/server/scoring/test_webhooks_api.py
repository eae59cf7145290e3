"""Webhooks through the real app: admin API and page, and deliveries to a receiver on loopback.

The receiver is a real aiohttp server on 127.0.0.1 that records every request and can fail the
first N; the app's background sender reaches it through its real client session.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient, AiohttpServer

from scoring import webhooks
from server.http.keys import DB
from server.settings import Settings, SettingsError
from tests.conftest import (
    MakeSettings,
    audit_actions,
    create_token,
    create_user,
    form_csrf_token,
    login,
    make_app,
    open_db,
    query,
)
from tests.fixture_tasks import SHARED_ENVS, publish_fake_task

T = TypeVar("T")
ADMIN = "admin@example.com"


@pytest.fixture
def settings(make_settings: MakeSettings) -> Settings:
    return make_settings(
        webhook_allowed_hosts="127.0.0.1", webhook_retry_base_seconds=0.05,
        warm_pool_size=0, environments_dir=str(SHARED_ENVS), continuous_checks=False,
    )


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    base: str
    fail_first: int = 0
    seen: list[Seen] = field(default_factory=list)

    def url(self, path: str = "/hook") -> str:
        return self.base + path

    def at(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]


@pytest.fixture
async def receiver(aiohttp_server: AiohttpServer) -> Receiver:
    """Records every request; ``/hook`` answers 500 to the first ``fail_first`` and 204 after,
    ``/broken`` always 500, ``/redirect`` 302 to ``/target``."""
    state = Receiver(base="")

    async def record(request: web.Request) -> web.Response:
        state.seen.append(Seen(request.path, dict(request.headers), await request.read()))
        if request.path == "/broken":
            return web.Response(status=500)
        if request.path == "/redirect":
            raise web.HTTPFound("/target")
        if request.path == "/hook" and len(state.at("/hook")) <= state.fail_first:
            return web.Response(status=500, text="not yet")
        return web.Response(status=204)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    server = await aiohttp_server(app, host="127.0.0.1")
    state.base = str(server.make_url("")).rstrip("/")
    return state


async def eventually(probe: Callable[[], Awaitable[T | None]], what: str) -> T:
    """Poll ``probe`` until it returns something truthy (a deadline, never a timing claim)."""
    for _ in range(600):
        value = await probe()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def admin_token(settings: Settings) -> str:
    create_user(settings, ADMIN, "admin")
    return create_token(settings, ADMIN)


async def subscribe(
    client: TestClient[Any, Any], token: str, url: str, *events: str
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/webhooks", json={"url": url, "events": list(events)}, headers=bearer(token)
    )
    assert response.status == 201, await response.text()
    created: dict[str, Any] = await response.json()
    return created


async def delivery_log(
    client: TestClient[Any, Any], token: str, webhook_id: int
) -> list[dict[str, Any]]:
    response = await client.get(f"/api/v1/webhooks/{webhook_id}/deliveries", headers=bearer(token))
    assert response.status == 200, await response.text()
    log: list[dict[str, Any]] = (await response.json())["deliveries"]
    return log


def verifies(secret: str, seen: Seen) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), seen.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(seen.headers["X-Pairlab-Signature"], expected)


async def test_signed_delivery_is_retried_until_it_lands_and_the_log_shows_it(
    client: TestClient[Any, Any], admin_token: str, receiver: Receiver, settings: Settings
) -> None:
    receiver.fail_first = 2
    created = await subscribe(client, admin_token, receiver.url(), "scorecard.submitted")
    secret, webhook = created["secret"], created["webhook"]
    assert secret.startswith("whsec_")
    assert webhook["events"] == ["scorecard.submitted"] and webhook["url"] == receiver.url()

    listed = await client.get("/api/v1/webhooks", headers=bearer(admin_token))
    assert secret not in await listed.text()
    assert [w["id"] for w in (await listed.json())["webhooks"]] == [webhook["id"]]

    data = {"session_id": "s-1", "rubric": "ml-engineer", "overall": 3.5}
    queued = await client.app[DB].write(
        lambda d: webhooks.enqueue(d, "scorecard.submitted", data)
    )
    assert queued == 1

    async def three_requests() -> list[Seen] | None:
        hits = receiver.at("/hook")
        return hits if len(hits) >= 3 else None

    hits = await eventually(three_requests, "the third attempt")
    assert len({h.body for h in hits}) == 1  # the same signed bytes every time
    for hit in hits:
        assert verifies(secret, hit)
        assert hit.headers["Content-Type"] == "application/json"
        assert hit.headers["X-Pairlab-Event"] == "scorecard.submitted"
        assert hit.headers["User-Agent"] == "pairlab-webhooks"
        assert "Cookie" not in hit.headers
    body = json.loads(hits[0].body)
    assert body["event"] == "scorecard.submitted" and body["data"] == data
    assert hits[0].headers["X-Pairlab-Delivery"] == str(body["delivery_id"])
    assert not verifies("whsec_wrong", hits[0])

    async def delivered() -> dict[str, Any] | None:
        log = await delivery_log(client, admin_token, webhook["id"])
        return log[0] if log and log[0]["state"] == "delivered" else None

    entry = await eventually(delivered, "the delivery to be logged as delivered")
    assert entry["id"] == body["delivery_id"] and entry["event"] == "scorecard.submitted"
    assert (entry["attempts"], entry["last_status"], entry["last_error"]) == (3, 204, "")
    assert entry["delivered_at"] and entry["next_attempt_at"] is None
    assert len(receiver.at("/hook")) == 3  # nothing more once delivered

    [(detail,)] = query(settings, "SELECT detail FROM audit_log WHERE action = 'webhook.created'")
    assert json.loads(detail)["url"] == receiver.url() and secret not in detail


async def test_a_failing_receiver_shows_status_and_error_in_the_log(
    client: TestClient[Any, Any], admin_token: str, receiver: Receiver
) -> None:
    webhook = (await subscribe(client, admin_token, receiver.url("/broken"), "debrief.ready"))
    hook_id = webhook["webhook"]["id"]
    await client.app[DB].write(lambda d: webhooks.enqueue(d, "debrief.ready", {"session_id": "s"}))

    async def retried() -> dict[str, Any] | None:
        log = await delivery_log(client, admin_token, hook_id)
        return log[0] if log and log[0]["attempts"] >= 2 else None

    entry = await eventually(retried, "a second failed attempt")
    assert entry["state"] == "pending" and entry["next_attempt_at"]
    assert (entry["last_status"], entry["last_error"]) == (500, "HTTP 500")
    assert len(receiver.at("/broken")) >= 2

    page = await client.get("/admin/webhooks", headers=bearer(admin_token))
    html = await page.text()
    assert page.status == 200 and "HTTP 500" in html and "debrief.ready" in html


async def test_redirects_are_not_followed_and_a_loopback_name_is_refused_when_sending(
    client: TestClient[Any, Any], admin_token: str, receiver: Receiver, settings: Settings
) -> None:
    redirecting = await subscribe(client, admin_token, receiver.url("/redirect"), "session.ended")
    # As if DNS changed after validation: "localhost" is not allow-listed (only 127.0.0.1).
    db = open_db(settings)
    try:
        sub = webhooks.Subscription(receiver.url("/via-name").replace("127.0.0.1", "localhost"),
                                    ("session.ended",))
        with db.atomic():
            by_name, _ = webhooks.create(db, sub, created_by=1)
    finally:
        db.conn.close()
    await client.app[DB].write(lambda d: webhooks.enqueue(d, "session.ended", {"session_id": "s"}))

    async def first_attempt(hook_id: int) -> dict[str, Any] | None:
        log = await delivery_log(client, admin_token, hook_id)
        return log[0] if log and log[0]["attempts"] >= 1 else None

    entry = await eventually(lambda: first_attempt(redirecting["webhook"]["id"]), "a redirect")
    assert entry["last_status"] == 302 and "redirects are not followed" in entry["last_error"]
    entry = await eventually(lambda: first_attempt(by_name["id"]), "the refused name")
    assert entry["last_status"] is None and entry["state"] == "pending"
    assert "non-public address" in entry["last_error"]
    assert "webhook_allowed_hosts" in entry["last_error"]
    assert receiver.at("/target") == [] and receiver.at("/via-name") == []


async def test_a_session_that_ends_sends_session_ended_without_the_candidate(
    aiohttp_client: AiohttpClient, settings: Settings, admin_token: str, receiver: Receiver
) -> None:
    publish_fake_task(settings)
    create_user(settings, "lead@example.com", "interviewer")
    client = await aiohttp_client(make_app(settings))
    created = await subscribe(client, admin_token, receiver.url(), "session.ended")
    csrf = await login(client, "lead@example.com")
    scheduled = await client.post(
        "/api/v1/sessions", headers={"X-CSRF-Token": csrf},
        json={"task": "demo-task", "candidate_name": "Ada Lovelace",
              "candidate_email": "ada@example.org"},
    )
    assert scheduled.status == 201, await scheduled.text()
    session_id = (await scheduled.json())["session_id"]
    assert receiver.seen == []  # scheduling is not an event

    end = await client.post(f"/api/v1/sessions/{session_id}/end", headers={"X-CSRF-Token": csrf})
    assert end.status == 200, await end.text()
    ended_at = (await end.json())["session"]["ended_at"]

    async def arrived() -> Seen | None:
        return receiver.at("/hook")[0] if receiver.at("/hook") else None

    hit = await eventually(arrived, "the session.ended delivery")
    assert verifies(created["secret"], hit)
    assert hit.headers["X-Pairlab-Event"] == "session.ended"
    body = json.loads(hit.body)
    assert body["event"] == "session.ended"
    assert body["data"] == {"session_id": session_id, "task_id": "demo-task", "ended_at": ended_at}
    assert b"Ada" not in hit.body and b"ada@example.org" not in hit.body


async def test_deliveries_queued_while_the_server_was_down_are_sent_at_start(
    aiohttp_client: AiohttpClient, settings: Settings, receiver: Receiver
) -> None:
    create_user(settings, ADMIN, "admin")
    db = open_db(settings)
    try:
        with db.atomic():
            sub = webhooks.Subscription(receiver.url(), ("debrief.ready",))
            _, secret = webhooks.create(db, sub, created_by=1)
            webhooks.enqueue(db, "debrief.ready", {"session_id": "s-9"})
    finally:
        db.conn.close()
    await aiohttp_client(make_app(settings))

    async def arrived() -> Seen | None:
        return receiver.at("/hook")[0] if receiver.at("/hook") else None

    hit = await eventually(arrived, "the queued delivery")
    assert verifies(secret, hit) and json.loads(hit.body)["data"] == {"session_id": "s-9"}


async def test_only_admins(client: TestClient[Any, Any], settings: Settings) -> None:
    create_user(settings, "int@example.com", "interviewer")
    token = create_token(settings, "int@example.com")
    for method, path, body in [
        ("POST", "/api/v1/webhooks", {"url": "http://127.0.0.1:9/x", "events": ["session.ended"]}),
        ("GET", "/api/v1/webhooks", None),
        ("DELETE", "/api/v1/webhooks/1", None),
        ("GET", "/api/v1/webhooks/1/deliveries", None),
    ]:
        response = await client.request(method, path, json=body, headers=bearer(token))
        assert response.status == 403, (method, path)
        assert (await response.json())["error"]["code"] == "forbidden"
        anonymous = await client.request(method, path, json=body)
        assert anonymous.status == 401, (method, path)
    page = await client.get("/admin/webhooks", headers=bearer(token))
    assert page.status == 403
    assert query(settings, "SELECT COUNT(*) FROM webhooks") == [(0,)]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"url": "ftp://127.0.0.1/x", "events": ["session.ended"]},
         ["must start with http:// or https://"]),
        ({"url": "http://alice:hunter2@127.0.0.1/x", "events": ["session.ended"]},
         ["contains credentials"]),
        ({"url": "http://localhost:9/x", "events": ["session.ended"]},
         ["non-public address", "webhook_allowed_hosts"]),
        ({"url": "http://127.0.0.1:9/x", "events": ["session.ended", "nope"]},
         ["unknown event(s) 'nope'", "scorecard.submitted, session.ended, debrief.ready"]),
        ({"url": "gopher://h", "events": []}, ["http:// or https://", "at least one event"]),
        ({"url": "http://127.0.0.1:9/x", "events": "session.ended"}, ["'events' must be a list"]),
        ({"url": "http://127.0.0.1:9/x"}, ["Missing field(s): events"]),
        ({"url": "http://127.0.0.1:9/x", "events": ["session.ended"], "secret": "mine"},
         ["Unknown field(s): secret"]),
    ],
)
async def test_bad_subscriptions_are_refused_and_nothing_is_stored(
    client: TestClient[Any, Any], admin_token: str, settings: Settings,
    body: dict[str, Any], expected: list[str],
) -> None:
    response = await client.post("/api/v1/webhooks", json=body, headers=bearer(admin_token))
    assert response.status == 422
    error = (await response.json())["error"]
    assert error["code"] == "invalid"
    for text in expected:
        assert text in error["message"], error["message"]
    assert "hunter2" not in error["message"]
    assert query(settings, "SELECT COUNT(*) FROM webhooks") == [(0,)]
    assert "webhook.created" not in audit_actions(settings)


async def test_delete_stops_deliveries_keeps_the_log_and_is_audited(
    client: TestClient[Any, Any], admin_token: str, receiver: Receiver, settings: Settings
) -> None:
    created = await subscribe(client, admin_token, receiver.url("/never"), "session.ended")
    hook_id = created["webhook"]["id"]
    gone = await client.delete(f"/api/v1/webhooks/{hook_id}", headers=bearer(admin_token))
    assert gone.status == 200 and (await gone.json()) == {"deleted": hook_id}
    listed = await client.get("/api/v1/webhooks", headers=bearer(admin_token))
    assert (await listed.json())["webhooks"] == []
    assert await client.app[DB].write(
        lambda d: webhooks.enqueue(d, "session.ended", {"session_id": "s"})
    ) == 0
    assert await delivery_log(client, admin_token, hook_id) == []
    again = await client.delete(f"/api/v1/webhooks/{hook_id}", headers=bearer(admin_token))
    assert again.status == 404
    for path in ("/api/v1/webhooks/999/deliveries", "/api/v1/webhooks/x/deliveries"):
        missing = await client.get(path, headers=bearer(admin_token))
        assert missing.status == 404 and (await missing.json())["error"]["code"] == "not_found"
    assert audit_actions(settings)[-2:] == ["webhook.created", "webhook.deleted"]
    assert query(settings, "SELECT secret FROM webhooks WHERE id = ?", (hook_id,)) == [("",)]


async def test_admin_page_creates_shows_the_secret_once_and_deletes(
    client: TestClient[Any, Any], settings: Settings, receiver: Receiver
) -> None:
    create_user(settings, ADMIN, "admin")
    await login(client, ADMIN)
    page = await client.get("/admin/webhooks")
    assert page.status == 200
    html = await page.text()
    csrf = form_csrf_token(html)
    assert "No webhooks yet." in html and 'value="debrief.ready"' in html

    refused = await client.post("/admin/webhooks", data={
        "csrf_token": csrf, "url": "ftp://127.0.0.1/x", "events": "session.ended"})
    assert refused.status == 422
    assert "http:// or https://" in await refused.text()

    no_csrf = await client.post("/admin/webhooks", data={
        "url": receiver.url(), "events": "session.ended"})
    assert no_csrf.status == 403

    added = await client.post("/admin/webhooks", data=[
        ("csrf_token", csrf), ("url", receiver.url()), ("events", "session.ended"),
        ("events", "debrief.ready")])
    html = await added.text()
    assert added.status == 200
    secret = html.split('id="new-secret">', 1)[1].split("<", 1)[0]
    assert secret.startswith("whsec_")
    [(stored, events)] = query(settings, "SELECT secret, events FROM webhooks")
    assert stored == secret and json.loads(events) == ["session.ended", "debrief.ready"]
    again = await client.get("/admin/webhooks")
    assert secret not in await again.text() and receiver.url() in await again.text()

    [(hook_id,)] = query(settings, "SELECT id FROM webhooks")
    deleted = await client.post(f"/admin/webhooks/{hook_id}/delete",
                                data={"csrf_token": csrf}, allow_redirects=False)
    assert deleted.status == 303 and deleted.headers["Location"] == "/admin/webhooks"
    assert "No webhooks yet." in await (await client.get("/admin/webhooks")).text()


def test_webhook_settings(make_settings: MakeSettings) -> None:
    settings = make_settings(webhook_allowed_hosts=" Hooks.Internal, [::1] ,,127.0.0.1")
    assert settings.allowed_webhook_hosts == {"hooks.internal", "::1", "127.0.0.1"}
    assert make_settings().allowed_webhook_hosts == frozenset()
    assert make_settings().webhook_retry_base_seconds == 5
    for bad in (0, -1, 3601):
        with pytest.raises(SettingsError, match="webhook_retry_base_seconds"):
            make_settings(webhook_retry_base_seconds=bad)


async def test_scorecards_send_scorecard_submitted_then_debrief_ready(
    aiohttp_client: AiohttpClient, settings: Settings, admin_token: str, receiver: Receiver
) -> None:
    publish_fake_task(settings, "pipe-task", kind="pipeline-bug")
    tokens = {}
    for who in ("alice", "bob"):
        create_user(settings, f"{who}@example.com", "interviewer")
        tokens[who] = create_token(settings, f"{who}@example.com")
    client = await aiohttp_client(make_app(settings))
    created = await subscribe(client, admin_token, receiver.url(), "scorecard.submitted",
                              "debrief.ready")
    scheduled = await client.post("/api/v1/sessions", headers=bearer(tokens["alice"]), json={
        "task": "pipe-task", "candidate_name": "Ada Lovelace", "blind": True,
        "interviewers": ["alice@example.com", "bob@example.com"]})
    session_id = (await scheduled.json())["session_id"]
    mine = await (await client.get(f"/api/v1/sessions/{session_id}/scorecards/mine",
                                   headers=bearer(tokens["alice"]))).json()
    for who, level in (("alice", 4), ("bob", 2)):
        card = {"scores": {d["id"]: {"level": level, "evidence": "seen"}
                           for d in mine["dimensions"]},
                "recommendation": "yes", "summary": "ok"}
        response = await client.post(f"/api/v1/sessions/{session_id}/scorecards/mine/submit",
                                      json=card, headers=bearer(tokens[who]))
        assert response.status == 200, await response.text()

    async def arrived() -> list[Seen] | None:
        hits = receiver.at("/hook")
        return hits if len(hits) == 3 else None

    hits = await eventually(arrived, "three deliveries")
    assert all(verifies(created["secret"], hit) for hit in hits)
    bodies = sorted((json.loads(h.body) for h in hits), key=lambda b: b["delivery_id"])
    assert [b["event"] for b in bodies] == ["scorecard.submitted", "scorecard.submitted",
                                            "debrief.ready"]
    assert [b["data"]["interviewer"] for b in bodies[:2]] == ["alice@example.com",
                                                             "bob@example.com"]
    assert [b["data"]["weighted_score"] for b in bodies] == [4.0, 2.0, 3.0]
    assert bodies[2]["data"]["scorecards"] == 2
    assert not any(b"Ada" in h.body for h in hits)


async def test_a_failed_delivery_can_be_sent_again(
    client: TestClient[Any, Any], admin_token: str, receiver: Receiver, settings: Settings
) -> None:
    created = await subscribe(client, admin_token, receiver.url(), "session.ended")

    def fail_it(d: Any) -> int:
        webhooks.enqueue(d, "session.ended", {"session_id": "s-failed"})
        (delivery_id,) = d.execute("SELECT MAX(id) FROM webhook_deliveries").fetchone()
        d.execute("UPDATE webhook_deliveries SET state = 'failed', attempts = ?,"
                  " next_attempt_at = NULL, last_error = 'HTTP 500' WHERE id = ?",
                  [webhooks.MAX_ATTEMPTS, delivery_id])
        return int(delivery_id)

    delivery_id = await client.app[DB].write(fail_it)
    base = f"/api/v1/webhooks/{created['webhook']['id']}/deliveries"
    response = await client.post(f"{base}/{delivery_id}/redeliver", headers=bearer(admin_token))
    assert response.status == 202, await response.text()

    async def arrived() -> Seen | None:
        return receiver.at("/hook")[0] if receiver.at("/hook") else None

    hit = await eventually(arrived, "the delivery sent again")
    assert verifies(created["secret"], hit) and hit.headers["X-Pairlab-Delivery"] == str(
        delivery_id)

    async def delivered() -> dict[str, Any] | None:
        log = await delivery_log(client, admin_token, created["webhook"]["id"])
        return log[0] if log[0]["state"] == "delivered" else None

    entry = await eventually(delivered, "the log to show it delivered")
    assert entry["attempts"] == 1
    again = await client.post(f"{base}/{delivery_id}/redeliver", headers=bearer(admin_token))
    assert again.status == 409 and "only failed deliveries" in (await again.json())[
        "error"]["message"]
    missing = await client.post(f"{base}/99999/redeliver", headers=bearer(admin_token))
    assert missing.status == 404
    assert "webhook.redelivered" in audit_actions(settings)
