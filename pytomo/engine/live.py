"""Live HLS as RFC 8216 6.3.3-6.3.5 has a player follow it: start three target durations from the end (or at
EXT-X-START), reload the media playlist on the RFC's schedule, fetch each new segment once, play until the window
ends; and the latency to the live edge of what was playing, from EXT-X-PROGRAM-DATE-TIME.

The reloads run on their own thread, as a player's playlist loader runs beside its fragment loader, so that a slow
segment does not delay them. Segments that left the playlist before they were fetched are skipped and counted: the
player goes on where it would start, three target durations from the end, as hls.js does when its load position
falls behind the playlist (its ``liveSyncPosition``, pytomo/lab/players/node_modules/hls.js/src/controller/
base-stream-controller.ts:1581-1607, stream-controller.ts:705-733). When a load shows that the segment in flight
has left the playlist while the model is not playing (starved: hls.js's ``readyState < 4`` there), the request is
abandoned and play goes on at that place too, as hls.js's seek to ``liveSyncPosition`` aborts the fragment in
flight. A listed segment the server answers with 404 or 410 is counted as missing and passed over. The model's
media time runs over the segments played, one after the other: a skip is a jump, not a gap to fill.
"""

from __future__ import annotations

import bisect
import dataclasses
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from pytomo.engine.playout import PLAYING, simulate
from pytomo.errors import ManifestError
from pytomo.media.manifest import parse_media_playlist
from pytomo.results import (
    LiveFacts,
    PlayoutParams,
    PlayoutResult,
    Presentation,
    Segment,
    SegmentedSession,
    SegmentRecord,
    Track,
    Transfer,
)
from pytomo.settings import Settings

# RFC 8216 6.3.3: no closer than three target durations from the end; hls.js's liveSyncDurationCount is the same
# (pytomo/lab/players/node_modules/hls.js/src/config.ts:472, src/controller/latency-controller.ts:56-68)
LIVE_SYNC_COUNT = 3
RELOAD_FLOOR_S = 0.5  # a hostile target duration of 0 s: never reload more often than this
_POLL_S = 0.1  # how long the fetcher waits for a reload's news before it looks at the clock again
MAX_LATENCY_SAMPLES = 3600
GONE_STATUSES = (404, 410)


class _Run(Protocol):
    """What the live player needs of the segmented player's play (pytomo/engine/player.py _Play)."""

    t0: float
    wall0: float
    agg: Transfer
    session: SegmentedSession
    state: dict[str, int]
    lock: threading.Lock

    def fetch(self, target: str, stream: str, kind: str, track: Track | None, seg: Segment | None = None,
              window_s: float = 30.0, byte_range: tuple[int, int] | None = None,
              should_stop: Callable[[], bool] | None = None) -> tuple[Transfer, SegmentRecord]:
        """One request, merged into the aggregate transfer and recorded (``should_stop``: ends it early)."""
        ...

    def fetch_part(self, target: str, track: Track, kind: str, seg: Segment | None, window_s: float,
                   byte_range: tuple[int, int] | None) -> SegmentRecord | None:
        """An init or media request; None when it ends the play."""
        ...


class _Player(Protocol):
    """What the live player needs of the segmented player (pytomo/engine/player.py SegmentPlayer)."""

    s: Settings
    params: PlayoutParams
    should_stop: Callable[[], bool]

    def goal_s(self, track: Track, top: Track, segment_s: float) -> float:
        """How far ahead the driving profile fetches."""
        ...


def start_index(segments: Sequence[Segment], target_duration_s: float | None, start_offset_s: float | None) -> int:
    """The segment a player starts at: the one holding EXT-X-START's position, else the one holding the point three
    target durations before the end (the first segment when the playlist is shorter)."""
    if not segments:
        return 0
    first, end = segments[0].start_s, segments[-1].start_s + segments[-1].duration_s
    if start_offset_s is not None:
        position = first + start_offset_s if start_offset_s >= 0 else end + start_offset_s
    else:
        td = target_duration_s or max(s.duration_s for s in segments)
        position = end - LIVE_SYNC_COUNT * td
    position = min(max(position, first), end)
    for i, seg in enumerate(segments):
        if seg.start_s + seg.duration_s > position:
            return i
    return len(segments) - 1


def resync_number(segments: Sequence[Segment], distance_s: float) -> int:
    """The number of the segment holding the point ``distance_s`` before the end of ``segments`` (consecutive, in
    order; their own start times may come from different loads, so only their durations count)."""
    if not segments:
        return 0
    back = 0.0
    for seg in reversed(segments):
        back += seg.duration_s
        if back >= distance_s:
            return seg.number
    return segments[0].number


def reload_interval_s(target_duration_s: float | None, changed: bool, last_segment_s: float) -> float:
    """RFC 8216 6.3.4: the target duration after a load that changed the playlist, half of it after one that did
    not (the last segment's duration when there is no target duration), never under RELOAD_FLOOR_S."""
    base = target_duration_s if target_duration_s else last_segment_s
    return max(RELOAD_FLOOR_S, base if changed else base / 2)


def _key(segments: Sequence[Segment], live: bool) -> tuple[int, int, str, bool]:
    """What tells one load of a playlist from the next: first number, count, last URI, still live."""
    if not segments:
        return -1, 0, "", live
    return segments[0].number, len(segments), segments[-1].url, live


class LivePlay:
    """One live HLS play of one media playlist (muxed, or video without separate audio)."""

    def __init__(self, player: _Player, run: _Run, pres: Presentation, track: Track, deadline: float) -> None:
        self.player, self.run, self.pres, self.track, self.deadline = player, run, pres, track, deadline
        self.facts = LiveFacts(wall0_s=run.wall0, target_duration_s=track.target_duration_s)
        run.session.live = self.facts
        self.cond = threading.Condition()
        self.known: dict[int, Segment] = {}  # listed, not fetched yet, by media sequence number
        self.highest = -1  # the highest number any load listed
        self.window_first = 0  # the first number of the latest load
        self.next_number = 0
        self.ended = False  # EXT-X-ENDLIST appeared
        self.stop = threading.Event()
        self.media_end = 0.0
        self.last_segment_s = track.segments[-1].duration_s if track.segments else 1.0
        self.last_key = _key(track.segments, True)  # what the previous load listed, to tell a change
        self.failure: Exception | None = None  # raised by the reload thread
        self.in_flight: int | None = None  # the number of the media segment being fetched
        self.abandon = threading.Event()  # set by a load that left the segment in flight behind, while starved

    def _now(self) -> float:
        return time.perf_counter() - self.run.t0

    def play(self) -> None:
        """Reload and fetch until the window ends, the stream ends, or a request fails (``agg.ended_by``)."""
        segs = self.track.segments
        i = start_index(segs, self.track.target_duration_s, self.track.start_offset_s)
        self.next_number = self.facts.start_number = segs[i].number if segs else 0
        self._learn(segs)
        self._follow(self.track.playlist_url, "live-reload")

    def _follow(self, loaded_url: str | None, name: str) -> None:
        """The reload thread beside the fetch loop until the play ends; what the reload thread raised is raised."""
        first_load = next((r.trequest_s for r in reversed(self.run.session.records) if r.url == loaded_url), 0.0)
        reloader = threading.Thread(target=self._reloads, args=(first_load,), daemon=True, name=name)
        self.run.agg.ended_by = None
        reloader.start()
        try:
            self._fetch_loop()
        finally:
            self.stop.set()
            with self.cond:
                self.cond.notify_all()
            reloader.join()
        if self.failure is not None:  # what went wrong on the reload thread is the play's outcome, as on this one
            raise self.failure

    def _reloads(self, first_load: float) -> None:
        """The reload thread: its exception is kept for the play to raise, and ends the play."""
        try:
            self._reload_loop(first_load)
        except Exception as exc:  # noqa: BLE001 - handed to the play's thread
            self.failure = exc
            self.stop.set()

    # ------------------------------------------------------------------ the playlist

    def _learn(self, segments: Sequence[Segment]) -> int:
        """Take in one load's segments; the number of those no earlier load listed."""
        with self.cond:
            fresh = [s for s in segments if s.number > self.highest]
            for s in fresh:
                if s.number >= self.next_number:
                    self.known[s.number] = s
            while len(self.known) > self.player.s.manifest_segments_max:  # bounded, whatever a playlist says
                del self.known[min(self.known)]
            if segments:
                self.highest = max(self.highest, segments[-1].number)
                self.window_first = segments[0].number
                self.last_segment_s = segments[-1].duration_s
            self._left_behind()
            self.cond.notify_all()
        return len(fresh)

    def _left_behind(self) -> None:
        """The segment in flight left the window while the model is not playing: abandon it and go on where a
        player would start (called holding ``cond``)."""
        flight = self.in_flight
        if flight is None or flight >= self.window_first or self.abandon.is_set():
            return
        if simulate(self.run.session.events, self._now(), self.player.params, None).state_at_end == PLAYING:
            return
        resume = max(self.window_first, self._resync_number())
        for n in [n for n in self.known if n < resume]:
            del self.known[n]
        self.facts.skipped += resume - flight  # the abandoned one and those jumped over
        self.next_number = resume
        self.abandon.set()

    def _reload_loop(self, last_start: float) -> None:
        """Reload the media playlist on RFC 8216 6.3.4's schedule until the play ends or the playlist does."""
        changed = True  # the first load counts as a change: the target duration before the first reload
        url = self.track.playlist_url or self.pres.url
        while not self.stop.is_set():
            wait = last_start + reload_interval_s(self.facts.target_duration_s, changed, self.last_segment_s)
            if self.stop.wait(max(0.0, min(wait, self.deadline) - self._now())) or self._now() >= self.deadline:
                return
            last_start = self._now()
            tr, rec = self.run.fetch(url, "manifest", "reload", None, window_s=max(0.0, self.deadline - last_start))
            self.facts.reloads += 1
            changed = False  # a failed load is asked again at half the target duration, as an unchanged one
            if rec.complete:
                going_on, changed = self._take(url, tr.head.decode("utf-8", errors="replace"), rec)
                if not going_on:
                    return
            self.facts.unchanged_reloads += not changed

    def _take(self, url: str, text: str, rec: SegmentRecord) -> tuple[bool, bool]:
        """Read one reload into the known segments and its record: (reloading goes on, the playlist changed).
        Changed: another first number, another last segment or count, or the end (ENDLIST) appeared."""
        try:
            pl = parse_media_playlist(url, text, max_segments=self.player.s.manifest_segments_max)
        except ManifestError as exc:  # a bad reload: what is known is played, nothing more is asked
            self._mark(rec, error=f"not read: {exc}")
            return False, False
        key = _key(pl.segments, pl.live)
        changed, self.last_key = key != self.last_key, key
        fresh = self._learn(pl.segments)
        if pl.target_duration_s:
            self.facts.target_duration_s = pl.target_duration_s
        self._mark(rec, playlist_changed=changed, new_segments=fresh, media_sequence=pl.media_sequence)
        if not pl.live:
            with self.cond:
                self.ended = True
                self.cond.notify_all()
        return pl.live, changed

    def _mark(self, rec: SegmentRecord, **fields: object) -> None:
        """The request's record with the live player's fields."""
        with self.run.lock:
            records = self.run.session.records
            if rec.seq < len(records) and records[rec.seq] is rec:
                records[rec.seq] = dataclasses.replace(rec, **fields)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ the segments

    def _stop_reason(self, now: float) -> str | None:
        if self.failure is not None:
            return "error"
        if self.player.should_stop():
            return "interrupted"
        if now >= self.deadline:
            return "window"
        with self.cond:
            if self.ended and not any(n >= self.next_number for n in self.known):
                return "eof"
        return None

    def _next_segment(self, now: float) -> Segment | None:
        """The next segment to fetch, once a load has listed it; None after waiting a little for news."""
        with self.cond:
            if self.next_number < self.window_first:  # it left the playlist before it was fetched
                for n in [n for n in self.known if n < self.window_first]:
                    del self.known[n]
                resume = max(self.window_first, self._resync_number())
                self.facts.skipped += resume - self.next_number
                for n in [n for n in self.known if n < resume]:
                    del self.known[n]
                self.next_number = resume
            seg = self.known.pop(self.next_number, None)
            if seg is None:
                self.cond.wait(max(0.0, min(_POLL_S, self.deadline - now)))
            return seg

    def _resync_number(self) -> int:
        """Where play goes on after falling behind the window: the start rule over what is listed now (EXT-X-START's
        offset from the end, else three target durations). Called holding ``cond``."""
        listed = [self.known[n] for n in sorted(self.known) if n >= self.window_first]
        offset = self.track.start_offset_s
        if offset is not None and offset < 0:
            return resync_number(listed, -offset)
        td = self.facts.target_duration_s or max((s.duration_s for s in listed), default=0.0)
        return resync_number(listed, LIVE_SYNC_COUNT * td)

    def _ahead_s(self, now: float) -> float:
        """How much media ahead of the playhead goes over the buffer goal (> 0: wait that long)."""
        level = simulate(self.run.session.events, now, self.player.params, None)
        if level.state_at_end != PLAYING:
            return 0.0
        top = self.pres.video[-1]
        return level.buffer_at_end_s - self.player.goal_s(self.track, top, self.last_segment_s)

    def _fetch_loop(self) -> None:
        run, agg = self.run, self.run.agg
        if self.track.init_url and run.fetch_part(self.track.init_url, self.track, "init", None,
                                                  max(0.0, self.deadline - self._now()), self.track.init_range) is None:
            return
        while True:
            now = self._now()
            agg.ended_by = self._stop_reason(now)
            if agg.ended_by is not None:
                return
            over = self._ahead_s(now)
            if over > 0:
                time.sleep(min(self.deadline - now, over + 0.01, 1.0))
                continue
            seg = self._next_segment(now)
            if seg is not None and not self._fetch(seg, now):
                return

    def _fetch(self, seg: Segment, now: float) -> bool:
        """One media segment; False when the play ends with it (window, interruption, failure)."""
        run, agg = self.run, self.run.agg
        placed = dataclasses.replace(seg, start_s=self.media_end)  # its place in the model's media time
        with self.cond:
            self.in_flight = seg.number
        tr, rec = run.fetch(seg.url, self.track.stream, "media", self.track, placed,
                            window_s=max(0.0, self.deadline - now), byte_range=seg.byte_range,
                            should_stop=lambda: self.player.should_stop() or self.abandon.is_set())
        with self.cond:
            self.in_flight = None
            abandoned = self.abandon.is_set() and not self.player.should_stop()
            self.abandon.clear()
            if not abandoned:
                self.next_number = seg.number + 1
        self._mark(rec, media_sequence=seg.number, program_date_s=seg.program_date_s,
                   **({"error": "abandoned: it left the playlist while the player starved"} if abandoned else {}))
        if abandoned:
            return True
        if tr.ended_by in ("window", "interrupted"):
            agg.ended_by = tr.ended_by
            return False
        if tr.status in GONE_STATUSES:
            self.facts.missing += 1
            return True
        if not rec.complete:
            agg.ended_by, agg.error_kind = "error", tr.error_kind or "http_status"
            agg.error = tr.error or f"HTTP {tr.status} for {tr.url}"
            if agg.error_kind == "http_status":
                agg.status = tr.status
            return False
        self.facts.played.append((self.media_end, seg.duration_s, seg.program_date_s))
        self.media_end += seg.duration_s
        with run.lock:
            run.session.events.append((rec.tfinish_s, run.state["bytes"], self.media_end))
        return True


# ---------------------------------------------------------------------- latency to the live edge


def _playhead_at(playout: PlayoutResult, times: list[float], t: float) -> float:
    """The model's playhead at session time ``t`` (it moves one second per second while playing)."""
    i = bisect.bisect_right(times, t) - 1
    if i < 0:
        return 0.0
    pt = playout.timeline[i]
    return pt.playhead_s + (t - pt.t_s) if pt.state == PLAYING else pt.playhead_s


def _date_at(facts: LiveFacts, starts: list[float], position_s: float) -> float | None:
    """The program date of media position ``position_s`` (the segment holding it, plus the way into it)."""
    i = max(0, bisect.bisect_right(starts, position_s) - 1)
    start, duration, date = facts.played[i]
    return None if date is None else date + min(max(0.0, position_s - start), duration)


def latency_problem(facts: LiveFacts, playout: PlayoutResult | None) -> str | None:
    """Why the latency to the live edge cannot be said, or None."""
    if not facts.played:
        return "no segment was played"
    if all(date is None for _s, _d, date in facts.played):
        return "the playlist has no readable EXT-X-PROGRAM-DATE-TIME"
    if playout is None or playout.time_to_start_s is None:
        return "playback never started"
    return None


def measure_latency(facts: LiveFacts, playout: PlayoutResult | None) -> None:
    """``facts.latency``: every second from the start of playback to the window's end, the wall clock minus the
    program date of the media playing (``latency_problem`` instead when it cannot be said)."""
    facts.latency, facts.latency_problem = [], latency_problem(facts, playout)
    if facts.latency_problem is not None or playout is None or playout.time_to_start_s is None:
        return
    start, end = playout.time_to_start_s, playout.end_s
    step = max(1.0, (end - start) / MAX_LATENCY_SAMPLES)
    times = [pt.t_s for pt in playout.timeline]
    starts = [s for s, _d, _date in facts.played]
    t, marks = start, []
    while t < end:
        marks.append(t)
        t += step
    marks.append(end)
    for t in marks:
        playhead = _playhead_at(playout, times, t)
        date = _date_at(facts, starts, playhead)
        if date is not None:
            facts.latency.append((t, facts.wall0_s + t - date, playhead))
    if not facts.latency:
        facts.latency_problem = "the segments played have no EXT-X-PROGRAM-DATE-TIME"
