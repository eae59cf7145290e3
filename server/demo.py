"""``pairlab demo``: demo people with fresh generated passwords, then the server.

Safe to run again: existing demo accounts get new passwords (printed once) and are re-enabled.
"""

from __future__ import annotations

import asyncio
import sys

from server import audit, people
from server.db import connect, migrate
from server.passwords import generate_password, hash_password
from server.runner import serve
from server.settings import Settings

DEMO_PEOPLE = (
    ("admin@example.com", "admin", "Demo Admin"),
    ("interviewer@example.com", "interviewer", "Demo Interviewer"),
)


def ensure_demo_people(settings: Settings) -> list[tuple[str, str, str]]:
    """Create or reset the demo accounts; returns (email, role, password)."""
    db = connect(settings.db_path, writer=True)
    migrate(db)
    created = []
    try:
        for email, role, name in DEMO_PEOPLE:
            password = generate_password()
            password_hash = hash_password(password)
            with db.atomic():
                found = people.password_hash_of(db, email)
                if found is None:
                    people.add_user(db, audit.CLI, email, role, password_hash, name)
                else:
                    people.set_password(db, audit.CLI, email, password_hash)
                    if found[0].disabled:
                        people.set_disabled(db, audit.CLI, email, False)
            created.append((email, role, password))
    finally:
        db.conn.close()
    return created


def run_demo(settings: Settings) -> int:
    accounts = ensure_demo_people(settings)

    def announce(s: Settings) -> None:
        lines = [
            "",
            "pairlab demo is running. Press Ctrl-C to stop.",
            f"  Log in at:        {s.app_url}/login",
            f"  Workspace origin: {s.workspace_url}",
        ]
        for email, role, password in accounts:
            lines.append(f"  {role:<12} {email}  password: {password}")
        lines.append("")
        print("\n".join(lines), flush=True)

    asyncio.run(serve(settings, on_ready=announce))
    return 0


if __name__ == "__main__":
    sys.exit("run it as: pairlab demo")
