"""The workspace kernel's IPython profile: pairlab's, root-owned and read-only to the candidate.

``write_profile`` writes ``ipython/profile_pairlab`` into the workspace's config folder (mounted
read-only at ``/etc/pairlab``). The kernelspec names it with ``--profile-dir``, so IPython reads
its configuration only from there, ``<env>/etc/ipython`` and ``/etc/ipython`` (all root's), and
its startup files only from its ``startup/`` folder: nothing under ``~/.ipython``,
``/tmp/.ipython`` or the notebook's folder is loaded. The kernel also runs with ``python -P`` so
that an ``ipykernel_launcher.py`` (or ``IPython.py``, ...) next to a notebook cannot replace it;
``startup/00-pairlab.py`` then puts ``''`` back on ``sys.path`` where IPython would (after the
standard library), so ``import mytask`` from a notebook keeps working.

``00-pairlab.py`` also reports, in every ``execute_reply``'s metadata (``metadata.pairlab``),
whether the code the kernel ran differs from what stock IPython makes of the cell: an input
transformer, prefilter or AST transformer registered from a cell changes the code after pairlab's
proxy saw it, and the recorder flags such a cell ``transformed`` with the code that ran
(``kernel_messages``). Code in a cell can undo the report, but that cell is in the record.
"""

from __future__ import annotations

from pathlib import Path

PROFILE = "profile_pairlab"
CODE_RAN_CHARS = 8000
"""At most this much of the transformed code is reported back (the rest is cut, and said so)."""

KERNEL_CONFIG = '''\
"""IPython kernel configuration of a pairlab workspace. Generated on every start: do not edit."""
c = get_config()  # noqa: F821 - provided by traitlets when it loads this file
# History in memory only: nothing of the kernel's is written to a folder it could read back.
c.HistoryManager.hist_file = ":memory:"
# $PYTHONSTARTUP is never run (pairlab does not set it; a candidate-set one is ignored).
c.InteractiveShellApp.exec_PYTHONSTARTUP = False
c.InteractiveShellApp.exec_files = []
c.InteractiveShellApp.extensions = []
c.InteractiveShellApp.exec_lines = []
'''

STARTUP = '''\
"""pairlab: the notebook folder on sys.path, and a report of cells the kernel transformed.
Generated on every start (read-only): see workspaces/ipython_profile.py in pairlab."""


def _pairlab_install():
    import ast
    import os
    import sys

    from IPython.core.inputtransformer2 import TransformerManager
    from IPython.core.prefilter import PrefilterManager

    # python -P keeps the notebook's folder off sys.path while the kernel starts; put it back
    # where IPython itself would (before the first site-packages), for the candidate's imports.
    if "" not in sys.path:
        for index, path in enumerate(sys.path):
            if os.path.basename(path) in ("site-packages", "dist-packages"):
                break
        else:
            index = 0
        sys.path.insert(index, "")

    shell = get_ipython()  # noqa: F821 - run by IPython, which provides it
    kernel = getattr(shell, "kernel", None)
    if kernel is None:
        return
    limit = @LIMIT@
    stock_input = TransformerManager()
    stock_prefilter = PrefilterManager(shell=shell, parent=shell)
    original_cell = shell.transform_cell
    original_ast = shell.transform_ast
    original_init = kernel.init_metadata
    original_finish = kernel.finish_metadata
    state = {"by": [], "code_ran": ""}

    def stock_transform(raw_cell):
        cell = stock_input.transform_cell(raw_cell)
        if len(cell.splitlines()) == 1:
            with shell.builtin_trap:
                cell = stock_prefilter.prefilter_lines(cell) + "\\n"
        return cell

    def transform_cell(raw_cell):
        cell = original_cell(raw_cell)
        try:
            expected = stock_transform(raw_cell)
        except Exception:  # the stock pipeline fails where the real one did not
            expected = None
        if cell != expected:
            if "input" not in state["by"]:
                state["by"].append("input")
            state["code_ran"] = cell
        return cell

    def transform_ast(node):
        before = ast.dump(node) if shell.ast_transformers else None
        result = original_ast(node)
        if before is not None and (result is None or ast.dump(result) != before):
            if "ast" not in state["by"]:
                state["by"].append("ast")
            try:
                state["code_ran"] = ast.unparse(result)
            except Exception:
                state["code_ran"] = ast.dump(result)
        return result

    def init_metadata(parent):
        state["by"], state["code_ran"] = [], ""
        return original_init(parent)

    def finish_metadata(parent, metadata, reply_content):
        metadata = original_finish(parent, metadata, reply_content)
        report = {"transformed": bool(state["by"])}
        if state["by"]:
            code = state["code_ran"]
            if len(code) > limit:
                code = code[:limit] + "\\n…[truncated %d chars]" % (len(code) - limit)
            report.update(by=list(state["by"]), code_ran=code)
        metadata["pairlab"] = report
        return metadata

    shell.transform_cell = transform_cell
    shell.transform_ast = transform_ast
    kernel.init_metadata = init_metadata
    kernel.finish_metadata = finish_metadata


_pairlab_install()
del _pairlab_install
'''.replace("@LIMIT@", str(CODE_RAN_CHARS))

FOLDER_MODES = {"": 0o755, "startup": 0o755, "log": 0o755, "security": 0o700, "pid": 0o700}
"""The profile's folders with the modes IPython gives them (so it never tries to chmod them)."""


def profile_dir(config: Path) -> Path:
    """Where the profile is inside a workspace's config folder."""
    return config / "ipython" / PROFILE


def write_profile(config: Path) -> None:
    """(Re)write the profile under ``config``: root-owned folders, files 0644."""
    ipython = config / "ipython"
    ipython.mkdir(mode=0o755, parents=True, exist_ok=True)
    ipython.chmod(0o755)
    profile = profile_dir(config)
    for name, mode in FOLDER_MODES.items():
        folder = profile / name if name else profile
        folder.mkdir(mode=mode, exist_ok=True)
        folder.chmod(mode)
    for path, text in ((profile / "ipython_kernel_config.py", KERNEL_CONFIG),
                       (profile / "startup" / "00-pairlab.py", STARTUP)):
        path.write_text(text)
        path.chmod(0o644)
