"""Attacks on accounts and request handling, against the real app (aiohttp test client).

Each test is the attack; it fails if the attack works: a lockout of the right password by
someone else's failures, a forged X-Forwarded-For, a deeply nested JSON body.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient, AiohttpServer

from server.doctor.checks import check_domains
from server.http import ratelimit
from server.http.accesslog import ScrubbedAccessLogger
from server.http.keys import LOGIN_LIMITER, SETTINGS
from server.http.ratelimit import HOLD_MAX_SECONDS, MAX_KEYS, PACE_FACTOR, LoginLimiter
from server.people import login as login_handlers
from server.settings import Settings, SettingsError
from tests.conftest import (
    PASSWORD,
    MakeSettings,
    assert_no_traceback,
    create_token,
    create_user,
    make_app,
)

# slow: many real logins a test (argon2 on purpose slow)
pytestmark = pytest.mark.slow

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
    # The doctor's full check reads no body and runs a throwaway sandbox (~20 s): left out.
    routes = sorted({(r.method, r.resource.canonical) for r in client.app.router.routes()
                     if r.method in UNSAFE and r.resource is not None
                     and not r.resource.canonical.endswith("/doctor")})
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
    from workspaces.recording.kernel_messages import _json_dict
    from workspaces.recording.terminal_lines import parse_terminal_frame

    assert parse_terminal_frame("[" * 100_000) is None
    assert _json_dict(b"{\"a\":" * 100_000) == {}



# ---- X-Forwarded-For ------------------------------------------------------------------------
def audit_addresses(settings: Settings, action: str) -> list[str]:
    conn = sqlite3.connect(settings.db_path)
    try:
        rows = conn.execute("SELECT address FROM audit_log WHERE action = ? ORDER BY id", (action,))
        return [row[0] for row in rows]
    finally:
        conn.close()


def access_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]


async def access_logged_client(
    aiohttp_server: AiohttpServer, aiohttp_client: AiohttpClient, settings: Settings
) -> Client:
    """The real app served with pairlab's own access logger, as ``pairlab serve`` does."""
    server = await aiohttp_server(make_app(settings), access_log_class=ScrubbedAccessLogger)
    return await aiohttp_client(server)


async def test_forged_forwarded_for_changes_nothing_without_a_trusted_proxy(
    aiohttp_server: AiohttpServer, aiohttp_client: AiohttpClient, make_settings: MakeSettings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_settings()
    assert settings.trusted_proxies == ""
    client = await access_logged_client(aiohttp_server, aiohttp_client, settings)
    create_user(settings, "ada@example.com")
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    wrong = {"email": "ada@example.com", "password": "not it"}
    # A fresh forged address on every try: the limiter must still see one address.
    statuses = []
    for i in range(settings.login_max_failures + 1):
        forged = {"X-Forwarded-For": f"203.0.113.{i + 1}"}
        response = await client.post("/api/v1/auth/login", json=wrong, headers=forged)
        statuses.append(response.status)
    assert statuses == [401] * settings.login_max_failures + [429]
    assert set(audit_addresses(settings, "login.failed")) == {"127.0.0.1"}
    assert set(audit_addresses(settings, "login.rate_limited")) == {"127.0.0.1"}
    lines = [line for line in access_lines(caplog) if "/api/v1/auth/login" in line]
    assert len(lines) == settings.login_max_failures + 1
    assert all(line.startswith("127.0.0.1 ") for line in lines), lines
    assert not any("203.0.113." in line for line in lines)


async def test_forwarded_for_from_a_trusted_proxy_names_the_client(
    aiohttp_server: AiohttpServer, aiohttp_client: AiohttpClient, make_settings: MakeSettings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_settings(trusted_proxies="127.0.0.1, 10.0.0.0/8")
    client = await access_logged_client(aiohttp_server, aiohttp_client, settings)
    create_user(settings, "ada@example.com")
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    wrong = {"email": "ada@example.com", "password": "not it"}
    # What the client wrote (left) is ignored; the rightmost hop no trusted proxy is wins.
    chains = [
        ("198.51.100.7", "198.51.100.7"),
        ("6.6.6.6, 198.51.100.8", "198.51.100.8"),
        ("6.6.6.6, 198.51.100.9, 10.1.2.3", "198.51.100.9"),
        ("not-an-address, 10.1.2.3", "10.1.2.3"),
    ]
    for header, _ in chains:
        response = await client.post(
            "/api/v1/auth/login", json=wrong, headers={"X-Forwarded-For": header}
        )
        assert response.status == 401
    expected = [seen for _, seen in chains]
    assert audit_addresses(settings, "login.failed") == expected
    lines = [line for line in access_lines(caplog) if "/api/v1/auth/login" in line]
    assert [line.split(" ")[0] for line in lines] == expected
    # The login session records the forwarded address too.
    response = await client.post(
        "/api/v1/auth/login", json={"email": "ada@example.com", "password": PASSWORD},
        headers={"X-Forwarded-For": "192.0.2.44"},
    )
    assert response.status == 200
    assert audit_addresses(settings, "login") == ["192.0.2.44"]
    conn = sqlite3.connect(settings.db_path)
    try:
        assert conn.execute("SELECT address FROM login_sessions").fetchall() == [("192.0.2.44",)]
    finally:
        conn.close()


def test_an_invalid_trusted_proxy_is_a_settings_error(make_settings: MakeSettings) -> None:
    with pytest.raises(SettingsError, match="trusted_proxies: 'proxy.example' is not an IP"):
        make_settings(trusted_proxies="10.0.0.1, proxy.example")


# ---- the login limiter as a lockout weapon -------------------------------------------------
class Peers:
    """Clients of one server, each connecting from its own loopback address (127.0.0.0/8 is
    all loopback on Linux), so the server sees real, distinct peer addresses."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.sessions: dict[str, aiohttp.ClientSession] = {}

    async def login(self, address: str, password: str, email: str = "ada@example.com") -> Any:
        if address not in self.sessions:
            connector = aiohttp.TCPConnector(local_addr=(address, 0))
            self.sessions[address] = aiohttp.ClientSession(connector=connector)
        async with self.sessions[address].post(
            self.client.make_url("/api/v1/auth/login"),
            json={"email": email, "password": password},
        ) as response:
            await response.read()
            return response

    async def close(self) -> None:
        for session in self.sessions.values():
            await session.close()


@pytest.fixture
async def peers(
    aiohttp_client: AiohttpClient, make_settings: MakeSettings
) -> AsyncIterator[Callable[..., Awaitable[Peers]]]:
    made: list[Peers] = []

    async def make(**overrides: Any) -> Peers:
        settings = make_settings(**overrides)
        create_user(settings, "ada@example.com")
        made.append(Peers(await aiohttp_client(make_app(settings))))
        return made[-1]

    yield make
    for one in made:
        await one.close()


async def test_twenty_wrong_passwords_from_one_address_lock_nobody_else_out(
    peers: Callable[..., Awaitable[Peers]],
) -> None:
    server = await peers(login_window_seconds=3)
    settings = server.client.app[SETTINGS]
    attacker, owner = "127.0.0.66", "127.0.0.20"
    statuses = [(await server.login(attacker, f"guess {i}")).status for i in range(20)]
    # The attacker guessing fast is throttled after its allowance...
    allowance = settings.login_max_failures
    assert statuses == [401] * allowance + [429] * (20 - allowance)
    refused = await server.login(attacker, "guess 21")
    assert refused.status == 429
    wait = int(refused.headers["Retry-After"])
    assert 1 <= wait <= settings.login_window_seconds
    # ... even with the right password, until the back-off has passed ...
    assert (await server.login(attacker, PASSWORD)).status == 429
    # ... while the owner, from another address, logs in at once.
    response = await server.login(owner, PASSWORD)
    assert response.status == 200
    assert "pairlab_session" in response.cookies
    # After the back-off, the right password from the attacker's address works too.
    await asyncio.sleep(wait + 0.05)
    assert (await server.login(attacker, PASSWORD)).status == 200
    assert audit_addresses(settings, "login") == [owner, attacker]


async def test_a_refusal_says_why_and_when(peers: Callable[..., Awaitable[Peers]]) -> None:
    server = await peers()
    for i in range(5):
        await server.login("127.0.0.66", f"guess {i}")
    async with server.sessions["127.0.0.66"].post(
        server.client.make_url("/api/v1/auth/login"),
        json={"email": "ada@example.com", "password": "guess 6"},
    ) as refused:
        body = await refused.json()
    assert refused.status == 429
    wait = int(refused.headers["Retry-After"])
    assert 1 <= wait <= 60
    assert body["error"]["code"] == "too_many_requests"
    assert body["error"]["message"].startswith("Too many failed logins")
    assert f"try again in {wait} seconds" in body["error"]["message"]


async def test_guessing_from_many_addresses_is_slowed_but_never_locks_the_owner_out(
    peers: Callable[..., Awaitable[Peers]],
) -> None:
    server = await peers()
    # 10 addresses, 2 wrong guesses each (under their own allowance): 20 failures on one
    # account within the window, 4 times the per-pair allowance.
    bots = [f"127.0.1.{i}" for i in range(1, 11)]
    for bot in bots:
        for guess in range(2):
            assert (await server.login(bot, f"guess {guess}")).status == 401
    # The account is under attack: an address that failed gets no third guess now ...
    third = await server.login(bots[0], "guess 3")
    assert third.status == 429
    assert int(third.headers["Retry-After"]) >= 1
    # ... and a new guessing address gets one guess, not five.
    newcomer = "127.0.1.200"
    assert (await server.login(newcomer, "guess 0")).status == 401
    assert (await server.login(newcomer, "guess 1")).status == 429
    # The owner, from an address that has not failed, is never refused.
    assert (await server.login("127.0.0.20", PASSWORD)).status == 200


async def test_guesses_fired_at_once_get_no_more_than_the_allowance_checked(
    peers: Callable[..., Awaitable[Peers]],
) -> None:
    server = await peers()
    settings = server.client.app[SETTINGS]
    responses = await asyncio.gather(
        *(server.login("127.0.0.66", f"guess {i}") for i in range(30))
    )
    statuses = sorted(r.status for r in responses)
    allowance = settings.login_max_failures
    assert statuses == [401] * allowance + [429] * (30 - allowance)
    assert audit_addresses(settings, "login.failed") == ["127.0.0.66"] * allowance


async def test_spraying_many_accounts_from_one_address_does_not_lock_out_its_users(
    peers: Callable[..., Awaitable[Peers]],
) -> None:
    """Everyone behind one proxy (not configured as trusted) shares its address."""
    server = await peers()
    proxy = "127.0.0.80"
    for i in range(20):  # the spray: 20 accounts, one wrong guess each
        assert (await server.login(proxy, "Winter2026", f"user{i}@example.com")).status == 401
    # The sprayer gets one guess per account now: a second guess at an account is refused ...
    assert (await server.login(proxy, "Spring2026", "user0@example.com")).status == 429
    # ... but ada, behind the same address, logs in.
    assert (await server.login(proxy, PASSWORD)).status == 200


# ---- getting round the limiter ----------------------------------------------------------
async def test_a_fresh_ipv6_address_per_guess_gets_no_fresh_allowance(
        aiohttp_client: AiohttpClient, make_settings: MakeSettings) -> None:
    """An IPv6 subscriber gets a whole /64: one address per guess must not be a new pair."""
    settings = make_settings(trusted_proxies="127.0.0.1")
    client = await aiohttp_client(make_app(settings))
    create_user(settings, "ada@example.com")
    wrong = {"email": "ada@example.com", "password": "not it"}
    statuses = []
    for i in range(settings.login_max_failures + 1):
        response = await client.post("/api/v1/auth/login", json=wrong,
                                     headers={"X-Forwarded-For": f"2001:db8:1:2::{i + 1:x}"})
        statuses.append(response.status)
    assert statuses == [401] * settings.login_max_failures + [429]
    # Another /64 is someone else: the right password from there logs in.
    owner = await client.post("/api/v1/auth/login",
                              json={"email": "ada@example.com", "password": PASSWORD},
                              headers={"X-Forwarded-For": "2001:db8:1:3::1"})
    assert owner.status == 200
    assert audit_addresses(settings, "login.failed")[0] == "2001:db8:1:2::1"  # logged whole


async def test_a_forwarded_hop_with_a_port_is_the_client_not_the_proxy(
        aiohttp_client: AiohttpClient, make_settings: MakeSettings) -> None:
    """Were ``ip:port`` hops unreadable, everyone behind the proxy would be the proxy: a
    guesser's failures would lock the owner (behind the same proxy) out."""
    settings = make_settings(trusted_proxies="127.0.0.1")
    client = await aiohttp_client(make_app(settings))
    create_user(settings, "ada@example.com")
    for _ in range(settings.login_max_failures):
        response = await client.post(
            "/api/v1/auth/login", json={"email": "ada@example.com", "password": "not it"},
            headers={"X-Forwarded-For": "198.51.100.7:4444"})
        assert response.status == 401
    again = await client.post(
        "/api/v1/auth/login", json={"email": "ada@example.com", "password": "not it"},
        headers={"X-Forwarded-For": "198.51.100.7:4445"})
    assert again.status == 429  # the guesser, whatever its source port
    owner = await client.post(
        "/api/v1/auth/login", json={"email": "ada@example.com", "password": PASSWORD},
        headers={"X-Forwarded-For": "10.9.9.9, [2001:db8::44]:5555"})
    assert owner.status == 200
    assert set(audit_addresses(settings, "login.failed")) == {"198.51.100.7"}
    assert audit_addresses(settings, "login") == ["2001:db8::44"]


def test_junk_account_names_do_not_push_out_a_pair_that_is_backing_off() -> None:
    class Clock:
        now = 1000.0

        def __call__(self) -> float:
            return self.now

    clock = Clock()
    limiter = LoginLimiter(max_failures=3, window_seconds=60, clock=clock)
    for _ in range(3):
        assert limiter.attempt("ada@example.com", "198.51.100.7") == 0
        limiter.failed("ada@example.com", "198.51.100.7")
    assert limiter.attempt("ada@example.com", "198.51.100.7") > 0
    for i in range(MAX_KEYS + 10):  # 10,000 junk names, from the guesser and from elsewhere
        address = "198.51.100.7" if i % 2 else "198.51.100.8"
        if limiter.attempt(f"junk{i}", address) == 0:
            limiter.failed(f"junk{i}", address)
        clock.now += 0.001
    assert limiter.attempt("ada@example.com", "198.51.100.7") > 0  # still backing off


class LimiterClock:
    """The limiter's clock, moved by the handler's holds (``login_handlers.pace_hold``)
    instead of waiting: the tests assert on the limiter's decisions, never on wall-clock
    time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.holds: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def hold(self, seconds: float) -> None:
        self.holds.append(seconds)
        self.now += seconds


async def paced_peers(aiohttp_client: AiohttpClient, make_settings: MakeSettings,
                      monkeypatch: pytest.MonkeyPatch, clock: LimiterClock) -> Peers:
    """A server whose login limiter runs on ``clock`` (one wrong try per pair, 60 s window)."""
    settings = make_settings(login_max_failures=1, login_window_seconds=60)
    create_user(settings, "ada@example.com")
    app = make_app(settings)
    app[LOGIN_LIMITER] = LoginLimiter(1, 60, clock=clock)
    monkeypatch.setattr(login_handlers, "pace_hold", clock.hold)
    return Peers(await aiohttp_client(app))


async def test_a_guesser_with_many_addresses_gets_a_capped_number_of_checks(
    aiohttp_client: AiohttpClient, make_settings: MakeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One guess per fresh address, each waiting for its answer: at most the pace's checks
    per span (PACE_FACTOR times the allowance per window), from all addresses; the owner is
    delayed at most HOLD_MAX_SECONDS, never refused."""
    clock = LimiterClock()
    server = await paced_peers(aiohttp_client, make_settings, monkeypatch, clock)
    try:
        limiter = server.client.app[LOGIN_LIMITER]
        pace, span = limiter.pace_limit, limiter.pace_span
        assert pace * 60 / span <= PACE_FACTOR * 1
        checked = []
        for i in range(pace * 6):
            response = await server.login(f"127.0.2.{i + 1}", f"guess {i}")
            assert response.status == 401  # a fresh address is never refused
            checked.append(clock.now)  # when its password was checked, on the limiter's clock
        assert clock.holds  # the pace held some
        for i in range(len(checked) - pace):
            assert checked[i + pace] - checked[i] >= span, (i, checked)
        assert (await server.login("127.0.0.20", PASSWORD)).status == 200
        assert max(clock.holds) <= HOLD_MAX_SECONDS < 60  # under a reverse proxy's timeout
    finally:
        await server.close()


async def test_a_flood_of_fresh_addresses_is_told_to_come_back_beyond_the_held_bound(
    aiohttp_client: AiohttpClient, make_settings: MakeSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Held tries are bounded across the server (MAX_HOLDS, made 2 here): the next is 429
    with Retry-After and a sentence that does not blame its address."""
    clock = LimiterClock()
    server = await paced_peers(aiohttp_client, make_settings, monkeypatch, clock)
    monkeypatch.setattr(ratelimit, "MAX_HOLDS", 2)
    monkeypatch.setattr(login_handlers, "pace_hold", no_wait)  # the clock stands still
    try:
        pace = server.client.app[LOGIN_LIMITER].pace_limit
        statuses = [(await server.login(f"127.0.3.{i + 1}", "guess")).status
                    for i in range(pace + 2)]
        assert statuses == [401] * (pace + 2)  # the pace, then two held
        refused = await server.login("127.0.0.20", PASSWORD)  # the owner, fresh: busy
        body = await refused.json()
        assert refused.status == 429
        wait = int(refused.headers["Retry-After"])
        assert 1 <= wait <= HOLD_MAX_SECONDS
        assert body["error"]["message"] == (
            f"Too many logins are waiting to be checked; try again in {wait} seconds.")
    finally:
        await server.close()


async def no_wait(seconds: float) -> None:
    """A hold that returns at once and leaves the limiter's clock where it is (so the
    holds it was given never end)."""


# ---- cookies planted by a sibling host ------------------------------------------------------
def _set_cookie(response: aiohttp.ClientResponse, name: str) -> str:
    """The one Set-Cookie header of ``response`` that sets ``name``."""
    found = [c for c in response.headers.getall("Set-Cookie", []) if c.startswith(name + "=")]
    assert len(found) == 1, response.headers.getall("Set-Cookie", [])
    return found[0]


async def test_over_https_a_cookie_a_sibling_host_plants_is_never_the_session(
        aiohttp_client: AiohttpClient, make_settings: MakeSettings) -> None:
    """Script on w-X.ws.example.com can set ``pairlab_session=...; Domain=example.com``, which
    the browser sends to app.example.com too: it must not log the victim in as the attacker."""
    settings = make_settings(public_url="https://app.example.com",
                             workspace_domain="ws.example.com",
                             workspace_public_url="https://ws.example.com")
    client = await aiohttp_client(make_app(settings))
    create_user(settings, "eve@example.com")
    create_user(settings, "ada@example.com")
    page = await client.get("/login")
    prelogin = _set_cookie(page, "__Host-pairlab_prelogin")
    eve = await client.post("/api/v1/auth/login",
                            json={"email": "eve@example.com", "password": PASSWORD})
    assert eve.status == 200
    cookie = _set_cookie(eve, "__Host-pairlab_session")
    for one in (cookie, prelogin):  # host-only, Secure, Path=/ (what __Host- requires)
        attributes = [a.strip().lower() for a in one.split(";")[1:]]
        assert "secure" in attributes and "path=/" in attributes
        assert not any(a.startswith("domain") for a in attributes)
    eve_token = cookie.split(";")[0].split("=", 1)[1]
    # The attacker's own session token, planted under the plain name, is not a login.
    planted = await client.get("/api/v1/auth/me",
                               headers={"Cookie": f"pairlab_session={eve_token}"})
    assert planted.status == 401
    # Beside the victim's own cookie it changes nothing: the victim stays the victim.
    ada = await client.post("/api/v1/auth/login",
                            json={"email": "ada@example.com", "password": PASSWORD})
    ada_token = _set_cookie(ada, "__Host-pairlab_session").split(";")[0].split("=", 1)[1]
    both = await client.get("/api/v1/auth/me", headers={
        "Cookie": f"pairlab_session={eve_token}; __Host-pairlab_session={ada_token}"})
    assert (await both.json())["user"]["email"] == "ada@example.com"
    # Logging out deletes the __Host- cookie (a deletion without Secure would be ignored).
    csrf = (await ada.json())["csrf_token"]
    out = await client.post("/api/v1/auth/logout", headers={
        "Cookie": f"__Host-pairlab_session={ada_token}", "X-CSRF-Token": csrf,
        "Origin": "https://app.example.com"})
    assert out.status == 200, await out.text()
    gone = [a.strip().lower() for a in _set_cookie(out, "__Host-pairlab_session").split(";")]
    assert "secure" in gone and any(a.startswith("max-age=0") for a in gone)


def test_the_doctor_warns_when_the_app_and_the_workspaces_share_a_site(
        make_settings: MakeSettings) -> None:
    siblings = make_settings(public_url="https://app.example.com",
                             workspace_domain="ws.example.com",
                             workspace_public_url="https://ws.example.com")
    found = check_domains(siblings)
    assert found.status == "warn"
    assert "example.com" in found.detail and found.fix
    apart = make_settings(public_url="https://app.example.com",
                          workspace_domain="ws.example-workspaces.net",
                          workspace_public_url="https://ws.example-workspaces.net")
    assert check_domains(apart).status == "ok"
    assert check_domains(make_settings()).status == "ok"  # loopback development
