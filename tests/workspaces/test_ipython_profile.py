"""pairlab's IPython profile for workspace kernels: its files and modes, and a real kernel started
from the kernelspec (unsandboxed here; tests/server/recording/test_kernel_sandbox.py runs the
attacks in the sandbox): stock IPython syntax is never reported as transformed, a transformer
registered from a cell is, and the notebook's folder is importable but cannot replace the
kernel."""

from __future__ import annotations

import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client import KernelManager
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.kernelspec import KernelSpec

from workspaces import ipython_profile
from workspaces import jupyter_config as jc


def test_the_profile_is_written_with_ipythons_modes(tmp_path: Path) -> None:
    ipython_profile.write_profile(tmp_path)
    ipython_profile.write_profile(tmp_path)  # rewritten on every start
    profile = ipython_profile.profile_dir(tmp_path)
    assert profile == tmp_path / "ipython" / "profile_pairlab"
    modes = {str(p.relative_to(tmp_path)): stat.S_IMODE(p.stat().st_mode)
             for p in sorted(tmp_path.rglob("*"))}
    assert modes == {
        "ipython": 0o755, "ipython/profile_pairlab": 0o755,
        "ipython/profile_pairlab/ipython_kernel_config.py": 0o644,
        "ipython/profile_pairlab/log": 0o755, "ipython/profile_pairlab/pid": 0o700,
        "ipython/profile_pairlab/security": 0o700, "ipython/profile_pairlab/startup": 0o755,
        "ipython/profile_pairlab/startup/00-pairlab.py": 0o644}
    spec = jc.kernel_spec(Path("/env/bin/python"), "Python", profile)
    assert spec["argv"] == ["/env/bin/python", "-P", "-m", "ipykernel_launcher",
                            f"--profile-dir={profile}", "-f", "{connection_file}"]


@pytest.fixture
def kernel(tmp_path: Path) -> Iterator[BlockingKernelClient]:
    config = tmp_path / "config"
    ipython_profile.write_profile(config)
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    (notebooks / "mytask.py").write_text("ANSWER = 42\n")
    (notebooks / "ipykernel_launcher.py").write_text("raise SystemExit('replaced')\n")
    spec = jc.kernel_spec(Path(sys.executable), "Python",
                          ipython_profile.profile_dir(config))
    manager = KernelManager()
    manager._kernel_spec = KernelSpec(  # the spec pairlab writes, without a kernelspec folder
        argv=spec["argv"], language="python", display_name="Python",
        env={"IPYTHONDIR": str(config / "ipython")})
    manager.start_kernel(cwd=str(notebooks))
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        yield client
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def run(client: BlockingKernelClient, code: str) -> tuple[dict[str, Any], str]:
    """(the reply's ``metadata.pairlab``, the text the cell printed or returned)."""
    out: list[str] = []

    def hook(msg: dict[str, Any]) -> None:
        content = msg["content"]
        out.append(content.get("text") or content.get("data", {}).get("text/plain", "") or
                   content.get("evalue", ""))

    reply = client.execute_interactive(code, timeout=30, output_hook=hook)
    assert reply["content"]["status"] == "ok", reply["content"]
    return reply["metadata"]["pairlab"], "".join(out)


@pytest.mark.integration
def test_a_real_kernel_reports_only_real_transformations(
        kernel: BlockingKernelClient) -> None:
    assert run(kernel, "import mytask; mytask.ANSWER") == ({"transformed": False}, "42")
    for code in ("%pwd", "pwd", "!echo hi", "x = 3\nx?", "%%time\n1 + 1", "exit_code = 1",
                 "  indented = 1", ">>> y = 2", "%autocall 1", "abs 3", "%autocall 0"):
        assert run(kernel, code)[0] == {"transformed": False}, code
    run(kernel, "def _swap(lines):\n    return [l.replace('1', '2') for l in lines]\n"
                "get_ipython().input_transformers_post.append(_swap)")
    report, out = run(kernel, "print(1)")
    assert out == "2\n"
    assert report == {"transformed": True, "by": ["input"], "code_ran": "print(2)\n"}
    run(kernel, "get_ipython().input_transformers_post.clear()")
    assert run(kernel, "print(1)") == ({"transformed": False}, "1\n")
    run(kernel, "import ast\n"
                "class Seven(ast.NodeTransformer):\n"
                "    def visit_Constant(self, node):\n"
                "        return ast.Constant(7) if node.value == 5 else node\n"
                "get_ipython().ast_transformers.append(Seven())")
    report, out = run(kernel, "print(5)")
    assert (report, out) == ({"transformed": True, "by": ["ast"], "code_ran": "print(7)"}, "7\n")
    # the notebook's folder is on sys.path after the standard library, before site-packages
    assert run(kernel, "import sys; sys.path.index('') == min(i for i, p in "
                       "enumerate(sys.path) if p.endswith('site-packages')) - 1")[1] == "True"
    # and the kernel is the real one (the planted ipykernel_launcher.py would have exited)
    launcher = run(kernel, "import sys; sys.argv[0]")[1]
    assert launcher.endswith("site-packages/ipykernel_launcher.py'"), launcher
