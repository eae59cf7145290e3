"""The app's error pages: styled, a human sentence, and a way forward that is never the page
that failed (home when logged in, login for visitors, back to the form for a refused form)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import login_admin

Client = TestClient[Any, Any]


class Page(HTMLParser):
    """The stylesheets, the <h1> text and the way-forward link of an error page."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.stylesheets: list[str] = []
        self.h1 = ""
        self.forward: dict[str, str] = {}
        self._in: str | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "link" and a.get("rel") == "stylesheet":
            self.stylesheets.append(a["href"])
        if tag == "h1":
            self._in = "h1"
        if tag == "a" and a.get("id") == "way-forward":
            self.forward = {"href": a["href"], "text": ""}
            self._in = "a"

    def handle_endtag(self, tag: str) -> None:
        if tag in ("h1", "a"):
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "h1":
            self.h1 += data
        elif self._in == "a":
            self.forward["text"] += data


async def error_page(response: Any, status: int) -> Page:
    assert response.status == status, await response.text()
    assert response.content_type == "text/html"
    return Page(await response.text())


async def test_a_visitor_on_an_unknown_page_is_sent_to_log_in(client: Client) -> None:
    page = await error_page(await client.get("/no/such/page", allow_redirects=False), 404)
    assert page.stylesheets == ["/static/pairlab.css"]
    assert page.h1 == "Page not found"
    assert page.forward == {"href": "/login", "text": "Log in"}


async def test_a_logged_in_person_on_an_unknown_page_is_sent_home(client: Client) -> None:
    await login_admin(client)
    page = await error_page(await client.get("/sessions/nothing/here"), 404)
    assert page.forward == {"href": "/", "text": "Go to your home page"}


async def test_a_refused_form_leads_back_to_the_form(client: Client) -> None:
    await login_admin(client)
    origin = str(client.make_url("/")).rstrip("/")
    response = await client.post(
        "/admin/tasks/revisions/nothing/publish", data={"csrf_token": "forged"},
        headers={"Origin": origin, "Referer": f"{origin}/admin/tasks?x=1"})
    page = await error_page(response, 403)
    assert page.h1 == "You may not do this"
    assert page.forward == {"href": "/admin/tasks?x=1", "text": "Back to the form"}


async def test_a_referer_of_another_site_is_never_the_way_forward(client: Client) -> None:
    """The attack: a page elsewhere posts a form here so that the error page links to it."""
    await login_admin(client)
    response = await client.post(
        "/admin/tasks/revisions/nothing/publish", data={"csrf_token": "forged"},
        headers={"Referer": "https://evil.example/phish"})
    page = await error_page(response, 403)
    assert "evil" not in page.forward["href"]
    assert page.forward["href"] == "/"


@pytest.mark.parametrize("path", ["//evil.example/phish", "/\\evil.example/phish"])
async def test_a_same_host_referer_whose_path_leaves_the_host_is_never_the_way_forward(
        client: Client, path: str) -> None:
    """The attack: a crafted URL of this host ("//evil.example" is protocol-relative) sends
    its Referer with a refused form, so that "Back to the form" would lead off-site."""
    await login_admin(client)
    host = str(client.make_url("/")).split("://", 1)[1].rstrip("/")
    response = await client.post(
        "/admin/tasks/revisions/nothing/publish", data={"csrf_token": "forged"},
        headers={"Referer": f"http://{host}{path}"})
    page = await error_page(response, 403)
    assert "evil" not in page.forward["href"], page.forward


async def test_every_page_names_an_icon_the_server_has(client: Client) -> None:
    """Browsers ask for /favicon.ico when a page names no icon: a 404 and a console error on
    every page. The pages name pairlab's own, which is served."""
    icons = []
    for path in ("/login", "/no/such/page"):
        html = await (await client.get(path)).text()
        icons += re.findall(r'<link rel="icon" href="([^"]+)"', html)
    await login_admin(client)
    icons += re.findall(r'<link rel="icon" href="([^"]+)"', await (await client.get("/")).text())
    assert icons == ["/static/favicon.svg"] * 3
    icon = await client.get(icons[0])
    assert icon.status == 200 and icon.content_type == "image/svg+xml"
    assert (await icon.text()).startswith("<svg")
