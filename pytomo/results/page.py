"""What a service plugin resolved a page into: the media streams of one video."""

from __future__ import annotations

from dataclasses import dataclass, field


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
    # the browser its requests present first (a curl_cffi target family: chrome, firefox): the format's impersonate,
    # or the one yt-dlp's own manifest request succeeded with; None: none first (pytomo/engine/impersonate.py)
    impersonate: str | None = None


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
