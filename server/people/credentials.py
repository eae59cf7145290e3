"""Login sessions (cookie) and API tokens (bearer): random secrets stored only as hashes.

Both are high-entropy random strings, so a fast SHA-256 is the right storage hash (argon2 is for
low-entropy passwords). Resolution always joins ``users`` so a disabled user stops at once.
Web-free like ``accounts``: refusals are ``common.errors`` kinds; cookies and headers are
``server.http.auth``'s business.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import Any

import sqlite_utils

from common import audit
from common.clock import iso_in, now_iso
from common.errors import NotFound, Unprocessable
from server.people.accounts import User, find_user, user_from_row

TOKEN_PREFIX = "plb_"  # noqa: S105 - a public prefix, not a secret


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def csrf_token_for(session_token: str, key: str) -> str:
    """The CSRF token bound to one login session (HMAC, so it is never stored)."""
    return hmac.new(key.encode(), b"csrf:" + session_token.encode(), hashlib.sha256).hexdigest()


def create_login_session(
    db: sqlite_utils.Database, user: User, hours: int, address: str
) -> str:
    token = secrets.token_urlsafe(32)
    db.execute(
        "INSERT INTO login_sessions (token_hash, user_id, created_at, expires_at, address)"
        " VALUES (?, ?, ?, ?, ?)",
        [token_hash(token), user.id, now_iso(), iso_in(timedelta(hours=hours)), address],
    )
    audit.record(db, user.actor(address), "login", "user", user.email)
    return token


def user_for_session(db: sqlite_utils.Database, token: str) -> User | None:
    rows = db.execute_returning_dicts(
        "SELECT users.* FROM login_sessions JOIN users ON users.id = login_sessions.user_id"
        " WHERE token_hash = ? AND ended_at IS NULL AND expires_at > ? AND users.disabled = 0",
        [token_hash(token), now_iso()],
    )
    return user_from_row(rows[0]) if rows else None


def end_login_session(db: sqlite_utils.Database, token: str, actor: audit.Actor) -> None:
    cursor = db.execute(
        "UPDATE login_sessions SET ended_at = ? WHERE token_hash = ? AND ended_at IS NULL",
        [now_iso(), token_hash(token)],
    )
    if cursor.rowcount:
        audit.record(db, actor, "logout", "user", actor.label)


def create_api_token(
    db: sqlite_utils.Database, actor: audit.Actor, name: str, owner_email: str
) -> tuple[int, str]:
    """Returns (id, token); the token is shown once and only its hash is kept."""
    name = name.strip()
    if not 1 <= len(name) <= 100 or any(ord(c) < 32 for c in name):
        raise Unprocessable("the token name must be 1 to 100 printable characters")
    owner = find_user(db, owner_email)
    if owner.disabled:
        raise Unprocessable(f"{owner.email} is disabled; enable the account first")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    cursor = db.execute(
        "INSERT INTO api_tokens (token_hash, prefix, name, user_id, created_by, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        [token_hash(token), token[:10], name, owner.id, actor.user_id, now_iso()],
    )
    token_id = int(cursor.lastrowid or 0)
    audit.record(db, actor, "token.create", "api_token", token_id, name=name, owner=owner.email)
    return token_id, token


TOUCH_EVERY = timedelta(minutes=1)
"""``last_used_at`` is kept to the minute: a busy automation client does not cost a database
write per request."""


def user_for_api_token(db: sqlite_utils.Database, token: str) -> tuple[User, bool] | None:
    """The token's user, and whether its ``last_used_at`` is due for an update."""
    rows = db.execute_returning_dicts(
        "SELECT users.*, api_tokens.last_used_at AS token_last_used FROM api_tokens"
        " JOIN users ON users.id = api_tokens.user_id"
        " WHERE token_hash = ? AND revoked_at IS NULL AND users.disabled = 0",
        [token_hash(token)],
    )
    if not rows:
        return None
    last = rows[0]["token_last_used"]
    return user_from_row(rows[0]), last is None or last < iso_in(-TOUCH_EVERY)


def touch_api_token(db: sqlite_utils.Database, token: str) -> None:
    db.execute(
        "UPDATE api_tokens SET last_used_at = ? WHERE token_hash = ?",
        [now_iso(), token_hash(token)],
    )


def list_api_tokens(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    return db.execute_returning_dicts(
        "SELECT api_tokens.id, api_tokens.name, api_tokens.prefix, api_tokens.created_at,"
        " api_tokens.last_used_at, api_tokens.revoked_at, users.email AS owner"
        " FROM api_tokens JOIN users ON users.id = api_tokens.user_id ORDER BY api_tokens.id"
    )


def revoke_api_token(db: sqlite_utils.Database, actor: audit.Actor, token_id: int) -> None:
    cursor = db.execute(
        "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
        [now_iso(), token_id],
    )
    if not cursor.rowcount:
        exists = db.execute("SELECT 1 FROM api_tokens WHERE id = ?", [token_id]).fetchone()
        if not exists:
            raise NotFound(f"there is no API token with id {token_id}")
        return
    audit.record(db, actor, "token.revoke", "api_token", token_id)
