"""Timestamps as the records keep them: timezone-aware UTC, stored as ISO-8601 text."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def iso(ts: datetime | None) -> str | None:
    """UTC ISO-8601 text with microseconds, as stored in the database."""
    if ts is None:
        return None
    return ts.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def local_iso(ts: datetime | None) -> str | None:
    """The same instant in the volunteer's local time, ISO-8601 with its UTC offset (``...T16:35:03.608000+01:00``)."""
    if ts is None:
        return None
    return ts.astimezone().isoformat(timespec="microseconds")
