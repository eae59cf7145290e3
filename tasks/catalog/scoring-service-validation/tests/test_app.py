import io
import json
from typing import Any
from wsgiref.util import setup_testing_defaults

from kestrel_scoring.app import make_app
from kestrel_scoring.model import load_model

GOOD = {"income": 42000, "loan_amount": 12000, "term_months": 36, "age": 35,
        "employment_years": 4, "home_ownership": "rent"}


def call(method: str, path: str, body: bytes = b"") -> tuple[str, dict[str, str], Any]:
    environ: dict[str, Any] = {"REQUEST_METHOD": method, "PATH_INFO": path,
                               "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
                               "CONTENT_TYPE": "application/json"}
    setup_testing_defaults(environ)
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        seen["status"], seen["headers"] = status, dict(headers)

    data = b"".join(make_app()(environ, start_response))
    return seen["status"], seen["headers"], json.loads(data)


def test_scores_a_valid_application() -> None:
    status, headers, body = call("POST", "/v1/score", json.dumps({"features": GOOD}).encode())
    assert status.startswith("200")
    assert headers["Content-Type"] == "application/json"
    assert 0.0 < body["score"] < 1.0
    assert body["model_version"] == load_model().version


def test_higher_income_means_lower_risk() -> None:
    model = load_model()
    assert model.score({**GOOD, "income": 90000}) < model.score(GOOD)


def test_unknown_path_is_404() -> None:
    status, _, body = call("GET", "/v2/nothing")
    assert status.startswith("404")
    assert "error" in body
