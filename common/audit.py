"""The append-only audit log (who did what to which object, when).

Rows are written inside the caller's write transaction so an action and its audit row land
together; triggers in the schema refuse UPDATE and DELETE on the table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from common.clock import now_iso


@dataclass(frozen=True)
class Actor:
    """Who acted: a user (id + email), or a named system/CLI/anonymous actor."""

    label: str
    user_id: int | None = None
    address: str = ""


SYSTEM = Actor("system")
CLI = Actor("cli")


def record(
    db: sqlite_utils.Database,
    actor: Actor,
    action: str,
    object_type: str = "",
    object_id: str | int = "",
    **detail: Any,
) -> None:
    db.execute(
        "INSERT INTO audit_log (at, actor_id, actor, action, object_type, object_id, address,"
        " detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            now_iso(),
            actor.user_id,
            actor.label,
            action,
            object_type,
            str(object_id),
            actor.address,
            json.dumps(detail, sort_keys=True),
        ],
    )


def recent(db: sqlite_utils.Database, limit: int = 200) -> list[dict[str, Any]]:
    rows = db.execute_returning_dicts(
        "SELECT * FROM audit_log ORDER BY id DESC LIMIT ?", [limit]
    )
    for row in rows:
        row["detail"] = json.loads(row["detail"])
    return rows
