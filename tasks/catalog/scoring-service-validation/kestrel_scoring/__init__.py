"""Kestrelwood Lending credit-risk scoring service (team: Decisioning ML)."""

__version__ = "3.1.0"
