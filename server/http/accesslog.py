"""Access log lines without secrets: the query string (which may carry a capability token) and
credentials never reach the log; only method, path, status, size and time do."""

from __future__ import annotations

import re

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from server.http.client_address import client_address

# Capability-link, handoff and workspace entry paths carry a token in the path itself.
_TOKEN_PATH = re.compile(r"(/(?:c|handoff|link|enter)/)[^/?#]+")


def scrub_path(path: str) -> str:
    return _TOKEN_PATH.sub(r"\1[token]", path)


class ScrubbedAccessLogger(AbstractAccessLogger):
    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if not self.logger.isEnabledFor(20):
            return
        self.logger.info(
            "%s %s %s %s %.1fms",
            client_address(request),
            request.method,
            scrub_path(request.path),
            response.status,
            time * 1000,
        )
