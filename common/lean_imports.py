"""Heavy libraries the control plane does not need, kept out of it.

sqlite-utils imports pandas and numpy at import time whenever they are installed, only to map
their scalar types (``pd.Timestamp``, ``np.int64``, ...) to column types: +35 MiB and +20 MiB
in every process that touches the database. pairlab never hands it a pandas or numpy value
(``scoring`` turns its figures into Python floats), so ``sqlite_utils_without_pandas`` imports
sqlite-utils with both hidden (its behaviour when they are not installed); both stay
importable for anything else afterwards (numpy for the statistics pages, which import it when
asked). ``server`` calls it before any of its modules import sqlite-utils.
"""

from __future__ import annotations

import importlib
import sys

HIDDEN = ("pandas", "numpy")


def sqlite_utils_without_pandas() -> None:
    """Import ``sqlite_utils`` as if pandas and numpy were not installed (no-op if it is
    imported already)."""
    if "sqlite_utils.db" in sys.modules:
        return
    hidden = [name for name in HIDDEN if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment] # the import system's "not installed"
    try:
        importlib.import_module("sqlite_utils")
    finally:
        for name in hidden:
            if sys.modules.get(name, "") is None:
                del sys.modules[name]
