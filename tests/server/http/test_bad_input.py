"""Bad input is refused with the right status and a JSON error, and changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from server.http.keys import SETTINGS
from tests.conftest import (
    MakeSettings,
    assert_no_traceback,
    create_token,
    create_user,
    make_app,
    query,
)

Client = TestClient[Any, Any]
MAX_BODY = 4096


@pytest.fixture
async def admin_client(
    aiohttp_client: AiohttpClient, make_settings: MakeSettings
) -> AsyncIterator[tuple[Client, dict[str, str]]]:
    """A client, and bearer headers of an admin (no cookie, so no CSRF in the way)."""
    settings = make_settings(max_body_bytes=MAX_BODY)
    client = await aiohttp_client(make_app(settings))
    create_user(settings, "admin@example.com", "admin")
    yield client, {"Authorization": f"Bearer {create_token(settings, 'admin@example.com')}"}


def snapshot(client: Client) -> tuple[list[Any], list[Any], list[Any]]:
    settings = client.app[SETTINGS]
    return (
        query(settings, "SELECT * FROM users ORDER BY id"),
        query(settings, "SELECT * FROM audit_log ORDER BY id"),
        query(settings, "SELECT id, token_hash, revoked_at FROM api_tokens ORDER BY id"),
    )


async def assert_error(response: Any, status: int, code: str | None = None) -> str:
    text = await response.text()
    assert response.status == status, text
    assert_no_traceback(text)
    assert response.content_type == "application/json"
    body = await response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code
    message: str = body["error"]["message"]
    return message


JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("path", "data", "headers", "status", "code"),
    [
        ("/api/v1/users", b"{not json", JSON, 400, "bad_request"),
        ("/api/v1/users", b'{"email": "a@example.com", "role": ', JSON, 400, "bad_request"),
        ("/api/v1/users", b"\xff\xfe", JSON, 400, "bad_request"),
        ("/api/v1/users", b"[1, 2]", JSON, 400, "bad_request"),
        ("/api/v1/users", b'"a string"', JSON, 400, "bad_request"),
        ("/api/v1/users", b"", JSON, 400, "bad_request"),
        ("/api/v1/users", b"email=a@example.com", {"Content-Type": "text/plain"}, 400, None),
        ("/api/v1/users", b'{"email": 1, "role": "admin"}', JSON, 422, "invalid"),
        ("/api/v1/users", b'{"email": "a@example.com", "role": ["admin"]}', JSON, 422, "invalid"),
        ("/api/v1/users", b'{"email": "a@example.com", "role": null}', JSON, 422, "invalid"),
        ("/api/v1/users", b'{"email": "a@example.com", "role": "admin", "is_root": true}', JSON,
         422, "invalid"),
        ("/api/v1/users", b'{"email": "a@example.com"}', JSON, 422, "invalid"),
        ("/api/v1/users", b"{}", JSON, 422, "invalid"),
        ("/api/v1/users", b'{"email": "not an email", "role": "admin"}', JSON, 422, "invalid"),
        ("/api/v1/users", b'{"email": "a@example.com", "role": "root"}', JSON, 422, "invalid"),
        ("/api/v1/users", b'{"email": "a@example.com", "role": "admin", "password": "short"}',
         JSON, 422, "invalid"),
        ("/api/v1/tokens", b'{"name": 5}', JSON, 422, "invalid"),
        ("/api/v1/tokens", b'{"name": ""}', JSON, 422, "invalid"),
        ("/api/v1/tokens", b'{"name": "x", "user": "nobody@example.com"}', JSON, 404, None),
        ("/api/v1/tokens", b'{"name": "x", "scope": "all"}', JSON, 422, "invalid"),
        ("/api/v1/auth/login", b'{"email": "admin@example.com"}', JSON, 422, "invalid"),
        ("/api/v1/auth/login", b'{"email": "admin@example.com", "password": 123}', JSON, 422,
         "invalid"),
        ("/api/v1/auth/login", b"{{", JSON, 400, "bad_request"),
    ],
)
async def test_bad_bodies_are_refused_and_change_nothing(
    admin_client: tuple[Client, dict[str, str]],
    path: str,
    data: bytes,
    headers: dict[str, str],
    status: int,
    code: str | None,
) -> None:
    client, auth = admin_client
    before = snapshot(client)
    response = await client.post(path, data=data, headers={**auth, **headers})
    await assert_error(response, status, code)
    assert snapshot(client) == before


async def test_error_messages_name_the_field(admin_client: tuple[Client, dict[str, str]]) -> None:
    client, auth = admin_client
    cases = [
        ({"email": "a@example.com", "role": "admin", "extra": 1}, "extra"),
        ({"email": "a@example.com"}, "role"),
        ({"email": 7, "role": "admin"}, "email"),
    ]
    for body, field in cases:
        response = await client.post("/api/v1/users", json=body, headers=auth)
        assert field in await assert_error(response, 422, "invalid")


async def test_oversized_body_is_413(admin_client: tuple[Client, dict[str, str]]) -> None:
    client, auth = admin_client
    before = snapshot(client)
    name = "x" * MAX_BODY
    body = f'{{"email": "a@example.com", "role": "admin", "display_name": "{name}"}}'.encode()
    response = await client.post("/api/v1/users", data=body, headers={**auth, **JSON})
    await assert_error(response, 413, "payload_too_large")
    login = await client.post(
        "/api/v1/auth/login", data=b'{"email": "' + b"a" * MAX_BODY * 2 + b'"}', headers=JSON
    )
    await assert_error(login, 413, "payload_too_large")
    assert snapshot(client) == before


async def test_oversized_form_is_413(admin_client: tuple[Client, dict[str, str]]) -> None:
    client, _ = admin_client
    response = await client.post(
        "/login", data={"email": "a" * MAX_BODY * 2, "password": "x"}, allow_redirects=False
    )
    assert response.status == 413
    assert_no_traceback(await response.text())


async def test_unknown_api_route_is_404_json(admin_client: tuple[Client, dict[str, str]]) -> None:
    client, auth = admin_client
    before = snapshot(client)
    for method, path in (("GET", "/api/v1/nothing"), ("POST", "/api/v2/users"),
                         ("DELETE", "/api/v1/users")):
        response = await client.request(method, path, headers=auth)
        assert response.status in (404, 405)
        await assert_error(response, response.status)
    response = await client.get("/api/v1/nothing")
    await assert_error(response, 404, "not_found")
    assert snapshot(client) == before


async def test_unknown_page_is_404_html(admin_client: tuple[Client, dict[str, str]]) -> None:
    client, _ = admin_client
    response = await client.get("/no/such/page", headers={"Accept": "text/html"})
    assert response.status == 404
    assert response.content_type == "text/html"
    html = await response.text()
    assert "<html" in html
    assert "There is nothing at this address." in html
    assert_no_traceback(html)


async def test_wrong_method_is_405(admin_client: tuple[Client, dict[str, str]]) -> None:
    client, _ = admin_client
    response = await client.post("/healthz", headers={"Accept": "application/json"})
    assert response.status == 405
    assert "GET" in response.headers["Allow"]


async def test_unknown_user_in_path_is_404(admin_client: tuple[Client, dict[str, str]]) -> None:
    client, auth = admin_client
    before = snapshot(client)
    response = await client.post("/api/v1/users/nobody@example.com/disable", headers=auth)
    await assert_error(response, 404, "not_found")
    assert snapshot(client) == before


async def test_security_headers_on_errors_and_pages(
    admin_client: tuple[Client, dict[str, str]],
) -> None:
    client, _ = admin_client
    for path in ("/login", "/api/v1/nothing", "/nothing"):
        response = await client.get(path)
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_app_forms_may_hand_over_only_to_the_workspace_origins(admin_client: Any) -> None:
    """The interviewer's Join form is answered by a redirect through the shared workspace origin
    to the workspace's own host: the app's form-action allows exactly those, nothing else."""
    client, _ = admin_client
    settings = client.app[SETTINGS]
    policy = (await client.get("/login")).headers["Content-Security-Policy"]
    form_action = next(part.strip() for part in policy.split(";")
                       if part.strip().startswith("form-action"))
    shared = settings.workspace_url
    host_and_port = shared.split("://", 1)[1]
    assert form_action.split() == ["form-action", "'self'", shared,
                                   f"http://*.{host_and_port}"]
