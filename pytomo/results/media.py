"""What the media was: MediaInfo's reading of a file, and a manifest's renditions and segments."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MediaInfoResult:
    """What MediaInfo says about a media file; None where it could not tell."""

    container: str | None
    video_codec: str | None
    audio_codec: str | None
    duration_s: float | None
    overall_bitrate_bps: float | None
    video_bitrate_bps: float | None
    audio_bitrate_bps: float | None
    width: int | None
    height: int | None
    frame_rate: float | None


@dataclass(frozen=True)
class Segment:
    """One media segment: where it is and which media time it covers."""

    url: str
    start_s: float
    duration_s: float
    number: int
    byte_range: tuple[int, int] | None = None  # first and last byte (inclusive) within ``url``; None: all of it
    program_date_s: float | None = None  # HLS: its first sample's EXT-X-PROGRAM-DATE-TIME as UNIX time; None: none
    discontinuity: bool = False  # HLS: an EXT-X-DISCONTINUITY precedes it


@dataclass(frozen=True)
class Track:
    """One rendition of one stream (video, audio, or muxed audio+video)."""

    stream: str  # video, audio, muxed
    rendition_id: str
    bandwidth_bps: float | None
    codecs: str | None
    width: int | None
    height: int | None
    frame_rate: float | None
    init_url: str | None
    segments: tuple[Segment, ...]
    init_range: tuple[int, int] | None = None  # first and last byte (inclusive) of the init within ``init_url``
    playlist_url: str | None = None  # HLS: the media playlist listing ``segments`` (a live player reloads it)
    target_duration_s: float | None = None  # HLS: its EXT-X-TARGETDURATION
    start_offset_s: float | None = None  # HLS: EXT-X-START's TIME-OFFSET (negative: from the end); None: none

    @property
    def duration_s(self) -> float:
        """Media time covered by all segments."""
        return sum(s.duration_s for s in self.segments)


@dataclass(frozen=True)
class Presentation:
    """What a manifest offers: video (or muxed) renditions by increasing bandwidth, and audio renditions."""

    protocol: str  # hls, dash
    url: str
    video: tuple[Track, ...]
    audio: tuple[Track, ...]
    duration_s: float | None
    live: bool = False  # HLS: a media playlist without EXT-X-ENDLIST (and not of type VOD): it is still being made
