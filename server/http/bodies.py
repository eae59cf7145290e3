"""Strict JSON request bodies: malformed JSON, wrong types and unknown fields are refused.

A hand-written check rather than a schema library: the bodies are small flat objects, and the
error sentence must name the field in words a person understands.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar

from aiohttp import web

from common.errors import BadRequest, NotFound, Unprocessable

D = TypeVar("D")
MAX_JSON_DEPTH = 64
"""Deepest nesting of arrays and objects a JSON body may have (ours are a few levels deep)."""
TOO_DEEP = (f"The JSON body is nested too deeply (at most {MAX_JSON_DEPTH} levels of arrays and"
            " objects).")
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


def query_number(request: web.Request, name: str, default: D, low: int = 0,
                    high: int = 2**62) -> int | D:
    """The whole number in the query's ``name`` (``default`` when absent or empty), or a 422
    saying the range it must be in."""
    raw = request.query.get(name, "")
    if raw == "":
        return default
    value = whole_number(raw)
    if value is None or not low <= value <= high:
        raise Unprocessable(f"'{name}' must be a whole number from {low} to {high}.")
    return value


class JSONTooDeep(ValueError):
    """JSON nested deeper than ``MAX_JSON_DEPTH`` (a ValueError, as json's own errors are)."""


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value`` nests lists/dicts more than ``limit`` deep (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if not isinstance(item, dict | list):
            continue
        children = item.values() if isinstance(item, dict) else item
        if children and depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def load_json(raw: str | bytes) -> Any:
    """``json.loads`` with a nesting limit: the one parser for JSON a client sends.

    Raises ``JSONTooDeep`` beyond ``MAX_JSON_DEPTH`` levels, and for input deep enough to reach
    the interpreter's recursion limit inside the parser (which would otherwise be a 500), and
    ``ValueError`` (``json.JSONDecodeError``, ``UnicodeDecodeError``) for what is not JSON.
    """
    try:
        value = json.loads(raw)
    except RecursionError:
        raise JSONTooDeep(TOO_DEEP) from None
    if _deeper_than(value, MAX_JSON_DEPTH):
        raise JSONTooDeep(TOO_DEEP)
    return value


async def json_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object (400 with a sentence if it is not one); fields unchecked."""
    if request.content_type != "application/json":
        raise BadRequest("Send the body as JSON with 'Content-Type: application/json'.")
    raw = await request.read()
    try:
        body = load_json(raw)
    except JSONTooDeep:
        raise BadRequest(TOO_DEEP) from None
    except ValueError:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
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
