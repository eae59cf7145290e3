"""Tests of the workspace backend (sandbox, provisioner, isolation)."""
