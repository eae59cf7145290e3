"""The workspace listener as a browser reaches it: the shared host (``localhost``) and each
workspace's own host (``w-<id>.localhost``), chosen from the path, over one test client. (A
real client reaches those hosts through ``common.loopback``.)"""

from __future__ import annotations

import re
from typing import Any

from aiohttp.test_utils import TestClient
from yarl import URL

_WORKSPACE_PATH = re.compile(r"^/w/([^/]+)")


def host_for(path: str, domain: str = "localhost") -> str:
    """The host a browser would send ``path`` to: a workspace's own, or the shared one."""
    found = _WORKSPACE_PATH.match(path)
    return f"w-{found.group(1)}.{domain}" if found else domain


def _with_host(path: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    headers = dict(kwargs.get("headers") or {})
    if not any(name.lower() == "host" for name in headers):
        headers["Host"] = host_for(str(path))
    return {**kwargs, "headers": headers}


class HostRoutingClient(TestClient[Any, Any]):
    """Each request carries the ``Host`` of its path (``/w/<id>/...`` on
    ``w-<id>.localhost``, the rest on ``localhost``) unless the test gives one. Its one cookie
    jar keeps every host's cookies (they have distinct names): what a browser keeps apart by
    host is proven in Chromium (tests/server/workspace/test_workspace_origins_browser.py)."""

    async def _request(self, method: str, path: Any, **kwargs: Any) -> Any:
        return await super()._request(method, path, **_with_host(path, kwargs))

    async def _ws_connect(self, path: Any, **kwargs: Any) -> Any:
        return await super()._ws_connect(path, **_with_host(path, kwargs))


def routing(client: TestClient[Any, Any]) -> HostRoutingClient:
    """Turn the ``aiohttp_client`` fixture's plain client into a host-routing one."""
    client.__class__ = HostRoutingClient
    assert isinstance(client, HostRoutingClient)
    return client


async def enter(client: TestClient[Any, Any], url: str) -> str:
    """Follow an entry URL (``http://w-<id>.<domain>:<port>/enter/<code>``) as a browser would;
    returns where it lands (``/w/<id>/lab``)."""
    parsed = URL(url)
    assert parsed.path.startswith("/enter/"), url
    response = await client.get(parsed.path, headers={"Host": parsed.host or ""},
                                allow_redirects=False)
    assert response.status == 303, await response.text()
    return response.headers["Location"]
