"""Admin API and pages: people, API tokens (shown once, stored hashed), roles, the audit log."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server.http.keys import SETTINGS
from tests.conftest import (
    audit_actions,
    create_token,
    create_user,
    form_csrf_token,
    login,
    login_admin,
    query,
)

Client = TestClient[Any, Any]


@pytest.fixture
async def admin_headers(client: Client) -> dict[str, str]:
    """Cookie session of an admin (in the client's jar) plus its CSRF header."""
    return {"X-CSRF-Token": await login_admin(client)}


async def test_api_token_create_use_revoke(client: Client, admin_headers: dict[str, str]) -> None:
    settings = client.app[SETTINGS]
    create_user(settings, "ada@example.com", "interviewer")
    response = await client.post(
        "/api/v1/tokens", json={"name": "ci", "user": "ada@example.com"}, headers=admin_headers
    )
    assert response.status == 201
    created = await response.json()
    token, token_id = created["token"], created["id"]
    assert token.startswith("plb_")
    assert len(token) > 40

    # Shown once: the listing has the prefix and owner, never the token.
    listing = await client.get("/api/v1/tokens")
    assert listing.status == 200
    text = await listing.text()
    assert token not in text
    (entry,) = (await listing.json())["tokens"]
    assert entry["owner"] == "ada@example.com"
    assert entry["prefix"] == token[:10]
    assert entry["revoked_at"] is None

    # Stored hashed: the raw token is nowhere in the database files.
    stored = b"".join(
        p.read_bytes() for p in settings.data_dir.iterdir() if p.name.startswith("pairlab.db")
    )
    assert token.encode() not in stored
    assert token[4:].encode() not in stored

    # Used as a bearer token, by a client without any cookie.
    bearer = {"Authorization": f"Bearer {token}"}
    client.session.cookie_jar.clear()
    me = await client.get("/api/v1/auth/me", headers=bearer)
    assert me.status == 200
    assert (await me.json())["user"]["email"] == "ada@example.com"
    used = query(settings, "SELECT last_used_at FROM api_tokens WHERE id = ?", (token_id,))
    assert used[0][0] is not None

    # Revoked by the admin: refused at once.
    admin_token = create_token(settings, "admin@example.com")
    revoke = await client.delete(
        f"/api/v1/tokens/{token_id}", headers={"Authorization": f"Bearer {admin_token}"}
    )
    assert revoke.status == 200
    assert (await revoke.json()) == {"revoked": token_id}
    refused = await client.get("/api/v1/auth/me", headers=bearer)
    assert refused.status == 401
    assert (await refused.json())["error"]["code"] == "unauthorized"

    actions = audit_actions(settings)
    assert "token.create" in actions
    assert "token.revoke" in actions


async def test_revoking_an_unknown_token_is_404(
    client: Client, admin_headers: dict[str, str]
) -> None:
    for token_id in ("999", "abc"):
        response = await client.delete(f"/api/v1/tokens/{token_id}", headers=admin_headers)
        assert response.status == 404
        assert (await response.json())["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "authorization", ["Bearer plb_not-a-real-token", "Basic YWRtaW46cGFzcw==", "Bearer "]
)
async def test_bad_authorization_header_is_401(client: Client, authorization: str) -> None:
    response = await client.get("/api/v1/auth/me", headers={"Authorization": authorization})
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "unauthorized"


async def test_add_list_disable_users_over_the_api(
    client: Client, admin_headers: dict[str, str]
) -> None:
    settings = client.app[SETTINGS]
    response = await client.post(
        "/api/v1/users",
        json={"email": "Bob@Example.com", "role": "interviewer", "display_name": "Bob"},
        headers=admin_headers,
    )
    assert response.status == 201
    body = await response.json()
    assert body["user"]["email"] == "bob@example.com"
    generated = body["password"]
    assert len(generated) >= 10

    client.session.cookie_jar.clear()
    await login(client, "bob@example.com", generated)  # the generated password works
    client.session.cookie_jar.clear()
    admin_headers["X-CSRF-Token"] = await login(client, "admin@example.com")

    response = await client.post(
        "/api/v1/users",
        json={"email": "carol@example.com", "role": "admin", "password": "a chosen password"},
        headers=admin_headers,
    )
    assert response.status == 201
    assert "password" not in await response.json()

    listing = await (await client.get("/api/v1/users")).json()
    assert [u["email"] for u in listing["users"]] == [
        "admin@example.com", "bob@example.com", "carol@example.com"
    ]
    assert all("password_hash" not in u for u in listing["users"])

    duplicate = await client.post(
        "/api/v1/users", json={"email": "BOB@example.com", "role": "admin"}, headers=admin_headers
    )
    assert duplicate.status == 409

    response = await client.post("/api/v1/users/bob@example.com/disable", headers=admin_headers)
    assert response.status == 200
    assert (await response.json())["user"]["disabled"] is True
    response = await client.post("/api/v1/users/bob@example.com/enable", headers=admin_headers)
    assert (await response.json())["user"]["disabled"] is False
    assert (await client.post("/api/v1/users/nobody@example.com/disable",
                              headers=admin_headers)).status == 404
    own = await client.post("/api/v1/users/admin@example.com/disable", headers=admin_headers)
    assert own.status == 409

    actions = audit_actions(settings)
    assert actions.count("user.add") == 3
    assert {"user.disable", "user.enable", "login"} <= set(actions)


async def test_audit_rows_name_actor_and_object(client: Client) -> None:
    settings = client.app[SETTINGS]
    create_user(settings, "admin@example.com", "admin")
    failed = await client.post(
        "/api/v1/auth/login", json={"email": "nobody@example.com", "password": "wrong guess"}
    )
    assert failed.status == 401
    admin_headers = {"X-CSRF-Token": await login(client, "admin@example.com")}
    await client.post(
        "/api/v1/users", json={"email": "bob@example.com", "role": "interviewer"},
        headers=admin_headers,
    )
    await client.post("/api/v1/users/bob@example.com/disable", headers=admin_headers)
    created = await (await client.post(
        "/api/v1/tokens", json={"name": "ci"}, headers=admin_headers
    )).json()
    await client.delete(f"/api/v1/tokens/{created['id']}", headers=admin_headers)

    rows = query(
        settings,
        "SELECT actor, action, object_type, object_id, address, detail FROM audit_log ORDER BY id",
    )
    by_action = {row[1]: row for row in rows}
    for action in ("login", "login.failed", "user.add", "user.disable", "token.create",
                   "token.revoke"):
        assert action in by_action, action
    assert by_action["login"][0] == "admin@example.com"
    assert by_action["login"][4] == "127.0.0.1"
    assert by_action["login.failed"][0] == "anonymous"
    assert by_action["login.failed"][3] == "nobody@example.com"
    assert "wrong guess" not in json.dumps(rows)
    assert by_action["user.add"][:4] == ("admin@example.com", "user.add", "user", "bob@example.com")
    assert by_action["user.disable"][3] == "bob@example.com"
    assert by_action["token.create"][3] == str(created["id"])
    assert json.loads(by_action["token.create"][5]) == {"name": "ci", "owner": "admin@example.com"}
    assert by_action["token.revoke"][3] == str(created["id"])
    assert created["token"] not in json.dumps(rows)

    entries = (await (await client.get("/api/v1/audit")).json())["entries"]
    assert [e["action"] for e in entries] == [r[1] for r in reversed(rows)]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/users"),
        ("POST", "/api/v1/users"),
        ("POST", "/api/v1/users/admin@example.com/disable"),
        ("GET", "/api/v1/tokens"),
        ("POST", "/api/v1/tokens"),
        ("DELETE", "/api/v1/tokens/1"),
        ("GET", "/api/v1/audit"),
        ("GET", "/admin/users"),
        ("GET", "/admin/tokens"),
    ],
)
async def test_interviewer_is_refused_admin_routes(client: Client, method: str, path: str) -> None:
    settings = client.app[SETTINGS]
    create_user(settings, "admin@example.com", "admin")
    create_user(settings, "ada@example.com", "interviewer")
    csrf = await login(client, "ada@example.com")
    kwargs: dict[str, Any] = {"headers": {"X-CSRF-Token": csrf}}
    if path in ("/api/v1/users", "/api/v1/tokens") and method == "POST":
        kwargs["json"] = {"email": "x@example.com", "role": "admin", "name": "x"}
    before = query(settings, "SELECT * FROM users")
    response = await client.request(method, path, **kwargs)
    assert response.status == 403
    if path.startswith("/api/"):
        assert (await response.json())["error"]["code"] == "forbidden"
    else:
        assert response.content_type == "text/html"
        assert "Only admins" in await response.text()
    assert query(settings, "SELECT * FROM users") == before


async def test_interviewer_bearer_token_is_refused_admin_routes(client: Client) -> None:
    settings = client.app[SETTINGS]
    create_user(settings, "ada@example.com", "interviewer")
    token = create_token(settings, "ada@example.com")
    for path in ("/api/v1/users", "/api/v1/tokens"):
        response = await client.get(path, headers={"Authorization": f"Bearer {token}"})
        assert response.status == 403


async def test_logged_out_api_is_401(client: Client) -> None:
    for path in ("/api/v1/users", "/api/v1/tokens", "/api/v1/auth/me"):
        response = await client.get(path)
        assert response.status == 401
        assert (await response.json())["error"]["code"] == "unauthorized"


def secret_on_page(html: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}">([^<]+)<', html)
    assert match, f"no #{element_id} on the page"
    return match.group(1)


async def test_admin_pages_create_and_revoke_a_token(
    client: Client, admin_headers: dict[str, str]
) -> None:
    settings = client.app[SETTINGS]
    page = await client.get("/admin/tokens")
    assert page.status == 200
    csrf = form_csrf_token(await page.text())
    created = await client.post("/admin/tokens", data={"name": "laptop", "csrf_token": csrf})
    assert created.status == 200
    token = secret_on_page(await created.text(), "new-token")
    ((token_id, prefix),) = query(settings, "SELECT id, prefix FROM api_tokens")
    assert token.startswith(prefix)
    assert token not in await (await client.get("/admin/tokens")).text()  # shown once
    me = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status == 200

    revoked = await client.post(
        f"/admin/tokens/{token_id}/revoke", data={"csrf_token": csrf}, allow_redirects=False
    )
    assert revoked.status == 303
    assert query(settings, "SELECT revoked_at IS NOT NULL FROM api_tokens") == [(1,)]
    me = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status == 401


async def test_admin_page_adds_and_disables_a_user(
    client: Client, admin_headers: dict[str, str]
) -> None:
    csrf = admin_headers["X-CSRF-Token"]
    response = await client.post(
        "/admin/users",
        data={"email": "dan@example.com", "role": "interviewer", "csrf_token": csrf},
    )
    assert response.status == 200
    html = await response.text()
    password = secret_on_page(html, "generated-password")
    again = await (await client.get("/admin/users")).text()
    assert "dan@example.com" in again
    assert password not in again  # shown once

    match = re.search(r'action="(/admin/users/dan[^"]*/disable)"', again)
    assert match
    disabled = await client.post(match.group(1), data={"csrf_token": csrf}, allow_redirects=False)
    assert disabled.status == 303
    rows = query(client.app[SETTINGS], "SELECT disabled FROM users WHERE email = ?",
                 ("dan@example.com",))
    assert rows == [(1,)]

    bad = await client.post(
        "/admin/users", data={"email": "not an email", "role": "interviewer", "csrf_token": csrf}
    )
    assert bad.status == 422
    assert bad.content_type == "text/html"
