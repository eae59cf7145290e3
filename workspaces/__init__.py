"""Workspaces: where a candidate's code lives and runs, and what is recorded of it. Web-free.

- the session domain: sessions and their access grants (``sessions``, ``records``,
  ``entry_codes``), the lifecycle engine and warm pool (``lifecycle``, ``warm_pool``), the
  ``Provisioner`` interface and its local backend (``provisioner``, ``local``, ``jupyter_config``,
  ``environments``, ``smoke``), the proxy's value types (``upstream``), and safe excerpts of
  untrusted text for logs and events (``excerpt``);
- ``sandbox/``: the one sandbox every piece of task or candidate code runs in;
- ``recording/``: events, the recorder, the snapshot history and what is made from them;
- ``grading/``: running tests and hidden checks on a tree, in the sandbox.
"""
