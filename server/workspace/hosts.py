"""Which host of the workspace origin a request came to, and what each host may serve.

Every workspace is served on its own host, ``w-<workspace id>.<workspace domain>``, so that a
script a candidate writes (a notebook's HTML output, a page in the file browser) runs on an
origin no other workspace shares: it gets no other workspace's cookies, cannot read its
responses (no CORS) and is refused by its Origin checks. The shared host, the workspace
domain itself, keeps only what needs no workspace: capability links, the landing page and
handoffs, which send the browser on with a one-time entry code (``workspaces.entry_codes``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler

from common.errors import DomainError, NotFound
from server.http.keys import SETTINGS

_WORKSPACE_LABEL = re.compile(r"^w-([a-z0-9]{1,40})$")
_OWN_PATH = re.compile(r"^/w/([^/]+)(/|$)")
SHARED_ONLY = ("/c/", "/s/", "/handoff/")
WORKSPACE_ONLY = ("/w/", "/enter/")
ANYWHERE = ("/healthz", "/_pairlab/", "/api/v1/sessions/")


class Misdirected(DomainError):
    """A request for one host's content sent to another host (HTTP 421)."""

    status = 421
    code = "misdirected"


@dataclass(frozen=True)
class Where:
    """The host a request came to: the shared origin (``workspace_id`` None) or one workspace's."""

    workspace_id: str | None


WHERE = web.RequestKey("where", Where)


def classify(host: str, domain: str) -> Where | None:
    """``Where`` for a ``Host`` header (port ignored: cookies do not tell ports apart), or None
    for a host that is neither the workspace domain nor one of its workspaces."""
    name = host.strip().lower()
    if name.startswith("["):
        return None
    name = name.rsplit(":", 1)[0] if ":" in name else name
    name = name.removesuffix(".")
    if name == domain:
        return Where(None)
    if name.endswith("." + domain):
        found = _WORKSPACE_LABEL.match(name[: -len(domain) - 1])
        if found:
            return Where(found.group(1))
    return None


@web.middleware
async def host_routing(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse a path on a host that does not serve it, before any handler runs."""
    path = request.path
    if path == "/healthz":
        return await handler(request)
    domain = request.app[SETTINGS].workspace_domain
    where = classify(request.host, domain)
    if where is None:
        raise Misdirected(f"This server answers only for {domain} and its workspaces"
                          f" (w-<id>.{domain}); check the address.")
    if where.workspace_id is None:
        if path.startswith(WORKSPACE_ONLY):
            raise Misdirected("A workspace is served only at its own address (w-<id>."
                              f"{domain}); open it from your interview link or Join again.")
    else:
        if path.startswith(SHARED_ONLY):
            raise NotFound(f"This address belongs to {domain}, not to a workspace.")
        own = _OWN_PATH.match(path)
        if own is not None and own.group(1) != where.workspace_id:
            raise Misdirected("This is another workspace's address: each workspace is served"
                              " only at its own host.")
        if own is None and not path.startswith(WORKSPACE_ONLY + ANYWHERE):
            raise NotFound("There is nothing at this address.")
    request[WHERE] = where
    return await handler(request)


async def frame_only_by_itself(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: a proxied workspace page may be framed only by its own origin
    (an extra policy header; browsers enforce every one they get, so JupyterLab's own stays)."""
    if request.path.startswith("/w/"):
        response.headers.add("Content-Security-Policy", "frame-ancestors 'self'")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
