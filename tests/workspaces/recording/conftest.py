"""Fixtures for the recorder's tests: ``db``, a fresh ``pairlab.db`` with the recording tables
(the event migrations) on the async ``Database`` (a module may define its own ``db``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from common.db import Database
from workspaces.recording.event_migrations import migrations


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    found = Database(tmp_path / "pairlab.db")
    await found.on_writer(lambda d: migrations.apply(d))
    yield found
    await found.close()
