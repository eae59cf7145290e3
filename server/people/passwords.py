"""Password hashing with argon2id (argon2-cffi) and generated passwords."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# A hash to verify against when the account does not exist, so that a wrong email costs the
# same time as a wrong password and timing does not reveal which accounts exist.
_dummy: list[str] = []


def _dummy_hash() -> str:
    if not _dummy:  # computed on first use, not at import (CLI start-up time)
        _dummy.append(_hasher.hash(secrets.token_urlsafe(16)))
    return _dummy[0]
MIN_LENGTH = 10
MAX_LENGTH = 1024


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        ok = _hasher.verify(password_hash or _dummy_hash(), password)
        return ok and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def generate_password() -> str:
    return secrets.token_urlsafe(15)


def password_problem(password: str) -> str | None:
    """A human sentence when the password is unacceptable, else None."""
    if len(password) < MIN_LENGTH:
        return f"the password must be at least {MIN_LENGTH} characters long"
    if len(password) > MAX_LENGTH:
        return f"the password must be at most {MAX_LENGTH} characters long"
    return None
