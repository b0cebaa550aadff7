"""ITU-T P.1203 input (mode 0) built from what was played: I13 video and I11 audio segments, I23 stalls."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytomo.results import DownloadAnalysis

DISPLAY = {"displaySize": "1920x1080", "device": "pc"}
_DEFAULT_FPS = 25.0


def _resolution(width: int | None, height: int | None) -> str | None:
    return f"{width}x{height}" if width and height else None


def stalling(a: DownloadAnalysis) -> list[list[float]]:
    """I23: initial loading as a stall at media position 0, then every stall at its media position."""
    p = a.playout
    if p is None:
        return []
    first = p.time_to_start_s if p.time_to_start_s is not None else p.end_s
    return [[0.0, round(first, 6)]] + [[round(s.media_position_s, 6), round(s.duration_s, 6)] for s in p.stalls]


def _segmented(a: DownloadAnalysis) -> tuple[list[dict], list[dict]]:
    video, audio = [], []
    for r in a.segments:
        if r.kind != "media" or not r.complete or not r.media_duration_s:
            continue
        kbps = r.bytes * 8 / r.media_duration_s / 1000
        if r.stream == "audio":
            audio.append({"codec": a.media.audio_codec if a.media else None, "start": r.media_start_s,
                          "duration": r.media_duration_s, "bitrate": round(kbps, 3)})
        else:
            video.append({"codec": a.media.video_codec if a.media else None, "start": r.media_start_s,
                          "duration": r.media_duration_s, "bitrate": round(kbps, 3),
                          "resolution": _resolution(a.media.width, a.media.height) if a.media else None,
                          "fps": (a.media.frame_rate if a.media and a.media.frame_rate else _DEFAULT_FPS),
                          "representation": r.rendition_id})
    return video, audio


def _progressive(a: DownloadAnalysis) -> tuple[list[dict], list[dict]]:
    """One-second segments over the media received, at the file's video and audio bitrates."""
    info = a.media
    received = a.playout.media_received_s if a.playout else 0.0
    if info is None or received <= 0:
        return [], []
    v_kbps = (info.video_bitrate_bps or a.encoding_rate_bps or 0) / 1000
    a_kbps = (info.audio_bitrate_bps or 0) / 1000
    video, audio = [], []
    for i in range(math.ceil(received - 1e-9)):
        dur = round(min(1.0, received - i), 6)
        video.append({"codec": info.video_codec, "start": float(i), "duration": dur, "bitrate": round(v_kbps, 3),
                      "resolution": _resolution(info.width, info.height),
                      "fps": info.frame_rate or _DEFAULT_FPS})
        if info.audio_codec:
            audio.append({"codec": info.audio_codec, "start": float(i), "duration": dur, "bitrate": round(a_kbps, 3)})
    return video, audio


def build_input(a: DownloadAnalysis) -> dict[str, Any] | None:
    """The P.1203 input JSON for one played download, or None when nothing was played."""
    if a.playout is None or a.media is None:
        return None
    video, audio = _segmented(a) if a.delivery != "progressive" else _progressive(a)
    return {"I11": {"segments": audio, "streamId": 42}, "I13": {"segments": video, "streamId": 42},
            "I23": {"stalling": stalling(a), "streamId": 42}, "IGen": dict(DISPLAY),
            "pytomo": {"delivery": a.delivery, "media_time_source": a.media_time_source,
                       "note": "P.1203 is specified for H.264 and sessions of about 1 to 5 minutes"}}
