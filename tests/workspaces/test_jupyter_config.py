"""The JupyterLab plugins every workspace runs without: each id is one the installed JupyterLab
really has (a misspelt id would disable nothing, silently), and the page config the workspace's
server builds from pairlab's generated folder, read by jupyterlab_server itself, disables them.
In Chromium: tests/journeys/test_candidate_end.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from jupyterlab_server.config import get_page_config

from workspaces import jupyter_config

LAB_STATIC = Path(sys.prefix) / "share" / "jupyter" / "lab" / "static"


def test_every_disabled_plugin_id_is_in_the_installed_jupyterlab() -> None:
    bundles = [path.read_text(errors="replace") for path in LAB_STATIC.glob("*.js")]
    assert bundles, f"no JupyterLab build in {LAB_STATIC}"
    for plugin in jupyter_config.DISABLED_PLUGINS:
        assert any(f'"{plugin}"' in text for text in bundles), plugin
    # The news prompt's own plugin, the extension manager and the LSP client are among them.
    assert {"@jupyterlab/apputils-extension:announcements",
            "@jupyterlab/extensionmanager-extension:plugin",
            "@jupyterlab/lsp-extension:plugin"} <= set(jupyter_config.DISABLED_PLUGINS)


def test_the_generated_page_config_disables_them_for_jupyterlab_server(tmp_path: Path) -> None:
    inside = jupyter_config.Inside(tmp_path / "work", tmp_path / "run", tmp_path / "config",
                                   tmp_path / "tmp")
    jupyter_config.write_config_dir(tmp_path / "config", "wsx", 1000, Path(sys.executable),
                                    "Py", inside)
    settings = tmp_path / "config" / "lab-settings"
    page = get_page_config([], app_settings_dir=str(settings))
    assert set(jupyter_config.DISABLED_PLUGINS) <= set(page["disabledExtensions"])
    # The news setting stays "false" too, should the plugin ever be enabled again.
    overrides = json.loads((settings / "overrides.json").read_text())
    assert overrides["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"
