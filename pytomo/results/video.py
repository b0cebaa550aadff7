"""One video's record (its downloads and what was derived from them), the crawl's summary, and its sinks."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pytomo.errors import ParserFailure
from pytomo.results.media import MediaInfoResult
from pytomo.results.network import AddressOrigin, DnsAnswer, Hop, RttResult
from pytomo.results.playout import BufferPoint, PlayoutInput, PlayoutParams, PlayoutResult, ProfilePlayout
from pytomo.results.transfer import LiveFacts, SegmentRecord, Transfer


@dataclass
class DownloadAnalysis:
    """A transfer with what was derived from it; ``*_problem`` says why a figure is NULL or approximate. Filled
    while measured; not changed once handed to the sinks."""

    transfer: Transfer
    params: PlayoutParams
    container: str | None = None
    media: MediaInfoResult | None = None
    media_duration_s: float | None = None
    encoding_rate_bps: float | None = None
    encoding_rate_source: str | None = None
    media_duration_source: str | None = None  # mediainfo, container-header, container-index
    media_time_source: str | None = None
    media_problem: str | None = None
    parser_failure: ParserFailure | None = None  # MediaInfo crashed, hung or ran out of memory: the video's outcome
    playout: PlayoutResult | None = None
    playout_problem: str | None = None
    playout_input: PlayoutInput | None = None  # what every profile plays
    profile_playouts: list[ProfilePlayout] = field(default_factory=list)  # one per --player profile
    timeline_points: list[BufferPoint] = field(default_factory=list)
    not_media: bool = False  # nothing to measure: not media, or (``media_problem_kind``) media with nothing playable
    media_problem_kind: str | None = None  # with not_media: the outcome's kind when it is not plain not_media
    delivery: str = "progressive"  # progressive, hls, dash
    segments: list[SegmentRecord] = field(default_factory=list)  # the requests of a segmented session
    rendition_id: str | None = None  # the last video rendition played
    declared_bandwidth_bps: float | None = None
    rendition_switches: int = 0
    media_events: list[tuple[float, int, float]] = field(default_factory=list)  # (t_s, bytes, playable media s)
    stream_role: str = "progressive"  # progressive, or video / audio of a pair played together
    pair_bytes: int | None = None  # a pair's video row: bytes of both streams
    pair_avg_throughput_bps: float | None = None  # a pair's video row: both streams' bytes over their common span
    origin: AddressOrigin | None = None  # AS and country of the address it came from (pytomo/engine/vantage.py)
    live: LiveFacts | None = None  # a live HLS stream: its reloads, skipped segments and latency; None: on demand

    @property
    def initial_rate_bps(self) -> float | None:
        """Throughput while filling the initial buffer: bytes at start of playback over first byte -> start."""
        p, t = self.playout, self.transfer
        if p is None or p.time_to_start_s is None or t.first_byte_s is None or not p.initial_data_bytes:
            return None
        span = p.time_to_start_s - t.first_byte_s
        return p.initial_data_bytes * 8 / span if span > 0 else None

    @property
    def throughput_ratio(self) -> float | None:
        """Average throughput over the encoding rate (> 1: faster than real time)."""
        thp = self.transfer.avg_throughput_bps
        if thp is None or not self.encoding_rate_bps:
            return None
        return thp / self.encoding_rate_bps


@dataclass
class VideoMeasurement:
    """Everything observed for one page URL, stored as one transaction. Filled while measured; not changed once
    handed to the sinks."""

    page_url: str
    round: int
    seed_source: str
    service_label: str
    started_at: datetime
    video_id: str | None = None
    title: str | None = None
    duration_s: float | None = None
    related: list[str] = field(default_factory=list)
    ended_at: datetime | None = None
    cache_server_delay_s: float | None = None
    status: str = "ok"
    error_stage: str | None = None
    error_kind: str | None = None
    error_message: str | None = None
    hops: list[Hop] = field(default_factory=list)
    dns: list[DnsAnswer] = field(default_factory=list)
    rtt: list[RttResult] = field(default_factory=list)
    downloads: list[DownloadAnalysis] = field(default_factory=list)
    extractor: dict | None = None  # how the plugin resolved the page (resolver, version, client, format, warnings)
    available_wait_s: float | None = None  # waited before the first media request for the format's available_at

    @property
    def main_download(self) -> DownloadAnalysis | None:
        """The first download, the one the summaries speak of."""
        return self.downloads[0] if self.downloads else None


@dataclass
class CrawlSummary:
    """What the crawl did, for the closing table. Filled while the crawl goes on (counts, stop reason); the
    videos in it are those handed to the sinks."""

    videos: list[VideoMeasurement] = field(default_factory=list)
    rounds: int = 0
    stop_reason: str = "done"
    error: str | None = None  # why the crawl could not go on (the database cannot be written: a full disk)
    slowdowns: dict[str, int] = field(default_factory=dict)  # bot checks, rate limits...: how many of each
    longest_pause_s: float = 0.0  # the longest pause they caused

    @property
    def measured(self) -> int:
        """Videos whose download received bytes."""
        return sum(1 for v in self.videos if v.main_download and v.main_download.transfer.bytes_total > 0)


class Sink:
    """Where the crawl hands its videos: the run database, the RRD files, the console (pytomo/run.py wires them).

    Contract: ``add(video)`` is called once per finished VideoMeasurement, in crawl order, by one thread; a sink
    that cannot take it raises StorageError to stop the crawl (the database does when the disk is full), and
    must otherwise keep its own failures to itself (the RRD files and the console never stop a crawl).
    ``close(status, stop_reason)`` is called once at the end of the run, whatever happened: ``status`` is
    ``finished``, ``interrupted`` or ``failed``, ``stop_reason`` the summary's words. A sink keeps no reference to
    the crawler and imports nothing above the records.
    """

    def add(self, video: VideoMeasurement) -> None:
        """Take one finished video."""
        raise NotImplementedError

    def close(self, status: str, stop_reason: str | None = None) -> None:
        """The run is over; nothing is added after this."""
