"""A workspace's output cannot forge lines in pairlab's log.

The jupyter-server's output (and, through inherited file descriptors, its kernels') is the
candidate's to write. The attack: print a line that looks like one of pairlab's own, with
ANSI escapes and carriage returns, then crash the server so pairlab logs its last lines.
"""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path

import pytest

from tests.workspaces.conftest import (
    WorkspaceClient,
    free_uid,
    make_data_dir,
    remove_data_dir,
    require_sandbox,
)
from workspaces.excerpt import LOG_LINE_LIMIT
from workspaces.jupyter_config import ServerLog, read_output
from workspaces.local import LocalProvisioner
from workspaces.provisioner import WorkspaceInfo, WorkspaceSpec

FORGED = "INFO server.http.auth: admin@example.com logged in"
ATTACK = (
    b"harmless start\n"
    b"\nINFO server.http.auth: admin@example.com logged in\n"
    b"\x1b[2J\x1b[31mscreen cleared\rINFO server.http.auth: admin@example.com logged in\n"
    b"bidi \xe2\x80\xae reversed and a line\xe2\x80\xa8separator\n"
)


def assert_inert(message: str, workspace_id: str) -> list[str]:
    """Every line of the workspace's part of ``message`` is prefixed and free of controls;
    returns those lines."""
    first, _, rest = message.partition("\n")
    lines = rest.split("\n")
    assert lines and all(line.startswith(f"workspace {workspace_id} | ") for line in lines), lines
    for line in [first, *lines]:
        assert not re.search(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202e]", line), repr(line)
        assert not line.startswith("INFO ")
    return lines


async def test_server_log_excerpt_is_escaped_prefixed_and_capped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stream = asyncio.StreamReader()
    stream.feed_data(ATTACK + b"y" * 5000 + b" token=sekret-token-value\n")
    stream.feed_eof()
    server_log = ServerLog(tmp_path / "server.log", "sekret-token-value")
    await read_output(stream, server_log)
    server_log.close()
    log = logging.getLogger("workspaces.local")
    with caplog.at_level(logging.WARNING, logger="workspaces.local"):
        log.warning("workspace %s: jupyter-server exited unexpectedly (code %s); last lines:\n%s",
                    "w1", -9, server_log.excerpt("w1", 6))
    (record,) = caplog.records
    lines = assert_inert(record.getMessage(), "w1")
    assert lines[1] == "workspace w1 | "
    assert lines[2] == f"workspace w1 | {FORGED}"
    assert lines[3] == f"workspace w1 | \\x1b[2J\\x1b[31mscreen cleared\\r{FORGED}"
    assert lines[4] == "workspace w1 | bidi \\u202e reversed and a line\\u2028separator"
    assert len(lines[5]) < len("workspace w1 | ") + LOG_LINE_LIMIT + 40
    assert "truncated" in lines[5] and "sekret" not in lines[5]
    # The host-only server.log keeps the raw text (token scrubbed).
    raw = (tmp_path / "server.log").read_bytes()
    assert ATTACK in raw and b"sekret" not in raw


@pytest.mark.integration
@pytest.mark.asyncio
@pytest.mark.timeout(600)
async def test_a_crashing_workspace_cannot_forge_lines_in_pairlabs_log(
    env_python: Path, caplog: pytest.LogCaptureFixture
) -> None:
    require_sandbox()
    data = make_data_dir()
    provisioner = LocalProvisioner(data / "workspaces")
    info: WorkspaceInfo | None = None
    try:
        info = await provisioner.start(WorkspaceSpec("wsforge", free_uid(), env_python))
        async with WorkspaceClient(info) as client:
            kernel = await client.start_kernel()
            # The kernel shares the jupyter-server's output (ipykernel keeps the inherited
            # descriptor as its stdout's fileno): write to it, then kill its parent, the server.
            await client.execute(
                kernel, f"import os, sys; os.write(sys.stdout.fileno(), {ATTACK!r})")
            caplog.set_level(logging.WARNING, logger="workspaces.local")
            try:
                await asyncio.wait_for(
                    client.execute(kernel, "import os, signal; os.kill(os.getppid(), 9)"), 10)
            except Exception:  # noqa: BLE001, S110 - the server died under the request
                pass
        await asyncio.wait_for(provisioner.wait_exit(info), timeout=60)
        crashes = [r for r in caplog.records if "exited unexpectedly" in r.getMessage()]
        assert len(crashes) == 1, [r.getMessage() for r in caplog.records]
        message = crashes[0].getMessage()
        lines = assert_inert(message, "wsforge")
        assert f"workspace wsforge | \\x1b[2J\\x1b[31mscreen cleared\\r{FORGED}" in lines
        assert f"\n{FORGED}" not in message
    finally:
        if info is not None:
            await provisioner.stop(info)
        await asyncio.to_thread(remove_data_dir, data)
