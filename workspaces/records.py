"""The ``workspaces`` table: which workspace runs where, for which session, as which uid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlite_utils

from common.clock import now_iso
from workspaces.provisioner import WorkspaceInfo


def info_from_row(row: dict[str, Any]) -> WorkspaceInfo:
    return WorkspaceInfo(
        workspace_id=row["id"], uid=row["uid"], env_python=Path(row["env_python"]),
        root=Path(row["root"]), socket_path=Path(row["socket_path"]), token=row["token"],
        pid=row["pid"],
    )


def insert(
    db: sqlite_utils.Database, info: WorkspaceInfo, env_key: str, state: str,
    session_id: str | None = None,
) -> None:
    db.execute(
        "INSERT INTO workspaces (id, session_id, env_key, env_python, uid, state, root,"
        " socket_path, token, pid, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [info.workspace_id, session_id, env_key, str(info.env_python), info.uid, state,
         str(info.root), str(info.socket_path), info.token, info.pid, now_iso()],
    )


def update_process(db: sqlite_utils.Database, info: WorkspaceInfo, restarted: bool) -> None:
    db.execute(
        "UPDATE workspaces SET socket_path = ?, token = ?, pid = ?,"
        " restarts = restarts + ? WHERE id = ?",
        [str(info.socket_path), info.token, info.pid, int(restarted), info.workspace_id],
    )


def claim(db: sqlite_utils.Database, workspace_id: str, session_id: str) -> bool:
    cursor = db.execute(
        "UPDATE workspaces SET state = 'live', session_id = ? WHERE id = ? AND state = 'warm'",
        [session_id, workspace_id],
    )
    return bool(cursor.rowcount)


def set_state(db: sqlite_utils.Database, workspace_id: str, state: str) -> None:
    stopped = now_iso() if state in ("stopped", "failed") else None
    db.execute(
        "UPDATE workspaces SET state = ?, stopped_at = COALESCE(?, stopped_at) WHERE id = ?",
        [state, stopped, workspace_id],
    )


def in_state(db: sqlite_utils.Database, *states: str) -> list[dict[str, Any]]:
    marks = ", ".join("?" for _ in states)
    return db.execute_returning_dicts(
        f"SELECT * FROM workspaces WHERE state IN ({marks}) ORDER BY created_at",  # noqa: S608
        list(states),
    )


def live_of_session(db: sqlite_utils.Database, session_id: str) -> list[str]:
    """Ids of the workspaces claimed for the session and not stopped."""
    rows = db.execute("SELECT id FROM workspaces WHERE state = 'live' AND session_id = ? "
                      "ORDER BY created_at", [session_id]).fetchall()
    return [str(r[0]) for r in rows]


def get(db: sqlite_utils.Database, workspace_id: str) -> dict[str, Any] | None:
    rows = db.execute_returning_dicts("SELECT * FROM workspaces WHERE id = ?", [workspace_id])
    return rows[0] if rows else None


def uids_in_use(db: sqlite_utils.Database) -> set[int]:
    rows = db.execute("SELECT uid FROM workspaces WHERE state IN ('warm', 'live')").fetchall()
    return {int(r[0]) for r in rows}
