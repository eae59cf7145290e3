"""Liveness and readiness probes."""

from __future__ import annotations

import sqlite3
from typing import Any

from aiohttp.test_utils import TestClient

from common.db import connect
from server.db import pending_migrations
from server.http.keys import SETTINGS
from server.settings import Settings
from tests.conftest import create_user

Client = TestClient[Any, Any]


async def test_healthz(client: Client) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_readyz_after_start(client: Client) -> None:
    response = await client.get("/readyz")
    assert response.status == 200
    assert await response.json() == {"status": "ready"}


async def test_probes_need_no_login_even_with_a_dead_cookie(client: Client) -> None:
    client.session.cookie_jar.update_cookies({"pairlab_session": "stale"})
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status == 200


async def test_readyz_is_503_when_a_migration_is_pending(client: Client) -> None:
    settings = client.app[SETTINGS]
    create_user(settings, "admin@example.com")  # the schema works
    conn = sqlite3.connect(settings.db_path)
    try:
        with conn:
            conn.execute(
                "DELETE FROM _sqlite_migrations WHERE migration_set = 'server'"
                " AND name = 'm001_people_and_login'"
            )
    finally:
        conn.close()
    response = await client.get("/readyz")
    assert response.status == 503
    body = await response.json()
    assert body["status"] == "unavailable"
    assert "1 migrations pending" in body["reason"]
    assert (await client.get("/healthz")).status == 200  # alive, just not ready


def test_pending_migrations_on_a_fresh_file(settings: Settings) -> None:
    db = connect(settings.db_path)
    try:
        pending = pending_migrations(db)
    finally:
        db.conn.close()
    assert "server:m001_people_and_login" in pending
    assert all(":" in name for name in pending)
