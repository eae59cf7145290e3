"""CSRF: cookie-authenticated state changes need the session's token and a same-site Origin."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.http.keys import SETTINGS
from tests.conftest import create_token, create_user, login, login_admin, query

Client = TestClient[Any, Any]


def token_count(client: Client) -> int:
    return int(query(client.app[SETTINGS], "SELECT COUNT(*) FROM api_tokens")[0][0])


def origin_of(client: Client) -> str:
    url = client.make_url("/")
    return f"{url.scheme}://{url.host}:{url.port}"


@pytest.fixture
async def admin_csrf(client: Client) -> str:
    return await login_admin(client)


async def test_missing_token_is_refused(client: Client, admin_csrf: str) -> None:
    response = await client.post("/api/v1/tokens", json={"name": "ci"})
    assert response.status == 403
    body = await response.json()
    assert body["error"]["code"] == "forbidden"
    assert "CSRF" in body["error"]["message"]
    assert token_count(client) == 0


async def test_wrong_token_is_refused(client: Client, admin_csrf: str) -> None:
    response = await client.post(
        "/api/v1/tokens", json={"name": "ci"}, headers={"X-CSRF-Token": admin_csrf[::-1]}
    )
    assert response.status == 403
    assert token_count(client) == 0


async def test_cross_site_origin_is_refused_even_with_the_token(
    client: Client, admin_csrf: str
) -> None:
    for origin in ("http://evil.example", "null", "http://127.0.0.1:1"):
        response = await client.post(
            "/api/v1/tokens",
            json={"name": "ci"},
            headers={"X-CSRF-Token": admin_csrf, "Origin": origin},
        )
        assert response.status == 403, origin
        assert "Origin" in (await response.json())["error"]["message"]
    response = await client.post(
        "/api/v1/tokens",
        json={"name": "ci"},
        headers={"X-CSRF-Token": admin_csrf, "Referer": "http://evil.example/page"},
    )
    assert response.status == 403
    assert token_count(client) == 0


async def test_right_token_and_same_origin_is_accepted(client: Client, admin_csrf: str) -> None:
    response = await client.post(
        "/api/v1/tokens",
        json={"name": "ci"},
        headers={"X-CSRF-Token": admin_csrf, "Origin": origin_of(client)},
    )
    assert response.status == 201, await response.text()
    response = await client.post(
        "/api/v1/tokens", json={"name": "no origin"}, headers={"X-CSRF-Token": admin_csrf}
    )
    assert response.status == 201
    assert token_count(client) == 2


async def test_token_of_another_session_is_refused(client: Client, admin_csrf: str) -> None:
    client.session.cookie_jar.clear()  # as another browser: a second session
    other = await login(client, "admin@example.com")
    assert other != admin_csrf
    response = await client.post(
        "/api/v1/tokens", json={"name": "ci"}, headers={"X-CSRF-Token": admin_csrf}
    )
    assert response.status == 403
    response = await client.post(
        "/api/v1/tokens", json={"name": "ci"}, headers={"X-CSRF-Token": other}
    )
    assert response.status == 201


async def test_html_form_needs_the_form_token(client: Client, admin_csrf: str) -> None:
    form = {"email": "bob@example.com", "role": "interviewer"}
    response = await client.post("/admin/users", data=form)
    assert response.status == 403
    assert response.content_type == "text/html"
    response = await client.post("/admin/users", data={**form, "csrf_token": admin_csrf})
    assert response.status == 200
    assert "bob@example.com" in await response.text()


async def test_bearer_token_needs_no_csrf_token(client: Client) -> None:
    create_user(client.app[SETTINGS], "admin@example.com", "admin")
    token = create_token(client.app[SETTINGS], "admin@example.com")
    response = await client.post(
        "/api/v1/tokens", json={"name": "ci"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status == 201
