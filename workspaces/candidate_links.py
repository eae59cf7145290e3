"""A session's candidate link, shown again to its staff and re-issued on request.

How a link is kept: the token in ``/c/<token>`` is looked up by its SHA-256 hash only
(``interview_sessions.link_hash``), as before. To show it again without storing it, the token is
``HMAC-SHA256(server secret, session id + random nonce)`` and only the nonce is stored
(``link_nonce``): a copy of the database without the secret file (a backup, a leaked dump)
cannot rebuild any link, while the server can rebuild it for the session's interviewers and
admins. This is a keyed derivation rather than the token encrypted with the secret because the
standard library's ``hmac`` does it with no cipher dependency. If the secret is rotated, the
links keep working (the hash is unchanged) but can no longer be shown: the page offers to
re-issue instead. Re-issuing draws a new nonce; the old token's hash moves to
``replaced_candidate_links`` so its page can say that it was replaced.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

import sqlite_utils

from common.clock import iso, now
from workspaces.session_errors import SessionError, SessionNotFound
from workspaces.tokens import hash_token

_PURPOSE = b"pairlab candidate link\x00"


def token_for(secret: str, session_id: str, nonce: str) -> str:
    """The link token of ``session_id`` with ``nonce``: 192 bits, URL-safe."""
    if not secret:
        raise SessionError("the server has no secret to make candidate links with")
    message = _PURPOSE + session_id.encode() + b"\x00" + nonce.encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()[:24]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def new_link(secret: str, session_id: str) -> tuple[str, str]:
    """A fresh link for ``session_id``: its token and the nonce to store (scheduling a session
    and re-issuing its link both make theirs here)."""
    nonce = secrets.token_urlsafe(16)
    return token_for(secret, session_id, nonce), nonce


def issue(db: sqlite_utils.Database, secret: str, session_id: str) -> str:
    """A new link for the session; the previous one stops working, is remembered as replaced,
    and every candidate grant made through it is revoked (a browser that entered with it is
    out within the workspace proxy's 2 s access cache)."""
    rows = db.execute("SELECT link_hash FROM interview_sessions WHERE id = ?",
                      [session_id]).fetchall()
    if not rows:
        raise SessionNotFound(f"there is no session {session_id[:40]!r}")
    token, nonce = new_link(secret, session_id)
    db.execute("INSERT OR IGNORE INTO replaced_candidate_links (link_hash, session_id,"
               " replaced_at) VALUES (?, ?, ?)", [rows[0][0], session_id, iso(now())])
    # Whoever already opened the old link (its cookie, an unused entry code) is out too:
    # re-issuing is for a link that reached the wrong person.
    db.execute("DELETE FROM session_access WHERE session_id = ? AND kind = 'candidate'",
               [session_id])
    db.execute("DELETE FROM workspace_entry_codes WHERE session_id = ? AND kind = 'candidate'"
               " AND used_at IS NULL", [session_id])
    db.execute("UPDATE interview_sessions SET link_hash = ?, link_nonce = ? WHERE id = ?",
               [hash_token(token), nonce, session_id])
    return token


def current(db: sqlite_utils.Database, secret: str, session_id: str) -> str | None:
    """The session's working link token, or None if it cannot be rebuilt (made before links
    were showable, or the server secret changed since): then only re-issuing shows one."""
    rows = db.execute("SELECT link_hash, link_nonce FROM interview_sessions WHERE id = ?",
                      [session_id]).fetchall()
    if not rows or rows[0][1] is None or not secret:
        return None
    token = token_for(secret, session_id, rows[0][1])
    return token if hmac.compare_digest(hash_token(token), rows[0][0]) else None


def was_replaced(db: sqlite_utils.Database, token: str) -> bool:
    """Was ``token`` a session's link before it was re-issued?"""
    return bool(db.execute("SELECT 1 FROM replaced_candidate_links WHERE link_hash = ?",
                           [hash_token(token)]).fetchall())
