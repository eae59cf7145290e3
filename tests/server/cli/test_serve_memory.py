"""A real ``pairlab serve`` loads no statistics library (scipy, numpy) nor pandas until a page
that computes statistics is asked: read from the process's own memory map, not its code."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

from server.settings import Settings, prepare_data_dir
from tests.conftest import PASSWORD, assert_no_traceback, create_user
from tests.fixture_tasks import SHARED_ENVS
from tests.scoring.analytics_data import seed
from tests.server.cli.test_serve import OPENER, free_port, start_serve, stop, wait_ready

pytestmark = pytest.mark.slow

HEAVY = ("scipy", "numpy", "pandas")  # each has compiled modules, mapped once imported


def loaded_packages(pid: int) -> set[str]:
    """Which of ``HEAVY`` have a compiled module (or any file) mapped in process ``pid``."""
    found = set()
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        for name in HEAVY:
            if f"/site-packages/{name}/" in line or f"/site-packages/{name}.libs/" in line:
                found.add(name)
    return found


def get(url: str, cookie: str) -> tuple[int, str]:
    assert url.startswith("http://127.0.0.1:")
    req = urllib.request.Request(url, headers={"Cookie": cookie})  # noqa: S310 - loopback
    try:
        with OPENER.open(req, timeout=60) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def login(base: str, email: str) -> str:
    req = urllib.request.Request(  # noqa: S310 - a loopback http URL the test built
        f"{base}/api/v1/auth/login", data=json.dumps({"email": email, "password": PASSWORD})
        .encode(), headers={"Content-Type": "application/json"})
    with OPENER.open(req, timeout=10) as response:
        assert response.status == 200
        cookie = response.headers["Set-Cookie"]
    match = re.match(r"(pairlab_session=[^;]+)", cookie)
    assert match, cookie
    return match.group(1)


def test_scipy_and_pandas_load_only_with_the_validity_page(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**cli_env, "PAIRLAB_WARM_POOL_SIZE": "0", "PAIRLAB_CONTINUOUS_CHECKS": "false",
           "PAIRLAB_ENVIRONMENTS_DIR": str(SHARED_ENVS), "PAIRLAB_MIN_VALIDITY_SAMPLE": "4"}
    settings = prepare_data_dir(Settings(
        data_dir=Path(env["PAIRLAB_DATA_DIR"]), environments_dir=str(SHARED_ENVS),
        warm_pool_size=0, continuous_checks=False, min_validity_sample=4))
    seed(settings)  # five scored sessions, four hires with a six-month outcome
    create_user(settings, "root@example.com", "admin")
    port, workspace_port = free_port(), free_port()
    logs = (tmp_path / "serve.out", tmp_path / "serve.err")
    proc: subprocess.Popen[bytes] = start_serve(
        env, tmp_path, logs, "--port", str(port), "--workspace-port", str(workspace_port))
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(f"{base}/readyz", proc)
        assert loaded_packages(proc.pid) == set()
        cookie = login(base, "root@example.com")
        status, html = get(f"{base}/", cookie)
        assert status == 200 and "API tokens" in html  # the admin's home page
        status, html = get(f"{base}/sessions", cookie)
        assert status == 200 and "cand S1" in html  # the seeded sessions
        assert loaded_packages(proc.pid) == set()
        idle_rss = psutil.Process(proc.pid).memory_info().rss

        # The calibration page computes Krippendorff's alpha: numpy, no more.
        status, _ = get(f"{base}/calibration", cookie)
        assert status == 200
        assert loaded_packages(proc.pid) == {"numpy"}

        status, html = get(f"{base}/reports/validity", cookie)
        assert status == 200
        assert "3 of 4 hires still employed: 75%" in " ".join(html.split())
        assert loaded_packages(proc.pid) == {"numpy", "scipy"}
        assert psutil.Process(proc.pid).memory_info().rss - idle_rss > 20 * 2**20
    finally:
        stop(proc)
    assert_no_traceback(logs[1].read_text())

