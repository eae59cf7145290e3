"""Hidden checks for scoring-service-validation: the real server on 127.0.0.1, over HTTP."""

import http.client
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
GOOD = {"income": 42000, "loan_amount": 12000, "term_months": 36, "age": 35,
        "employment_years": 4, "home_ownership": "rent"}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "kestrel_scoring.server", "--host", "127.0.0.1",
         "--port", str(port)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline, delay = time.monotonic() + 20, 0.02
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the server exited with code {proc.returncode}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("the server did not start listening within 20 s")
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def request(port: int, method: str, path: str, body: bytes | None = None,
            content_type: str | None = "application/json") -> tuple[int, dict[str, str], Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Content-Type": content_type} if content_type else {}
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = raw.decode("utf-8", "replace")
    return resp.status, hdrs, parsed


def score(port: int, features: Any, **kw: Any) -> tuple[int, dict[str, str], Any]:
    return request(port, "POST", "/v1/score", json.dumps({"features": features}).encode(), **kw)


def assert_client_error(result: tuple[int, dict[str, str], Any], statuses: set[int],
                        mentions: str | None = None) -> None:
    status, headers, body = result
    assert status in statuses, (status, body)
    assert headers.get("content-type", "").startswith("application/json"), headers
    assert isinstance(body, dict) and "error" in body, body
    text = json.dumps(body)
    assert "Traceback" not in text
    if mentions:
        assert mentions in text, (mentions, body)


def test_health_reports_model_version(port: int) -> None:
    version = json.loads((ROOT / "model" / "credit_risk.json").read_text())["version"]
    status, headers, body = request(port, "GET", "/health", content_type=None)
    assert status == 200
    assert headers.get("content-type", "").startswith("application/json")
    assert body["status"] == "ok"
    assert body["model_version"] == version


def test_valid_application_still_scores(port: int) -> None:
    status, _, body = score(port, GOOD)
    assert status == 200
    assert 0.0 < body["score"] < 1.0


def test_malformed_json_is_400(port: int) -> None:
    assert_client_error(request(port, "POST", "/v1/score", b'{"features": {"income": 4'), {400})


def test_missing_feature_is_422(port: int) -> None:
    features = {k: v for k, v in GOOD.items() if k != "age"}
    assert_client_error(score(port, features), {422}, "age")


def test_wrong_type_is_422(port: int) -> None:
    assert_client_error(score(port, {**GOOD, "income": "lots"}), {422}, "income")


def test_boolean_is_not_a_number(port: int) -> None:
    assert_client_error(score(port, {**GOOD, "employment_years": True}), {422},
                        "employment_years")


def test_out_of_range_is_422(port: int) -> None:
    assert_client_error(score(port, {**GOOD, "age": 7}), {422}, "age")
    assert_client_error(score(port, {**GOOD, "loan_amount": -5000}), {422}, "loan_amount")


def test_value_not_allowed_is_422(port: int) -> None:
    assert_client_error(score(port, {**GOOD, "home_ownership": "castle"}), {422},
                        "home_ownership")
    assert_client_error(score(port, {**GOOD, "term_months": 37}), {422}, "term_months")


def test_unknown_feature_is_422(port: int) -> None:
    assert_client_error(score(port, {**GOOD, "loan_amout": 100}), {422}, "loan_amout")


def test_not_an_object_is_rejected(port: int) -> None:
    assert_client_error(request(port, "POST", "/v1/score", b"[1, 2, 3]"), {400, 422})
    assert_client_error(score(port, [1, 2]), {400, 422}, "features")


def test_non_finite_number_is_rejected(port: int) -> None:
    body = json.dumps({"features": GOOD}).replace("42000", "NaN").encode()
    assert_client_error(request(port, "POST", "/v1/score", body), {400, 422})


def test_wrong_content_type_is_415(port: int) -> None:
    assert_client_error(score(port, GOOD, content_type="text/plain"), {415})


def test_get_on_score_is_405(port: int) -> None:
    status, headers, _ = request(port, "GET", "/v1/score", content_type=None)
    assert status == 405
    assert "POST" in headers.get("allow", "")


def test_server_survives_bad_requests(port: int) -> None:
    for payload in (b"", b"null", b"{", b'{"features": null}'):
        request(port, "POST", "/v1/score", payload)
    assert request(port, "GET", "/health", content_type=None)[0] == 200
    assert score(port, GOOD)[0] == 200
