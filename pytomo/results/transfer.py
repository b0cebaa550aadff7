"""What media requests observed: one fixed-window transfer, and the requests of a segmented session."""

from __future__ import annotations

import statistics
from array import array
from dataclasses import dataclass, field
from datetime import datetime

from pytomo.results.media import Presentation
from pytomo.results.network import ConnectionUse
from pytomo.results.playout import PlayoutResult


@dataclass
class Transfer:
    """What one media GET observed. Times are seconds since the request was sent. Filled while measured; not
    changed once handed to the sinks."""

    url: str
    address: str
    started_at: datetime
    window_s: float
    bin_s: float
    byte_range: tuple[int, int | None] | None = None  # asked with a Range header: first, last (None: to the end)
    status: int | None = None
    http_version: str | None = None
    impersonate: str | None = None  # the browser target whose fingerprint libcurl presented; None: libcurl's/requests'
    http_stream_id: int | None = None  # the HTTP/2 or HTTP/3 stream of the request, as libcurl named it; None: HTTP/1.x
    quic_fallback: str | None = None  # HTTP/3 tried, TCP used: libcurl's words why; None: HTTP/3 used or not tried
    content_type: str | None = None
    content_length_bytes: int | None = None
    instance_bytes: int | None = None  # the whole file's size, from a 206's Content-Range (``bytes a-b/size``)
    headers_s: float | None = None
    first_byte_s: float | None = None
    first_read_bytes: int = 0
    last_byte_s: float | None = None
    bytes_total: int = 0  # body bytes as they came over the wire (compressed when Content-Encoding says so)
    content_encoding: str | None = None  # gzip or deflate: the body was decoded for the parsers
    decoded_bytes: int | None = None  # body bytes after decoding a Content-Encoding; None without one
    connection: ConnectionUse | None = None  # opened for this request (with set-up times) or reused
    body_overrun: bool = False  # more bytes followed the body than its Content-Length announced
    ended_by: str | None = None  # window, eof, error, interrupted
    error: str | None = None
    error_kind: str | None = None
    head: bytes = b""
    event_t_s: array = field(default_factory=lambda: array("d"))
    event_bytes: array = field(default_factory=lambda: array("q"))
    bins_bytes: list[int] = field(default_factory=list)
    tail_range: tuple[int, int] | None = None
    tail: bytes | None = None
    tail_error: str | None = None
    tail_connection: ConnectionUse | None = None  # how the range request for the tail used its connection
    tcp_info: list[tuple[float, dict[str, int]]] = field(default_factory=list)  # (t_s, kernel fields)

    def take_transport(self, first: Transfer) -> None:
        """A session's transport is its first request's: HTTP version, connection, fingerprint, stream, fallback."""
        self.http_version, self.connection, self.impersonate = first.http_version, first.connection, first.impersonate
        self.http_stream_id, self.quic_fallback = first.http_stream_id, first.quic_fallback

    @property
    def tcp_min_rtt_ms(self) -> float | None:
        """``tcpi_min_rtt`` of the receiving socket at its last sample, in ms (mostly the handshake's RTT)."""
        values = [f["tcpi_min_rtt"] for _t, f in self.tcp_info if f.get("tcpi_min_rtt")]
        return values[-1] / 1000 if values else None

    @property
    def tcp_rcv_rtt_ms(self) -> float | None:
        """Median ``tcpi_rcv_rtt`` over the samples: the receiver's own RTT estimate under load, in ms."""
        values = [f["tcpi_rcv_rtt"] for _t, f in self.tcp_info if f.get("tcpi_rcv_rtt")]
        return statistics.median(values) / 1000 if values else None

    @property
    def duration_s(self) -> float | None:
        """From the response headers to the last byte read (the 2015 ``DownloadTime``)."""
        if self.headers_s is None or self.last_byte_s is None:
            return None
        return self.last_byte_s - self.headers_s

    @property
    def avg_throughput_bps(self) -> float | None:
        """In bit/s: cut by the window, every byte over the window; else the bytes after the first read over the
        first -> last byte time. None if not measurable."""
        if self.ended_by == "window" and self.headers_s is not None and self.window_s > 0:
            return self.bytes_total * 8 / self.window_s  # the idle time after the last burst is the viewer's too
        if self.first_byte_s is None or self.last_byte_s is None or self.last_byte_s <= self.first_byte_s:
            return None
        return (self.bytes_total - self.first_read_bytes) * 8 / (self.last_byte_s - self.first_byte_s)

    @property
    def peak_1s_bps(self) -> float | None:
        """Highest throughput over any 1 s of consecutive bins, in bit/s; None for transfers shorter than 1 s."""
        n = round(1.0 / self.bin_s)
        if self.first_byte_s is None or self.last_byte_s is None or self.last_byte_s - self.first_byte_s < 1.0:
            return None
        bins = self.bins_bytes
        if len(bins) < n:
            return None
        best = cur = sum(bins[:n])
        for i in range(n, len(bins)):
            cur += bins[i] - bins[i - n]
            best = max(best, cur)
        return best * 8 / (n * self.bin_s)

    @property
    def complete(self) -> bool:
        """True when the whole body arrived."""
        return self.ended_by == "eof" and (self.content_length_bytes is None
                                           or self.bytes_total >= self.content_length_bytes)


@dataclass(frozen=True)
class SegmentRecord:
    """One HTTP request of the session (Annex D HTTPRequest); times in seconds since the session started."""

    seq: int
    stream: str  # manifest, video, audio, muxed
    kind: str  # manifest, index (a sidx fetched by range), init, media
    rendition_id: str | None
    bandwidth_bps: float | None
    url: str
    status: int | None
    trequest_s: float
    tresponse_s: float | None
    tfinish_s: float
    bytes: int
    media_start_s: float | None
    media_duration_s: float | None
    complete: bool
    error: str | None = None
    byte_range: tuple[int, int | None] | None = None  # first and last byte asked for, None: the whole file
    new_connection: bool | None = None  # opened for this request (None: not known, the request failed first)
    tcp_connect_s: float | None = None  # TCP handshake of a new connection
    tls_handshake_s: float | None = None  # TLS handshake of a new HTTPS connection
    content_encoding: str | None = None  # the body came compressed (gzip, deflate) and was decoded
    http_version: str | None = None  # HTTP/1.0, HTTP/1.1 (None: no answer)
    tls_version: str | None = None  # TLSv1.2, TLSv1.3 (None: not over TLS, or no connection)
    impersonate: str | None = None  # the browser target presented (chrome152...); None: libcurl's own or requests
    http_stream_id: int | None = None  # HTTP/2 or HTTP/3 stream (libcurl's verbose text); None: HTTP/1.x, no answer
    quic_fallback: str | None = None  # HTTP/3 tried, TCP used: libcurl's words why; None: HTTP/3 used or not tried
    media_sequence: int | None = None  # live HLS: the segment's number, or a reload's EXT-X-MEDIA-SEQUENCE
    playlist_changed: bool | None = None  # live HLS reload: the playlist differed from the previous load
    new_segments: int | None = None  # live HLS reload: segments it listed that no earlier load had
    program_date_s: float | None = None  # live HLS media: the segment's EXT-X-PROGRAM-DATE-TIME as UNIX time


@dataclass
class LiveFacts:
    """What a live HLS play followed: its reloads, the segments it could not play, and the dates of what it
    played (pytomo/engine/live.py). Filled while measured; not changed once handed to the sinks."""

    wall0_s: float  # UNIX time of the session's time 0
    target_duration_s: float | None = None
    start_number: int | None = None  # the media sequence number it started at
    reloads: int = 0  # media playlist reloads after the first load
    unchanged_reloads: int = 0
    skipped: int = 0  # segments that left the playlist before they were fetched
    missing: int = 0  # segments listed but not available (404, 410)
    # (media start, duration, program date or None) of each segment played, in the model's media time
    played: list[tuple[float, float, float | None]] = field(default_factory=list)
    latency: list[tuple[float, float, float]] = field(default_factory=list)  # (t_s, latency_s, playhead_s)
    latency_problem: str | None = None



@dataclass
class SegmentedSession:
    """A whole segmented session: the presentation, every request, the aggregate transfer and the playout. Filled
    while measured; not changed once handed to the sinks."""

    presentation: Presentation | None
    transfer: Transfer
    records: list[SegmentRecord] = field(default_factory=list)
    events: list[tuple[float, int, float]] = field(default_factory=list)
    av_events: list[tuple[float, int, float, float]] = field(default_factory=list)  # (t_s, bytes, video_s, audio_s)
    playout: PlayoutResult | None = None
    mode: str = "fixed"
    switches: int = 0
    error_kind: str | None = None
    live: LiveFacts | None = None  # live HLS: what the live player followed; None: on demand

    def media_records(self, stream: str | None = None) -> list[SegmentRecord]:
        """Complete media segments, optionally of one stream."""
        return [r for r in self.records if r.kind == "media" and r.complete and (stream is None or r.stream == stream)]

    @property
    def encoding_rate_bps(self) -> float | None:
        """Bytes of the media segments received over their media time, summed over the streams."""
        total = 0.0
        for stream in {r.stream for r in self.media_records()}:
            recs = self.media_records(stream)
            dur = sum(r.media_duration_s or 0 for r in recs)
            if dur > 0:
                total += sum(r.bytes for r in recs) * 8 / dur
        return total or None
