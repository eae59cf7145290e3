"""What pairlab's side panel in JupyterLab shows (``workspaces/labextension``): the brief, when
the interview ends, and the hints the interviewers have given so far.

Only what the candidate may see: hints (events of kind ``hint``, given from the observe page)
and never notes (kind ``note``, the interviewers' own), nor who gave a hint. The brief is the
landing page's sanitised HTML (``common/markdown_safe.py``); a hint's text is plain text, which
the panel puts in the page as text (never as HTML).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import sqlite_utils

from workspaces import sessions as S
from workspaces.recording import events as E

MAX_HINTS = 200
"""The newest hints the panel lists (an interview has a handful)."""


@dataclass(frozen=True)
class Hint:
    seq: int
    at: str
    """ISO 8601, UTC (the panel shows it in the viewer's time zone)."""
    text: str


@dataclass(frozen=True)
class PanelFacts:
    session_id: str
    state: str
    ends_at: str
    seconds_left: int
    brief_html: str
    hints: tuple[Hint, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def hints_given(db: sqlite_utils.Database, session_id: str,
                limit: int = MAX_HINTS) -> tuple[Hint, ...]:
    """The session's hints given to the candidate (``"shown": true``, which the notes API sets
    on every hint since the panel exists; older hints were recorded as private), oldest first
    (at most ``limit``, the newest ones)."""
    rows = db.execute(
        "SELECT seq, at, payload FROM events WHERE session_id = ? AND kind = ?"
        " ORDER BY seq DESC LIMIT ?", [session_id, E.HINT, limit]).fetchall()
    hints = []
    for seq, at, payload in reversed(rows):
        data = json.loads(payload)
        if not isinstance(data, dict) or data.get("shown") is not True:
            continue
        text = data.get("text")
        if isinstance(text, str) and text:
            hints.append(Hint(int(seq), str(at), text))  # stored by clock.iso already
    return tuple(hints)


def panel_facts(db: sqlite_utils.Database, session: S.Session, brief: str) -> PanelFacts:
    """``brief``: the revision's brief as safe HTML (``common.markdown_safe.brief_html``)."""
    return PanelFacts(
        session_id=session.id, state=session.state, ends_at=session.ends_at,
        seconds_left=session.seconds_left(), brief_html=str(brief),
        hints=hints_given(db, session.id),
    )
