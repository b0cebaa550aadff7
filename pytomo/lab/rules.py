"""What a lab cache server with ``rules = "youtube"`` enforces on media requests, as YouTube's media hosts do."""

from __future__ import annotations

import re
import threading
from functools import cache

from pytomo.lab.recorded import recordings

UNRANGED_PACE_FACTOR = 1.2  # a request without a Range is paced at this many times the media bitrate
REFUSED_USER_AGENT = "user_agent"  # 403: not the User-Agent of the recorded format
REFUSED_NOT_YET = "not_available_yet"  # 403: before the format's available_at
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


def refusal(video_id: str, user_agent: str | None, available_at_s: float | None, now_s: float) -> str | None:
    """Why a media request is refused with a 403 (REFUSED_*), or None when it is served."""
    agents = recorded_user_agents(video_id)
    if agents and user_agent not in agents:
        return REFUSED_USER_AGENT
    if available_at_s is not None and now_s < available_at_s:
        return REFUSED_NOT_YET
    return None


def pace_rate_bps(ranged: bool, media_bitrate_bps: float, profile_rate_bps: float | None) -> float | None:
    """The rate a response is paced at (None: unlimited): the profile's for a byte range; without one, 1.2 x the
    media bitrate, or the profile's rate when that is lower."""
    if ranged:
        return profile_rate_bps
    cap_bps = UNRANGED_PACE_FACTOR * media_bitrate_bps
    return cap_bps if profile_rate_bps is None else min(cap_bps, profile_rate_bps)


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
