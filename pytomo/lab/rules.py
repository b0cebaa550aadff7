"""What a lab cache server with ``rules = "youtube"`` enforces on media requests, as YouTube's media hosts do.

Since August 2026 googlevideo answers 403 to a media request without a ``Range``, with an open-ended range
(``bytes=N-``) or a HEAD, and some sessions refuse ranges above about 1 MiB (reported by several independent
clients; issue 19): the lab does the same, the cap being the server's ``max_range_bytes``.
"""

from __future__ import annotations

import re
import threading
from functools import cache

from pytomo.lab.recorded import recordings

REFUSED_USER_AGENT = "user_agent"  # 403: not the User-Agent of the recorded format
REFUSED_HEAD = "head"  # 403: a HEAD
REFUSED_NO_RANGE = "no_range"  # 403: a GET without a Range
REFUSED_OPEN_RANGE = "open_range"  # 403: a range without its last byte (bytes=N-), a suffix range or several
REFUSED_RANGE_SIZE = "range_too_large"  # 403: a range longer than the server's max_range_bytes
REFUSED_NOT_YET = "not_available_yet"  # 403: before the format's available_at
_CLOSED_RANGE = re.compile(r"bytes=(\d+)-(\d+)")
_LAB_VIDEO = re.compile(r"\{[\w-]+:([\w-]+)(?::[\w./-]+)?\}")


@cache
def recorded_user_agents(video_id: str) -> frozenset[str]:
    """The ``User-Agent`` of every recorded YouTube format whose URL points at lab video ``video_id``; when no
    recorded format points at it, those of every recorded format."""
    mine: set[str] = set()
    every: set[str] = set()
    for entry in recordings("youtube")["videos"]:
        for fmt in ((entry.get("ytdlp") or {}).get("info") or {}).get("formats") or ():
            agent = (fmt.get("http_headers") or {}).get("User-Agent")
            if not agent:
                continue
            every.add(agent)
            if video_id in _LAB_VIDEO.findall(str(fmt.get("url", ""))):
                mine.add(agent)
    return frozenset(mine or every)


def refusal(video_id: str, user_agent: str | None, available_at_s: float | None, now_s: float, *,
            method: str = "GET", range_header: str | None = None, max_range_bytes: int | None = None) -> str | None:
    """Why a media request is refused with a 403 (REFUSED_*), or None when it is served. The checks in order: the
    User-Agent, the request's shape (HEAD, no range, an open range, a range over ``max_range_bytes``), available_at."""
    agents = recorded_user_agents(video_id)
    if agents and user_agent not in agents:
        return REFUSED_USER_AGENT
    shape = range_refusal(method, range_header, max_range_bytes)
    if shape is not None:
        return shape
    if available_at_s is not None and now_s < available_at_s:
        return REFUSED_NOT_YET
    return None


def range_refusal(method: str, range_header: str | None, max_range_bytes: int | None = None) -> str | None:
    """Why googlevideo refuses a request of this shape (REFUSED_*), or None: only a GET of one closed byte range
    (``bytes=FIRST-LAST``), no longer than ``max_range_bytes`` when the server caps it."""
    if method == "HEAD":
        return REFUSED_HEAD
    if not range_header:
        return REFUSED_NO_RANGE
    m = _CLOSED_RANGE.fullmatch(range_header.strip())
    if m is None:
        return REFUSED_OPEN_RANGE
    if max_range_bytes is not None and int(m.group(2)) - int(m.group(1)) + 1 > max_range_bytes:
        return REFUSED_RANGE_SIZE
    return None


class Availability:
    """When each lab video may be served (``available_at`` as the platform last gave it out), shared by threads."""

    def __init__(self) -> None:
        self._at_s: dict[str, float] = {}
        self._lock = threading.Lock()

    def set(self, video_id: str, at_s: float) -> None:
        """Lab video ``video_id`` is not served before UNIX time ``at_s``."""
        with self._lock:
            self._at_s[video_id] = at_s

    def get(self, video_id: str) -> float | None:
        """The UNIX time before which ``video_id`` is refused, or None."""
        with self._lock:
            return self._at_s.get(video_id)
