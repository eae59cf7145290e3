"""What every package shares and nothing else: the clock (``clock``), the error base
(``errors``), the database writer and readers (``db``), the audit log (``audit``), bounded child
processes (``processes``), the hardened git environment (``gitenv``), heavy libraries kept out of
the control plane (``lean_imports``) and a loopback client for ``*.localhost`` (``loopback``,
used by the tests and benchmarks). Imports nothing of pairlab's."""
