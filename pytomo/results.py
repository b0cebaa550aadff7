"""Frozen records of what each measurement stage observed; summaries are derived properties."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import UTC, datetime


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def iso(ts: datetime | None) -> str | None:
    """UTC ISO-8601 text with microseconds, as stored in the database."""
    if ts is None:
        return None
    return ts.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class MediaStream:
    """One media URL of a video, as the service plugin found it."""

    url: str
    kind: str = "progressive"  # progressive (audio+video in one file), video, audio, hls, dash
    container: str | None = None
    bitrate_bps: float | None = None
    format_id: str | None = None
    http_headers: tuple[tuple[str, str], ...] = ()  # sent with every request for it (yt-dlp's format http_headers)
    chunk_bytes: int | None = None  # fetched in byte ranges of this size (yt-dlp's downloader_options.http_chunk_size)
    available_at_s: float | None = None  # UNIX time before which it is not served (yt-dlp's available_at)


@dataclass(frozen=True)
class MediaDescriptor:
    """What a service plugin resolved a page URL into."""

    page_url: str
    video_id: str
    title: str | None
    streams: tuple[MediaStream, ...]
    duration_s: float | None = None
    related: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Hop:
    """One request of the redirect chain, as observed (not guessed)."""

    index: int
    url: str
    host: str
    address: str | None
    status: int | None
    location: str | None
    elapsed_s: float | None
    started_at: datetime
    error: str | None = None


@dataclass(frozen=True)
class DnsAnswer:
    """One answer (or failure) of one resolver for one host and record type."""

    host: str
    resolver: str  # label: system, lab, literal, getaddrinfo, or a configured name
    resolver_address: str | None
    rdtype: str  # A or AAAA
    rcode: str  # NOERROR, NXDOMAIN, SERVFAIL, TIMEOUT, NO_NAMESERVERS, ...
    address: str | None
    ttl_s: int | None
    latency_ms: float | None
    at: datetime
    error: str | None = None


@dataclass(frozen=True)
class RttSample:
    """One RTT probe: ``rtt_ms`` is None when the probe was lost."""

    address: str
    method: str  # icmp-dgram, icmp-raw, system-ping, tcp-connect
    seq: int
    rtt_ms: float | None
    at: datetime


@dataclass(frozen=True)
class RttResult:
    """The probes sent to one address by one method."""

    address: str
    method: str
    samples: tuple[RttSample, ...]
    error: str | None = None

    @property
    def rtts_ms(self) -> list[float]:
        """The RTTs of the probes that were answered, in milliseconds."""
        return [s.rtt_ms for s in self.samples if s.rtt_ms is not None]

    @property
    def loss(self) -> float | None:
        """Fraction of probes lost (0..1); None when no probe was sent."""
        if not self.samples:
            return None
        return 1.0 - len(self.rtts_ms) / len(self.samples)

    @property
    def min_ms(self) -> float | None:
        """Minimum RTT in milliseconds."""
        return min(self.rtts_ms) if self.rtts_ms else None

    @property
    def avg_ms(self) -> float | None:
        """Mean RTT in milliseconds."""
        return statistics.fmean(self.rtts_ms) if self.rtts_ms else None

    @property
    def max_ms(self) -> float | None:
        """Maximum RTT in milliseconds."""
        return max(self.rtts_ms) if self.rtts_ms else None
