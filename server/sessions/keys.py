"""Typed keys for the session layer's shared state (both origins read them)."""

from __future__ import annotations

from aiohttp import web

from workspaces.lifecycle import SessionManager

SESSIONS = web.AppKey("sessions", SessionManager)
