"""Attacks on accounts and request handling, against the real app (aiohttp test client).

Each test is the attack; it fails if the attack works: a lockout of the right password by
someone else's failures, a forged X-Forwarded-For, a deeply nested JSON body.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from server.settings import Settings
from tests.conftest import (
    PASSWORD,
    MakeSettings,
    assert_no_traceback,
    create_token,
    create_user,
    make_app,
)

Client = TestClient[Any, Any]
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")
DEEP = b"[" * 100_000 + b"]" * 100_000
# Routes that read a JSON body and have no object in their path: each must say why it refused.
JSON_ROUTES_WITHOUT_IDS = {
    ("POST", "/api/v1/auth/login"), ("POST", "/api/v1/users"), ("POST", "/api/v1/tokens"),
    ("PUT", "/api/v1/outcomes/baseline"), ("POST", "/api/v1/rubrics"),
    ("POST", "/api/v1/sessions"), ("POST", "/api/v1/tasks/imports"), ("POST", "/api/v1/webhooks"),
}


def dump(settings: Settings) -> list[str]:
    """Everything stored in the database, read with plain sqlite3."""
    conn = sqlite3.connect(settings.db_path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def concrete(path: str) -> str:
    """A route's canonical path with each ``{placeholder}`` naming nothing stored."""
    return re.sub(r"\{[^}]+\}", "999999", path)


# ---- nested JSON ----------------------------------------------------------------------------
async def test_deeply_nested_json_to_every_route_is_400_never_500(
    aiohttp_client: AiohttpClient, make_settings: MakeSettings, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings()
    client = await aiohttp_client(make_app(settings))
    create_user(settings, "admin@example.com", "admin")
    auth = {"Authorization": f"Bearer {create_token(settings, 'admin@example.com')}",
            "Content-Type": "application/json"}
    routes = sorted({(r.method, r.resource.canonical) for r in client.app.router.routes()
                     if r.method in UNSAFE and r.resource is not None})
    assert len(routes) > 20
    assert (await client.get("/api/v1/auth/me", headers=auth)).status == 200  # token last used
    before = dump(settings)
    told: set[tuple[str, str]] = set()
    for method, path in routes:
        with caplog.at_level(logging.ERROR):
            response = await client.request(method, concrete(path), data=DEEP, headers=auth)
        text = await response.text()
        assert response.status < 500, (method, path, text)
        assert_no_traceback(text)
        if response.status == 400 and "nested too deeply" in text:
            told.add((method, path))
    assert JSON_ROUTES_WITHOUT_IDS <= told, JSON_ROUTES_WITHOUT_IDS - told
    # The login form route reads a form, not JSON; logged out, the API login must say it too.
    response = await client.post("/api/v1/auth/login", data=DEEP,
                                 headers={"Content-Type": "application/json"})
    assert response.status == 400
    assert "nested too deeply" in (await response.json())["error"]["message"]
    # Below the parser's recursion limit, the depth limit itself refuses it.
    shallow = b'{"email": "a@example.com", "role": "admin", "display_name": ' + b"[" * 500
    response = await client.post("/api/v1/users", data=shallow + b"]" * 500 + b"}", headers=auth)
    assert response.status == 400
    assert "nested too deeply" in (await response.json())["error"]["message"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert dump(settings) == before


async def test_nested_rubric_definition_in_the_form_is_a_problem_not_a_500(
    aiohttp_client: AiohttpClient, make_settings: MakeSettings
) -> None:
    settings = make_settings()
    client = await aiohttp_client(make_app(settings))
    create_user(settings, "admin@example.com", "admin")
    response = await client.post(
        "/api/v1/auth/login", json={"email": "admin@example.com", "password": PASSWORD}
    )
    csrf = (await response.json())["csrf_token"]
    before = dump(settings)
    response = await client.post(
        "/rubrics", data={"definition": "[" * 100_000, "csrf_token": csrf},
        headers={"Accept": "text/html"},
    )
    html = await response.text()
    assert response.status in (400, 422), html
    assert "nested too deeply" in html
    assert_no_traceback(html)
    assert dump(settings) == before


async def test_deep_json_in_proxied_websocket_frames_is_ignored() -> None:
    """The recorder parses kernel and terminal frames the candidate's browser sends."""
    from workspaces.kernel_messages import _json_dict
    from workspaces.terminal_lines import parse_terminal_frame

    assert parse_terminal_frame("[" * 100_000) is None
    assert _json_dict(b"{\"a\":" * 100_000) == {}

