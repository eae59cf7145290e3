"""``pairlab doctor`` as an operator runs it, and the start-up check of ``serve``: each check one
line, a miss with how to fix it, exit 0 only when all holds."""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    CliResult,
    assert_no_traceback,
    create_user,
    form_csrf_token,
    login,
    make_app,
)
from tests.fixture_tasks import SHARED_ENVS

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
Run = Callable[..., CliResult]
SHARED = {"PAIRLAB_ENVIRONMENTS_DIR": str(SHARED_ENVS)}
CHECKS = ("root", "tools", "bubblewrap", "seccomp", "sandbox uids", "cgroups", "data dir",
          "disk limit",
          "python")


def names(stdout: str) -> list[str]:
    return [line[5:].split(":", 1)[0] for line in stdout.splitlines()]


def test_on_this_host_every_check_holds_and_a_workspace_runs(run_cli: Run) -> None:
    result = run_cli("doctor", env=SHARED)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert all(line.startswith(("ok  ", "warn")) for line in lines), result.stdout
    assert set(CHECKS) <= set(names(result.stdout))
    (workspace,) = [line for line in lines if line.startswith("ok   workspace:")]
    assert "ran a cell and a terminal command" in workspace


def test_fast_json_report(run_cli: Run) -> None:
    result = run_cli("doctor", "--fast", "--json", env=SHARED)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    found = {f["name"]: f for f in report["findings"]}
    assert "workspace" not in found
    assert found["bubblewrap"]["status"] == "ok" and found["bubblewrap"]["critical"] is True
    assert found["seccomp"]["status"] == "ok" and found["seccomp"]["critical"] is True


def host_account_uid() -> int:
    """A uid of this host's own accounts, at least 1000 (Debian's ``nobody`` is 65534)."""
    return min(p.pw_uid for p in pwd.getpwall() if p.pw_uid >= 1000)


def test_a_uid_range_over_a_host_account_fails_and_serve_refuses_to_start(
        run_cli: Run, cli_env: dict[str, str], tmp_path: Path) -> None:
    uid = host_account_uid()
    name = pwd.getpwuid(uid).pw_name
    base = {"PAIRLAB_SANDBOX_UID_BASE": str(max(1000, uid - 10)), **SHARED}
    result = run_cli("doctor", "--fast", env=base)
    assert result.returncode == 1
    (line,) = [x for x in result.stdout.splitlines() if x.startswith("FAIL sandbox uids:")]
    assert f"belongs to the host account {name!r}" in line and "-- fix: set sandbox_uid_base" \
        in line
    assert result.stderr.strip() == "pairlab doctor: 1 check(s) failed"

    served = subprocess.run(
        [sys.executable, "-m", "server.cli.main", "serve", "--port", "0", "--workspace-port", "0"],
        env={**cli_env, **base}, cwd=tmp_path, capture_output=True, text=True, timeout=120,
        check=False)
    assert served.returncode == 1
    last = served.stderr.strip().splitlines()[-1]
    assert last.startswith("pairlab: workspaces could not work here: sandbox uids:")
    assert "pairlab doctor shows all" in last
    assert_no_traceback(served.stderr)


def test_a_data_dir_owned_by_another_account_fails_the_data_dir_check(
        run_cli: Run, cli_env: dict[str, str]) -> None:
    assert run_cli("db", "upgrade").returncode == 0
    data = Path(cli_env["PAIRLAB_DATA_DIR"])
    uid = host_account_uid()
    os.chown(data, uid, uid)  # restored by nothing: the folder is the test's own
    result = run_cli("doctor", "--fast", env=SHARED)
    assert result.returncode == 1
    (line,) = [x for x in result.stdout.splitlines() if x.startswith("FAIL data dir:")]
    assert f"{data} belongs to uid {uid}, not 0" in line and f"-- fix: chown root {data}" in line


def test_no_disk_image_fails_the_disk_limit_check_and_serve_refuses_to_start(
        run_cli: Run, cli_env: dict[str, str]) -> None:
    assert run_cli("db", "upgrade").returncode == 0
    data = Path(cli_env["PAIRLAB_DATA_DIR"])
    (data / "workspaces").mkdir(mode=0o711)
    (data / "workspaces" / ".images").write_text("in the way")  # no image can be made here
    result = run_cli("doctor", "--fast", env=SHARED)
    assert result.returncode == 1
    (line,) = [x for x in result.stdout.splitlines() if x.startswith("FAIL disk limit:")]
    assert "cannot be made or mounted here, so no workspace can start" in line
    assert "Not a directory" in line and "-- fix: " in line
    loud = run_cli("doctor", "--fast", "--unsafe-no-disk-image", "true", env=SHARED)
    assert [x for x in loud.stdout.splitlines() if x.startswith("warn disk limit:")], loud.stdout
    served = subprocess.run(
        [sys.executable, "-m", "server.cli.main", "serve", "--port", "0", "--workspace-port", "0"],
        env={**cli_env, **SHARED}, cwd=data.parent, capture_output=True, text=True,
        timeout=120, check=False)
    assert served.returncode == 1
    last = served.stderr.strip().splitlines()[-1]
    assert last.startswith("pairlab: workspaces could not work here: disk limit:"), last
    assert_no_traceback(served.stderr)


def test_a_data_dir_too_deep_for_workspace_sockets_fails(run_cli: Run, tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / "var"
    result = run_cli("doctor", "--fast", "--data-dir", str(deep), env=SHARED)
    assert result.returncode == 1
    (line,) = [x for x in result.stdout.splitlines() if x.startswith("FAIL data dir:")]
    assert "longer than a Unix socket path may be" in line
    assert "-- fix: set data_dir to a path at least" in line


async def test_admins_see_the_report_on_a_page_and_as_json(
        aiohttp_client: Any, make_settings: Any) -> None:
    short = Path(tempfile.mkdtemp(prefix="pldoc-", dir="/tmp"))  # sockets must fit under it
    try:
        settings = make_settings(data_dir=short / "data", environments_dir=str(SHARED_ENVS))
        create_user(settings, "admin@example.com", "admin")
        create_user(settings, "lead@example.com", "interviewer")
        client = await aiohttp_client(make_app(settings))
        lead_csrf = await login(client, "lead@example.com")
        assert (await client.get("/api/v1/doctor")).status == 403
        assert (await client.post("/api/v1/doctor",
                                  headers={"X-CSRF-Token": lead_csrf})).status == 403
        client.session.cookie_jar.clear()
        csrf = await login(client, "admin@example.com")
        fast = await client.get("/api/v1/doctor")
        assert fast.status == 200
        report = await fast.json()
        assert report["ok"] is True, [f for f in report["findings"] if f["status"] != "ok"]
        assert "workspace" not in {f["name"] for f in report["findings"]}
        page = await client.get("/admin/doctor")
        html = await page.text()
        assert page.status == 200 and 'id="doctor-full"' in html
        assert "<td>workspace</td>" not in html  # reading the page starts nothing
        assert (await client.post("/admin/doctor", data={})).status == 403  # no CSRF token
        full = await client.post("/admin/doctor", data={"csrf_token": form_csrf_token(html)})
        html = await full.text()
        assert full.status == 200, html
        assert "Everything workspaces need holds on this host." in html
        assert '<tr class="doctor-ok">\n  <td>workspace</td>' in html
        both = await asyncio.gather(*(client.post("/api/v1/doctor", headers={
            "X-CSRF-Token": csrf}) for _ in range(2)))
        reports = [await r.json() for r in both]
        assert reports[0] == reports[1]  # the second waited for the first: one workspace
        assert reports[0]["ok"] is True
    finally:
        shutil.rmtree(short, ignore_errors=True)
