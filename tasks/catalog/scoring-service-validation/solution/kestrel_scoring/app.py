"""WSGI application: POST /v1/score and GET /health.

Request:  {"features": {"income": 42000, "loan_amount": 12000, "term_months": 36,
                        "age": 35, "employment_years": 4, "home_ownership": "rent"}}
Response: {"score": 0.1234, "model_version": "7.2.0"}

Called by the loan-origination service (los.kestrelwood.internal) for every application.
Client mistakes get a 4xx with {"error": message, "field": name-or-null}; never a 500.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from kestrel_scoring.model import Model, load_model

log = logging.getLogger("kestrel_scoring")

StartResponse = Callable[..., Any]
MAX_BODY_BYTES = 64 * 1024


class RequestError(Exception):
    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


def _json(start_response: StartResponse, status: int, body: dict[str, Any],
          extra: list[tuple[str, str]] | None = None) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(f"{status} {HTTPStatus(status).phrase}",
                   [("Content-Type", "application/json"), ("Content-Length", str(len(data))),
                    *(extra or [])])
    return [data]


def _reject_constant(token: str) -> None:
    raise RequestError(400, f"the body is not valid JSON: {token} is not a JSON number")


def read_json_body(environ: dict[str, Any]) -> Any:
    content_type = environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise RequestError(415, "send the body as Content-Type: application/json")
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise RequestError(400, "Content-Length is not a number") from None
    if length > MAX_BODY_BYTES:
        raise RequestError(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
    raw = environ["wsgi.input"].read(length) if length > 0 else b""
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestError(400, f"the body is not valid JSON: {exc}") from None


def validate_features(model: Model, payload: Any) -> dict[str, Any]:
    """The ``features`` object checked against the model's feature schema, or RequestError."""
    if not isinstance(payload, dict) or not isinstance(payload.get("features"), dict):
        raise RequestError(422, 'the body must be an object with a "features" object',
                           "features")
    features: dict[str, Any] = payload["features"]
    unknown = sorted(set(features) - set(model.features))
    if unknown:
        raise RequestError(422, f"unknown feature(s): {', '.join(unknown)}; "
                           f"expected: {', '.join(model.features)}", unknown[0])
    for name, spec in model.features.items():
        if name not in features:
            raise RequestError(422, f"feature {name!r} is missing", name)
        value = features[name]
        kind = spec["type"]
        if kind == "category":
            if not isinstance(value, str) or value not in spec["allowed"]:
                raise RequestError(422, f"{name} must be one of {spec['allowed']}, "
                                   f"not {value!r}", name)
            continue
        wanted = int if kind == "integer" else (int, float)
        if isinstance(value, bool) or not isinstance(value, wanted):
            raise RequestError(422, f"{name} must be {'an integer' if kind == 'integer' else 'a number'}, "
                               f"not {type(value).__name__}", name)
        if not math.isfinite(value):
            raise RequestError(422, f"{name} must be a finite number", name)
        if "allowed" in spec and value not in spec["allowed"]:
            raise RequestError(422, f"{name} must be one of {spec['allowed']}, not {value}", name)
        if not spec.get("min", -math.inf) <= value <= spec.get("max", math.inf):
            raise RequestError(422, f"{name} must be between {spec['min']} and {spec['max']}, "
                               f"not {value}", name)
    return features


def make_app(model: Model | None = None) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    model = model or load_model()

    def score(environ: dict[str, Any]) -> dict[str, Any]:
        features = validate_features(model, read_json_body(environ))
        return {"score": round(model.score(features), 6), "model_version": model.version}

    routes: dict[str, dict[str, Callable[[dict[str, Any]], dict[str, Any]]]] = {
        "/v1/score": {"POST": score},
        "/health": {"GET": lambda environ: {"status": "ok", "model": model.name,
                                            "model_version": model.version}},
    }

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ["REQUEST_METHOD"]
        if path not in routes:
            return _json(start_response, 404, {"error": f"no route for {path}", "field": None})
        handler = routes[path].get(method)
        if handler is None:
            allow = ", ".join(routes[path])
            return _json(start_response, 405, {"error": f"use {allow} for {path}", "field": None},
                         [("Allow", allow)])
        try:
            return _json(start_response, 200, handler(environ))
        except RequestError as exc:
            log.info("rejected %s %s: %d %s", method, path, exc.status, exc.message)
            return _json(start_response, exc.status, {"error": exc.message, "field": exc.field})

    return app
