"""The catalogue of RRD data sources: name, unit, source column and the sentence shown under each graph."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    """One data source of the RRD files and its graph.

    ``column`` is the 2015 ``pytomo_crawl`` column it is read from (None: derived, or new in this version);
    ``shared`` says whether a database of the 2015 layout has it; ``scale`` multiplies the stored value
    on graphs (a share stored as 0..1 is drawn in %).
    """

    name: str  # RRD data-source name: at most 19 characters of [a-z0-9_]
    label: str
    unit: str
    description: str
    column: str | None = None
    shared: bool = True
    scale: float = 1.0


METRICS: tuple[Metric, ...] = (
    Metric("stalled_videos", "Videos with stalls", "%",
           "Share of the measured videos whose playback stalled at least once (2015: VideosWithInterruptions).",
           scale=100.0),
    Metric("avg_thp_kbps", "Average throughput", "kbit/s",
           "Bytes received over the download time, per video (2015: AvgThroughput = 8 DownloadBytes / DownloadTime)."),
    Metric("stall_s", "Stall time", "s",
           "Total time playback was stalled after it started, per video (BufferingDuration).", "BufferingDuration"),
    Metric("ping_avg_ms", "RTT (average)", "ms",
           "Mean round-trip time to the cache server: ICMP echo, else TCP connect (PingAvg).", "PingAvg"),
    Metric("stall_count", "Stalls", "stalls",
           "Number of stalls after playback started, per video (DownloadInterruptions).", "DownloadInterruptions"),
    Metric("reception_ratio", "Reception ratio", "ratio",
           "Average throughput over the encoding rate: above 1 the video arrives faster than it plays."),
    Metric("buffer_end_s", "Buffer at the end", "s",
           "Media seconds buffered ahead of the playhead when the download window closed (BufferDurationAtEnd).",
           "BufferDurationAtEnd"),
    Metric("start_s", "Time to start playback", "s",
           "From the request to the start of playback, once the initial buffer is filled (new in this version).",
           shared=False),
    Metric("meas_thp_kbps", "Measured throughput", "kbit/s",
           "Throughput from the first to the last byte, first read excluded (new in this version).", shared=False),
    Metric("peak_thp_kbps", "Peak throughput", "kbit/s",
           "Best throughput over one second of the download (MaxInstantThp).", "MaxInstantThp"),
    Metric("initial_rate_kbps", "Initial rate", "kbit/s",
           "Throughput while the initial buffer was filling (InitialRate).", "InitialRate"),
    Metric("initial_data_bytes", "Initial data", "bytes",
           "Bytes received when playback started (InitialData).", "InitialData"),
    Metric("initial_buffer_s", "Initial playback buffer", "s",
           "Media seconds buffered when playback started (InitialPlaybackBuffer; never set in 2015).",
           "InitialPlaybackBuffer"),
    Metric("download_bytes", "Downloaded bytes", "bytes",
           "Bytes received in the download window (DownloadBytes).", "DownloadBytes"),
    Metric("download_s", "Download time", "s",
           "From the response headers to the last byte received (DownloadTime).", "DownloadTime"),
    Metric("playback_s", "Playback time", "s",
           "Wall time spent playing within the window (PlaybackDuration).", "PlaybackDuration"),
    Metric("ping_min_ms", "RTT (minimum)", "ms", "Smallest round-trip time to the cache server (PingMin).", "PingMin"),
    Metric("ping_max_ms", "RTT (maximum)", "ms", "Largest round-trip time to the cache server (PingMax).", "PingMax"),
    Metric("dns_s", "DNS time", "s",
           "Fastest DNS answer that gave the cache server's address (ResolveTime).", "ResolveTime"),
    Metric("ttfb_s", "Time to first byte", "s",
           "From the media request to the first byte of the body (TimeTogetFirstByte).", "TimeTogetFirstByte"),
    Metric("server_delay_s", "Cache server delay", "s",
           "Time to resolve the page and follow the redirects to the cache server (CacheServerDelay).",
           "CacheServerDelay"),
    Metric("status_code", "HTTP status", "code",
           "HTTP status of the cache server's answer (StatusCode).", "StatusCode"),
    Metric("video_length_bytes", "Video size", "bytes",
           "Size of the media file announced by the server (VideoLength).", "VideoLength"),
    Metric("video_duration_s", "Video duration", "s", "Duration of the media (VideoDuration).", "VideoDuration"),
    Metric("encoding_kbps", "Encoding rate", "kbit/s", "Encoding rate of the media (EncodingRate).", "EncodingRate"),
)

BY_NAME: dict[str, Metric] = {m.name: m for m in METRICS}

# The page groups of 2015 (inventory section 9.3), with the new figures where they belong.
GROUPS: dict[str, tuple[str, tuple[str, ...]]] = {
    "main": ("Main parameters", ("stalled_videos", "avg_thp_kbps", "stall_s", "ping_avg_ms")),
    "qoe": ("QoE", ("stalled_videos", "stall_count", "start_s", "reception_ratio", "stall_s", "buffer_end_s")),
    "qos": ("QoS", ("avg_thp_kbps", "meas_thp_kbps", "peak_thp_kbps", "initial_rate_kbps", "initial_data_bytes",
                    "download_bytes", "download_s", "playback_s", "ping_min_ms", "ping_avg_ms", "ping_max_ms",
                    "dns_s", "ttfb_s", "server_delay_s")),
    "characteristics": ("Video characteristics", ("video_length_bytes", "video_duration_s", "encoding_kbps")),
    "all": ("All parameters", tuple(m.name for m in METRICS)),
}

