"""The previous cold-start code path, for same-run comparisons (``bench.provisioning --only
cold,previous``): the workspace server as it started before issue 15 (JupyterLab's yarn lookup,
jsonschema's format libraries, notebook_shim and the default kernelspec folders, which import
IPython; no spare kernel: the first kernel asked for is started then) and readiness polled with
back-off up to 250 ms. Bench-only: pairlab itself has no
switch back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator

from workspaces import jupyter_config as jc
from workspaces.local import LocalProvisioner, _Live
from workspaces.provisioner import SpareKernel

PREVIOUS_LAUNCHER = (
    "import ctypes, sys\n"
    "if ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0) != 0:\n"
    "    sys.exit('pairlab: could not make the server non-dumpable')\n"
    "sys.modules['rfc3987_syntax'] = None\n"
    "from jupyterlab.labapp import main\n"
    "sys.exit(main())\n"
)
# Lines of today's server config that the previous one did not have.
NEW_CONFIG_LINES = (
    "c.ServerApp.kernel_spec_manager_class = PairlabKernelSpecManager\n",
    '    "notebook_shim": False,\n',
)


def _previous_config(workspace_id: str, inside: jc.Inside,
                     current: Callable[..., str]) -> str:
    text = current(workspace_id, inside, spare_kernel="off")
    for line in NEW_CONFIG_LINES:
        if line not in text:
            raise RuntimeError(f"bench.previous_start is out of date: no {line.strip()!r}")
        text = text.replace(line, "")
    return text


async def _poll_backoff(self: LocalProvisioner, live: _Live, limit_s: float, what: str,
                        check: Callable[[], Awaitable[str | None]]) -> None:
    """``LocalProvisioner._poll`` as it was: 20 ms, then x1.5 per try, up to 250 ms."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    delay = 0.02
    while (problem := await check()) is not None:
        if live.exited.is_set():
            raise self._failed(live, f"the server exited (code {live.returncode}) before "
                                     f"it could {what}")
        if loop.time() > deadline:
            raise self._failed(live, f"the server did not {what} within {limit_s:.0f} s "
                                     f"({problem})")
        await self._wait_exit_or(live, delay)
        delay = min(delay * 1.5, 0.25)


@contextlib.contextmanager
def previous_code_path() -> Iterator[None]:
    """Within this block, workspaces start as they did before (see the module docstring)."""
    launcher, config, poll = jc.LAUNCHER, jc.server_config, LocalProvisioner._poll

    def server_config(workspace_id: str, inside: jc.Inside, *,
                      spare_kernel: SpareKernel = "now") -> str:
        return _previous_config(workspace_id, inside, config)

    jc.LAUNCHER, jc.server_config = PREVIOUS_LAUNCHER, server_config
    LocalProvisioner._poll = _poll_backoff  # type: ignore[method-assign]
    try:
        yield
    finally:
        jc.LAUNCHER, jc.server_config = launcher, config
        LocalProvisioner._poll = poll  # type: ignore[method-assign]
