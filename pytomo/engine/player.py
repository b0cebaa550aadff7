"""The segmented player: HLS or DASH segments fetched in order, one rendition or buffer-based adaptation.

Default mode ``fixed`` streams one rendition at full rate with no adaptation, as SamKnows does for
reproducibility; ``buffer`` adapts the video rendition to the buffer level (BBA-0: the lowest rendition under
``bba_reservoir_s``, the highest above reservoir + cushion, linear in between); ``player`` follows the driving
profile's rule (``ThroughputRule``: an exponentially weighted throughput estimate, the highest rendition within its
safety factor). The player keeps separate audio and video buffers when the streams are separate (playable media is
the smaller), never buffers more than the driving profile's buffer goal (``max_buffer_s`` for the 2015 profile)
ahead, and records every request in the shape of ISO/IEC 23009-1 Annex D (trequest, tresponse,
tfinish, bytes, URL, rendition, status).
"""

from __future__ import annotations

import bisect
import dataclasses
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from pytomo.engine.dash_live import LiveDashPlay
from pytomo.engine.download import download, merge_arrivals
from pytomo.engine.http import HttpClient
from pytomo.engine.impersonate import Presenting, blocked
from pytomo.engine.live import LivePlay
from pytomo.engine.playout import PLAYING, simulate
from pytomo.engine.profiles import PlayerProfile, driving_profile
from pytomo.errors import BLOCKED_STATUSES, HttpStatusError, ManifestError, MediaError
from pytomo.media.manifest import parse_dash, parse_hls
from pytomo.results import (
    Presentation,
    Segment,
    SegmentedSession,
    SegmentRecord,
    Track,
    Transfer,
    utc_now,
)
from pytomo.settings import Settings


def choose_fixed(tracks: tuple[Track, ...], rendition: str) -> Track:
    """``highest``, ``lowest``, a rendition index (0 = lowest bandwidth), or a bit/s cap."""
    if rendition == "highest":
        return tracks[-1]
    if rendition == "lowest":
        return tracks[0]
    if rendition.isdigit() and int(rendition) < len(tracks) and int(rendition) < 100:
        return tracks[int(rendition)]
    if rendition.isdigit():
        fitting = [t for t in tracks if (t.bandwidth_bps or 0) <= int(rendition)]
        return fitting[-1] if fitting else tracks[0]
    raise MediaError(f"unknown rendition choice {rendition!r}")


def choose_bba(tracks: tuple[Track, ...], buffer_s: float, reservoir_s: float, cushion_s: float) -> Track:
    """BBA-0: the rendition whose bandwidth fits the rate that the buffer level maps to."""
    rates = [t.bandwidth_bps or 0 for t in tracks]
    if buffer_s <= reservoir_s:
        return tracks[0]
    if buffer_s >= reservoir_s + cushion_s:
        return tracks[-1]
    target = rates[0] + (rates[-1] - rates[0]) * (buffer_s - reservoir_s) / cushion_s
    fitting = [t for t, r in zip(tracks, rates) if r <= target]
    return fitting[-1] if fitting else tracks[0]


class ThroughputRule:
    """A player's throughput-based choice: the smaller of a fast and a slow EWMA of segment throughput, weighted by
    download time (dash.js, Shaka Player and hls.js alike), and the highest rendition within the safety factor."""

    def __init__(self, profile: PlayerProfile) -> None:
        self.profile = profile
        self.fast_bps = self.slow_bps = profile.abr_start_bps or 0.0
        self.sampled_s = 0.0

    @property
    def estimate_bps(self) -> float:
        """The current estimate: the profile's first one until a segment has been measured."""
        return min(self.fast_bps, self.slow_bps)

    def sample(self, size_bytes: int, seconds: float) -> None:
        """One media segment's download."""
        if seconds <= 0 or size_bytes <= 0:
            return
        rate = size_bytes * 8 / seconds
        if self.sampled_s == 0:
            self.fast_bps = self.slow_bps = rate
        else:
            a_fast = 0.5 ** (seconds / self.profile.abr_fast_half_life_s)
            a_slow = 0.5 ** (seconds / self.profile.abr_slow_half_life_s)
            self.fast_bps = a_fast * self.fast_bps + (1 - a_fast) * rate
            self.slow_bps = a_slow * self.slow_bps + (1 - a_slow) * rate
        self.sampled_s += seconds

    def choose(self, tracks: tuple[Track, ...]) -> Track:
        """The highest rendition whose declared bandwidth fits the estimate times the safety factor."""
        share = self.profile.abr_safety if self.sampled_s else self.profile.abr_start_safety
        fitting = [t for t in tracks if (t.bandwidth_bps or 0) <= self.estimate_bps * share]
        return fitting[-1] if fitting else tracks[0]


def first_rendition(pres: Presentation, s: Settings, rule: ThroughputRule) -> Track:
    """The video rendition a session starts on: ``--rendition``, the lowest (BBA-0), or the profile's rule."""
    if s.abr == "buffer":
        return pres.video[0]
    return rule.choose(pres.video) if s.abr == "player" else choose_fixed(pres.video, s.rendition)


def next_rendition(pres: Presentation, s: Settings, rule: ThroughputRule, current: Track, buffer_s: float) -> Track:
    """The video rendition of the next segment: the current one (fixed), BBA-0's, or the profile's rule's."""
    if s.abr == "fixed":
        return current
    if s.abr == "player":
        return rule.choose(pres.video)
    return choose_bba(pres.video, buffer_s, s.bba_reservoir_s, s.bba_cushion_s)


class _Play:
    """One play of a presentation: its clock, the aggregate transfer, the session record, and its requests."""

    def __init__(self, player: SegmentPlayer, url: str) -> None:
        s = player.s
        self.player = player
        self.t0 = time.perf_counter()
        self.wall0 = time.time()  # the UNIX time of t0 (a live stream's latency is wall clock minus program date)
        self.agg = Transfer(url=url, address=player.address, started_at=utc_now(), window_s=s.window_s,
                            bin_s=s.throughput_bin_s)
        self.session = SegmentedSession(presentation=None, transfer=self.agg, mode=s.abr)
        self.host = urlsplit(url).hostname or ""
        self.state = {"bytes": 0}
        self.lock = threading.Lock()  # two streams' requests end at once (_ParallelStreams)

    def fetch(self, target: str, stream: str, kind: str, track: Track | None, seg: Segment | None = None,
              window_s: float = 30.0, byte_range: tuple[int, int] | None = None,
              should_stop: Callable[[], bool] | None = None) -> tuple[Transfer, SegmentRecord]:
        """One request, merged into the aggregate transfer and recorded (``should_stop``: ends it early; the
        player's own by default)."""
        player, s = self.player, self.player.s
        text_like = kind in ("manifest", "index", "reload")
        presenting = player.presenting
        while True:  # a platform's request refused (403) is asked again as the next browser (yt-dlp's order)
            start = time.perf_counter() - self.t0
            tr = download(player.http, target, player._address_for(target, self.host) or player._resolve(target),
                          window_s=window_s, bin_s=s.throughput_bin_s,
                          head_limit_bytes=s.manifest_limit_bytes if text_like else 0,
                          should_stop=should_stop or player.should_stop, timeout_s=s.http_timeout_s,
                          byte_range=byte_range,
                          headers=player.headers, body_limit_bytes=s.manifest_limit_bytes if text_like else None,
                          impersonate=presenting.target if presenting else None)
            with self.lock:
                merge_arrivals(self.agg, tr, start, self.state)
                rec = self._record(tr, start, stream, kind, track, seg, target, byte_range)
            if presenting is None or not presenting.answered(tr.status, tr.impersonate):
                return tr, rec

    def _record(self, tr: Transfer, start: float, stream: str, kind: str, track: Track | None, seg: Segment | None,
                target: str, byte_range: tuple[int, int] | None) -> SegmentRecord:
        """The request's record, appended to the session's."""
        session = self.session
        complete = tr.complete and tr.status in (200, 206)
        conn = tr.connection
        rec = SegmentRecord(
            seq=len(session.records), stream=stream, kind=kind,
            rendition_id=track.rendition_id if track else None,
            bandwidth_bps=track.bandwidth_bps if track else None, url=target, status=tr.status,
            trequest_s=start, tresponse_s=None if tr.headers_s is None else start + tr.headers_s,
            tfinish_s=start + (tr.last_byte_s if tr.last_byte_s is not None else (tr.headers_s or 0.0)),
            bytes=tr.bytes_total, media_start_s=seg.start_s if seg else None,
            media_duration_s=seg.duration_s if seg else None, complete=complete, error=tr.error,
            byte_range=byte_range, new_connection=conn.new if conn else None,
            tcp_connect_s=conn.tcp_connect_s if conn else None,
            tls_handshake_s=conn.tls_handshake_s if conn else None, content_encoding=tr.content_encoding,
            http_version=tr.http_version, tls_version=conn.tls_version if conn else None, impersonate=tr.impersonate,
            http_stream_id=tr.http_stream_id, quic_fallback=tr.quic_fallback)
        session.records.append(rec)
        return rec

    def fetch_text(self, u: str) -> str:
        """A media playlist, as text."""
        t, r = self.fetch(u, "manifest", "manifest", None)
        if not r.complete:
            error = ManifestError if t.error_kind == "too_large" else MediaError
            raise error(f"cannot load the playlist {u}: {t.error or t.status}")
        return t.head.decode("utf-8", errors="replace")

    def fetch_index(self, u: str, first: int, last: int) -> bytes:
        """Bytes ``first``-``last`` of ``u`` (a segment index)."""
        t, r = self.fetch(u, "manifest", "index", None, byte_range=(first, last))
        if not r.complete:
            raise MediaError(f"cannot load the segment index bytes {first}-{last} of {u}: {t.error or t.status}")
        return t.head

    def fetch_part(self, target: str, track: Track, kind: str, seg: Segment | None, window_s: float,
                   byte_range: tuple[int, int] | None) -> SegmentRecord | None:
        """An init or media request of ``track``; None when it ends the play (window, interruption, failure)."""
        t, r = self.fetch(target, track.stream, kind, track, seg, window_s=window_s, byte_range=byte_range)
        if t.ended_by in ("window", "interrupted"):  # cut by the window's end: not an error
            self.agg.ended_by = t.ended_by
            return None
        if not r.complete:
            SegmentPlayer._fail(self.agg, t)
            return None
        return r


class SegmentPlayer:
    """Plays one HLS or DASH presentation for the download window."""

    def __init__(self, http: HttpClient, address: str, settings: Settings, profile: PlayerProfile | None = None,
                 should_stop: Callable[[], bool] | None = None, headers: dict[str, str] | None = None,
                 presenting: Presenting | None = None) -> None:
        self.http = http
        self.headers = dict(headers or {})  # a platform format's http_headers, sent with every request
        self.presenting = presenting  # a platform format's impersonation (None: no browser is presented)
        self.address = address
        self.s = settings
        self.profile = profile or driving_profile(settings)
        self.params = self.profile.params()
        self.should_stop: Callable[[], bool] = should_stop or (lambda: False)

    def _address_for(self, url: str, manifest_host: str) -> str | None:
        host = urlsplit(url).hostname
        return self.address if host == manifest_host else None

    def play(self, url: str, protocol: str) -> SegmentedSession:
        """Fetch the manifest(s), then segments until the window closes or the media ends."""
        s = self.s
        run = _Play(self, url)
        text = self._manifest_text(run, url)
        if text is None:
            return run.session
        pres = (parse_hls(url, text, run.fetch_text, max_segments=s.manifest_segments_max) if protocol == "hls"
                else parse_dash(url, text, fetch_range=run.fetch_index, max_segments=s.manifest_segments_max))
        run.session.presentation = pres
        deadline = (run.agg.headers_s or 0.0) + s.window_s
        if pres.live:
            self._live(run, pres, deadline, text)
        elif self.profile.parallel_streams and pres.audio and pres.video[0].stream == "video":
            _ParallelStreams(self, run, pres, deadline).play()
        else:
            self._stream(run, pres, deadline)
        agg, session = run.agg, run.session
        end_s = deadline if agg.ended_by in ("window", "eof") else (agg.last_byte_s or 0.0)
        session.playout = simulate(session.events, end_s, self.params, pres.duration_s,
                                   complete=agg.ended_by == "eof")
        return session

    def _live(self, run: _Play, pres: Presentation, deadline: float, text: str) -> None:
        """A live stream followed at the live edge: HLS's media playlist reloaded (pytomo/engine/live.py), a dynamic
        MPD's segments as the clock makes them available (pytomo/engine/dash_live.py)."""
        track = first_rendition(pres, self.s, ThroughputRule(self.profile))
        if pres.audio and track.stream == "video":
            raise MediaError(f"a live {pres.protocol.upper()} stream with separate audio is not played yet (one "
                             "rendition is followed)", kind="live_separate_audio")
        if pres.protocol == "dash":
            LiveDashPlay(self, run, pres, track, deadline, text).play()
        else:
            LivePlay(self, run, pres, track, deadline).play()

    def _manifest_text(self, run: _Play, url: str) -> str | None:
        """The manifest as text; None when it could not be loaded (the aggregate transfer says why), or an
        exception for a refusal or a manifest too large."""
        agg = run.agg
        tr, rec = run.fetch(url, "manifest", "manifest", None)
        agg.status, agg.content_type, agg.headers_s = tr.status, tr.content_type, tr.headers_s
        agg.take_transport(tr)  # the session's first request: its transport
        if rec.complete:
            return tr.head.decode("utf-8", errors="replace")
        agg.ended_by, agg.error_kind, agg.error = "error", tr.error_kind or "http_status", (
            tr.error or f"HTTP {tr.status} for the manifest")
        if tr.status and self.headers and tr.status in BLOCKED_STATUSES:  # a platform's CDN said no
            raise blocked(self.presenting, stage="download", status=tr.status, url=url)
        if tr.status and tr.status >= 400:
            raise HttpStatusError(stage="download", status=tr.status, url=url)
        if tr.error_kind == "too_large":
            raise ManifestError(f"the manifest {url} is too large: {tr.error}")
        return None

    def _stop_reason(self, now: float, deadline: float, finished: bool) -> str | None:
        """Why the play ends before the next request (interrupted, window, eof), or None to go on."""
        if self.should_stop():
            return "interrupted"
        if now >= deadline:
            return "window"
        if finished:
            return "eof"
        return None

    def _stream(self, run: _Play, pres: Presentation, deadline: float) -> None:
        """Fetch init and media segments, video and audio in step, until the play ends (``agg.ended_by``)."""
        s, agg, session = self.s, run.agg, run.session
        rule = ThroughputRule(self.profile)
        video = first_rendition(pres, s, rule)
        audio = pres.audio[0] if pres.audio and video.stream == "video" else None
        inits_done: set[tuple[str | None, tuple[int, int] | None]] = set()
        ends = {"video": 0.0, "audio": 0.0}
        index = {"video": 0, "audio": 0}
        n_segments = len(video.segments)
        agg.ended_by = None
        while agg.ended_by is None:
            now = time.perf_counter() - run.t0
            v_done = index["video"] >= n_segments
            a_done = audio is None or index["audio"] >= len(audio.segments)
            agg.ended_by = self._stop_reason(now, deadline, v_done and a_done)
            if agg.ended_by is not None:
                break
            level = simulate(session.events, now, self.params, pres.duration_s)
            over = level.buffer_at_end_s - self.goal_s(video, pres.video[-1], video.segments[0].duration_s
                                                       if video.segments else 0.0)
            if level.state_at_end == PLAYING and over > 0:
                time.sleep(min(deadline - now, over + 0.01))
                continue
            stream = "audio" if v_done or (not a_done and ends["audio"] < ends["video"]) else "video"
            track = audio if stream == "audio" else video
            assert track is not None  # audio is chosen only while it has segments left
            if stream == "video":
                chosen = next_rendition(pres, s, rule, video, level.buffer_at_end_s)
                if chosen is not video:
                    session.switches += 1
                    video = track = chosen
            init_key = (track.init_url, track.init_range)
            if track.init_url and init_key not in inits_done:
                if run.fetch_part(track.init_url, track, "init", None, max(0.0, deadline - now),
                                  track.init_range) is None:
                    break
                inits_done.add(init_key)
                continue
            seg = track.segments[index[stream]]
            r = run.fetch_part(seg.url, track, "media", seg, max(0.0, deadline - now), seg.byte_range)
            if r is None:
                break
            index[stream] += 1
            if stream == "video" and r.tresponse_s is not None:
                rule.sample(r.bytes, r.tfinish_s - r.trequest_s)
            ends[stream] = seg.start_s + seg.duration_s
            playable = ends["video"] if audio is None else min(ends["video"], ends["audio"])
            session.events.append((r.tfinish_s, run.state["bytes"], playable))
            if audio is not None:
                session.av_events.append((r.tfinish_s, run.state["bytes"], ends["video"], ends["audio"]))

    def goal_s(self, track: Track, top: Track, segment_s: float) -> float:
        """How far ahead the driving profile fetches ``track`` (``top``: the highest rendition)."""
        p = self.profile
        if p.name == "2015":
            return self.s.max_buffer_s
        goal = p.buffer_goal_top_s if p.buffer_goal_top_s and track is top else (p.buffer_goal_s or self.s.max_buffer_s)
        if p.buffer_goal_bytes and track.bandwidth_bps:
            goal = max(goal, p.buffer_goal_bytes * 8 / track.bandwidth_bps)
        if p.buffer_goal_max_s:
            goal = min(goal, p.buffer_goal_max_s)
        return goal - segment_s if p.goal_counts_next_segment else goal

    def _resolve(self, url: str) -> str:
        host = urlsplit(url).hostname or ""
        found = self.http.resolve(host)
        if not found:
            raise MediaError(f"no address for the segment host {host!r}")
        return found[0]

    @staticmethod
    def _fail(agg: Transfer, tr: Transfer) -> None:
        agg.ended_by = "error"
        agg.error_kind = tr.error_kind or "http_status"
        agg.error = tr.error or f"HTTP {tr.status} for {tr.url}"
        if agg.error_kind == "http_status":
            agg.status = tr.status  # the session's outcome is the refused request's status


class _ParallelStreams:
    """Video and audio fetched at once, each on its own connection, as dash.js, Shaka Player and hls.js do.

    Each stream has one request outstanding at most, fetches while its own buffer ahead of the playhead is under
    the profile's goal, and audio never runs more than one segment ahead of video (Shaka's run-ahead limit, hls.js's
    buffer sync limit; dash.js keeps audio at video's level + 1 s).
    """

    def __init__(self, player: SegmentPlayer, run: _Play, pres: Presentation, deadline: float) -> None:
        s = player.s
        self.player, self.run, self.pres, self.deadline = player, run, pres, deadline
        self.rule = ThroughputRule(player.profile)
        self.tracks = {"video": first_rendition(pres, s, self.rule), "audio": pres.audio[0]}
        self.ends = {"video": 0.0, "audio": 0.0}
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def play(self) -> None:
        """Both streams until both end or one ends the play; then the session's series in time order."""
        agg = self.run.agg
        agg.ended_by = None
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="stream") as pool:
            done = [pool.submit(self._stream, name) for name in ("video", "audio")]
            for f in done:
                f.result()
        if agg.ended_by is None:
            agg.ended_by = "eof"
        _in_time_order(agg, self.run.session)

    def _playhead(self, now: float) -> float:
        with self.lock:
            events = sorted(self.run.session.events)
        level = simulate(events, now, self.player.params, self.pres.duration_s)
        return level.timeline[-1].playhead_s if level.timeline else 0.0

    def _wait_s(self, name: str, now: float) -> float:
        """How long the stream ``name`` waits before its next request (0: fetch now)."""
        track = self.tracks[name]
        seg_s = track.segments[0].duration_s if track.segments else 0.0
        ahead = self.ends[name] - self._playhead(now)
        goal = self.player.goal_s(track, self.pres.video[-1], seg_s) if name == "video" else min(
            self.player.goal_s(self.tracks["video"], self.pres.video[-1], seg_s), self.ends["video"] + seg_s
            - self._playhead(now))
        return max(0.0, min(ahead - goal, self.deadline - now)) if ahead > goal else 0.0

    def _stream(self, name: str) -> None:
        """One stream's requests (its init segment, then its media segments in order)."""
        run, agg = self.run, self.run.agg
        track = self.tracks[name]
        if track.init_url and not self._fetch(track, "init", None):
            return
        index = 0
        while not self.stop.is_set():
            now = time.perf_counter() - run.t0
            reason = self.player._stop_reason(now, self.deadline, index >= len(self.tracks[name].segments))
            if reason is not None:
                if reason != "eof":
                    agg.ended_by = agg.ended_by or reason
                    self.stop.set()
                return
            wait_s = self._wait_s(name, now)
            if wait_s > 0:
                self.stop.wait(min(wait_s, 0.5))
                continue
            track = self._choose(name, track)
            seg = track.segments[index]
            if not self._fetch(track, "media", seg):
                return
            index += 1

    def _choose(self, name: str, track: Track) -> Track:
        """The video rendition for the next segment (``--abr``); audio keeps its one."""
        if name != "video" or self.player.s.abr == "fixed":
            return track
        chosen = next_rendition(self.pres, self.player.s, self.rule, track,
                                self.ends["video"] - self._playhead(time.perf_counter() - self.run.t0))
        if chosen is not track:
            self.run.session.switches += 1
            self.tracks[name] = chosen
            if chosen.init_url and not self._fetch(chosen, "init", None):
                self.stop.set()
        return chosen

    def _fetch(self, track: Track, kind: str, seg: Segment | None) -> bool:
        """One request of the stream; False when it ends the play."""
        run = self.run
        now = time.perf_counter() - run.t0
        target = seg.url if seg else track.init_url
        assert target is not None
        r = run.fetch_part(target, track, kind, seg, max(0.0, self.deadline - now),
                          seg.byte_range if seg else track.init_range)
        if r is None:
            self.stop.set()
            return False
        if seg is None:
            return True
        if track.stream == "video" and r.tresponse_s is not None:
            self.rule.sample(r.bytes, r.tfinish_s - r.trequest_s)
        with self.lock:
            self.ends[track.stream] = seg.start_s + seg.duration_s
            run.session.events.append((r.tfinish_s, run.state["bytes"], min(self.ends.values())))
            run.session.av_events.append((r.tfinish_s, run.state["bytes"], self.ends["video"], self.ends["audio"]))
        return True


def _in_time_order(agg: Transfer, session: SegmentedSession) -> None:
    """The session's arrival series sorted by time (two streams merged them as each request ended)."""
    steps, last = [], 0
    for t, cum in zip(agg.event_t_s, agg.event_bytes):
        steps.append((t, cum - last))
        last = cum
    steps.sort(key=lambda x: x[0])
    total, ts, cums = 0, [], []
    for t, n in steps:
        total += n
        ts.append(t)
        cums.append(total)
    del agg.event_t_s[:], agg.event_bytes[:]
    agg.event_t_s.extend(ts)
    agg.event_bytes.extend(cums)
    if steps:
        agg.first_byte_s, agg.first_read_bytes, agg.last_byte_s = steps[0][0], steps[0][1], steps[-1][0]
    def received(t: float) -> int:
        return cums[bisect.bisect_right(ts, t) - 1] if ts and t >= ts[0] else 0

    session.events[:] = [(t, received(t), m) for t, _, m in sorted(session.events)]
    session.av_events[:] = [(t, received(t), v, a) for t, _, v, a in sorted(session.av_events)]
    records = sorted(session.records, key=lambda r: r.trequest_s)
    session.records[:] = [dataclasses.replace(r, seq=i) for i, r in enumerate(records)]
