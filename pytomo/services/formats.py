"""Format choice over yt-dlp-shaped format lists: a pure function, the same for every platform plugin.

A format is a dict with yt-dlp's documented fields (``format_id``, ``url``, ``protocol``, ``vcodec``, ``acodec``,
``height``, ``width``, ``tbr``/``vbr``/``abr``, ``fps``, ``ext``, ``manifest_url``, ``fragments``, ``has_drm``).
``vcodec``/``acodec`` equal to ``"none"`` mean the stream is absent; ``None`` means unknown.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from pytomo.engine.impersonate import target_of
from pytomo.results import MediaStream
from pytomo.settings import DEFAULTS

PLAYER_HEIGHT_CAP = 1080
DIRECT_PROTOCOLS = ("http", "https")
HLS_PROTOCOLS = ("m3u8", "m3u8_native")
DASH_PROTOCOLS = ("http_dash_segments",)
_CODEC_RANK = ("avc1", "h264", "mp4v", "vp09", "vp9", "vp8", "av01", "hev1", "hvc1")  # hardware-decoded first


class NoFormat(ValueError):
    """No format of the list fits the choice; the message says what was there."""


@dataclass(frozen=True)
class FormatChoice:
    """The format to measure (``primary``) and, for a video-only format, the audio format a player pairs it with."""

    primary: dict
    audio: dict | None
    rule: str  # how it was chosen, for the record

    @property
    def format_id(self) -> str:
        """yt-dlp's notation: ``137+140`` for a pair."""
        ids = [str(self.primary.get("format_id"))]
        if self.audio is not None:
            ids.append(str(self.audio.get("format_id")))
        return "+".join(ids)

    def streams(self) -> tuple[MediaStream, ...]:
        """The media streams, the measured one first."""
        out = [to_stream(self.primary, paired=self.audio is not None)]
        if self.audio is not None:
            out.append(to_stream(self.audio, paired=True))
        return tuple(out)


def _present(codec: object) -> bool:
    return codec != "none"


def has_video(f: dict) -> bool:
    """True unless yt-dlp says there is no video (unknown counts as present)."""
    return _present(f.get("vcodec"))


def has_audio(f: dict) -> bool:
    """True unless yt-dlp says there is no audio (unknown counts as present)."""
    return _present(f.get("acodec"))


def delivery(f: dict) -> str | None:
    """``direct``, ``hls`` or ``dash`` for a format our player can fetch, None otherwise."""
    proto = str(f.get("protocol") or "").split("+")[0]
    if proto in DIRECT_PROTOCOLS and f.get("url") and not f.get("fragments"):
        return "direct"
    if proto in HLS_PROTOCOLS and (f.get("manifest_url") or f.get("url")):
        return "hls"
    if proto in DASH_PROTOCOLS and f.get("manifest_url"):  # from an MPD (yt-dlp's "dashy" ranges have none)
        return "dash"
    return None


def usable(formats: Iterable[dict]) -> list[dict]:
    """Formats we can measure: a protocol our player speaks, no DRM, not a storyboard."""
    out = []
    for f in formats:
        if not isinstance(f, dict) or f.get("has_drm") or f.get("ext") == "mhtml":
            continue
        if delivery(f) is None:
            continue
        out.append(f)
    return out


def to_stream(f: dict, *, paired: bool = False) -> MediaStream:
    """A MediaStream for a format: segmented formats give their manifest (the player picks the rendition)."""
    kind = delivery(f)
    rate = f.get("tbr") or f.get("vbr") or f.get("abr")
    bps = float(rate) * 1000 if isinstance(rate, (int, float)) and rate > 0 else None
    fid = str(f.get("format_id")) if f.get("format_id") is not None else None
    request = _request_fields(f)
    if kind in ("hls", "dash"):
        return MediaStream(url=str(f.get("manifest_url") or f.get("url")), kind=kind, bitrate_bps=bps, format_id=fid,
                           **request)
    if paired:
        role = "video" if has_video(f) else "audio"
    else:
        role = "progressive"
    return MediaStream(url=str(f["url"]), kind=role, container=f.get("ext"), bitrate_bps=bps, format_id=fid,
                       **request)


def _request_fields(f: dict) -> dict:
    """How a player must request the format: yt-dlp's ``http_headers``, chunk size, ``available_at`` and
    ``impersonate``."""
    headers = f.get("http_headers")
    pairs = tuple((str(k), str(v)) for k, v in headers.items()) if isinstance(headers, dict) else ()
    options = f.get("downloader_options")
    chunk = options.get("http_chunk_size") if isinstance(options, dict) else None
    available = f.get("available_at")
    return {"http_headers": pairs,
            "chunk_bytes": int(chunk) if isinstance(chunk, (int, float)) and chunk >= 1024 else None,
            "available_at_s": float(available) if isinstance(available, (int, float)) else None,
            "impersonate": target_of(f.get("impersonate"))}


def _num(value: object) -> float:
    return float(value) if isinstance(value, (int, float)) else 0.0


def _codec_rank(f: dict) -> int:
    codec = str(f.get("vcodec") or "").split(".")[0].lower()
    return -(_CODEC_RANK.index(codec)) if codec in _CODEC_RANK else -len(_CODEC_RANK)


def _video_key(f: dict, progressive: bool) -> tuple:
    """Height first, then one connection over two, a widely decoded codec, frame rate and bit rate."""
    return (_num(f.get("height")), progressive, _codec_rank(f), _num(f.get("fps")), _num(f.get("tbr") or f.get("vbr")))


def best_audio(formats: Iterable[dict], video: dict | None = None) -> dict | None:
    """The audio-only format a player pairs with ``video``: same container family first, then bit rate."""
    audios = [f for f in formats if not has_video(f) and has_audio(f) and delivery(f) == "direct"]
    if not audios:
        return None
    family = {"mp4": "m4a", "webm": "webm"}.get(str((video or {}).get("ext")), None)
    return max(audios, key=lambda a: (family is not None and a.get("ext") == family,
                                      _num(a.get("abr") or a.get("tbr"))))


def _candidates(formats: list[dict]) -> list[tuple[dict, dict | None]]:
    """Every (video, audio) a player could play: progressive alone, video-only with its best audio."""
    out: list[tuple[dict, dict | None]] = []
    for f in formats:
        if not has_video(f):
            continue
        if delivery(f) != "direct" or has_audio(f):
            out.append((f, None))  # muxed file, or a manifest (the player fetches its audio)
        else:
            audio = best_audio(formats, f)
            if audio is not None:
                out.append((f, audio))
    return out


def _summary(formats: list[dict]) -> str:
    ids = [f"{f.get('format_id')}({f.get('protocol')},{f.get('height') or '-'}p)" for f in formats[:12]]
    return ", ".join(ids) + (" ..." if len(formats) > 12 else "") if ids else "none"


def choose(formats: Iterable[dict], choice: str = DEFAULTS.media_format) -> FormatChoice:
    """Pick what to measure. Choices: ``player`` (the best a 1080p player plays), ``<N>p`` (same with a cap of N),
    ``best`` (no cap), ``worst``, ``progressive`` (one muxed file only), or a format id (``18``, ``137+140``).

    Direct (progressive or video+audio) formats are preferred to HLS/DASH manifests, as a player with both would.
    """
    all_formats = [f for f in formats if isinstance(f, dict)]
    ok = usable(all_formats)
    if not ok:
        raise NoFormat(f"no measurable format (protocol http(s), HLS or DASH, without DRM) among: "
                       f"{_summary(all_formats)}")
    by_id = {str(f.get("format_id")): f for f in ok}
    if choice not in ("player", "progressive", "best", "worst") and not re.fullmatch(r"\d{2,4}p", choice):
        ids = choice.split("+")
        if not all(i in by_id for i in ids):
            raise NoFormat(f"format {choice!r} is not offered; measurable formats: {_summary(ok)}")
        return FormatChoice(by_id[ids[0]], by_id[ids[1]] if len(ids) > 1 else None, f"id {choice}")
    if choice == "progressive":
        muxed = [f for f in ok if delivery(f) == "direct" and has_video(f) and has_audio(f)]
        if not muxed:
            raise NoFormat(f"no progressive (audio and video in one file) format; measurable formats: {_summary(ok)}")
        return FormatChoice(max(muxed, key=lambda f: _video_key(f, True)), None, "progressive")
    candidates = _candidates(ok)
    if not candidates:
        raise NoFormat(f"no format with video; measurable formats: {_summary(ok)}")
    direct = [c for c in candidates if delivery(c[0]) == "direct"]
    pool = direct or candidates
    key = lambda c: _video_key(c[0], c[1] is None)  # noqa: E731
    if choice == "worst":
        video, audio = min(pool, key=lambda c: (_num(c[0].get("height")) or float("inf"), _num(c[0].get("tbr"))))
        return FormatChoice(video, audio, "worst")
    if choice == "best":
        video, audio = max(pool, key=key)
        return FormatChoice(video, audio, "best")
    cap = PLAYER_HEIGHT_CAP if choice == "player" else int(choice[:-1])
    fitting = [c for c in pool if _num(c[0].get("height")) <= cap]
    if fitting:
        video, audio = max(fitting, key=key)
        return FormatChoice(video, audio, f"player up to {cap}p")
    video, audio = min(pool, key=lambda c: _num(c[0].get("height")))  # all above the cap: the smallest
    return FormatChoice(video, audio, f"player up to {cap}p (none fits: the smallest)")
