"""What yt-dlp itself detects of its JavaScript runtime and EJS scripts (pytomo.version asks it); its age."""

from __future__ import annotations

import logging
import re
from datetime import date

from pytomo.version import JsEnvironment, detect, js_runtimes_param, version_lines

__all__ = ["STALE_AFTER_DAYS", "JsEnvironment", "age_days", "detect", "js_runtimes_param", "release_date",
           "version_lines", "warn_if_stale"]

log = logging.getLogger(__name__)

STALE_AFTER_DAYS = 60


def release_date(version: str | None) -> date | None:
    """The release date in a yt-dlp version (``YYYY.MM.DD`` or ``YYYY.MM.DD.HHMMSS``), None when absent."""
    m = re.match(r"^(\d{4})\.(\d{1,2})\.(\d{1,2})", version or "")
    if not m:
        return None
    try:
        return date(*map(int, m.groups()))
    except ValueError:
        return None


def age_days(version: str | None, today: date | None = None) -> int | None:
    """Days since that release (None when the version carries no date)."""
    released = release_date(version)
    return None if released is None else ((today or date.today()) - released).days


def warn_if_stale(version: str | None, today: date | None = None) -> int | None:
    """One warning line when yt-dlp is older than ``STALE_AFTER_DAYS``; returns its age in days."""
    age = age_days(version, today)
    if age is not None and age > STALE_AFTER_DAYS:
        log.warning("yt-dlp %s is %d days old (over %d): platforms change often, update it (pip install -U yt-dlp "
                    "yt-dlp-ejs) or the measurements may miss formats or fail", version, age, STALE_AFTER_DAYS)
    return age
