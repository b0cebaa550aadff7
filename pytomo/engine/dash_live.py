"""Live DASH: a dynamic MPD followed at the live edge, as the live HLS player follows a playlist.

Segments become known as the clock makes them available (availabilityStartTime + Period@start + their end, ISO/IEC
23009-1 5.3.9.5; pytomo/engine/mpd_live.py); the play starts at the segment holding the live edge minus the MPD's
suggestedPresentationDelay, else minus four segment durations (dash.js's FRAGMENT_DURATION_FACTOR,
pytomo/lab/players/node_modules/dashjs/dist/modern/esm/dash.all.debug.js:49070-49099); the MPD is fetched again every
minimumUpdatePeriod (each load a ``reload`` row: changed or not, new segments); an MPD that turns static ends the
stream. Fetching, skipped and missing (404) segments, the window and the latency are the live HLS player's
(pytomo/engine/live.py).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from pytomo.engine.live import RELOAD_FLOOR_S, LivePlay, _Player, _Run, resync_number
from pytomo.engine.mpd_live import LiveMpd, LiveRep, available, read_live_mpd
from pytomo.errors import ManifestError, MediaError
from pytomo.results import Presentation, Segment, Track

DASHJS_DELAY_SEGMENTS = 4  # dash.js: live delay = 4 fragment durations without suggestedPresentationDelay
_TICK_S = 0.25  # how often the clock is looked at between availability times


def start_number(segments: Sequence[Segment], delay_s: float) -> int:
    """The number of the segment holding the live edge (the end of the last available one) minus ``delay_s``."""
    if not segments:
        return 0
    position = segments[-1].start_s + segments[-1].duration_s - delay_s
    for seg in segments:
        if seg.start_s + seg.duration_s > position:
            return seg.number
    return segments[-1].number


def live_delay_s(mpd: LiveMpd, rep: LiveRep) -> float:
    """suggestedPresentationDelay, else four segment durations (dash.js)."""
    if mpd.suggested_delay_s:
        return mpd.suggested_delay_s
    return DASHJS_DELAY_SEGMENTS * (rep.segment_s or 0.0)


class LiveDashPlay(LivePlay):
    """One live DASH play of one Representation (video without separate audio)."""

    def __init__(self, player: _Player, run: _Run, pres: Presentation, track: Track, deadline: float,
                 text: str) -> None:
        super().__init__(player, run, pres, track, deadline)
        self.mpd = read_live_mpd(pres.url, text)
        self.text = text
        self.rep = self._rep(self.mpd)
        self.last_segment_s = self.rep.segment_s or 1.0
        self.facts.target_duration_s = None  # DASH has none (HLS's EXT-X-TARGETDURATION)

    def _rep(self, mpd: LiveMpd) -> LiveRep:
        rep = mpd.reps.get(self.track.rendition_id)
        if rep is None:
            raise MediaError(f"the live DASH representation {self.track.rendition_id!r} has no SegmentTemplate (only "
                             "SegmentTemplate is followed live)", kind="live_unsupported")
        return rep

    def _resync_number(self) -> int:
        """After falling behind the time-shift buffer: the live edge minus the delay again, as dash.js seeks back
        into its DVR window. Called holding ``cond``."""
        listed = [self.known[n] for n in sorted(self.known) if n >= self.window_first]
        return resync_number(listed, live_delay_s(self.mpd, self.rep))

    def _available(self) -> list[Segment]:
        return available(self.mpd, self.rep, time.time(), self.player.s.manifest_segments_max)

    def play(self) -> None:
        """Start at the live edge minus the delay, then as the live HLS player plays."""
        segs = self._available()
        self.next_number = self.facts.start_number = start_number(segs, live_delay_s(self.mpd, self.rep))
        self._learn(segs)
        self._follow(self.pres.url, "live-mpd")

    def _reload_loop(self, last_start: float) -> None:
        """Until the play ends: segments taken in as the clock makes them available, the MPD fetched again every
        minimumUpdatePeriod (never more often than RELOAD_FLOOR_S)."""
        while not self.stop.is_set():
            period = self.mpd.min_update_s
            due = last_start + max(RELOAD_FLOOR_S, period) if period is not None else self.deadline
            wait = min(due, self.deadline, self._now() + _TICK_S)
            if self.stop.wait(max(0.0, wait - self._now())) or self._now() >= self.deadline:
                return
            if self._now() >= due:
                last_start = self._now()
                if not self._refetch(last_start):
                    return
            self._learn(self._available())

    def _refetch(self, start: float) -> bool:
        """One MPD load after the first: its row marked; False when following ends (static now, unreadable)."""
        tr, rec = self.run.fetch(self.pres.url, "manifest", "reload", None, window_s=max(0.0, self.deadline - start))
        self.facts.reloads += 1
        if not rec.complete:
            self.facts.unchanged_reloads += 1
            return True
        text = tr.head.decode("utf-8", errors="replace")
        changed, self.text = text != self.text, text
        self.facts.unchanged_reloads += not changed
        try:
            mpd = read_live_mpd(self.pres.url, text)
            rep = self._rep(mpd)
        except (ManifestError, MediaError) as exc:
            self._mark(rec, error=f"not read: {exc}", playlist_changed=changed)
            return False
        self.mpd, self.rep = mpd, rep
        segs = self._available()
        fresh = self._learn(segs)
        self._mark(rec, playlist_changed=changed, new_segments=fresh, media_sequence=segs[0].number if segs else None)
        if not mpd.dynamic:
            with self.cond:
                self.ended = True
                self.cond.notify_all()
            return False
        return True

