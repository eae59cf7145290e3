"""When a session's live event stream is finished: the session is over (ended or failed) and
the events that come after its end (the final snapshot, ``session.ended``, the hidden checks'
``checks.run``) are stored, or waiting for them has taken ``CHECKS_WAIT_S`` already.

The server's SSE handler asks ``outlook`` after the backlog, after each end-of-session event and
again at ``recheck_s``; once ``final`` it sends every event up to ``last_seq`` and then ends the
stream with an ``end`` message, so an observer's page can stop showing live controls and need
not reconnect. Web-free: ``d`` is the database a ``Database.read`` callback gets.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from common.clock import now
from workspaces import sessions as S
from workspaces.recording import events as E

CHECKS_WAIT_S = 120.0
"""How long after a session ends its stream waits for the hidden checks' ``checks.run``."""
END_KINDS = frozenset({E.SESSION_ENDED, E.CHECKS_RUN, E.WORKSPACE_FAILED})
"""Events after which the stream asks ``outlook`` again."""
OVER_STATES = ("ended", "failed")


@dataclass(frozen=True)
class Outlook:
    """What a session's stream can still expect."""

    state: str
    """The session's state now."""
    last_seq: int
    """The last event stored now."""
    final: bool
    """Nothing the stream waits for is still to come: end it once ``last_seq`` is sent."""
    recheck_s: float | None
    """Over but not final (the checks are running): ask again within this many seconds."""

    def end_message(self) -> dict[str, Any]:
        """The data of the stream's ``end`` message."""
        return {"state": self.state, "last_seq": self.last_seq}


def _has(d: Any, session_id: str, kind: str) -> bool:
    return d.execute("SELECT 1 FROM events WHERE session_id = ? AND kind = ? LIMIT 1",
                     [session_id, kind]).fetchone() is not None


def outlook(d: Any, session_id: str, at: datetime | None = None) -> Outlook:
    """The stream's outlook for ``session_id`` at ``at`` (default: now)."""
    session = S.get_session(d, session_id)
    last = E.last_seq(d, session_id)
    if session.state not in OVER_STATES:
        return Outlook(session.state, last, final=False, recheck_s=None)
    if not session.workspace_id or _has(d, session_id, E.CHECKS_RUN):
        return Outlook(session.state, last, final=True, recheck_s=None)
    if session.state == "failed" and not _has(d, session_id, E.SESSION_ENDED):
        # A workspace that failed: no checks run for it (until a restart picks it up).
        return Outlook(session.state, last, final=True, recheck_s=None)
    ended = datetime.fromisoformat(session.ended_at) if session.ended_at else (at or now())
    left = CHECKS_WAIT_S - ((at or now()) - ended).total_seconds()
    if left <= 0:
        return Outlook(session.state, last, final=True, recheck_s=None)
    return Outlook(session.state, last, final=False, recheck_s=left)
