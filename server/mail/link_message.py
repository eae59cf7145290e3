"""The candidate link's email, built with the standard library's ``email`` package.

Plain text only. Header values are built from ``email.headerregistry.Address`` objects and
one-line texts: a name or title with a line break (or any control character) has it replaced
by a space first, so nothing a candidate's name or a task title holds can start a header of its
own. The recipient's address is checked by the caller (``people.normalise_email``) and is the
only envelope recipient (``smtp.send``); the headers never choose where the message goes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from server.http.times import human_utc

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\x85]+")


def one_line(text: str, limit: int = 200) -> str:
    """``text`` with every control character (CR, LF, tab...) as one space, trimmed."""
    return " ".join(_CONTROL.sub(" ", text).split())[:limit]


@dataclass(frozen=True)
class LinkEmail:
    """What the candidate is told: everything the message says, nothing it does not."""

    candidate_name: str
    candidate_address: str
    title: str
    """The task's anonymised title (what the landing page shows), never its id or source."""
    role: str
    interviewers: str
    """Display names, ``Ada and Ben``."""
    starts_at: datetime
    duration_minutes: int
    link: str
    sender: str
    reply_to: str = ""


def _address(addr_spec: str, name: str = "") -> Address:
    return Address(display_name=one_line(name), addr_spec=addr_spec)


def body(facts: LinkEmail) -> str:
    start = facts.starts_at.astimezone(UTC)
    role = f" for the {facts.role.replace('-', ' ')} role" if facts.role else ""
    who = facts.interviewers or "your interviewer"
    return "\n".join([
        f"Hello {one_line(facts.candidate_name)},",
        "",
        f"You are invited to a pair-programming interview{role}: {one_line(facts.title)}.",
        "",
        f"When: {human_utc(start.isoformat())} ({start:%Y-%m-%dT%H:%MZ})",
        f"How long: {facts.duration_minutes} minutes",
        f"With: {one_line(who)}",
        "",
        "Your link:",
        facts.link,
        "",
        "What to expect:",
        "- The link works from 15 minutes before the start until the end. Open it in a desktop",
        "  browser; there is nothing to install.",
        "- It shows a short brief and a Start button. Start opens a JupyterLab workspace where",
        f"  you and {who} work on the same notebook and files.",
        "- The session is recorded (code, outputs and the terminal) for the interviewers'",
        "  review.",
        "- The link is yours alone: whoever opens it enters as you. If it reached you by",
        "  mistake, or you need another time, reply to this email.",
        "",
    ])


def link_message(facts: LinkEmail) -> EmailMessage:
    start = facts.starts_at.astimezone(UTC)
    message = EmailMessage()
    message["Subject"] = one_line(
        f"Your interview: {facts.title}, {human_utc(start.isoformat())}", 300)
    message["From"] = _address(facts.sender, "pairlab")
    message["To"] = _address(facts.candidate_address, facts.candidate_name)
    if facts.reply_to:
        message["Reply-To"] = _address(facts.reply_to)
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = make_msgid(domain=facts.sender.rsplit("@", 1)[1])
    message.set_content(body(facts))
    return message
