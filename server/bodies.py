"""Strict JSON request bodies: malformed JSON, wrong types and unknown fields are refused.

A hand-written check rather than a schema library: the bodies are small flat objects, and the
error sentence must name the field in words a person understands.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from server.errors import BadRequest, NotFound, Unprocessable

_TYPE_NAMES = {str: "a string", int: "an integer", bool: "true or false", list: "a list",
               dict: "an object", float: "a number"}


def whole_number(text: str, max_digits: int = 18) -> int | None:
    """``text`` as a non-negative int if it is only ASCII digits (at most ``max_digits``),
    else None. ``str.isdigit()`` alone also accepts "²" and other digits ``int()`` refuses."""
    if text.isascii() and text.isdigit() and len(text) <= max_digits:
        return int(text)
    return None


def path_number(request: web.Request, key: str, what: str) -> int:
    """The whole number in the URL's ``{key}``, or a 404 naming ``what`` was not found."""
    raw = request.match_info[key]
    number = whole_number(raw)
    if number is None:
        raise NotFound(f"There is no {what} with id {raw[:20]!r}.")
    return number


async def json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object (400 with a sentence if it is not one); fields unchecked."""
    if request.content_type != "application/json":
        raise BadRequest("Send the body as JSON with 'Content-Type: application/json'.")
    raw = await request.read()
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    return body


async def json_body(
    request: web.Request,
    required: Mapping[str, type],
    optional: Mapping[str, type] | None = None,
) -> dict[str, Any]:
    optional = optional or {}
    body = await json_object(request)
    unknown = sorted(set(body) - set(required) - set(optional))
    if unknown:
        raise Unprocessable(f"Unknown field(s): {', '.join(k[:40] for k in unknown)}.")
    missing = sorted(k for k in required if k not in body)
    if missing:
        raise Unprocessable(f"Missing field(s): {', '.join(missing)}.")
    for key, value in body.items():
        expected = required.get(key) or optional[key]
        ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
        if not ok:
            raise Unprocessable(f"The field '{key}' must be {_TYPE_NAMES.get(expected, expected)}.")
    return body
