"""pairlab's web layer: a thin aiohttp app over the domain packages (``tasks``, ``workspaces``,
``scoring``, ``common``), grouped by area. ``app.create_app`` lists the areas; each area's
sub-package holds its routes and the wiring of its engines. Where a change goes:

- a new page or API route: a route module in its area (``server/<area>/``), rendered with
  ``server.http.pages.render``; the logic it calls lives in a domain package, not in the handler;
- a new event kind: ``workspaces/recording/events.py`` (and the recorder that emits it);
- a new sandbox rule: ``workspaces/sandbox/bwrap.py``, the one place the bubblewrap command
  is built;
- a new error: a ``common.errors.DomainError`` subclass in the domain that raises it.
"""

from common.lean_imports import sqlite_utils_without_pandas

sqlite_utils_without_pandas()  # before any module of ours imports it (see common/lean_imports.py)

