"""People: admins and interviewers (candidates never log in; they use capability links).

Plain functions over a ``sqlite_utils.Database``; callers run them through the one writer or a
reader thread. Every change writes an audit row in the same transaction. Web-free (no
aiohttp, nothing of ``server.http``): refusals are ``common.errors`` kinds, which the error
middleware answers and the CLI prints.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from common import audit
from common.clock import now_iso
from common.errors import Conflict, NotFound, Unprocessable
from server.people.passwords import hash_password, password_problem

ROLES = ("admin", "interviewer")
EMAIL_RE = re.compile(r"^[^@\s<>\"'`]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})*$")


@dataclass(frozen=True)
class User:
    id: int
    email: str
    display_name: str
    role: str
    disabled: bool
    created_at: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "email": self.email,
            "display_name": self.display_name,
            "role": self.role,
            "disabled": self.disabled,
            "created_at": self.created_at,
        }

    def actor(self, address: str = "") -> audit.Actor:
        return audit.Actor(self.email, self.id, address)


def user_from_row(row: dict[str, Any]) -> User:
    return User(
        id=row["id"],
        email=row["email"],
        display_name=row["display_name"],
        role=row["role"],
        disabled=bool(row["disabled"]),
        created_at=row["created_at"],
    )


def normalise_email(email: str) -> str:
    email = email.strip()
    if len(email) > 254 or not EMAIL_RE.match(email):
        raise Unprocessable(f"{email[:80]!r} is not an email address")
    return email.lower()


def validate_new_user(email: str, role: str, password: str, display_name: str) -> str:
    email = normalise_email(email)
    if role not in ROLES:
        raise Unprocessable(f"role must be one of {', '.join(ROLES)}, not {role[:40]!r}")
    problem = password_problem(password)
    if problem:
        raise Unprocessable(problem)
    if len(display_name) > 200 or any(ord(c) < 32 for c in display_name):
        raise Unprocessable("the display name must be at most 200 printable characters")
    return email


def add_user(
    db: sqlite_utils.Database,
    actor: audit.Actor,
    email: str,
    role: str,
    password_hash: str,
    display_name: str = "",
) -> User:
    """Insert a validated user (hash the password off the writer thread first)."""
    if db.execute("SELECT 1 FROM users WHERE email = ?", [email]).fetchone():
        raise Conflict(f"a user with the email {email} already exists")
    created = now_iso()
    cursor = db.execute(
        "INSERT INTO users (email, display_name, role, password_hash, disabled, created_at)"
        " VALUES (?, ?, ?, ?, 0, ?)",
        [email, display_name or email.split("@")[0], role, password_hash, created],
    )
    user_id = int(cursor.lastrowid or 0)
    audit.record(db, actor, "user.add", "user", email, role=role)
    return get_user(db, user_id)


def get_user(db: sqlite_utils.Database, user_id: int) -> User:
    rows = db.execute_returning_dicts("SELECT * FROM users WHERE id = ?", [user_id])
    if not rows:
        raise NotFound(f"there is no user with id {user_id}")
    return user_from_row(rows[0])


def find_user(db: sqlite_utils.Database, email: str) -> User:
    rows = db.execute_returning_dicts("SELECT * FROM users WHERE email = ?", [email.strip()])
    if not rows:
        raise NotFound(f"there is no user with the email {email.strip()[:80]}")
    return user_from_row(rows[0])


def password_hash_of(db: sqlite_utils.Database, email: str) -> tuple[User, str] | None:
    rows = db.execute_returning_dicts("SELECT * FROM users WHERE email = ?", [email.strip()])
    if not rows:
        return None
    return user_from_row(rows[0]), str(rows[0]["password_hash"])


def list_users(db: sqlite_utils.Database) -> list[User]:
    rows = db.execute_returning_dicts("SELECT * FROM users ORDER BY email")
    return [user_from_row(r) for r in rows]


def set_disabled(
    db: sqlite_utils.Database, actor: audit.Actor, email: str, disabled: bool
) -> User:
    """Disable or re-enable; disabling ends the user's login sessions and tokens at once."""
    user = find_user(db, email)
    if disabled and actor.user_id == user.id:
        raise Conflict("you cannot disable your own account")
    db.execute("UPDATE users SET disabled = ? WHERE id = ?", [int(disabled), user.id])
    if disabled:
        now = now_iso()
        db.execute(
            "UPDATE login_sessions SET ended_at = ? WHERE user_id = ? AND ended_at IS NULL",
            [now, user.id],
        )
        db.execute(
            "UPDATE api_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL",
            [now, user.id],
        )
    audit.record(db, actor, "user.disable" if disabled else "user.enable", "user", user.email)
    return get_user(db, user.id)


def set_password(
    db: sqlite_utils.Database, actor: audit.Actor, email: str, password_hash: str
) -> User:
    user = find_user(db, email)
    db.execute("UPDATE users SET password_hash = ? WHERE id = ?", [password_hash, user.id])
    audit.record(db, actor, "user.password", "user", user.email)
    return user


__all__ = [
    "ROLES",
    "User",
    "add_user",
    "find_user",
    "hash_password",
    "list_users",
    "set_disabled",
    "set_password",
    "validate_new_user",
]
