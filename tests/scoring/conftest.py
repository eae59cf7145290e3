"""``settings`` for the scoring library's tests: no warm pool, the shared task environments
(as for the scoring API's tests in tests/server/scoring), so no task environment is built."""

from __future__ import annotations

import pytest

from server.settings import Settings
from tests.conftest import MakeSettings
from tests.fixture_tasks import SHARED_ENVS


@pytest.fixture
def settings(make_settings: MakeSettings) -> Settings:
    return make_settings(warm_pool_size=0, environments_dir=str(SHARED_ENVS))
