"""Why a page gave no media, from yt-dlp's own message texts (each cited from the pinned release's source).

yt-dlp reports a page without media in two ways: it raises (``DownloadError`` around an ``ExtractorError``), or,
with ``ignore_no_formats_error`` (which Pytomo sets, to keep the metadata), it logs the reason as a warning and
returns an info dict without formats (``raise_no_formats``, ``raise_geo_restricted`` and ``raise_login_required``
with ``metadata_available=True`` in ``yt_dlp/extractor/common.py``). Both land here.

``MESSAGES`` is the table: (kind, needle, file, snippet). ``needle`` is what is looked for, lower case, in the
message; ``snippet`` is the text exactly as it appears in ``file`` of the installed yt-dlp release, which
``tests/unit/test_ytdlp_outcomes.py`` reads back so the table cannot drift silently. Where YouTube writes the text
itself (``playabilityStatus.reason``, relayed by yt-dlp), the snippet is the relaying line of yt-dlp, or the test
case of yt-dlp's YouTube extractor that names the message.
"""

from __future__ import annotations

from typing import NamedTuple

YT = "yt_dlp/extractor/youtube/_video.py"
YT_BASE = "yt_dlp/extractor/youtube/_base.py"
COMMON = "yt_dlp/extractor/common.py"
YDL = "yt_dlp/YoutubeDL.py"
NET = "yt_dlp/networking/exceptions.py"
_RELAY = "if 'sign in' in reason.lower():"  # YouTube's own reason text, relayed with yt-dlp's cookies hint

# kinds, most specific first: the first kind with a matching needle wins
KINDS = ("bot_check", "rate_limited", "ip_blocked", "age_gate", "geo_blocked", "private", "drm",
         "sign_in_required", "unavailable", "no_format", "network")
SLOWDOWN_KINDS = ("bot_check", "rate_limited", "ip_blocked")  # the platform pushes back: slow the crawl down


class Message(NamedTuple):
    """One entry of the table: a kind, the needle looked for, and where yt-dlp says it."""

    kind: str
    needle: str
    file: str
    snippet: str
    relayed: bool = False  # YouTube's own words (playabilityStatus.reason), which yt-dlp passes on


MESSAGES: tuple[Message, ...] = (
    # "Sign in to confirm you're not a bot" is YouTube's reason; yt-dlp appends its cookies hint to it
    Message("bot_check", "confirm you're not a bot", YT, _RELAY, relayed=True),
    Message("bot_check", "confirm you’re not a bot", YT, _RELAY, relayed=True),
    Message("bot_check", "youtube is requiring a captcha challenge", YT,
            "reason += '. YouTube is requiring a captcha challenge before playback'"),
    Message("rate_limited", "this content isn't available, try again later", YT,
            "elif \"This content isn't available, try again later\" in reason:"),
    Message("rate_limited", "has been rate-limited by youtube", YT,
            "has been rate-limited by YouTube for up to an hour"),
    Message("rate_limited", "http error 429", NET, "msg = f'HTTP Error {response.status}: {response.reason}'"),
    Message("ip_blocked", "your ip is likely being blocked", YT,
            "'All player responses are invalid. Your IP is likely being blocked by Youtube'"),
    Message("age_gate", "confirm your age", YT, "'confirm your age', 'age-restricted', 'inappropriate',  # reason"),
    Message("age_gate", "age-restricted", YT, "'confirm your age', 'age-restricted', 'inappropriate',  # reason"),
    Message("age_gate", "inappropriate for some users", YT,
            "'confirm your age', 'age-restricted', 'inappropriate',  # reason", relayed=True),
    Message("geo_blocked", "has not made this video available in your country", YT,
            "if subreason.startswith('The uploader has not made this video available in your country'):"),
    Message("geo_blocked", "not available from your location due to geo restriction", COMMON,
            "msg='This video is not available from your location due to geo restriction'"),
    Message("private", "private video", YT, "'skip': 'Private video',"),
    Message("private", "this video is private", YT, _RELAY, relayed=True),
    Message("drm", "this video is drm protected", COMMON,
            "self.raise_no_formats('This video is DRM protected', expected=True, video_id=video_id)"),
    Message("drm", "formats have been skipped as they are drm protected", YT,
            "formats have been skipped as they are DRM protected. '"),
    Message("sign_in_required", "join this channel", YT, _RELAY, relayed=True),  # members-only: YouTube's reason
    Message("sign_in_required", "login details are needed", YT_BASE,
            "f'Login details are needed to download this content. {self._youtube_login_hint}'"),
    Message("sign_in_required", "only available for registered users", COMMON,
            "msg='This video is only available for registered users',"),
    Message("sign_in_required", "use --cookies-from-browser or --cookies for the authentication", COMMON,
            "'cookies': f'Use --cookies-from-browser or --cookies for the authentication. {cookies_hint}',"),
    Message("unavailable", "video unavailable", YT, "'skip': 'Video unavailable',"),
    Message("no_format", "no video formats found", YDL,
            "msg = msg or (has_drm and 'This video is DRM protected') or 'No video formats found!'"),
    Message("no_format", "requested format is not available", YDL,
            "self.report_warning('Requested format is not available')"),
    Message("no_format", "only images are available for download", YDL,
            "'only images are available for download. Use --list-formats to see them'.capitalize())"),
)

# not yt-dlp's texts: other extractors' and the platforms' usual words, and socket errors (our own classification)
GENERIC: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("bot_check", ("not a bot", "unusual traffic", "captcha")),
    ("rate_limited", ("too many requests",)),
    ("geo_blocked", ("geo restriction", "not available in your country", "from your location")),
    ("sign_in_required", ("members-only", "requires payment", "login required", "log in to", "sign in if")),
    ("unavailable", ("has been removed", "is not available", "does not exist", "http error 404",
                     "no longer available")),
    ("network", ("timed out", "connection refused", "unable to download", "network is unreachable",
                 "name or service not known", "temporary failure in name resolution")),
)


def classify(message: str) -> str:
    """The kind of one message (``extractor`` when nothing fits): yt-dlp's texts first, then the generic words."""
    text = message.lower()
    for kind in KINDS:
        if any(m.kind == kind and m.needle in text for m in MESSAGES):
            return kind
    for kind, needles in GENERIC:
        if any(n in text for n in needles):
            return kind
    return "extractor"


def rank(kind: str) -> int:
    """The position of a kind in ``KINDS`` (specific first); unknown kinds last."""
    return KINDS.index(kind) if kind in KINDS else len(KINDS)


def no_format_reason(warnings: tuple[str, ...] | list[str]) -> tuple[str, str]:
    """(kind, message) of an info dict without formats, from the warnings yt-dlp logged while extracting it.

    The most specific warning wins (a bot check over the "No video formats found!" that follows it).
    """
    best: tuple[int, str, str] | None = None
    for w in warnings:
        kind = classify(w)
        if kind in ("extractor", "network"):
            continue
        if best is None or rank(kind) < best[0]:
            best = (rank(kind), kind, w)
    if best is None:
        return "no_format", "no formats: " + ("; ".join(warnings) if warnings else "yt-dlp gave no reason")
    return best[1], best[2]


def error_kind(exc: BaseException, message: str) -> str:
    """The kind of a raised yt-dlp error: its class first (geo restriction, HTTP 429), else its message."""
    try:
        from yt_dlp.networking.exceptions import HTTPError
        from yt_dlp.utils import GeoRestrictedError
    except ImportError:
        return classify(message)
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, GeoRestrictedError):
            return "geo_blocked"
        if isinstance(cur, HTTPError) and cur.status == 429:
            return "rate_limited"
        exc_info = getattr(cur, "exc_info", None)
        cur = (exc_info[1] if exc_info else None) or getattr(cur, "cause", None) or cur.__cause__
    return classify(message)
