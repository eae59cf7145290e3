"""Logging in and out: the JSON API, the HTML form, rate limits, disabled accounts."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from server.http.keys import SETTINGS
from server.people.login import BAD_LOGIN
from tests.conftest import (
    PASSWORD,
    MakeSettings,
    audit_actions,
    create_token,
    create_user,
    form_csrf_token,
    login,
    make_app,
    query,
    session_cookie,
)

Client = TestClient[Any, Any]


async def test_api_login_sets_a_strict_cookie(client: Client) -> None:
    settings = client.app[SETTINGS]
    create_user(settings, "ada@example.com", "interviewer")
    response = await client.post(
        "/api/v1/auth/login", json={"email": "Ada@Example.com", "password": PASSWORD}
    )
    assert response.status == 200
    body = await response.json()
    assert body["user"]["email"] == "ada@example.com"
    assert body["user"]["role"] == "interviewer"
    assert "password_hash" not in body["user"]
    assert body["csrf_token"]
    cookies = [c for c in response.headers.getall("Set-Cookie") if "pairlab_session=" in c]
    assert len(cookies) == 1
    attributes = {a.strip().split("=")[0].lower(): a for a in cookies[0].split(";")}
    assert "httponly" in attributes
    assert attributes["samesite"].strip().lower() == "samesite=lax"
    assert attributes["path"].strip() == "Path=/"
    assert "secure" not in attributes  # plain http on loopback

    me = await client.get("/api/v1/auth/me")
    assert me.status == 200
    assert (await me.json())["user"]["email"] == "ada@example.com"
    assert "login" in audit_actions(settings)


async def test_secure_cookie_behind_https(
    aiohttp_client: AiohttpClient, make_settings: MakeSettings
) -> None:
    settings = make_settings(public_url="https://pairlab.example.org")
    client = await aiohttp_client(make_app(settings))
    create_user(settings, "ada@example.com")
    response = await client.post(
        "/api/v1/auth/login", json={"email": "ada@example.com", "password": PASSWORD}
    )
    assert response.status == 200
    cookie = next(c for c in response.headers.getall("Set-Cookie") if "pairlab_session=" in c)
    assert "secure" in cookie.lower()


async def test_wrong_email_and_wrong_password_get_the_same_answer(client: Client) -> None:
    settings = client.app[SETTINGS]
    create_user(settings, "ada@example.com")
    wrong_password = await client.post(
        "/api/v1/auth/login", json={"email": "ada@example.com", "password": "not the password"}
    )
    wrong_email = await client.post(
        "/api/v1/auth/login", json={"email": "bob@example.com", "password": PASSWORD}
    )
    assert wrong_password.status == wrong_email.status == 401
    first, second = await wrong_password.json(), await wrong_email.json()
    assert first == second == {"error": {"code": "unauthorized", "message": BAD_LOGIN}}
    assert "pairlab_session" not in wrong_password.cookies
    assert "pairlab_session" not in wrong_email.cookies
    assert audit_actions(settings).count("login.failed") == 2
    assert (await client.get("/api/v1/auth/me")).status == 401


async def test_html_login_form_flow(client: Client) -> None:
    create_user(client.app[SETTINGS], "ada@example.com", "admin")
    page = await client.get("/login?next=/admin/users")
    assert page.status == 200
    assert page.content_type == "text/html"
    html = await page.text()
    assert '<form method="post" action="/login">' in html
    token = form_csrf_token(html)

    response = await client.post(
        "/login",
        data={"email": "ada@example.com", "password": PASSWORD, "csrf_token": token,
              "next": "/admin/users"},
        allow_redirects=False,
    )
    assert response.status == 303
    assert response.headers["Location"] == "/admin/users"
    cookie = next(c for c in response.headers.getall("Set-Cookie") if "pairlab_session=" in c)
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie

    users = await client.get("/admin/users")
    assert users.status == 200
    assert "ada@example.com" in await users.text()


async def test_html_login_refuses_a_missing_or_wrong_form_token(client: Client) -> None:
    create_user(client.app[SETTINGS], "ada@example.com")
    await client.get("/login")  # sets the pre-login cookie
    for token in ("", "forged"):
        response = await client.post(
            "/login",
            data={"email": "ada@example.com", "password": PASSWORD, "csrf_token": token},
            allow_redirects=False,
        )
        assert response.status == 403
        assert "pairlab_session" not in response.cookies
    assert (await client.get("/api/v1/auth/me")).status == 401


async def test_html_login_wrong_password_shows_the_form_again(client: Client) -> None:
    create_user(client.app[SETTINGS], "ada@example.com")
    token = form_csrf_token(await (await client.get("/login")).text())
    response = await client.post(
        "/login",
        data={"email": "ada@example.com", "password": "wrong password", "csrf_token": token},
        allow_redirects=False,
    )
    assert response.status == 401
    html = await response.text()
    assert BAD_LOGIN in html
    assert 'name="csrf_token"' in html


async def test_html_login_never_redirects_off_site(client: Client) -> None:
    create_user(client.app[SETTINGS], "ada@example.com")
    token = form_csrf_token(await (await client.get("/login")).text())
    response = await client.post(
        "/login",
        data={"email": "ada@example.com", "password": PASSWORD, "csrf_token": token,
              "next": "//evil.example/"},
        allow_redirects=False,
    )
    assert response.status == 303
    assert response.headers["Location"] == "/"


async def test_pages_redirect_to_login_when_logged_out(client: Client) -> None:
    response = await client.get("/admin/users", allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/login?next=/admin/users"


@pytest.mark.slow
async def test_sixth_wrong_password_is_rate_limited(client: Client) -> None:
    settings = client.app[SETTINGS]
    assert settings.login_max_failures == 5
    create_user(settings, "ada@example.com")
    bad = {"email": "ada@example.com", "password": "not the password"}
    for _ in range(5):
        assert (await client.post("/api/v1/auth/login", json=bad)).status == 401
    sixth = await client.post("/api/v1/auth/login", json=bad)
    assert sixth.status == 429
    assert 1 <= int(sixth.headers["Retry-After"]) <= settings.login_window_seconds
    assert (await sixth.json())["error"]["code"] == "too_many_requests"
    # The right password is refused too while the account is limited.
    good = await client.post(
        "/api/v1/auth/login", json={"email": "ada@example.com", "password": PASSWORD}
    )
    assert good.status == 429
    assert "login.rate_limited" in audit_actions(settings)


@pytest.mark.slow
async def test_failures_on_other_accounts_do_not_refuse_this_one(client: Client) -> None:
    settings = client.app[SETTINGS]
    create_user(settings, "ada@example.com")
    for i in range(5):
        response = await client.post(
            "/api/v1/auth/login", json={"email": f"nobody{i}@example.com", "password": "guess"}
        )
        assert response.status == 401
    # Another account from the same address (everyone behind one proxy) is not refused.
    response = await client.post(
        "/api/v1/auth/login", json={"email": "ada@example.com", "password": PASSWORD}
    )
    assert response.status == 200


@pytest.mark.slow
async def test_rate_limited_html_form_says_so(client: Client) -> None:
    create_user(client.app[SETTINGS], "ada@example.com")
    token = form_csrf_token(await (await client.get("/login")).text())
    form = {"email": "ada@example.com", "password": "wrong password", "csrf_token": token}
    for _ in range(5):
        assert (await client.post("/login", data=form)).status == 401
    response = await client.post("/login", data=form)
    assert response.status == 429
    assert "Retry-After" in response.headers
    assert "Too many failed logins" in await response.text()


async def test_disabled_user_cannot_log_in(client: Client) -> None:
    settings = client.app[SETTINGS]
    create_user(settings, "ada@example.com", "interviewer", disabled=True)
    response = await client.post(
        "/api/v1/auth/login", json={"email": "ada@example.com", "password": PASSWORD}
    )
    assert response.status == 401
    assert (await response.json())["error"]["message"] == BAD_LOGIN


async def test_disabling_ends_sessions_and_tokens_at_once(client: Client) -> None:
    settings = client.app[SETTINGS]
    create_user(settings, "admin@example.com", "admin")
    create_user(settings, "ada@example.com", "interviewer")
    admin_token = create_token(settings, "admin@example.com")
    ada_token = create_token(settings, "ada@example.com")
    await login(client, "ada@example.com")
    assert (await client.get("/api/v1/auth/me")).status == 200
    bearer = {"Authorization": f"Bearer {ada_token}"}
    assert (await client.get("/api/v1/auth/me", headers=bearer)).status == 200

    response = await client.post(
        "/api/v1/users/ada@example.com/disable",
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    assert response.status == 200
    assert (await response.json())["user"]["disabled"] is True

    assert (await client.get("/api/v1/auth/me")).status == 401  # the cookie is still in the jar
    assert (await client.get("/api/v1/auth/me", headers=bearer)).status == 401
    actions = audit_actions(settings)
    assert "user.disable" in actions


async def test_api_logout_ends_the_session(client: Client) -> None:
    settings = client.app[SETTINGS]
    create_user(settings, "ada@example.com")
    csrf = await login(client, "ada@example.com")
    cookie = session_cookie(client)
    response = await client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf})
    assert response.status == 200
    assert (await client.get("/api/v1/auth/me")).status == 401
    # Replaying the old cookie does not work either: the session ended on the server.
    replay = await client.get("/api/v1/auth/me", headers={"Cookie": f"pairlab_session={cookie}"})
    assert replay.status == 401
    assert "logout" in audit_actions(settings)
    ended = query(settings, "SELECT COUNT(*) FROM login_sessions WHERE ended_at IS NOT NULL")
    assert ended == [(1,)]


async def test_html_logout(client: Client) -> None:
    create_user(client.app[SETTINGS], "ada@example.com")
    await login(client, "ada@example.com")
    cookie = session_cookie(client)
    home = await client.get("/")
    assert home.status == 200
    token = form_csrf_token(await home.text())
    response = await client.post("/logout", data={"csrf_token": token}, allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/login"
    replay = await client.get("/api/v1/auth/me", headers={"Cookie": f"pairlab_session={cookie}"})
    assert replay.status == 401


async def test_expired_session_is_refused(client: Client) -> None:
    settings = client.app[SETTINGS]
    create_user(settings, "ada@example.com")
    await login(client, "ada@example.com")
    assert (await client.get("/api/v1/auth/me")).status == 200
    conn = sqlite3.connect(settings.db_path)
    try:
        with conn:
            conn.execute("UPDATE login_sessions SET expires_at = '2000-01-01T00:00:00+00:00'")
    finally:
        conn.close()
    assert (await client.get("/api/v1/auth/me")).status == 401
    page = await client.get("/", allow_redirects=False)
    assert page.status == 303
    assert page.headers["Location"].startswith("/login")


async def test_me_returns_the_same_csrf_token_as_login(client: Client) -> None:
    create_user(client.app[SETTINGS], "ada@example.com")
    csrf = await login(client, "ada@example.com")
    me = await (await client.get("/api/v1/auth/me")).json()
    assert me["csrf_token"] == csrf
