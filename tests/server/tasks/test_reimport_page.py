"""Import again, for a revision whose source was a local folder that is gone (the demo's
built-in tasks are imported from a temporary copy): the form says so and leaves the URL to
the admin, instead of a path the import then refuses or cannot find."""

from __future__ import annotations

import sqlite3
from pathlib import Path

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
