"""Webhooks: admin subscriptions, the signed outbox of deliveries, and the retry schedule.

Plain functions over a ``sqlite_utils.Database`` (run on the server's writer or a reader
thread); no aiohttp. Code that changes something calls :func:`enqueue` inside its own write
transaction, so a delivery exists exactly when the change that caused it committed. The webhook
sender (``scoring/webhook_sender.py``) POSTs what :func:`due` returns and reports each
attempt with :func:`record_attempt`.

A delivery's body is canonical JSON (sorted keys, no spaces, ASCII)::

    {"at": "...", "data": {...}, "delivery_id": 7, "event": "session.ended"}

stored as the exact text that is signed: ``X-Pairlab-Signature: sha256=<hex>`` is HMAC-SHA256 of
the body's bytes keyed with the UTF-8 bytes of the subscription's secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlite_utils

from common import clock
from common.errors import Conflict, NotFound
from scoring.webhook_validation import (
    EVENTS,
    InvalidWebhook,
    Subscription,
    validate_subscription,
)

__all__ = [
    "EVENTS",
    "MAX_ATTEMPTS",
    "Due",
    "InvalidWebhook",
    "RedeliveryRefused",
    "Subscription",
    "WebhookNotFound",
    "canonical_body",
    "create",
    "deliveries",
    "delete",
    "due",
    "enqueue",
    "redeliver",
    "get",
    "list_webhooks",
    "record_attempt",
    "recent_deliveries",
    "retry_delay",
    "sign",
    "validate_subscription",
]

BACKOFF_STEPS = (1, 6, 24, 120, 720)
"""Multiples of the base delay between attempts: 5 s, 30 s, 2 min, 10 min, 1 h at base 5 s."""
MAX_ATTEMPTS = len(BACKOFF_STEPS) + 1
DEFAULT_BASE_SECONDS = 5.0
MAX_ERROR_LENGTH = 200
BLIND_KEYS = frozenset({"candidate_name", "candidate_email"})
"""Never sent to a webhook (blind scoring): :func:`enqueue` refuses data carrying them."""
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret


class WebhookNotFound(NotFound):
    """404: no active webhook has that id."""


@dataclass(frozen=True)
class Due:
    """A delivery to attempt now, with where to send it and the key to sign it with."""

    id: int
    webhook_id: int
    event: str
    body: str
    attempts: int
    url: str
    secret: str = field(repr=False)


# ---- subscriptions ------------------------------------------------------------------------


def _public(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "url": row["url"],
        "events": json.loads(row["events"]),
        "created_by": row["created_by"],
        "created_at": row["created_at"],
        "disabled_at": row["disabled_at"],
        "active": row["disabled_at"] is None,
    }


def create(
    db: sqlite_utils.Database, subscription: Subscription, created_by: int,
    *, now: datetime | None = None,
) -> tuple[dict[str, Any], str]:
    """Store a subscription with a fresh 256-bit secret; returns it and the secret (the only
    time the secret leaves the database)."""
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    cursor = db.execute(
        "INSERT INTO webhooks (url, events, secret, created_by, created_at) VALUES (?, ?, ?, ?, ?)",
        [subscription.url, json.dumps(list(subscription.events)), secret, created_by,
         clock.iso(now or clock.now())],
    )
    webhook = get(db, int(cursor.lastrowid or 0))
    if webhook is None:  # pragma: no cover - just inserted in this transaction
        raise WebhookNotFound("The new webhook vanished.")
    return webhook, secret


def get(db: sqlite_utils.Database, webhook_id: int) -> dict[str, Any] | None:
    """A subscription (deleted ones too), without its secret."""
    rows = db.execute_returning_dicts("SELECT * FROM webhooks WHERE id = ?", [webhook_id])
    return _public(rows[0]) if rows else None


def list_webhooks(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """Active subscriptions, without their secrets."""
    rows = db.execute_returning_dicts(
        "SELECT * FROM webhooks WHERE disabled_at IS NULL ORDER BY id"
    )
    return [_public(r) for r in rows]


def delete(
    db: sqlite_utils.Database, webhook_id: int, *, now: datetime | None = None
) -> dict[str, Any]:
    """Disable a subscription: its secret is wiped, its pending deliveries fail, its log stays."""
    webhook = get(db, webhook_id)
    if webhook is None or not webhook["active"]:
        raise WebhookNotFound(f"There is no webhook with id {webhook_id}.")
    at = clock.iso(now or clock.now())
    db.execute("UPDATE webhooks SET disabled_at = ?, secret = '' WHERE id = ?", [at, webhook_id])
    db.execute(
        "UPDATE webhook_deliveries SET state = 'failed', next_attempt_at = NULL,"
        " last_error = 'the webhook was deleted' WHERE webhook_id = ? AND state = 'pending'",
        [webhook_id],
    )
    return {**webhook, "disabled_at": at, "active": False}


# ---- the outbox ---------------------------------------------------------------------------


def canonical_body(event: str, delivery_id: int, at: str, data: Mapping[str, Any]) -> str:
    """The exact text sent and signed (``ValueError``/``TypeError`` for data JSON cannot hold)."""
    return json.dumps(
        {"event": event, "delivery_id": delivery_id, "at": at, "data": data},
        sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False,
    )


def _blind_keys(value: Any) -> set[str]:
    """Keys naming the candidate anywhere in ``value`` (nested objects and lists too)."""
    found: set[str] = set()
    if isinstance(value, Mapping):
        found |= {k for k in value if k in BLIND_KEYS}
        items: Iterable[Any] = value.values()
    elif isinstance(value, list | tuple):
        items = value
    else:
        return found
    for item in items:
        found |= _blind_keys(item)
    return found


def enqueue(
    db: sqlite_utils.Database, event: str, data: dict[str, Any], *, now: datetime | None = None
) -> int:
    """Queue ``event`` for every active subscription to it, inside the caller's transaction;
    returns how many deliveries were queued (0 when nobody subscribes). Raises ``ValueError`` for
    an unknown event, candidate identity in ``data`` (blind mode) or data JSON cannot hold, so
    the caller's transaction rolls back rather than send something wrong."""
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event!r}")
    leaked = _blind_keys(data)
    if leaked:
        raise ValueError(f"webhook data may not carry {', '.join(sorted(leaked))} (blind mode)")
    at = clock.iso(now or clock.now())
    canonical_body(event, 0, at, data)  # fails early, even with no subscriber
    hooks = [row[0] for row in db.execute(
        "SELECT id FROM webhooks WHERE disabled_at IS NULL AND EXISTS"
        " (SELECT 1 FROM json_each(webhooks.events) WHERE json_each.value = ?) ORDER BY id",
        [event],
    ).fetchall()]
    with db.atomic():  # a savepoint in the caller's transaction: never a row without its body
        for webhook_id in hooks:
            cursor = db.execute(
                "INSERT INTO webhook_deliveries (webhook_id, event, body, next_attempt_at,"
                " created_at) VALUES (?, ?, '', ?, ?)",
                [webhook_id, event, at, at],
            )
            delivery_id = int(cursor.lastrowid or 0)
            db.execute(
                "UPDATE webhook_deliveries SET body = ? WHERE id = ?",
                [canonical_body(event, delivery_id, at, data), delivery_id],
            )
    return len(hooks)


def sign(secret: str, body: bytes) -> str:
    """``sha256=`` + hex HMAC-SHA256 of ``body`` keyed with the secret's UTF-8 bytes."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def retry_delay(attempts: int, base_seconds: float = DEFAULT_BASE_SECONDS) -> float | None:
    """Seconds to wait after ``attempts`` failed attempts, or None once they are used up."""
    if attempts < 1 or attempts >= MAX_ATTEMPTS:
        return None
    return base_seconds * BACKOFF_STEPS[attempts - 1]


def due(db: sqlite_utils.Database, now: datetime, limit: int = 20) -> list[Due]:
    """Pending deliveries of active subscriptions whose next attempt is at or before ``now``."""
    rows = db.execute(
        "SELECT d.id, d.webhook_id, d.event, d.body, d.attempts, w.url, w.secret"
        " FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id"
        " WHERE d.state = 'pending' AND d.next_attempt_at <= ? AND w.disabled_at IS NULL"
        " ORDER BY d.next_attempt_at, d.id LIMIT ?",
        [clock.iso(now), limit],
    ).fetchall()
    return [Due(*row) for row in rows]


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_ERROR_LENGTH else text[: MAX_ERROR_LENGTH - 1] + "…"


def record_attempt(
    db: sqlite_utils.Database,
    delivery_id: int,
    status: int | None,
    error: str = "",
    *,
    base_seconds: float = DEFAULT_BASE_SECONDS,
    now: datetime | None = None,
) -> str:
    """Record one attempt (``status`` None when no response came; ``error`` short and free of
    secrets): 2xx delivers; otherwise the retry is scheduled, or the delivery fails after
    ``MAX_ATTEMPTS``. Returns the new state; a delivery no longer pending is left alone."""
    row = db.execute(
        "SELECT attempts, state FROM webhook_deliveries WHERE id = ?", [delivery_id]
    ).fetchone()
    if row is None:
        raise LookupError(f"there is no webhook delivery {delivery_id}")
    if row[1] != "pending":
        return str(row[1])
    attempts, moment = int(row[0]) + 1, now or clock.now()
    if status is not None and 200 <= status < 300:
        db.execute(
            "UPDATE webhook_deliveries SET state = 'delivered', attempts = ?, last_status = ?,"
            " last_error = '', next_attempt_at = NULL, delivered_at = ? WHERE id = ?",
            [attempts, status, clock.iso(moment), delivery_id],
        )
        return "delivered"
    delay = retry_delay(attempts, base_seconds)
    state = "failed" if delay is None else "pending"
    next_at = None if delay is None else clock.iso(moment + timedelta(seconds=delay))
    db.execute(
        "UPDATE webhook_deliveries SET state = ?, attempts = ?, last_status = ?, last_error = ?,"
        " next_attempt_at = ? WHERE id = ?",
        [state, attempts, status, _short(error or f"HTTP {status}"), next_at, delivery_id],
    )
    return state


class RedeliveryRefused(Conflict):
    """409: the delivery has not failed, or its webhook was deleted."""


def redeliver(db: sqlite_utils.Database, webhook_id: int, delivery_id: int,
              now: datetime | None = None) -> dict[str, Any]:
    """Send a failed delivery again (the same body and signature; a fresh backoff schedule).
    ``NotFound`` if there is no such delivery of that webhook, ``RedeliveryRefused`` if it
    has not failed or its webhook was deleted."""
    row = db.execute(
        "SELECT d.state, w.disabled_at FROM webhook_deliveries d JOIN webhooks w"
        " ON w.id = d.webhook_id WHERE d.id = ? AND d.webhook_id = ?",
        [delivery_id, webhook_id]).fetchone()
    if row is None:
        raise NotFound(f"There is no delivery {delivery_id} of webhook {webhook_id}.")
    if row[1] is not None:
        raise RedeliveryRefused("The delivery cannot be sent again: its webhook was deleted.")
    if row[0] != "failed":
        raise RedeliveryRefused(f"The delivery cannot be sent again: it is {row[0]}; only failed"
                                " deliveries are sent again.")
    db.execute("UPDATE webhook_deliveries SET state = 'pending', attempts = 0,"
               " next_attempt_at = ? WHERE id = ?", [clock.iso(now or clock.now()), delivery_id])
    return db.execute_returning_dicts(
        f"SELECT {_LOG_COLUMNS} FROM webhook_deliveries WHERE id = ?",  # noqa: S608
        [delivery_id])[0]


_LOG_COLUMNS = (
    "id, webhook_id, event, state, attempts, last_status, last_error, created_at,"
    " next_attempt_at, delivered_at"
)


def deliveries(
    db: sqlite_utils.Database, webhook_id: int, limit: int = 100
) -> list[dict[str, Any]]:
    """The delivery log of one subscription, newest first."""
    return db.execute_returning_dicts(
        f"SELECT {_LOG_COLUMNS} FROM webhook_deliveries WHERE webhook_id = ?"  # noqa: S608
        " ORDER BY id DESC LIMIT ?",
        [webhook_id, limit],
    )


def recent_deliveries(db: sqlite_utils.Database, limit: int = 50) -> list[dict[str, Any]]:
    """The latest deliveries of every subscription, newest first (the admin page's log)."""
    return db.execute_returning_dicts(
        f"SELECT {_LOG_COLUMNS} FROM webhook_deliveries ORDER BY id DESC LIMIT ?",  # noqa: S608
        [limit],
    )
