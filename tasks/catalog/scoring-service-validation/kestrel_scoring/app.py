"""WSGI application: POST /v1/score.

Request:  {"features": {"income": 42000, "loan_amount": 12000, "term_months": 36,
                        "age": 35, "employment_years": 4, "home_ownership": "rent"}}
Response: {"score": 0.1234, "model_version": "7.2.0"}

Called by the loan-origination service (los.kestrelwood.internal) for every application.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from kestrel_scoring.model import Model, load_model

log = logging.getLogger("kestrel_scoring")

StartResponse = Callable[..., Any]

STATUS_TEXT = {200: "OK", 404: "Not Found"}


def _json(start_response: StartResponse, status: int, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(f"{status} {STATUS_TEXT[status]}",
                   [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def make_app(model: Model | None = None) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    model = model or load_model()

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/v1/score" and environ["REQUEST_METHOD"] == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            payload = json.loads(environ["wsgi.input"].read(length))
            score = model.score(payload["features"])
            log.info("scored application: %.4f", score)
            return _json(start_response, 200,
                         {"score": round(score, 6), "model_version": model.version})
        return _json(start_response, 404, {"error": f"no route for {path}"})

    return app
