"""How yt-dlp asked for a Dailymotion master playlist, read from its own screen lines (its logger's ``debug``).

yt-dlp 2026.10.26, ``yt_dlp/extractor/dailymotion.py`` ``_extract_dailymotion_m3u8_formats_and_subtitles``, tries
three requests in turn and announces each with ``report_download_webpage`` (``extractor/common.py``), which a
``YoutubeDL`` with a ``logger`` hands to ``logger.debug`` (``YoutubeDL.to_screen``) as ``[dailymotion] ID: NOTE``.
The notes are the ones below; the last one announced before HLS formats came out is the request that succeeded.
"""

from __future__ import annotations

from collections.abc import Iterable

# yt-dlp's notes (dailymotion.py), each with the impersonation target its request presented (None: none)
YTDLP_M3U8_NOTES: dict[str, str | None] = {
    "Downloading m3u8 information with randomized headers": None,
    "Retrying m3u8 download with Chrome impersonation": "chrome",
    "Retrying m3u8 download with Firefox impersonation": "firefox",
}


def manifest_attempts(lines: Iterable[str]) -> tuple[str | None, ...]:
    """The targets of yt-dlp's master-playlist requests, in the order its screen lines announced them."""
    out: list[str | None] = []
    for line in lines:
        for note, target in YTDLP_M3U8_NOTES.items():
            if line.endswith(note):
                out.append(target)
    return tuple(out)


def succeeded_with(attempts: tuple[str | None, ...], formats: Iterable[dict]) -> tuple[bool, str | None]:
    """(known, target): the target of yt-dlp's last master-playlist request when it gave HLS formats; (False, None)
    when its log said nothing (a recording without it, another extractor) or no HLS format came out."""
    hls = any(isinstance(f, dict) and str(f.get("protocol") or "").startswith("m3u8") for f in formats)
    if not attempts or not hls:
        return False, None
    return True, attempts[-1]
