"""How the times of a database are read and shown: UTC, a named zone, or local time whose zone is unknown."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pytomo.errors import UsageError

UNKNOWN_LABEL = "local, zone unknown"


def zone(name: str) -> tzinfo:
    """The zone of an IANA name (``Europe/Paris``, ``UTC``); UsageError naming it when there is none."""
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise UsageError(f"unknown time zone {name!r}: give an IANA name such as Europe/Paris or UTC") from None


@dataclass(frozen=True)
class Clock:
    """The zone a database's times are shown in.

    ``name`` is an IANA zone or ``UTC``; None means the stored times are local wall-clock times of an unknown zone
    (a 2015 database without ``--tz``): they are then kept as "floating" seconds (the wall time read as if it were
    UTC), so spans and bins still work, and are shown with the words "local, zone unknown", never as UTC.
    """

    name: str | None = "UTC"

    @property
    def known(self) -> bool:
        """True when the times are real instants."""
        return self.name is not None

    @property
    def label(self) -> str:
        """What axes and tables say of the times: ``UTC``, ``Europe/Paris`` or ``local, zone unknown``."""
        return self.name or UNKNOWN_LABEL

    def tz(self) -> tzinfo:
        """The zone times are shown in (UTC for floating local times)."""
        return zone(self.name) if self.name else UTC

    def epoch(self, text: object) -> float | None:
        """Seconds of a stored time: an ISO time with its offset or ``Z``, or a naive one read in this clock's zone
        (as UTC for the 2015 local times of an unknown zone); None when it is not a time."""
        if not isinstance(text, str):
            return None
        try:
            dt = datetime.fromisoformat(text.strip().replace("T", " ").removesuffix("Z"))
        except ValueError:
            return None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC if text.strip().endswith("Z") else self.tz())
        return dt.timestamp()

    def show(self, t_s: float | None, *, seconds: bool = True) -> str:
        """A time as ``2013-05-01 18:24:00 CEST`` (in this clock's zone), or ``… (local, zone unknown)``."""
        if t_s is None:
            return "–"
        dt = datetime.fromtimestamp(t_s, self.tz())
        text = dt.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
        if not self.known:
            return f"{text} (local, zone unknown)"
        return f"{text} {dt.tzname() or self.name}"

    def offset_s(self, t_s: float) -> float:
        """Local time minus UTC at ``t_s`` (0 for UTC and for an unknown zone)."""
        off = datetime.fromtimestamp(t_s, self.tz()).utcoffset()
        return off.total_seconds() if off else 0.0
