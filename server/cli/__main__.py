"""``python -m server.cli``: the ``pairlab`` command."""

from server.cli.main import main

raise SystemExit(main())
