"""The media-resolver boundary: a page URL becomes an info dict in yt-dlp's documented shape.

Contract (``MediaResolver``):
  ``resolve(url) -> Resolved``: the info dict of one video (``id``, ``title``, ``duration``, ``formats`` [...]), the
  warnings the extractor logged, its name and version and the player clients asked for; raises ``ResolverError``
  with the extractor's message when the page gives no video (its ``kind`` classifies it: ``bot_check``, ...).
  ``listing(url, max_entries) -> list[dict]``: the flat entries (``id``, ``url``, ``title``) of a search
  (``ytsearchN:query``), playlist or channel URL, without resolving them.

Two implementations: ``YtDlpResolver`` calls the released yt-dlp package through its documented embedding API,
``RecordedResolver`` reads recordings of what yt-dlp returned from an HTTP "info source" (the lab serves one).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

if TYPE_CHECKING:
    from pytomo.engine.http import HttpClient

log = logging.getLogger(__name__)

_MAX_WARNINGS = 20
_MAX_TEXT = 400
# the extractor's own words for a page that yields no video, most specific first
_ERROR_KINDS = (
    ("bot_check", ("not a bot", "confirm you're not a bot", "confirm you’re not a bot", "unusual traffic",
                   "captcha")),
    ("rate_limited", ("http error 429", "too many requests")),
    ("age_gate", ("confirm your age", "age-restricted", "age restricted", "inappropriate for some users")),
    ("geo_blocked", ("geo restriction", "not available in your country", "from your location")),
    ("sign_in_required", ("private video", "members-only", "join this channel", "requires payment",
                          "sign in if", "login required", "log in to")),
    ("no_format", ("no video formats", "requested format is not available", "drm protected",
                   "only images are available")),
    ("unavailable", ("video unavailable", "has been removed", "is not available", "does not exist",
                     "http error 404", "no longer available")),
    ("network", ("timed out", "connection refused", "unable to download", "network is unreachable",
                 "name or service not known", "temporary failure in name resolution")),
)
_MISSING_FORMATS = re.compile(r"formats? (?:may be|might be|have been|were|are) (?:missing|skipped)|some .*formats"
                              r"|requested format is not available|n challenge|signature solving|po token|pot\b|sabr"
                              r"|only images are available|no video formats|javascript runtime", re.I)


def classify(message: str) -> str:
    """A short kind for an extractor error message (``extractor`` when none fits)."""
    text = message.lower()
    for kind, needles in _ERROR_KINDS:
        if any(n in text for n in needles):
            return kind
    return "extractor"


def missing_format_warnings(warnings: tuple[str, ...] | list[str]) -> list[str]:
    """The warnings that say formats are missing or were skipped (challenges, PO tokens, SABR, DRM)."""
    return [w for w in warnings if _MISSING_FORMATS.search(w)]


def _clip(text: str) -> str:
    text = re.sub(r"\s+", " ", str(text)).strip()
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 3] + "..."


class ResolverError(Exception):
    """The extractor gave no video for a page; ``kind`` classifies its message."""

    def __init__(self, message: str, *, resolver: str, version: str | None, warnings: tuple[str, ...] = (),
                 kind: str | None = None) -> None:
        super().__init__(_clip(message))
        self.resolver = resolver
        self.version = version
        self.warnings = warnings
        self.kind = kind or classify(message)


@dataclass(frozen=True)
class Resolved:
    """An info dict and how it was obtained."""

    info: dict[str, Any]
    resolver: str  # yt-dlp, or recorded (a recording of yt-dlp's output)
    version: str | None  # the yt-dlp version that produced the info dict
    player_client: tuple[str, ...] = ()  # clients asked for (yt-dlp extractor argument); empty: yt-dlp's default
    warnings: tuple[str, ...] = field(default_factory=tuple)


class MediaResolver:
    """Base of the resolvers (see the module docstring for the contract)."""

    name = "resolver"

    def resolve(self, url: str) -> Resolved:  # pragma: no cover - interface
        raise NotImplementedError

    def listing(self, url: str, max_entries: int) -> list[dict]:  # pragma: no cover - interface
        raise NotImplementedError


def ytdlp_version() -> str | None:
    """The installed yt-dlp version, or None when it is not installed."""
    try:
        from yt_dlp.version import __version__
    except ImportError:
        return None
    return __version__


class _Collector:
    """A yt-dlp ``logger``: keeps warnings and errors, drops debug output."""

    def __init__(self) -> None:
        self.warnings: list[str] = []

    def debug(self, msg: str) -> None:
        log.debug("yt-dlp: %s", msg)

    def info(self, msg: str) -> None:
        log.debug("yt-dlp: %s", msg)

    def warning(self, msg: str) -> None:
        if len(self.warnings) < _MAX_WARNINGS:
            self.warnings.append(_clip(msg))

    def error(self, msg: str) -> None:
        self.warning(msg)


class YtDlpResolver(MediaResolver):
    """The released yt-dlp package: ``YoutubeDL(params).extract_info(url, download=False)``, then ``sanitize_info``."""

    name = "yt-dlp"

    def __init__(self, *, socket_timeout_s: float = 10.0, proxy: str | None = None,
                 player_client: tuple[str, ...] = (), extractor_key: str = "youtube") -> None:
        self.socket_timeout_s = socket_timeout_s
        self.proxy = proxy
        self.player_client = tuple(player_client)
        self.extractor_key = extractor_key

    def params(self, logger: _Collector, **extra: Any) -> dict[str, Any]:
        """The documented YoutubeDL parameters used for every call."""
        p: dict[str, Any] = {"logger": logger, "quiet": True, "noprogress": True, "skip_download": True,
                             "noplaylist": True, "socket_timeout": self.socket_timeout_s,
                             "ignore_no_formats_error": True}
        p["proxy"] = self.proxy or ""  # "": direct, as our own HTTP client (never the environment's proxy)
        if self.player_client:
            p["extractor_args"] = {self.extractor_key: {"player_client": list(self.player_client)}}
        p.update(extra)
        return p

    def _extract(self, url: str, logger: _Collector, **extra: Any) -> dict:
        try:
            import yt_dlp
        except ImportError as exc:
            raise ResolverError("yt-dlp is not installed (pip install yt-dlp)", resolver=self.name, version=None,
                                kind="extractor") from exc
        try:
            with yt_dlp.YoutubeDL(self.params(logger, **extra)) as ydl:
                info = ydl.extract_info(url, download=False)
                return ydl.sanitize_info(info) or {}
        except yt_dlp.utils.DownloadError as exc:
            message = re.sub(r"^ERROR:\s*", "", str(exc))
            raise ResolverError(message, resolver=self.name, version=ytdlp_version(),
                                warnings=tuple(logger.warnings)) from exc

    def resolve(self, url: str) -> Resolved:
        """One video's info dict."""
        logger = _Collector()
        info = self._extract(url, logger)
        if info.get("_type") not in (None, "video"):
            raise ResolverError(f"{url} is a {info.get('_type')}, not a video", resolver=self.name,
                                version=ytdlp_version(), kind="unavailable")
        version = (info.get("_version") or {}).get("version") or ytdlp_version()
        return Resolved(info=info, resolver=self.name, version=version, player_client=self.player_client,
                        warnings=tuple(logger.warnings))

    def listing(self, url: str, max_entries: int) -> list[dict]:
        """Flat entries of a search, playlist or channel (``extract_flat``), at most ``max_entries``."""
        logger = _Collector()
        info = self._extract(url, logger, extract_flat="in_playlist", noplaylist=False, playlistend=max_entries)
        return [e for e in (info.get("entries") or []) if isinstance(e, dict)][:max_entries]


class RecordedResolver(MediaResolver):
    """Recordings of yt-dlp's output served over HTTP: ``GET <source>?url=<page URL>`` answers
    ``{"info": {...}, "warnings": [...], "player_client": [...]}`` or ``{"error": "...", "warnings": [...]}``.
    """

    name = "recorded"

    def __init__(self, http: HttpClient, source_url: str) -> None:
        self.http = http
        self.source_url = source_url

    def _fetch(self, url: str, **query: object) -> dict:
        sep = "&" if "?" in self.source_url else "?"
        target = f"{self.source_url}{sep}{urlencode({'url': url, **query})}"
        try:
            resp, text = self.http.get_text(target)
        except Exception as exc:  # a network failure reaching the info source
            raise ResolverError(f"cannot reach the info source: {exc.__class__.__name__}: {exc}", resolver=self.name,
                                version=None, kind="network") from exc
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise ResolverError(f"the info source answered HTTP {resp.status_code} without a recording",
                                resolver=self.name, version=None, kind="network")
        warnings = tuple(_clip(w) for w in data.get("warnings") or ())
        if data.get("error"):
            raise ResolverError(re.sub(r"^ERROR:\s*", "", str(data["error"])), resolver=self.name,
                                version=data.get("ytdlp_version"), warnings=warnings)
        return data

    def resolve(self, url: str) -> Resolved:
        """The recorded info dict for ``url``."""
        data = self._fetch(url)
        info = data.get("info") or {}
        version = (info.get("_version") or {}).get("version") or data.get("ytdlp_version")
        return Resolved(info=info, resolver=self.name, version=version,
                        player_client=tuple(data.get("player_client") or ()),
                        warnings=tuple(_clip(w) for w in data.get("warnings") or ()))

    def listing(self, url: str, max_entries: int) -> list[dict]:
        """The recorded flat entries for a search, playlist or channel URL."""
        info = self._fetch(url, flat=1).get("info") or {}
        return [e for e in (info.get("entries") or []) if isinstance(e, dict)][:max_entries]
