"""How capability tokens (candidate links, access grants, entry codes) are stored: by their
SHA-256 hash only, so the database never holds a token that works."""

from __future__ import annotations

import hashlib


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
