"""Attack: an admin probing the server's files through the import form and API with
``git_allow_local`` on. A relative path, a missing one and a file are refused with one and the
same sentence (only the path as typed differs), so a refusal tells nothing of what exists;
nothing is imported. Real app, real SQLite."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest
from pytest_aiohttp import AiohttpClient

from server.app import create_app
from tests.conftest import MakeSettings, form_csrf_token, login_admin, query
from tests.server.tasks.test_web_import_sources import submit_form
from tests.task_repos import make_repo

PLACEHOLDER = "<PATH>"


def said(body: str, typed: str) -> str:
    """The form's refusal, the path as typed replaced by a placeholder."""
    match = re.search(r'id="import-form-error">([^<]*)<', body)
    assert match is not None, body
    return html.unescape(match.group(1)).replace(repr(typed), PLACEHOLDER)


async def test_a_refused_local_path_does_not_say_whether_it_exists(
    aiohttp_client: AiohttpClient, make_settings: MakeSettings, envs_dir: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = make_settings(environments_dir=str(envs_dir), git_allow_local=True,
                             data_dir=tmp_path / "data")
    client = await aiohttp_client(create_app(settings))
    await login_admin(client)
    make_repo(tmp_path / "repo")  # a real repository, there to be found
    (tmp_path / "secret.txt").write_text("x")
    monkeypatch.chdir(tmp_path)  # the server's working directory holds them
    probes = {
        "relative": ("repo", "missing-repo"),
        "relative, up": ("../" + tmp_path.name + "/repo", "../" + tmp_path.name + "/nope"),
        "absolute": (str(tmp_path / "secret.txt"), str(tmp_path / "no-such-file")),
        "file://": (f"file://{tmp_path}/secret.txt", f"file://{tmp_path}/no-such-file"),
    }
    answers: set[str] = set()
    for kind, (existing, missing) in probes.items():
        found = []
        for url in (existing, missing):
            status, _, body = await submit_form(client, url=url)
            assert status == 400, (kind, url, body)
            typed = url.removeprefix("file://")
            found.append(said(body, typed))
            api = await client.post("/api/v1/tasks/imports", json={"url": url},
                                    headers={"X-CSRF-Token": form_csrf_token(body)})
            assert api.status == 400
            error = (await api.json())["error"]
            assert error["code"] == "invalid_source"
            assert error["message"].replace(repr(typed), PLACEHOLDER) == found[-1]
        assert found[0] == found[1], (kind, found)  # existing and missing: the same answer
        answers.update(found)
    assert answers == {f"the local path {PLACEHOLDER} is not an absolute path to a directory"
                       " pairlab can read"}
    assert query(settings, "SELECT id FROM task_imports") == []
