"""Every stored figure of the ``videos`` and ``downloads`` tables, declared once: column, source, docs and graph."""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar, cast
from urllib.parse import urlsplit

from pytomo.engine.p1203 import build_input
from pytomo.results import DownloadAnalysis, Hop, PlayoutResult, VideoMeasurement, iso, local_iso

# What a figure's source reads besides the video's measurement: one of its downloads in ``downloads``, None in
# ``videos`` (the table says which: ``Table[R]``).
R = TypeVar("R", bound=DownloadAnalysis | None)
Value = str | int | float | None  # a stored value
# Where a figure's value comes from: a function of the video's measurement ``m`` and ``d``, checked by mypy (a
# misspelt attribute, or an Optional record read without a test, is an error).
Source = Callable[[VideoMeasurement, R], Value]


class Table(str, Generic[R]):
    """A table's name, typed by what the sources of its figures read besides the video."""


# A graph's value from the figures of its row, looked up as ``get("downloads.bytes")``.
Lookup = Callable[[str], Any]

PAGES: dict[str, str] = {  # the graph pages of 2015 (inventory section 9.3), with the new figures where they belong
    "main": "Main parameters", "qoe": "QoE", "qos": "QoS", "characteristics": "Video characteristics",
    "all": "All parameters",
}


@dataclass(frozen=True)
class Graph:
    """How a figure is graphed: one RRD data source and its graph.

    The RRD value is the figure's value times ``scale`` (a data source named as its figure holds it in the figure's
    unit), or ``derive`` of the row's figures. From a 2015 ``pytomo_crawl`` row it is the figure's own 2015 reading
    (``Figure.legacy``) times ``scale``, or, for a derived graph, ``legacy`` of the row; :func:`shared` says whether
    a 2015 database has the graph.

    The graph (pytomo/web/graphs.py) is titled ``title``, its vertical axis labelled ``axis`` (the figure's unit:
    bit/s and bytes with SI prefixes, the others as numbers), logarithmic when ``log_axis``; its legend gives the
    mean, min and max per video over the span and how many videos it leaves out (``left_out`` says why).
    """

    ds: str  # RRD data-source name: at most 19 characters of [a-z0-9_]
    title: str
    axis: str  # the unit on the vertical axis
    description: str  # the sentence shown under the graph
    pages: tuple[tuple[str, int], ...] = ()  # (page, position on it); every graph is also on the page "all"
    rank: int = 0  # position on the page "all" and in the RRD files
    scale: float = 1.0
    derive: Callable[[Lookup], float | None] | None = None
    legacy: Callable[[Mapping[str, Any]], float | None] | None = None  # a derived graph's value from a 2015 row
    draw_scale: float = 1.0  # multiplies the RRD value on the graph (a share stored 0..1 drawn in %)
    ds_type: str = "GAUGE"
    consolidations: tuple[str, ...] = ("AVERAGE", "MIN", "MAX")
    log_axis: bool = False  # the throughputs and ratios: one fast server does not flatten the rest
    reference: tuple[float, str] | None = None  # a line drawn at this value, and what it means (ratios: 1)
    left_out: str = ""  # why a video has no value (the figure is NULL), as the legend says of those it leaves out

    @property
    def share(self) -> bool:
        """True for a share of videos (0 or 1 per video, drawn in %): its legend counts the videos."""
        return self.axis == "%"


@dataclass(frozen=True)
class Threshold:
    """Where an aggregate turns from good to warning (``good``) and from warning to bad (``bad``), and why."""

    good: float
    bad: float
    higher_is_better: bool
    source: str

    def level(self, value: float | None) -> str:
        """``good``, ``warn``, ``bad``, or ``none`` when there is no value."""
        if value is None:
            return "none"
        if self.higher_is_better:
            return "good" if value >= self.good else "warn" if value >= self.bad else "bad"
        return "good" if value <= self.good else "warn" if value <= self.bad else "bad"


STATISTICS = {  # how an aggregate summarises its figure over a set of videos
    "count": "videos whose value is above 0",
    "median": "median of the values (of played videos unless the aggregate says otherwise)",
    "share_zero": "played videos whose playback started and whose value is 0, over videos played",
    "loss": "the figure's probes without an answer over probes sent",
}


@dataclass(frozen=True)
class Aggregate:
    """One summary of its figure over a set of videos: what the verdict shows (levelled by ``threshold``), what
    ``/metrics`` exposes as ``pytomo_<metric>`` (times ``metric_scale``, in Prometheus base units) and what the
    analyses compute per service. Declared on the figure it summarises: one line, and every reader has it.

    ``statistic`` is one of :data:`STATISTICS`; ``key`` names it in JSON and in the analyses; ``unit`` is how it is
    shown (videos, share, s, ratio, bit/s, ms); ``rank`` orders the verdict's columns; ``live_only``: of live
    streams, shown where the span has a live video; ``played_only``: over played videos only.
    """

    key: str
    statistic: str
    label: str
    unit: str
    definition: str
    rank: int
    threshold: Threshold | None = None
    metric: str = ""
    metric_scale: float = 1.0
    live_only: bool = False
    played_only: bool = True


# A 2015 ``pytomo_crawl`` column (name), or a function of the 2015 row, giving a figure's value in the 2015 unit.
From2015 = str | Callable[[Mapping[str, Any]], float | None]


@dataclass(frozen=True)
class Figure(Generic[R]):
    """One stored figure: a column of ``videos`` or ``downloads``, where its value comes from, how it is read back
    from each schema and how it is summarised.

    Read back from our schema by its ``name`` (``old_name`` in versions 2 and 3; NULL before ``since``); from a 2015
    ``pytomo_crawl`` row by ``legacy`` times ``legacy_scale`` (kbit/s there, bit/s here); None: 2015 had no such
    figure (it is "not recorded" in a 2015 database). ``aggregates`` summarise it over a span.
    """

    table: Table[R]  # V (videos) or D (downloads)
    name: str  # the column, with its unit (_s, _ms, _bps, _bytes)
    sql_type: str  # SQLite type and constraints
    description: str
    source: Source[R]
    graphs: tuple[Graph, ...] = ()
    old_name: str | None = None  # its name in schema versions 2 and 3, when it changed
    since: int = 2  # schema version that added it
    legacy: From2015 | None = None
    legacy_scale: float = 1.0
    aggregates: tuple[Aggregate, ...] = ()

    @property
    def key(self) -> str:
        """``table.column``."""
        return f"{self.table}.{self.name}"

    @property
    def unit(self) -> str | None:
        """The unit its name ends with, as Datasette (Pint) spells it."""
        for suffix, unit in UNITS.items():
            if self.name.endswith(suffix) or self.name == suffix[1:]:
                return unit
        return None

    def value(self, m: VideoMeasurement, d: DownloadAnalysis | None = None) -> Value:
        """The stored value for the video ``m`` and, in ``downloads``, its download ``d`` (None in ``videos``)."""
        if (d is None) != (self.table == V):
            raise TypeError(f"{self.key} reads {'no download' if self.table == V else 'a download'}")
        return self.source(m, cast(R, d))  # what the table says R is: checked above


UNITS = {"_bytes": "byte", "_bps": "bit / s", "_ms": "ms", "_s": "s"}


def _flag(value: bool | None) -> int | None:
    return None if value is None else int(value)


def _json(value: Any) -> str | None:
    return json.dumps(value, sort_keys=True, default=str) if value else None


def _started(d: DownloadAnalysis) -> PlayoutResult | None:
    """The playout when playback started, else None: a video that never started has no stall figures."""
    p = d.playout
    return p if p is not None and p.started else None


def _playout_problem(d: DownloadAnalysis) -> str | None:
    if d.playout_problem:
        return d.playout_problem
    return "not_started" if d.playout is not None and not d.playout.started else None


def _latency(d: DownloadAnalysis, index: int) -> float | None:
    """A live stream's latency sample (0: the first, -1: the last), None without samples."""
    samples = d.live.latency if d.live is not None else []
    return samples[index][1] if samples else None


def throughput_2015_bps(d: DownloadAnalysis) -> float | None:
    """The 2015 AvgThroughput: every byte received over the headers -> last byte time."""
    t = d.transfer
    secs = t.duration_s
    return t.bytes_total * 8 / secs if secs else None


def _last_hop(m: VideoMeasurement) -> Hop | None:
    return m.hops[-1] if m.hops else None


def _rtts(m: VideoMeasurement, d: DownloadAnalysis) -> list[float]:
    """RTT samples to the download's address: ICMP echo, else TCP connect (as the 2015 Ping columns)."""
    address = d.transfer.address
    icmp = [s.rtt_ms for r in m.rtt if r.address == address and r.method != "tcp-connect" for s in r.samples
            if s.rtt_ms is not None]
    return icmp or [s.rtt_ms for r in m.rtt if r.address == address and r.method == "tcp-connect"
                    for s in r.samples if s.rtt_ms is not None]


def _resolve_s(m: VideoMeasurement, d: DownloadAnalysis) -> float | None:
    last = _last_hop(m)
    latencies = [a.latency_ms for a in m.dns if last is not None and a.host == last.host
                 and a.address == d.transfer.address and a.latency_ms is not None]
    return min(latencies) / 1000.0 if latencies else None


def _ratio(a: Any, b: Any) -> float | None:
    return a / b if a is not None and b else None


def _num(value: Any, scale: float = 1.0) -> float | None:
    """A finite number times ``scale``, or None (2015 columns can hold text)."""
    if value is None or isinstance(value, (bytes, str)) and not str(value).strip():
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out * scale if out == out and abs(out) != float("inf") else None


def _thp_2015_bps(row: Mapping[str, Any]) -> float | None:
    """AvgThroughput of a 2015 row: 8 DownloadBytes / DownloadTime (the 2015 tool stored no throughput column)."""
    nbytes, secs = _num(row.get("DownloadBytes")), _num(row.get("DownloadTime"))
    return nbytes * 8 / secs if nbytes is not None and secs else None


def _stalled(stalls: Any) -> float | None:
    stalls = _num(stalls)
    return None if stalls is None else float(stalls > 0)


def _g(ds: str, title: str, axis: str, description: str, rank: int, **kw: Any) -> Graph:
    return Graph(ds, title, axis, description, rank=rank, **kw)


V: Table[None] = Table("videos")
D: Table[DownloadAnalysis] = Table("downloads")


def _yt(key: str) -> Source[None]:
    """A YouTube client fact of the video's extractor record (pytomo/services/ytclients.py): a list as its items
    joined by commas, a flag as 0/1; None for other services and for what yt-dlp's lines did not say."""
    def read(m: VideoMeasurement, _d: None) -> Value:
        facts = (m.extractor or {}).get("youtube_clients")
        value = facts.get(key) if isinstance(facts, dict) else None
        if key == "measured_headers":
            return value.get("User-Agent") if isinstance(value, dict) else None
        if isinstance(value, list):
            return ",".join(str(v) for v in value)
        return int(value) if isinstance(value, bool) else value
    return read

# The aggregates, each attached to the figure it summarises below (``aggregates=``).
PLAYED = Aggregate("played", "count", "videos played", "videos", "videos whose first download received bytes", 0,
                   metric="videos_played", played_only=False)
SMOOTH = Aggregate(
    "smooth_share", "share_zero", "played without a stall", "share",
    "videos played whose playback started within the window and never stalled, over videos played", 1,
    Threshold(0.95, 0.80, True, "P.1203's stalling term: one stall already costs a session much of its score (ITU-T "
              "P.1203.3, 8.1.2); Conviva's State of Streaming reports about 1 % of plays with rebuffering on good "
              "networks"), "played_without_stall_ratio")
START = Aggregate(
    "start_median_s", "median", "median time to start", "s",
    "median of the request -> playback start time of the videos that started", 2,
    Threshold(2.0, 5.0, False, "viewers begin to abandon after 2 s and each further second loses about 6 % more "
              "(Krishnan and Sitaraman, IMC 2012)"), "time_to_start_median_seconds")
RATIO = Aggregate(
    "ratio_median", "median", "median throughput ÷ encoding rate", "ratio",
    "median over played videos of their measured throughput over the media's encoding rate "
    "(throughput_to_encoding_ratio)", 3,
    Threshold(1.25, 1.0, True, "below 1 the media arrives slower than it plays and the buffer drains; dash.js keeps "
              "10 % headroom (bandwidthSafetyFactor 0.9), we ask for 25 %"), "throughput_to_encoding_median_ratio")
THROUGHPUT = Aggregate(
    "throughput_median_bps", "median", "median throughput", "bit/s",
    "median over played videos of their measured throughput (avg_throughput_bps: over the window when the window cut "
    "the download, else first to last byte)", 4, metric="throughput_median_bits_per_second")
THROUGHPUT_2015 = Aggregate(
    "avg_throughput_2015_median_bps", "median", "median AvgThroughput (2015 formula)", "bit/s",
    "median over played videos of the 2015 AvgThroughput, 8 DownloadBytes / DownloadTime (throughput_2015_bps: "
    "headers -> last byte, idle time after the last byte left out); the only throughput of a 2015 database", 5,
    metric="avg_throughput_2015_median_bits_per_second")
RTT = Aggregate(
    "rtt_median_ms", "median", "median RTT", "ms",
    "median of the videos' RTT to their cache server, each the smallest of its ICMP echoes, else TCP connects "
    "(ping_min_ms; 2015: PingMin): the path's minimum, as ndt7 reports MinRTT rather than a smoothed RTT", 6,
    Threshold(50.0, 150.0, False, "a cache in the viewer's country is usually within 50 ms; 150 ms is ITU-T G.114's "
              "limit for interactive use and slows every TCP ramp-up"), "rtt_median_seconds", 0.001,
    played_only=False)
LOSS = Aggregate(
    "loss_share", "loss", "probe loss", "share", "RTT probes without an answer over probes sent", 7,
    Threshold(0.01, 0.05, False, "Smokeping colours any loss; ITU-T Y.1541 classes 0-1 ask for at most 0.1 % packet "
              "loss, and ping loss above 5 % is a broken path"), "probe_loss_ratio", played_only=False)
LIVE_LATENCY = Aggregate(
    "live_latency_median_s", "median", "latency to the live edge (live streams)", "s",
    "median over the videos whose first download followed a live stream (HLS or DASH) of its latency to the live edge "
    "when the window closed (downloads.live_latency_end_s: the wall clock minus the program date of the media "
    "playing); no value without a live video", 8,
    Threshold(30.0, 60.0, False, "RFC 8216 (6.3.3) has a client start no less than three target durations from the "
              "end of the playlist; with the 6 s segments Apple's HLS authoring specification recommends, that and "
              "the segment being made put a standard player about 24 s behind the live edge, so up to 30 s is good; "
              "beyond 60 s (our choice: over twice that) stalls have piled up delay, since a live player that stalls "
              "falls behind by as much. Low-latency HLS and DASH aim at a few seconds and would need limits of their "
              "own"), "live_latency_median_seconds", live_only=True, played_only=False)

# Typed as the union, not Figure[Any]: in that context mypy would type every source's ``d`` Any.
FIGURES: tuple[Figure[None] | Figure[DownloadAnalysis], ...] = (
    # videos
    Figure(V, "service", "TEXT", "the service plugin's label (the 2015 Service: YouTube, Dailymotion, Lab, ...)",
           lambda m, _: m.service_label),
    Figure(V, "video_id", "TEXT", "the platform's id of the video", lambda m, _: m.video_id),
    Figure(V, "title", "TEXT", "as the platform shows it: untrusted text", lambda m, _: m.title),
    Figure(V, "announced_duration_s", "REAL", "the video's length as the platform announces it",
           lambda m, _: m.duration_s,
           old_name="duration_s"),
    Figure(V, "related_count", "INTEGER", "related videos the page listed", lambda m, _: len(m.related)),
    Figure(V, "cache_server_delay_s", "REAL", "time to resolve the page and walk the redirects",
           lambda m, _: m.cache_server_delay_s,
           legacy="CacheServerDelay",
           graphs=(_g("server_delay_s", "Cache server delay", "s",
                      "Time to resolve the page and follow the redirects to the cache server (CacheServerDelay).",
                      20, pages=(("qos", 13),)),)),
    Figure(V, "available_wait_s", "REAL", "waited for the format's available_at before the first media request",
           lambda m, _: m.available_wait_s, since=3),
    Figure(V, "started_at_local", "TEXT",
           "when the video's measurement began, the volunteer's local time with its UTC offset (started_at is UTC)",
           lambda m, _: local_iso(m.started_at), since=5),
    Figure(V, "yt_clients_asked", "TEXT", "YouTube: the player clients yt-dlp was told to use, in order, comma-"
           "separated (its default ones when none was asked)", _yt("clients_asked"), since=9),
    Figure(V, "yt_clients_answered", "TEXT", "YouTube: the clients whose player response yt-dlp fetched and found "
           "playable, from its lines", _yt("clients_answered"), since=9),
    Figure(V, "yt_clients_sabr_only", "TEXT", "YouTube: the clients whose https formats yt-dlp skipped as missing a "
           "URL (YouTube forcing SABR streaming)", _yt("clients_sabr_only"), since=9),
    Figure(V, "yt_po_token_skipped", "TEXT", "YouTube: client:protocol pairs whose formats yt-dlp skipped for want "
           "of a GVS PO token", _yt("po_token_skipped"), since=9),
    Figure(V, "yt_measured_client", "TEXT", "YouTube: the client the measured URL was made for (its c parameter)",
           _yt("measured_client"), since=9),
    Figure(V, "yt_measured_po_token", "INTEGER", "YouTube: 1 when the measured URL carries a PO token (pot), 0 when "
           "it does not", _yt("measured_po_token"), since=9),
    Figure(V, "yt_measured_user_agent", "TEXT", "YouTube: the User-Agent sent with the measured URL (the format's "
           "own http_headers, the client's)", _yt("measured_headers"), since=9),
    # downloads: network
    Figure(D, "url", "TEXT NOT NULL", "the media URL requested", lambda m, d: d.transfer.url),
    Figure(D, "host", "TEXT NOT NULL", "its host", lambda m, d: urlsplit(d.transfer.url).hostname or ""),
    Figure(D, "address", "TEXT NOT NULL", "the address it was fetched from", lambda m, d: d.transfer.address),
    Figure(D, "started_at", "TEXT NOT NULL", "when the request was sent (UTC)",
           lambda m, d: iso(d.transfer.started_at)),
    Figure(D, "started_at_local", "TEXT",
           "when the request was sent, the volunteer's local time with its UTC offset (the 2015 ID's clock)",
           lambda m, d: local_iso(d.transfer.started_at), since=5),
    Figure(D, "as_number", "INTEGER", "AS number of the address, from the offline IP databases (--ip-db; the 2015 "
           "ASNumber)", lambda m, d: d.origin.as_number if d.origin else None, since=5),
    Figure(D, "as_name", "TEXT", "the AS's name (organisation) in those databases",
           lambda m, d: d.origin.as_name if d.origin else None, since=5),
    Figure(D, "country", "TEXT", "country of the address (ISO 3166-1 alpha-2) in those databases",
           lambda m, d: d.origin.country if d.origin else None,
           since=5),
    Figure(D, "ip_db_problem", "TEXT", "why as_number, as_name or country is NULL: no --ip-db, a private or loopback "
           "address, not in the databases", lambda m, d: d.origin.problem if d.origin else None, since=5),
    Figure(D, "window_s", "REAL", "the download window; NULL: not recorded (a run imported from 2015 or 2013)",
           lambda m, d: d.transfer.window_s),
    Figure(D, "http_status", "INTEGER", "HTTP status of the media response (the cache server's answer)",
           lambda m, d: d.transfer.status, old_name="status_code",
           legacy="StatusCode",
           graphs=(_g("status_code", "HTTP status", "code", "HTTP status of the cache server's answer (StatusCode).",
                      21),)),
    Figure(D, "http_version", "TEXT", "HTTP version of the response", lambda m, d: d.transfer.http_version),
    Figure(D, "content_type", "TEXT", "Content-Type of the response", lambda m, d: d.transfer.content_type),
    Figure(D, "content_length_bytes", "INTEGER", "Content-Length of the response",
           lambda m, d: d.transfer.content_length_bytes,
           legacy="VideoLength",
           graphs=(_g("video_length_bytes", "Video size", "bytes",
                      "Size of the media file announced by the server (VideoLength).", 22,
                      pages=(("characteristics", 0),)),)),
    Figure(D, "headers_s", "REAL", "request sent -> response headers", lambda m, d: d.transfer.headers_s),
    Figure(D, "first_byte_s", "REAL", "request sent -> first body byte (time to first byte)",
           lambda m, d: d.transfer.first_byte_s, old_name="ttfb_s",
           legacy="TimeTogetFirstByte",
           graphs=(_g("ttfb_s", "Time to first byte", "s",
                      "From the media request to the first byte of the body (TimeTogetFirstByte).", 19,
                      pages=(("qos", 12),)),)),
    Figure(D, "last_byte_s", "REAL", "request sent -> last body byte", lambda m, d: d.transfer.last_byte_s),
    Figure(D, "transfer_s", "REAL", "response headers -> last byte (the 2015 DownloadTime)",
           lambda m, d: d.transfer.duration_s,
           old_name="duration_s",
           legacy="DownloadTime",
           graphs=(_g("download_s", "Download time", "s",
                      "From the response headers to the last byte received (DownloadTime).", 14,
                      pages=(("qos", 6),)),)),
    Figure(D, "bytes", "INTEGER NOT NULL", "body bytes received, as on the wire", lambda m, d: d.transfer.bytes_total,
           legacy="DownloadBytes",
           graphs=(_g("download_bytes", "Downloaded bytes", "bytes",
                      "Bytes received in the download window (DownloadBytes).", 13,
                      pages=(("qos", 5),)),),
           aggregates=(PLAYED,)),
    Figure(D, "first_read_bytes", "INTEGER", "bytes of the first read (they arrived with the first byte)",
           lambda m, d: d.transfer.first_read_bytes),
    Figure(D, "avg_throughput_bps", "REAL",
           "measured throughput: cut by the window (ended_by window), bytes * 8 / window_s, idle time after the "
           "last burst included; else (bytes - first read) * 8 / (last byte - first byte), the rate of the body "
           "once it flows", lambda m, d: d.transfer.avg_throughput_bps,
           graphs=(_g("avg_throughput_bps", "Measured throughput", "bit/s",
                      "Throughput over the window when the window cut the download, else from the first to the "
                      "last byte, first read excluded (new in this version).", 8,
                      pages=(("qos", 1),), log_axis=True,
                      left_out="the body came in one read (no time to measure it over)"),),
           aggregates=(THROUGHPUT,)),
    Figure(D, "throughput_2015_bps", "REAL",
           "the 2015 AvgThroughput: bytes * 8 / transfer_s (headers -> last byte, first read included, idle time "
           "after the last byte left out, even when the window cut the download)",
           lambda m, d: throughput_2015_bps(d), since=4, legacy=_thp_2015_bps,
           graphs=(_g("throughput_2015_bps", "AvgThroughput (2015 formula)", "bit/s",
                      "Bytes received over the download time, per video "
                      "(2015: AvgThroughput = 8 DownloadBytes / DownloadTime).", 1,
                      pages=(("main", 1), ("qos", 0)), log_axis=True),
                   _g("reception_ratio", "Reception ratio", "ratio",
                      "AvgThroughput (2015 formula) over the encoding rate, per video: above 1 the video arrives "
                      "faster than it plays, below 1 its buffer drains.", 5,
                      pages=(("qoe", 3),), log_axis=True, reference=(1.0, "throughput = encoding rate"),
                      left_out="no encoding rate",
                      derive=lambda get: _ratio(get("downloads.throughput_2015_bps"),
                                                get("downloads.encoding_rate_bps")),
                      legacy=lambda row: _ratio(_thp_2015_bps(row), _num(row.get("EncodingRate"), 1000.0)))),
           aggregates=(THROUGHPUT_2015,)),
    Figure(D, "peak_1s_bps", "REAL", "best 1 s of consecutive throughput bins", lambda m, d: d.transfer.peak_1s_bps,
           old_name="peak_1s_throughput_bps",
           legacy="MaxInstantThp", legacy_scale=1000,
           graphs=(_g("peak_1s_bps", "Peak throughput", "bit/s",
                      "Best throughput over one second of the download (MaxInstantThp); a transfer shorter than a "
                      "second has none, and the legend says how many it leaves out.", 9,
                      pages=(("qos", 2),), log_axis=True,
                      left_out="transfer shorter than 1 s (no whole second to measure)"),)),
    Figure(D, "bin_s", "REAL", "width of the throughput bins; NULL: no bins (a run imported from 2015 or 2013)",
           lambda m, d: d.transfer.bin_s),
    Figure(D, "ended_by", "TEXT", "window, eof, error, interrupted", lambda m, d: d.transfer.ended_by),
    Figure(D, "error_kind", "TEXT", "the kind of transfer error", lambda m, d: d.transfer.error_kind),
    Figure(D, "error", "TEXT", "the transfer error", lambda m, d: d.transfer.error),
    Figure(D, "tail_range", "TEXT", "byte range fetched for an index at the end of the file",
           lambda m, d: f"{d.transfer.tail_range[0]}-{d.transfer.tail_range[1]}" if d.transfer.tail_range else None),
    Figure(D, "tail_bytes", "INTEGER", "bytes of that range",
           lambda m, d: len(d.transfer.tail) if d.transfer.tail is not None else None),
    Figure(D, "tail_error", "TEXT", "why the tail could not be fetched", lambda m, d: d.transfer.tail_error),
    Figure(D, "tail_new_connection", "INTEGER", "1: the tail's range request opened a new connection, 0: reused one",
           lambda m, d: _flag(d.transfer.tail_connection.new if d.transfer.tail_connection else None), since=3),
    Figure(D, "new_connection", "INTEGER", "1: the request opened a new connection, 0: it reused a kept-alive one",
           lambda m, d: _flag(d.transfer.connection.new if d.transfer.connection else None), since=3),
    Figure(D, "tcp_connect_s", "REAL", "TCP handshake of that new connection",
           lambda m, d: d.transfer.connection.tcp_connect_s if d.transfer.connection else None,
           since=3),
    Figure(D, "tls_handshake_s", "REAL", "TLS handshake after it (HTTPS)",
           lambda m, d: d.transfer.connection.tls_handshake_s if d.transfer.connection else None,
           since=3),
    Figure(D, "tls_version", "TEXT", "TLS version of the connection (TLSv1.2, TLSv1.3); NULL: not over TLS",
           lambda m, d: d.transfer.connection.tls_version if d.transfer.connection else None, since=7),
    Figure(D, "impersonate", "TEXT", "the browser target whose TLS and HTTP/2 fingerprint libcurl presented "
           "(curl_cffi's name, e.g. chrome152); NULL: libcurl's own, or requests",
           lambda m, d: d.transfer.impersonate, since=8),
    Figure(D, "http_stream_id", "INTEGER", "the HTTP/2 or HTTP/3 stream of the request, as libcurl's verbose text "
           "named it (OPENED stream); NULL: HTTP/1.x (no streams)", lambda m, d: d.transfer.http_stream_id, since=8),
    Figure(D, "quic_fallback", "TEXT", "--http auto tried HTTP/3 (advertised in Alt-Svc) and the request went over "
           "TCP: libcurl's own words why QUIC failed; NULL: HTTP/3 used, or not tried",
           lambda m, d: d.transfer.quic_fallback,
           since=8),
    Figure(D, "content_encoding", "TEXT", "gzip, deflate: bytes are on the wire, decoded_bytes after decoding",
           lambda m, d: d.transfer.content_encoding, since=3),
    Figure(D, "decoded_bytes", "INTEGER", "body bytes after decoding a Content-Encoding",
           lambda m, d: d.transfer.decoded_bytes,
           since=3),
    Figure(D, "body_overrun", "INTEGER", "1: more bytes followed the body than its Content-Length announced",
           lambda m, d: int(d.transfer.body_overrun), since=3),
    Figure(D, "stream_role", "TEXT NOT NULL DEFAULT 'progressive'",
           "progressive; video or audio of a pair played together", lambda m, d: d.stream_role, since=3),
    Figure(D, "pair_bytes", "INTEGER", "a pair's video row: bytes of both streams", lambda m, d: d.pair_bytes, since=3),
    Figure(D, "pair_avg_throughput_bps", "REAL", "a pair's video row: both streams' bytes over their common span",
           lambda m, d: d.pair_avg_throughput_bps, since=3),
    Figure(D, "resolve_s", "REAL",
           "fastest DNS answer that gave this address for the cache server's host (ResolveTime)",
           _resolve_s, since=4,
           legacy="ResolveTime",
           graphs=(_g("dns_s", "DNS time", "s",
                      "Fastest DNS answer that gave the cache server's address (ResolveTime).", 18,
                      pages=(("qos", 11),)),)),
    Figure(D, "ping_min_ms", "REAL", "smallest RTT to this address: ICMP echo, else TCP connect (PingMin)",
           lambda m, d: min(_rtts(m, d), default=None), since=4,
           legacy="PingMin",
           graphs=(_g("ping_min_ms", "RTT (minimum)", "ms", "Smallest round-trip time to the cache server (PingMin).",
                      16, pages=(("qos", 8),), left_out="no probe to the cache server answered"),),
           aggregates=(RTT, LOSS)),
    Figure(D, "ping_avg_ms", "REAL", "mean RTT to this address: ICMP echo, else TCP connect (PingAvg)",
           lambda m, d: statistics.fmean(_rtts(m, d)) if _rtts(m, d) else None, since=4,
           legacy="PingAvg",
           graphs=(_g("ping_avg_ms", "RTT (average)", "ms",
                      "Mean round-trip time to the cache server: ICMP echo, else TCP connect (PingAvg).", 3,
                      pages=(("main", 3), ("qos", 9)),
                      left_out="no probe to the cache server answered"),)),
    Figure(D, "ping_max_ms", "REAL", "largest RTT to this address: ICMP echo, else TCP connect (PingMax)",
           lambda m, d: max(_rtts(m, d), default=None), since=4,
           legacy="PingMax",
           graphs=(_g("ping_max_ms", "RTT (maximum)", "ms", "Largest round-trip time to the cache server (PingMax).",
                      17, pages=(("qos", 10),), left_out="no probe to the cache server answered"),)),
    # downloads: media
    Figure(D, "container", "TEXT", "mp4, webm, flv, mpegts, ...", lambda m, d: d.container),
    Figure(D, "video_codec", "TEXT", "h264, vp9, av1, ...", lambda m, d: d.media.video_codec if d.media else None),
    Figure(D, "audio_codec", "TEXT", "aac, opus, ...", lambda m, d: d.media.audio_codec if d.media else None),
    Figure(D, "width", "INTEGER", "video width in pixels", lambda m, d: d.media.width if d.media else None),
    Figure(D, "height", "INTEGER", "video height in pixels", lambda m, d: d.media.height if d.media else None),
    Figure(D, "frame_rate", "REAL", "frames per second", lambda m, d: d.media.frame_rate if d.media else None),
    Figure(D, "media_duration_s", "REAL", "the media's duration as the file says", lambda m, d: d.media_duration_s,
           legacy="VideoDuration",
           graphs=(_g("video_duration_s", "Video duration", "s", "Duration of the media (VideoDuration).", 23,
                      pages=(("characteristics", 1),)),)),
    Figure(D, "media_duration_source", "TEXT",
           "mediainfo, container-header, container-index (whole file received)",
           lambda m, d: d.media_duration_source, since=3),
    Figure(D, "encoding_rate_bps", "REAL", "the media's encoding rate", lambda m, d: d.encoding_rate_bps,
           legacy="EncodingRate", legacy_scale=1000,
           graphs=(_g("encoding_rate_bps", "Encoding rate", "bit/s", "Encoding rate of the media (EncodingRate).", 24,
                      pages=(("characteristics", 2),), log_axis=True,
                      left_out="encoding rate unknown (media_problem says why)"),)),
    Figure(D, "encoding_rate_source", "TEXT", "mediainfo-overall, size-over-duration",
           lambda m, d: d.encoding_rate_source),
    Figure(D, "media_time_source", "TEXT", "mp4-sample-table, mp4-fragments, webm-blocks, flv-tags, mpegts-pes, or "
           "average-bitrate", lambda m, d: d.media_time_source),
    Figure(D, "media_problem", "TEXT", "why the media figures are NULL or approximate", lambda m, d: d.media_problem),
    # downloads: playout
    Figure(D, "initial_buffer_threshold_s", "REAL", "playout model: media buffered before playback starts",
           lambda m, d: d.params.initial_buffer_s, old_name="initial_buffer_s"),
    Figure(D, "min_buffer_threshold_s", "REAL", "playout model: below this the player stalls",
           lambda m, d: d.params.min_buffer_s, old_name="min_buffer_s"),
    Figure(D, "restart_buffer_threshold_s", "REAL", "playout model: media buffered before playback resumes",
           lambda m, d: d.params.restart_buffer_s, old_name="restart_buffer_s"),
    Figure(D, "time_to_start_s", "REAL", "request sent -> playback starts; NULL: not started in the window",
           lambda m, d: d.playout.time_to_start_s if d.playout else None,
           graphs=(_g("start_s", "Time to start playback", "s",
                      "From the request to the start of playback, once the initial buffer is filled "
                      "(new in this version).", 7, pages=(("qoe", 2),),
                      left_out="playback did not start within the window"),),
           aggregates=(START,)),
    Figure(D, "initial_data_bytes", "INTEGER", "bytes received when playback started",
           lambda m, d: d.playout.initial_data_bytes if d.playout else None,
           legacy="InitialData",
           graphs=(_g("initial_data_bytes", "Initial data", "bytes", "Bytes received when playback started "
                      "(InitialData).", 11, pages=(("qos", 4),)),)),
    Figure(D, "initial_rate_bps", "REAL", "throughput while the initial buffer filled", lambda m, d: d.initial_rate_bps,
           legacy="InitialRate", legacy_scale=1000,
           graphs=(_g("initial_rate_bps", "Initial rate", "bit/s",
                      "Throughput while the initial buffer was filling (InitialRate).", 10,
                      pages=(("qos", 3),), log_axis=True),)),
    Figure(D, "buffered_at_start_s", "REAL", "media buffered when playback started (observed)",
           lambda m, d: d.playout.initial_buffer_s if d.playout else None,
           old_name="initial_playback_buffer_s", legacy="InitialPlaybackBuffer",
           graphs=(_g("initial_buffer_s", "Initial playback buffer", "s",
                      "Media seconds buffered when playback started (InitialPlaybackBuffer; never set in 2015).",
                      12),)),
    Figure(D, "stall_count", "INTEGER", "stalls after playback started; NULL: playback never started",
           lambda m, d: p.stall_count if (p := _started(d)) else None,
           legacy="DownloadInterruptions",
           graphs=(_g("stall_count", "Stalls", "stalls",
                      "Number of stalls after playback started, per video (DownloadInterruptions).", 4,
                      pages=(("qoe", 1),), left_out="playback never started"),
                   _g("stalled_videos", "Videos with stalls", "%",
                      "Share of the videos whose playback started that stalled at least once, per video "
                      "(2015: VideosWithInterruptions).", 0, pages=(("main", 0), ("qoe", 0)),
                      left_out="playback never started",
                      derive=lambda get: _stalled(get("downloads.stall_count")), draw_scale=100.0,
                      legacy=lambda row: _stalled(row.get("DownloadInterruptions")))),
           aggregates=(SMOOTH,)),
    Figure(D, "stall_total_s", "REAL", "time stalled after playback started; NULL: playback never started",
           lambda m, d: p.stall_total_s if (p := _started(d)) else None,
           legacy="BufferingDuration",
           graphs=(_g("stall_s", "Stall time", "s",
                      "Total time playback was stalled after it started, per video (BufferingDuration).", 2,
                      pages=(("main", 2), ("qoe", 4)), left_out="playback never started"),)),
    Figure(D, "buffer_at_end_s", "REAL", "media buffered ahead of the playhead when the window closed (2015's "
           "BufferDurationAtEnd, which the 2015 tool always wrote 0.0: not read from a 2015 database)",
           lambda m, d: d.playout.buffer_at_end_s if d.playout else None,
           graphs=(_g("buffer_end_s", "Buffer at the end", "s",
                      "Media seconds buffered ahead of the playhead when the download window closed "
                      "(BufferDurationAtEnd; never measured in 2015).", 6, pages=(("qoe", 5),)),)),
    Figure(D, "media_received_s", "REAL", "media seconds received",
           lambda m, d: d.playout.media_received_s if d.playout else None),
    Figure(D, "played_s", "REAL", "wall time spent playing (2015 recorded none: its PlaybackDuration holds media "
           "seconds)", lambda m, d: d.playout.played_s if d.playout else None,
           graphs=(_g("playback_s", "Playback time", "s", "Wall time spent playing within the window (new in this "
                      "version: the 2015 PlaybackDuration held media seconds).", 15, pages=(("qos", 7),)),)),
    Figure(D, "playout_end_s", "REAL", "where the playout model stopped",
           lambda m, d: d.playout.end_s if d.playout else None),
    Figure(D, "playout_state_at_end", "TEXT", "the player's state when the window closed",
           lambda m, d: d.playout.state_at_end if d.playout else None),
    Figure(D, "playout_problem", "TEXT", "why the playout figures are NULL (not_started: playback never started)",
           lambda m, d: _playout_problem(d)),
    Figure(D, "throughput_to_encoding_ratio", "REAL", "avg_throughput_bps over encoding_rate_bps",
           lambda m, d: d.throughput_ratio,
           aggregates=(RATIO,)),
    # downloads: kernel and segmented delivery
    Figure(D, "tcp_min_rtt_ms", "REAL", "tcpi_min_rtt of the receiving socket (fed by ACKs of what we sent)",
           lambda m, d: d.transfer.tcp_min_rtt_ms),
    Figure(D, "tcp_rcv_rtt_ms", "REAL", "median tcpi_rcv_rtt: the receiver's RTT estimate under load",
           lambda m, d: d.transfer.tcp_rcv_rtt_ms),
    Figure(D, "delivery", "TEXT NOT NULL DEFAULT 'progressive'", "progressive, hls, dash", lambda m, d: d.delivery),
    Figure(D, "rendition_id", "TEXT", "hls/dash: the last video rendition played", lambda m, d: d.rendition_id),
    Figure(D, "declared_bandwidth_bps", "REAL", "hls/dash: its bandwidth as the manifest declares it",
           lambda m, d: d.declared_bandwidth_bps),
    Figure(D, "rendition_switches", "INTEGER", "hls/dash: rendition changes",
           lambda m, d: d.rendition_switches if d.delivery != "progressive" else None),
    Figure(D, "live", "INTEGER", "hls/dash: 1 a live stream (an HLS media playlist without EXT-X-ENDLIST, not of type "
           "VOD; an MPD of type dynamic), followed at the live edge; 0 on demand; NULL progressive",
           lambda m, d: None if d.delivery == "progressive" else int(d.live is not None), since=8),
    Figure(D, "live_target_duration_s", "REAL", "live HLS: EXT-X-TARGETDURATION of the media playlist followed "
           "(NULL for DASH)", lambda m, d: d.live.target_duration_s if d.live else None, since=8),
    Figure(D, "live_reloads", "INTEGER", "live: media playlist reloads after the first load (RFC 8216 6.3.4: the "
           "target duration after a changed load, half of it after an unchanged one; DASH: the MPD fetched again "
           "every minimumUpdatePeriod); each a segment_requests row of kind reload",
           lambda m, d: d.live.reloads if d.live else None, since=8),
    Figure(D, "live_unchanged_reloads", "INTEGER", "live: reloads that found the playlist unchanged (or failed)",
           lambda m, d: d.live.unchanged_reloads if d.live else None, since=8),
    Figure(D, "live_segments_skipped", "INTEGER", "live: segments that left the playlist (DASH: the time-shift "
           "buffer) before they were fetched or while in flight (abandoned), and those jumped over after (the "
           "player goes on where it would start)",
           lambda m, d: d.live.skipped if d.live else None,
           since=8),
    Figure(D, "live_segments_missing", "INTEGER", "live: segments listed but not available (404 or 410), passed over",
           lambda m, d: d.live.missing if d.live else None, since=8),
    Figure(D, "live_latency_start_s", "REAL", "live: latency to the live edge when playback started: the wall clock "
           "minus the EXT-X-PROGRAM-DATE-TIME of the media playing (DASH: availabilityStartTime + Period start + "
           "its media time; samples in live_latency); NULL: live_latency_problem says why",
           lambda m, d: _latency(d, 0), since=8),
    Figure(D, "live_latency_end_s", "REAL", "live: latency to the live edge when the window closed",
           lambda m, d: _latency(d, -1), since=8,
           aggregates=(LIVE_LATENCY,)),
    Figure(D, "live_latency_problem", "TEXT", "live: why the latency is NULL (no EXT-X-PROGRAM-DATE-TIME, playback "
           "never started, no segment played)", lambda m, d: d.live.latency_problem if d.live else None, since=8),
    Figure(D, "p1203_input_json", "TEXT", "ITU-T P.1203 input (I11, I13, I23, IGen) for this video",
           lambda m, d: json.dumps(p1203) if (p1203 := build_input(d)) else None),
)

# Columns that are not figures: keys, and the video's bookkeeping written by the storage layer itself.
VIDEO_KEYS = """    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES run(id),
    round INTEGER NOT NULL,
    seed_source TEXT,                    -- input, popular:<time frame>, related:<video id>
    page_url TEXT NOT NULL"""
VIDEO_TAIL = """    started_at TEXT NOT NULL,
    ended_at TEXT,
    status TEXT NOT NULL,                -- ok, error, interrupted
    error_stage TEXT,
    error_kind TEXT,
    error_message TEXT,
    extractor_json TEXT                  -- how the page was resolved: resolver and version, client, format, warnings"""
DOWNLOAD_KEYS = """    id INTEGER PRIMARY KEY,
    video_row_id INTEGER NOT NULL REFERENCES videos(id)"""


def figures(table: str) -> tuple[Figure, ...]:
    """The figures of one table, in column order."""
    return tuple(f for f in FIGURES if f.table == table)


def graphs() -> list[tuple[Figure, Graph]]:
    """Every graph with its figure, in RRD order."""
    return sorted(((f, g) for f in FIGURES for g in f.graphs), key=lambda fg: fg[1].rank)


def graph_pages() -> dict[str, tuple[str, tuple[str, ...]]]:
    """``{page: (title, data sources in order)}``; the page ``all`` has every graph."""
    out: dict[str, tuple[str, tuple[str, ...]]] = {}
    every = graphs()
    for page, title in PAGES.items():
        if page == "all":
            out[page] = (title, tuple(g.ds for _f, g in every))
            continue
        placed = sorted((pos, g.ds) for _f, g in every for p, pos in g.pages if p == page)
        out[page] = (title, tuple(ds for _pos, ds in placed))
    return out


def graph_value(figure: Figure, graph: Graph, get: Lookup) -> float | None:
    """The RRD value of one graph from the figures of a row."""
    if graph.derive is not None:
        return graph.derive(get)
    value = _num(get(figure.key))
    return None if value is None else value * graph.scale


def read_2015(figure: Figure, row: Mapping[str, Any]) -> float | None:
    """A figure's value, in its own unit, from a 2015 ``pytomo_crawl`` row; None when 2015 did not record it."""
    if figure.legacy is None:
        return None
    if callable(figure.legacy):
        return figure.legacy(row)
    return _num(row.get(figure.legacy), figure.legacy_scale)


def shared(figure: Figure, graph: Graph) -> bool:
    """True when a database of the 2015 layout has this graph."""
    return graph.legacy is not None if graph.derive is not None else figure.legacy is not None


def legacy_value(figure: Figure, graph: Graph, row: Mapping[str, Any]) -> float | None:
    """The RRD value of one graph from a 2015 ``pytomo_crawl`` row; None when that layout does not have it."""
    if graph.derive is not None:
        return graph.legacy(row) if graph.legacy is not None else None
    if figure.legacy is None:
        return None
    if callable(figure.legacy):
        value = figure.legacy(row)
        return None if value is None else value * graph.scale
    return _num(row.get(figure.legacy), figure.legacy_scale * graph.scale)


def aggregates() -> list[tuple[Figure, Aggregate]]:
    """Every declared aggregate with its figure, in the verdict's order."""
    return sorted(((f, a) for f in FIGURES for a in f.aggregates), key=lambda fa: fa[1].rank)


def by_key() -> dict[str, Figure]:
    """Every figure by ``table.column``."""
    return {f.key: f for f in FIGURES}


def column_defs(table: str) -> str:
    """The figures' column definitions of one table, each with its description as a comment."""
    lines = [f"    {f.name} {f.sql_type}" for f in figures(table)]
    return ",\n".join(lines)


def ddl(table: str) -> str:
    """``CREATE TABLE`` of ``videos`` or ``downloads``."""
    parts = [VIDEO_KEYS, column_defs(V), VIDEO_TAIL] if table == V else [DOWNLOAD_KEYS, column_defs(D)]
    return f"CREATE TABLE IF NOT EXISTS {table} (\n" + ",\n".join(parts) + "\n);\n"


def row(table: str, m: VideoMeasurement, d: DownloadAnalysis | None = None) -> dict[str, Value]:
    """The figures' values of one row, by column name."""
    return {f.name: f.value(m, d) for f in figures(table)}


def renamed(table: str) -> dict[str, str]:
    """``{name in schema 2 and 3: name now}`` of one table."""
    return {f.old_name: f.name for f in figures(table) if f.old_name}


# ---------------------------------------------------------------------------------------------------------- docs

DOCS_BEGIN = "<!-- figures: generated by `python -m pytomo.figures --docs`; do not edit by hand -->"
DOCS_END = "<!-- end of figures -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def docs_text() -> str:
    """The column tables of ``docs/schema.md`` for ``videos`` and ``downloads``, and the graphs they feed."""
    out = [DOCS_BEGIN, ""]
    for table in (V, D):
        out += [f"### `{table}` figures", "", "| column | type | unit | description | graphed as (RRD data source) "
                "| 2015 column |", "|---|---|---|---|---|---|"]
        for f in figures(table):
            graphed = ", ".join(f"`{g.ds}` ({g.title}, {g.axis})" for g in f.graphs)
            was = f" (was `{f.old_name}`)" if f.old_name else ""
            legacy = f"`{f.legacy}`" if isinstance(f.legacy, str) else "computed" if f.legacy else ""
            scaled = f" × {f.legacy_scale:g}" if isinstance(f.legacy, str) and f.legacy_scale != 1 else ""
            out.append(f"| `{f.name}`{was} | {f.sql_type.split()[0]} | {f.unit or ''} | {_cell(f.description)} | "
                       f"{graphed} | {legacy}{scaled} |")
        out.append("")
    out += ["### Aggregates", "", "Each summarises one figure over a span: the verdict shows it, `/metrics` exposes it "
            "as `pytomo_<metric>`.", "", "| key | figure | statistic | label | metric | threshold (good, bad) |",
            "|---|---|---|---|---|---|"]
    for f, a in aggregates():
        limit = f"{a.threshold.good:g}, {a.threshold.bad:g}" if a.threshold else ""
        out.append(f"| `{a.key}` | `{f.key}` | {a.statistic} | {_cell(a.label)} | `pytomo_{a.metric}` | {limit} |")
    out.append("")
    out.append(DOCS_END)
    return "\n".join(out) + "\n"


def docs_with_figures(text: str) -> str:
    """``text`` (docs/schema.md) with its generated part replaced by :func:`docs_text`."""
    start, end = text.find(DOCS_BEGIN), text.find(DOCS_END)
    if start < 0 or end < 0:
        raise ValueError("docs/schema.md has no generated figures section")
    return text[:start] + docs_text() + text[end + len(DOCS_END) + 1:]


# ------------------------------------------------------------------------------------------------------ Datasette


def datasette_metadata(database: str) -> dict[str, Any]:
    """Datasette ``metadata.json`` of one run database (named as Datasette names it: the file name without .db)."""
    tables = {}
    for table, title in ((V, "Videos: one row per page URL measured"),
                         (D, "Downloads: one row per media transfer")):
        figs = figures(table)
        tables[table] = {
            "title": title,
            "description": "Figures declared in pytomo/figures.py; docs/schema.md explains them.",
            "columns": {f.name: f.description for f in figs},
            "units": {f.name: f.unit for f in figs if f.unit},
        }
    return {"title": "Pytomo run database", "databases": {database: {"tables": tables}}}


def _main(argv: Iterable[str]) -> int:
    args = list(argv)
    if args != ["--docs"]:
        print("usage: python -m pytomo.figures --docs  (rewrites the generated part of docs/schema.md)")
        return 2
    path = Path(__file__).resolve().parent.parent / "docs" / "schema.md"
    path.write_text(docs_with_figures(path.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
