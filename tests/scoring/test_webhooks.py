"""Webhook logic over a real SQLite file: validation, signatures, backoff, the outbox, states."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from scoring import webhooks
from scoring.webhooks import InvalidWebhook, validate_subscription
from server.db import open_migrated
from server.settings import Settings, prepare_data_dir
from tests.conftest import create_user, open_db, query
from tests.fixture_tasks import publish_fake_task

PUBLIC = "93.184.215.14"
T0 = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def resolves_to(*addresses: str) -> Any:
    def resolver(host: str, port: int) -> list[str]:
        return list(addresses)

    return resolver


def never_resolve(host: str, port: int) -> list[str]:
    raise AssertionError("a URL with other problems must not be resolved")


def problems(url: object, events: object, allowed: tuple[str, ...] = (),
             resolver: Any = never_resolve) -> list[str]:
    with pytest.raises(InvalidWebhook) as caught:
        validate_subscription(url, events, allowed, resolver=resolver)
    return caught.value.problems


# ---- validation ---------------------------------------------------------------------------


def test_a_valid_subscription_is_normalised() -> None:
    sub = validate_subscription(
        "https://hooks.example.com/pairlab?team=7",
        ["session.ended", "scorecard.submitted", "session.ended"],
        (),
        resolver=resolves_to(PUBLIC),
    )
    assert sub.url == "https://hooks.example.com/pairlab?team=7"
    assert sub.events == ("scorecard.submitted", "session.ended")  # known order, no duplicates


def test_every_problem_is_listed_at_once() -> None:
    found = problems("ftp://user:hunter2@hooks.example.com/x#frag", ["nope", "session.ended", "x"])
    text = " | ".join(found)
    assert "must start with http:// or https://" in text
    assert "contains credentials" in text
    assert "#fragment" in text
    assert "unknown event(s) 'nope', 'x'" in text and "session.ended" in text
    assert len(found) == 4
    assert "hunter2" not in text


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("", "the URL is empty"),
        ("http:///just/a/path", "has no host"),
        ("https://exa mple.com/", "whitespace"),
        ("https://example.com:0/", "port 0"),
        ("https://example.com:99999/", "cannot be parsed"),
        ("https://under_score.example.com/", "not a valid host name"),
        ("mailto:someone@example.com", "http:// or https://"),
        ("https://example.com/" + "a" * 2100, "longer than 2048"),
    ],
)
def test_url_problems(url: str, expected: str) -> None:
    found = problems(url, ["session.ended"])
    assert any(expected in p for p in found), found


def test_the_url_must_be_a_string() -> None:
    assert problems(["https://example.com"], ["session.ended"]) == ["the URL must be a string"]


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        ([], "choose at least one event"),
        ("session.ended", "must be a list"),
        ([1], "every event must be a string"),
    ],
)
def test_event_problems(events: object, expected: str) -> None:
    found = problems("https://hooks.example.com/", events, resolver=resolves_to(PUBLIC))
    assert len(found) == 1 and expected in found[0]


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "169.254.169.254", "::1",
                                     "::ffff:192.168.0.1", "0.0.0.0"])  # noqa: S104
def test_non_public_addresses_need_the_host_allow_listed(address: str) -> None:
    found = problems("http://hooks.internal/x", ["debrief.ready"], resolver=resolves_to(address))
    assert len(found) == 1
    assert "non-public address" in found[0] and "webhook_allowed_hosts" in found[0]
    allowed = validate_subscription("http://hooks.internal/x", ["debrief.ready"],
                                    ["Hooks.Internal"], resolver=resolves_to(address))
    assert allowed.events == ("debrief.ready",)


def test_one_private_address_among_public_ones_is_refused() -> None:
    found = problems("https://mixed.example.com/", ["session.ended"],
                     resolver=resolves_to(PUBLIC, "10.0.0.5"))
    assert "10.0.0.5" in found[0]


def test_a_host_that_does_not_resolve_is_refused() -> None:
    def broken(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    assert problems("https://nowhere.example.com/", ["session.ended"], resolver=broken) == [
        "the host 'nowhere.example.com' does not resolve"
    ]


# ---- signatures and backoff ---------------------------------------------------------------


def test_sign_is_hmac_sha256_of_the_exact_bytes() -> None:
    body = b'{"at":"x","data":{},"delivery_id":1,"event":"session.ended"}'
    expected = hmac.new(b"whsec_abc", body, hashlib.sha256).hexdigest()
    assert webhooks.sign("whsec_abc", body) == "sha256=" + expected
    # RFC 4231, test case 2
    assert webhooks.sign("Jefe", b"what do ya want for nothing?") == (
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )
    assert webhooks.sign("whsec_abc", body + b" ") != webhooks.sign("whsec_abc", body)


def test_backoff_schedule() -> None:
    assert [webhooks.retry_delay(n) for n in range(1, 7)] == [5, 30, 120, 600, 3600, None]
    assert webhooks.MAX_ATTEMPTS == 6
    assert webhooks.retry_delay(1, 0.5) == 0.5
    assert webhooks.retry_delay(5, 0.5) == 360
    assert webhooks.retry_delay(0) is None


# ---- the outbox over a real database ------------------------------------------------------


@pytest.fixture
def db(settings: Settings) -> Iterator[Any]:
    create_user(settings, "admin@example.com")
    database = open_db(settings)
    yield database
    database.conn.close()


def subscribe(db: Any, *events: str, url: str = "https://hooks.example.com/x") -> tuple[int, str]:
    sub = validate_subscription(url, list(events), (), resolver=resolves_to(PUBLIC))
    with db.atomic():
        webhook, secret = webhooks.create(db, sub, created_by=1)
    return int(webhook["id"]), secret


def test_create_makes_a_fresh_256_bit_secret_that_is_never_listed(db: Any) -> None:
    first, secret = subscribe(db, "session.ended")
    _, other = subscribe(db, "session.ended")
    assert secret.startswith("whsec_") and len(secret) == len("whsec_") + 43  # 32 bytes
    assert secret != other
    listed = webhooks.list_webhooks(db)
    assert [w["id"] for w in listed] == [first, first + 1]
    assert secret not in json.dumps(listed) and "secret" not in listed[0]
    assert listed[0]["events"] == ["session.ended"] and listed[0]["active"]


def test_enqueue_with_no_subscriber_queues_nothing(db: Any) -> None:
    subscribe(db, "debrief.ready")
    with db.atomic():
        assert webhooks.enqueue(db, "session.ended", {"session_id": "s1"}) == 0
    assert query_count(db) == 0


def query_count(db: Any) -> int:
    return int(db.execute("SELECT COUNT(*) FROM webhook_deliveries").fetchone()[0])


def test_enqueue_writes_one_canonical_body_per_active_subscriber(db: Any) -> None:
    ended, _ = subscribe(db, "session.ended", "debrief.ready")
    subscribe(db, "scorecard.submitted")
    gone, _ = subscribe(db, "session.ended")
    also, _ = subscribe(db, "session.ended")
    with db.atomic():
        webhooks.delete(db, gone)
    data = {"session_id": "s1", "task_id": "t", "ended_at": "2030-01-02T03:04:05+00:00",
            "note": "Zoë"}
    with db.atomic():
        assert webhooks.enqueue(db, "session.ended", data, now=T0) == 2
    rows = db.execute_returning_dicts("SELECT * FROM webhook_deliveries ORDER BY id")
    assert [r["webhook_id"] for r in rows] == [ended, also]
    for row in rows:
        assert row["state"] == "pending" and row["attempts"] == 0
        assert row["next_attempt_at"] == row["created_at"] == T0.isoformat(timespec="microseconds")
        expected = {"event": "session.ended", "delivery_id": row["id"],
                    "at": "2030-01-02T03:04:05.000000+00:00", "data": data}
        assert json.loads(row["body"]) == expected
        assert row["body"] == json.dumps(expected, sort_keys=True, separators=(",", ":"))
        assert row["body"].isascii()


@pytest.mark.parametrize(
    ("event", "data", "message"),
    [
        ("session.started", {}, "unknown webhook event"),
        ("session.ended", {"session_id": "s", "candidate_name": "Ada"}, "blind mode"),
        ("debrief.ready", {"scores": [{"candidate_email": "a@b.c"}]}, "candidate_email"),
        ("scorecard.submitted", {"score": float("nan")}, "Out of range float"),
    ],
)
def test_enqueue_refuses_and_queues_nothing(
    db: Any, event: str, data: dict[str, Any], message: str
) -> None:
    subscribe(db, *webhooks.EVENTS)
    with pytest.raises(ValueError, match=message), db.atomic():
        webhooks.enqueue(db, event, data)
    assert query_count(db) == 0


def test_a_rolled_back_change_takes_its_delivery_with_it(db: Any) -> None:
    subscribe(db, "session.ended")
    with pytest.raises(RuntimeError), db.atomic():
        assert webhooks.enqueue(db, "session.ended", {"session_id": "s1"}) == 1
        raise RuntimeError("the change that caused it failed")
    assert query_count(db) == 0


def one_delivery(db: Any, *, now: datetime = T0) -> tuple[int, str]:
    hook, secret = subscribe(db, "scorecard.submitted")
    with db.atomic():
        webhooks.enqueue(db, "scorecard.submitted", {"session_id": "s1"}, now=now)
    return int(db.execute("SELECT MAX(id) FROM webhook_deliveries").fetchone()[0]), secret


def row(db: Any, delivery_id: int) -> dict[str, Any]:
    found: dict[str, Any] = db.execute_returning_dicts(
        "SELECT * FROM webhook_deliveries WHERE id = ?", [delivery_id]
    )[0]
    return found


def test_due_returns_what_to_send_and_hides_the_secret_from_repr(db: Any) -> None:
    delivery, secret = one_delivery(db)
    assert webhooks.due(db, T0 - timedelta(microseconds=1)) == []
    [item] = webhooks.due(db, T0)
    assert (item.id, item.event, item.attempts, item.url) == (
        delivery, "scorecard.submitted", 0, "https://hooks.example.com/x"
    )
    assert item.secret == secret and secret not in repr(item)
    assert item.body == row(db, delivery)["body"]


def test_failures_back_off_then_a_success_delivers(db: Any) -> None:
    delivery, _ = one_delivery(db)
    with db.atomic():
        state = webhooks.record_attempt(db, delivery, 500, "", base_seconds=2, now=T0)
    assert state == "pending"
    r = row(db, delivery)
    assert (r["attempts"], r["last_status"], r["last_error"]) == (1, 500, "HTTP 500")
    assert r["next_attempt_at"] == (T0 + timedelta(seconds=2)).isoformat(timespec="microseconds")
    assert webhooks.due(db, T0 + timedelta(seconds=1)) == []
    assert [d.id for d in webhooks.due(db, T0 + timedelta(seconds=2))] == [delivery]

    later = T0 + timedelta(seconds=2)
    with db.atomic():
        webhooks.record_attempt(db, delivery, None, "cannot connect (Connection refused)",
                                base_seconds=2, now=later)
    r = row(db, delivery)
    assert (r["attempts"], r["last_status"]) == (2, None)
    assert r["last_error"] == "cannot connect (Connection refused)"
    assert r["next_attempt_at"] == (later + timedelta(seconds=12)).isoformat(
        timespec="microseconds"
    )

    with db.atomic():
        assert webhooks.record_attempt(db, delivery, 204, base_seconds=2, now=later) == "delivered"
    r = row(db, delivery)
    assert (r["state"], r["attempts"], r["last_status"], r["last_error"]) == (
        "delivered", 3, 204, ""
    )
    assert r["delivered_at"] and r["next_attempt_at"] is None
    assert webhooks.due(db, T0 + timedelta(days=1)) == []
    with db.atomic():  # a late report changes nothing
        assert webhooks.record_attempt(db, delivery, 500, now=later) == "delivered"
    assert row(db, delivery)["attempts"] == 3


def test_the_last_failed_attempt_fails_the_delivery(db: Any) -> None:
    delivery, _ = one_delivery(db)
    states = []
    for _ in range(webhooks.MAX_ATTEMPTS):
        with db.atomic():
            states.append(webhooks.record_attempt(db, delivery, 503, now=T0))
    assert states == ["pending"] * 5 + ["failed"]
    r = row(db, delivery)
    assert (r["state"], r["attempts"], r["next_attempt_at"]) == ("failed", 6, None)
    assert webhooks.due(db, T0 + timedelta(days=30)) == []


def test_errors_are_kept_short(db: Any) -> None:
    delivery, _ = one_delivery(db)
    with db.atomic():
        webhooks.record_attempt(db, delivery, None, "x\n" * 500, now=T0)
    assert len(row(db, delivery)["last_error"]) == webhooks.MAX_ERROR_LENGTH


def test_delete_fails_pending_deliveries_wipes_the_secret_and_keeps_the_log(db: Any) -> None:
    delivery, _ = one_delivery(db)
    hook = row(db, delivery)["webhook_id"]
    with db.atomic():
        deleted = webhooks.delete(db, hook)
    assert deleted["active"] is False and deleted["disabled_at"]
    r = row(db, delivery)
    assert (r["state"], r["last_error"]) == ("failed", "the webhook was deleted")
    assert db.execute("SELECT secret FROM webhooks WHERE id = ?", [hook]).fetchone()[0] == ""
    assert webhooks.list_webhooks(db) == []
    assert [d["id"] for d in webhooks.deliveries(db, hook)] == [delivery]
    assert webhooks.due(db, T0 + timedelta(days=1)) == []
    with pytest.raises(webhooks.WebhookNotFound), db.atomic():
        webhooks.delete(db, hook)
    with db.atomic():  # a new event no longer reaches it
        assert webhooks.enqueue(db, "scorecard.submitted", {"session_id": "s2"}) == 0


def test_the_delivery_log_lists_newest_first(db: Any, settings: Settings) -> None:
    first, _ = one_delivery(db, now=T0)
    hook = row(db, first)["webhook_id"]
    with db.atomic():
        webhooks.enqueue(db, "scorecard.submitted", {"session_id": "s2"})
    log = webhooks.deliveries(db, hook)
    assert [d["id"] for d in log] == [first + 1, first]
    assert set(log[0]) == {"id", "webhook_id", "event", "state", "attempts", "last_status",
                           "last_error", "created_at", "next_attempt_at", "delivered_at"}
    assert [d["id"] for d in webhooks.recent_deliveries(db, limit=1)] == [first + 1]
    assert query(settings, "SELECT COUNT(*) FROM webhook_deliveries") == [(2,)]


@pytest.mark.slow
def test_ending_a_session_from_the_cli_queues_session_ended(
        run_cli: Any, cli_env: dict[str, str]) -> None:
    """``pairlab session end`` goes through the same end transaction as the server."""
    settings = prepare_data_dir(Settings(data_dir=Path(cli_env["PAIRLAB_DATA_DIR"])))
    publish_fake_task(settings)
    assert run_cli("user", "add", "lead@example.com", "--role", "admin").returncode == 0
    db = open_migrated(settings.db_path)
    try:
        with db.atomic():
            webhooks.create(db, webhooks.validate_subscription(
                "http://127.0.0.1:9/hook", ["session.ended"], ["127.0.0.1"]), 1)
    finally:
        db.conn.close()
    created = run_cli("session", "create", "--task", "demo-task", "--candidate", "Ada",
                      "--interviewer", "lead@example.com", "--json")
    session_id = json.loads(created.stdout)["session_id"]
    ended = run_cli("session", "end", session_id)
    assert ended.returncode == 0, ended.stderr
    db = open_migrated(settings.db_path)
    try:
        rows = db.execute("SELECT event, body FROM webhook_deliveries").fetchall()
    finally:
        db.conn.close()
    assert [r[0] for r in rows] == ["session.ended"]
    assert json.loads(rows[0][1])["data"]["session_id"] == session_id
    assert "Ada" not in rows[0][1]
