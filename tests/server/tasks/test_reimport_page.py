"""Import again, for a revision whose source was a local folder that is gone (the demo's
built-in tasks are imported from a temporary copy): the form says so and leaves the URL to
the admin, instead of a path the import then refuses or cannot find."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from server.tasks.routes import missing_local_source
from tests.conftest import login_admin, query
from tests.harness import EnvFactory


async def test_a_gone_local_source_is_named_and_not_prefilled(make_env: EnvFactory,
                                                               tmp_path: Path) -> None:
    env = await make_env()  # the demo task, imported from file:///fixture
    await login_admin(env.client)
    [(rev_id, source)] = query(env.settings, "SELECT id, source_url FROM task_revisions"
                                             " WHERE task_id = 'demo-task'")
    assert source == "file:///fixture" and not Path("/fixture").exists()
    html = await (await env.client.get(f"/admin/tasks/revisions/{rev_id}/reimport")).text()
    assert ('It was imported from <code>file:///fixture</code>, a local folder that is no'
            ' longer there') in html
    assert '<input id="url" name="url" size="60" required value="">' in html

    # A local source still there is offered as it was.
    kept = tmp_path / "repo"
    kept.mkdir()
    with_folder = f"file://{kept}"
    conn = sqlite3.connect(env.settings.db_path)
    try:
        conn.execute("UPDATE task_revisions SET source_url = ? WHERE id = ?",
                     (with_folder, rev_id))
        conn.commit()
    finally:
        conn.close()
    html = await (await env.client.get(f"/admin/tasks/revisions/{rev_id}/reimport")).text()
    assert "no longer there" not in html
    assert f'value="{with_folder}"' in html


@pytest.mark.skipif(os.geteuid() != 0, reason="drops to another uid, which only root can")
def test_a_source_under_a_folder_the_server_cannot_enter_counts_as_gone(tmp_path: Path) -> None:
    """Not a 500 on the page: a stored path whose parent cannot be entered is as gone to an
    import as a deleted one (root enters any folder, so this runs as a sandbox-like uid)."""
    locked = tmp_path / "locked"
    (locked / "repo").mkdir(parents=True)
    os.chmod(locked, 0)
    try:
        pid = os.fork()
        if pid == 0:  # a child that drops to an unprivileged uid, as a non-root server would
            code = 1
            try:
                os.setgid(65534)
                os.setuid(65534)
                code = 0 if missing_local_source(f"file://{locked}/repo") else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        os.chmod(locked, 0o700)
    assert not missing_local_source(f"file://{locked}/repo")  # root: there
    assert missing_local_source(f"file://{tmp_path}/nothing")
    assert not missing_local_source("https://example.org/repo.git")
