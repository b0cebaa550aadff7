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

import time
from collections.abc import Callable
from urllib.parse import urlsplit

from pytomo.engine.download import download, merge_arrivals
from pytomo.engine.http import HttpClient
from pytomo.engine.manifest import parse_dash, parse_hls
from pytomo.engine.playout import PLAYING, simulate
from pytomo.engine.profiles import PlayerProfile, driving_profile
from pytomo.errors import BLOCKED_STATUSES, BlockedClient, HttpStatusError, ManifestError, MediaError
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
    """A player's throughput-based choice: an EWMA of segment throughput weighted by download time."""

    def __init__(self, profile: PlayerProfile) -> None:
        self.profile = profile
        self.estimate_bps = profile.abr_start_bps or 0.0
        self._weight_s = 0.0

    def sample(self, size_bytes: int, seconds: float) -> None:
        """One media segment's download."""
        if seconds <= 0 or size_bytes <= 0:
            return
        alpha = 0.5 ** (seconds / self.profile.abr_half_life_s)
        rate = size_bytes * 8 / seconds
        self.estimate_bps = rate if self._weight_s == 0 and not self.profile.abr_start_bps else (
            alpha * self.estimate_bps + (1 - alpha) * rate)
        self._weight_s += seconds

    def choose(self, tracks: tuple[Track, ...]) -> Track:
        """The highest rendition whose declared bandwidth fits the estimate times the safety factor."""
        budget = self.estimate_bps * self.profile.abr_safety
        fitting = [t for t in tracks if (t.bandwidth_bps or 0) <= budget]
        return fitting[-1] if fitting else tracks[0]


class _Play:
    """One play of a presentation: its clock, the aggregate transfer, the session record, and its requests."""

    def __init__(self, player: SegmentPlayer, url: str) -> None:
        s = player.s
        self.player = player
        self.t0 = time.perf_counter()
        self.agg = Transfer(url=url, address=player.address, started_at=utc_now(), window_s=s.window_s,
                            bin_s=s.throughput_bin_s)
        self.session = SegmentedSession(presentation=None, transfer=self.agg, mode=s.abr)
        self.host = urlsplit(url).hostname or ""
        self.state = {"bytes": 0}

    def fetch(self, target: str, stream: str, kind: str, track: Track | None, seg: Segment | None = None,
              window_s: float = 30.0, byte_range: tuple[int, int] | None = None) -> tuple[Transfer, SegmentRecord]:
        """One request, merged into the aggregate transfer and recorded."""
        player, s, session = self.player, self.player.s, self.session
        start = time.perf_counter() - self.t0
        text_like = kind in ("manifest", "index")
        tr = download(player.http, target, player._address_for(target, self.host) or player._resolve(target),
                      window_s=window_s, bin_s=s.throughput_bin_s,
                      head_limit_bytes=s.manifest_limit_bytes if text_like else 0,
                      should_stop=player.should_stop, timeout_s=s.http_timeout_s, byte_range=byte_range,
                      headers=player.headers,
                      body_limit_bytes=s.manifest_limit_bytes if text_like else None)
        merge_arrivals(self.agg, tr, start, self.state)
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
            tls_handshake_s=conn.tls_handshake_s if conn else None, content_encoding=tr.content_encoding)
        session.records.append(rec)
        return tr, rec

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
                 should_stop: Callable[[], bool] | None = None, headers: dict[str, str] | None = None) -> None:
        self.http = http
        self.headers = dict(headers or {})  # a platform format's http_headers, sent with every request
        self.address = address
        self.s = settings
        self.profile = profile or driving_profile(settings)
        self.params = self.profile.params()
        self.buffer_goal_s = self.profile.buffer_goal_s or settings.max_buffer_s
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
        self._stream(run, pres, deadline)
        agg, session = run.agg, run.session
        end_s = deadline if agg.ended_by in ("window", "eof") else (agg.last_byte_s or 0.0)
        session.playout = simulate(session.events, end_s, self.params, pres.duration_s,
                                   complete=agg.ended_by == "eof")
        return session

    def _manifest_text(self, run: _Play, url: str) -> str | None:
        """The manifest as text; None when it could not be loaded (the aggregate transfer says why), or an
        exception for a refusal or a manifest too large."""
        agg = run.agg
        tr, rec = run.fetch(url, "manifest", "manifest", None)
        agg.status, agg.content_type, agg.headers_s = tr.status, tr.content_type, tr.headers_s
        if rec.complete:
            return tr.head.decode("utf-8", errors="replace")
        agg.ended_by, agg.error_kind, agg.error = "error", tr.error_kind or "http_status", (
            tr.error or f"HTTP {tr.status} for the manifest")
        if tr.status and self.headers and tr.status in BLOCKED_STATUSES:  # a platform's CDN said no
            raise BlockedClient(stage="download", status=tr.status, url=url)
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
        video = {"buffer": lambda: pres.video[0], "player": lambda: rule.choose(pres.video)}.get(
            s.abr, lambda: choose_fixed(pres.video, s.rendition))()
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
            if level.state_at_end == PLAYING and level.buffer_at_end_s > self.buffer_goal_s:
                time.sleep(min(deadline - now, level.buffer_at_end_s - self.buffer_goal_s + 0.01))
                continue
            stream = "audio" if v_done or (not a_done and ends["audio"] < ends["video"]) else "video"
            track = audio if stream == "audio" else video
            assert track is not None  # audio is chosen only while it has segments left
            if stream == "video" and s.abr != "fixed":
                chosen = rule.choose(pres.video) if s.abr == "player" else choose_bba(
                    pres.video, level.buffer_at_end_s, s.bba_reservoir_s, s.bba_cushion_s)
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
