"""Container, codecs, duration and bitrates of a partly downloaded media file, as MediaInfo reads them (sandboxed)."""

from __future__ import annotations

import os
import tempfile
from types import SimpleNamespace

from pytomo.errors import MediaError
from pytomo.media.index import MediaIndexer
from pytomo.media.sandbox import TRACK_FIELDS, worker
from pytomo.results import MediaInfoResult

_CONTAINERS = {"mpeg-4": "mp4", "qupertino": "mov", "webm": "webm", "matroska": "mkv", "flash video": "flv",
               "mpeg-ts": "ts", "mpeg audio": "mp3", "adts": "aac", "ogg": "ogg", "avi": "avi"}
_VIDEO_CODECS = {"avc": "h264", "hevc": "h265", "vp8": "vp8", "vp9": "vp9", "av1": "av1",
                 "sorenson spark": "flv1", "h.263": "h263", "mpeg-4 visual": "mpeg4", "mpeg video": "mpeg2"}
_AUDIO_CODECS = {"aac": "aac", "opus": "opus", "vorbis": "vorbis", "ac-3": "ac3", "e-ac-3": "eac3",
                 "flac": "flac", "pcm": "pcm", "speex": "speex", "nellymoser": "nellymoser"}


def _number(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _name(value: object, names: dict[str, str]) -> str | None:
    if not value:
        return None
    text = str(value).strip().lower()
    return names.get(text, text.replace(" ", "-"))


def _audio_codec(track: object) -> str | None:
    fmt = str(getattr(track, "format", "") or "").lower()
    if fmt == "mpeg audio":
        layer = str(getattr(track, "format_profile", "") or "").lower()
        return {"layer 3": "mp3", "layer 2": "mp2", "layer 1": "mp1"}.get(layer, "mpeg-audio")
    return _name(fmt, _AUDIO_CODECS)


def _track(fields: dict | None) -> SimpleNamespace | None:
    """A track as the child described it, with every field of TRACK_FIELDS (None where MediaInfo gave none)."""
    if fields is None:
        return None
    return SimpleNamespace(**{f: fields.get(f) for f in TRACK_FIELDS})


def _fragmented_mp4(head: bytes) -> tuple[bool, float | None]:
    """Whether ``head`` starts a fragmented MP4, and the duration its header declares."""
    indexer = MediaIndexer()
    indexer.feed(head)
    timeline = indexer.timeline()
    if timeline is None or timeline.source != "mp4-fragments":
        return False, None
    return True, timeline.duration_s


def _write_sparse(path: str, head: bytes, total_size_bytes: int | None, tail: tuple[int, bytes] | None) -> None:
    with open(path, "r+b") as file:
        file.write(head)
        end = len(head)
        if tail is not None:
            offset, data = tail
            if offset < 0:
                raise ValueError("tail offset must not be negative")
            file.seek(offset)
            file.write(data)
            end = max(end, offset + len(data))
        if total_size_bytes is not None:
            end = max(end, total_size_bytes)
        file.truncate(end)


def probe(head: bytes, total_size_bytes: int | None, tail: tuple[int, bytes] | None = None) -> MediaInfoResult:
    """Ask MediaInfo about a file of which only ``head`` (and optionally ``tail`` at its offset) was fetched.

    The bytes go into a temporary sparse file of the real size, so MediaInfo sees the file size (for the
    overall bitrate) and an index placed at the end; the file is always removed. Raises MediaError
    (kind "not_media") when MediaInfo finds neither an audio nor a video track.

    MediaInfo gives a fragmented MP4 the duration of the fragments it could read, so for one that was not
    fetched whole the duration is the one its header declares (mehd or sidx, read by the media index), or
    None; the overall bitrate then follows from the file size.

    MediaInfo runs in a child process with time and memory limits (``pytomo.media.sandbox``): when it crashes,
    hangs or runs out of memory, this raises its ParserFailure (kind ``parser_crash``, ``parser_timeout`` or
    ``parser_memory``), and the next call starts a new child.
    """
    fd, path = tempfile.mkstemp(prefix="pytomo-probe-")
    try:
        os.close(fd)
        _write_sparse(path, head, total_size_bytes, tail)
        tracks = worker().parse(path)
    finally:
        os.unlink(path)
    general, video, audio = (_track(tracks.get(name)) for name in ("general", "video", "audio"))
    if video is None and audio is None:
        found = _name(getattr(general, "format", None), _CONTAINERS) if general else None
        hint = "; its moov may lie past the bytes given" if found == "mp4" else ""
        raise MediaError(f"MediaInfo found no audio or video track (format: {found or 'unknown'}{hint})",
                         kind="not_media")
    durations = [_number(getattr(t, "duration", None)) for t in (general, video, audio) if t is not None]
    duration_ms = next((d for d in durations if d is not None), None)
    duration_s = duration_ms / 1000 if duration_ms is not None else None
    overall_bps = _number(getattr(general, "overall_bit_rate", None)) if general else None
    whole = total_size_bytes is not None and len(head) >= total_size_bytes
    if not whole:
        fragmented, declared_s = _fragmented_mp4(head)
        if fragmented:
            duration_s = declared_s
            size = total_size_bytes
            overall_bps = size * 8 / declared_s if size is not None and declared_s else None
    frame_rate = _number(getattr(video, "frame_rate", None)) if video else None
    return MediaInfoResult(
        container=_name(getattr(general, "format", None), _CONTAINERS) if general else None,
        video_codec=_name(getattr(video, "format", None), _VIDEO_CODECS) if video else None,
        audio_codec=_audio_codec(audio) if audio else None,
        duration_s=duration_s,
        overall_bitrate_bps=overall_bps,
        video_bitrate_bps=_number(getattr(video, "bit_rate", None)) if video else None,
        audio_bitrate_bps=_number(getattr(audio, "bit_rate", None)) if audio else None,
        width=int(video.width) if video is not None and _number(video.width) else None,
        height=int(video.height) if video is not None and _number(video.height) else None,
        frame_rate=frame_rate,
    )
