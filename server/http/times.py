"""Times as people read them: a ``<time>`` element whose text is a readable UTC fallback and
whose ``datetime`` is the ISO value that ``static/times.js`` shows in the viewer's own zone."""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from markupsafe import Markup, escape

ZONE_COOKIE = "pairlab_tz"
"""The viewer's IANA time zone, set by ``static/times.js`` (e.g. ``Europe/Berlin``): only
days (the home page's "Today") need it on the server; times are shown locally by script."""
_ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+){0,2}")

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _parsed(value: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def human_utc(value: str | None) -> str:
    """``2026-12-04T18:33:52.1+00:00`` as ``Fri 4 Dec 2026, 18:33 UTC``; other text as it is.

    The names are spelled here rather than by ``strftime``'s ``%a``/``%b``, which follow the
    server's locale."""
    if not value:
        return ""
    moment = _parsed(value)
    if moment is None:
        return value
    utc = moment.astimezone(UTC)
    return (f"{_DAYS[utc.weekday()]} {utc.day} {_MONTHS[utc.month - 1]} {utc.year},"
            f" {utc:%H:%M} UTC")


def time_tag(value: str | None, element_id: str | None = None) -> Markup:
    """A ``<time>`` to the second in ``datetime``, readable UTC text, shown locally by script;
    ``element_id`` names it (``id``) for a page's script or test."""
    if not value:
        return Markup("")
    moment = _parsed(value)
    if moment is None:
        return Markup("{}").format(value)
    stamp = moment.astimezone(UTC).isoformat(timespec="seconds")
    named = Markup(' id="{}"').format(element_id) if element_id else Markup("")
    return Markup('<time{} datetime="{}" data-local>{}</time>').format(
        named, stamp, escape(human_utc(value)))


def time_left(seconds: int) -> str:
    """Whole minutes, rounded down: ``less than a minute``, ``1 minute``, ``87 minutes``, from
    two hours ``3 h 05 min``, and from two days whole days (``84 days``: an interview scheduled
    months ahead). The one wording of the time left: the candidate's landing page renders it,
    its script shows the session API's ``time_left``, which is this, and so does the session's
    page."""
    minutes = max(0, seconds) // 60
    if minutes >= 2 * 24 * 60:
        return f"{minutes // (24 * 60)} days"
    if minutes >= 120:
        return f"{minutes // 60} h {minutes % 60:02d} min"
    if minutes == 0:
        return "less than a minute"
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def viewer_zone(name: str | None) -> tuple[str, tzinfo]:
    """``(name, zone)`` for the zone the viewer's browser reported, or ``("UTC", UTC)`` when
    there is none or it is not a zone this server knows. The name is checked before the zone
    database sees it: it names a file under the system's zoneinfo folder."""
    if not name or len(name) > 64 or not _ZONE_NAME.fullmatch(name):
        return "UTC", UTC
    try:
        return name, ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return "UTC", UTC
