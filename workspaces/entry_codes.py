"""One-time entry codes: how a browser gets from the shared workspace origin (a candidate's
landing page, an interviewer's handoff) onto a workspace's own host.

A code is bound to one session, one workspace and one person, works once, within
``ENTRY_CODE_TTL``, and only on that workspace's host, where it is exchanged for a cookie of
its own (``sessions.grant`` with the workspace id). Codes live in their own table and are
never looked up as cookies, nor cookies as codes.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

import sqlite_utils

from common.clock import iso, now
from workspaces.sessions import parse_time
from workspaces.tokens import hash_token

ENTRY_CODE_TTL = timedelta(seconds=60)


def issue(db: sqlite_utils.Database, session_id: str, workspace_id: str, kind: str,
          user_id: int | None) -> str:
    """A fresh code (shown once, stored hashed) for ``kind`` ('candidate' or 'interviewer')."""
    code = secrets.token_urlsafe(32)
    moment = now()
    db.execute(
        "INSERT INTO workspace_entry_codes (code_hash, session_id, workspace_id, kind, user_id,"
        " created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [hash_token(code), session_id, workspace_id, kind, user_id, iso(moment),
         iso(moment + ENTRY_CODE_TTL)],
    )
    return code


def use(db: sqlite_utils.Database, code: str, workspace_id: str) -> dict[str, Any] | None:
    """The code's row, marked used, if it is unused, unexpired and for this workspace."""
    rows = db.execute_returning_dicts(
        "SELECT * FROM workspace_entry_codes WHERE code_hash = ?", [hash_token(code)]
    )
    if not rows:
        return None
    row = rows[0]
    if row["used_at"] or row["workspace_id"] != workspace_id \
            or parse_time(row["expires_at"]) <= now():
        return None
    db.execute("UPDATE workspace_entry_codes SET used_at = ? WHERE code_hash = ?",
               [iso(now()), hash_token(code)])
    return row
