"""Typed key for the recorder (built with the session manager in ``server/sessions/wiring.py``;
the recording routes and the workspace proxy read it)."""

from __future__ import annotations

from aiohttp import web

from workspaces.recording.recorder import RecordingService

RECORDING = web.AppKey("recording", RecordingService)
