"""Where an error page sends its reader next: never back to the page that failed.

A form's error (a refused POST) goes back to the page the form was on; otherwise a logged-in
person goes home and a visitor to the login page. When that would be the failing page itself,
the next best place is offered instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class WayForward:
    href: str
    label: str


def way_forward(method: str, path: str, signed_in: bool, referer: str, host: str) -> WayForward:
    """``referer``: the request's Referer header ('' if none); only a page of ``host`` counts."""
    if method in UNSAFE:
        back = urlsplit(referer)
        # A path of this host only: "//evil.example" or "/\\evil.example" would leave it.
        if (referer and back.netloc == host and back.path.startswith("/")
                and not back.path.startswith(("//", "/\\"))):
            target = back.path + (f"?{back.query}" if back.query else "")
            return WayForward(target, "Back to the form")
    if signed_in:
        if path != "/":
            return WayForward("/", "Go to your home page")
        return WayForward("/sessions", "Go to the sessions")
    if path != "/login":
        return WayForward("/login", "Log in")
    return WayForward("/healthz", "Check whether the server is up")
