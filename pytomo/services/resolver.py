"""The media-resolver boundary: a page URL becomes an info dict in yt-dlp's documented shape.

Contract (``MediaResolver``):
  ``resolve(url) -> Resolved``: the info dict of one video (``id``, ``title``, ``duration``, ``formats`` [...]), the
  warnings the extractor logged, its name and version and the player clients asked for; raises ``ResolverError``
  with the extractor's message when the page gives no video (its ``kind`` classifies it: ``bot_check``, ...).
  ``listing(url, max_entries) -> list[dict]``: the flat entries (``id``, ``url``, ``title``) of a search
  (``ytsearchN:query``), playlist or channel URL, without resolving them.

Two implementations: ``YtDlpResolver`` calls the released yt-dlp package through its documented embedding API,
``RecordedResolver`` reads recordings of what yt-dlp returned from an HTTP "info source" (the lab serves one).
A page yt-dlp warned about and returned without formats (``ignore_no_formats_error``) is a ResolverError too, with
the warning as its message (``pytomo/services/outcomes.py``).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from pytomo.engine.http import NETWORK_ERRORS
from pytomo.errors import MeasurementError
from pytomo.services.impersonation import manifest_attempts
from pytomo.services.jsruntime import JsEnvironment, detect, js_runtimes_param
from pytomo.services.outcomes import classify, error_kind, no_format_reason
from pytomo.services.ytclients import DEFAULT_CLIENTS, no_format_kind, read_lines

if TYPE_CHECKING:
    from pytomo.engine.http import HttpClient

log = logging.getLogger(__name__)
__all__ = ["MediaResolver", "RecordedResolver", "Resolved", "ResolverError", "YtDlpResolver", "classify",
           "missing_format_warnings", "ytdlp_version"]

_MAX_WARNINGS = 20
_MAX_TEXT = 400
_MAX_LINES = 400  # yt-dlp's screen and debug lines kept per page (verbose: a few dozen for a YouTube video)
_MISSING_FORMATS = re.compile(r"formats? (?:may be|might be|have been|were|are) (?:missing|skipped)|some .*formats"
                              r"|requested format is not available|n challenge|signature solving|po token|pot\b|sabr"
                              r"|only images are available|no video formats|javascript runtime", re.I)


def missing_format_warnings(warnings: tuple[str, ...] | list[str]) -> list[str]:
    """The warnings that say formats are missing or were skipped (challenges, PO tokens, SABR, DRM)."""
    return [w for w in warnings if _MISSING_FORMATS.search(w)]


def _clip(text: str) -> str:
    text = re.sub(r"\s+", " ", str(text)).strip()
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 3] + "..."


class ResolverError(Exception):
    """The extractor gave no video for a page; ``kind`` classifies its message."""

    def __init__(self, message: str, *, resolver: str, version: str | None, warnings: tuple[str, ...] = (),
                 kind: str | None = None, runtime: dict | None = None, raised: bool = True,
                 client_facts: dict | None = None) -> None:
        super().__init__(_clip(message))
        self.resolver = resolver
        self.version = version
        self.warnings = warnings
        self.kind = kind or classify(message)
        self.runtime = runtime  # the JS runtime and EJS scripts yt-dlp had (``JsEnvironment.record()``)
        self.raised = raised  # False: yt-dlp warned and returned no formats (``ignore_no_formats_error``)
        self.client_facts = client_facts  # YouTube: clients asked, answered, SABR-only, PO token (ytclients.py)


@dataclass(frozen=True)
class Resolved:
    """An info dict and how it was obtained."""

    info: dict[str, Any]
    resolver: str  # yt-dlp, or recorded (a recording of yt-dlp's output)
    version: str | None  # the yt-dlp version that produced the info dict
    player_client: tuple[str, ...] = ()  # clients asked for (yt-dlp extractor argument); empty: yt-dlp's default
    warnings: tuple[str, ...] = field(default_factory=tuple)
    runtime: dict | None = None  # the JS runtime and EJS scripts yt-dlp had (``JsEnvironment.record()``)
    # yt-dlp's own requests for an HLS master playlist, as its log says: None (plain), then "chrome", "firefox";
    # the last one is the one that succeeded when HLS formats came out (pytomo/services/impersonation.py)
    manifest_attempts: tuple[str | None, ...] = ()
    # YouTube: the clients asked and what became of each, from yt-dlp's lines (pytomo/services/ytclients.py);
    # None for other extractors
    client_facts: dict | None = None


def client_facts(lines: list[str], asked: tuple[str, ...], youtube: bool) -> dict | None:
    """The YouTube client facts of one page (``asked``: the clients yt-dlp was told to use), None elsewhere."""
    if not youtube:
        return None
    return {"clients_asked": list(asked), **read_lines(lines, asked)}


def check_formats(info: dict, warnings: tuple[str, ...], *, resolver: str, version: str | None,
                  runtime: dict | None = None, facts: dict | None = None) -> None:
    """ResolverError with yt-dlp's reason when the info dict has no formats (it warned instead of raising); on
    YouTube, ``sabr_only`` or ``po_token_required`` when the clients that answered had all their formats skipped."""
    if info.get("formats") or info.get("url"):
        return
    kind, message = no_format_reason(warnings)
    skipped = no_format_kind(facts or {}) if kind == "no_format" else None
    if skipped == "sabr_only":
        kind, message = skipped, ("no formats: every client that answered was SABR-only ("
                                  + ", ".join((facts or {}).get("clients_sabr_only") or ()) + ")")
    elif skipped == "po_token_required":
        kind, message = skipped, ("no formats: formats skipped for want of a GVS PO token ("
                                  + ", ".join((facts or {}).get("po_token_skipped") or ()) + ")")
    raise ResolverError(re.sub(r"^(?:WARNING|ERROR):\s*", "", message), resolver=resolver, version=version,
                        warnings=warnings, kind=kind, runtime=runtime, raised=False, client_facts=facts)


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
    """A yt-dlp ``logger``: keeps warnings and errors, and the screen lines that say how a manifest was asked for."""

    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.notes: list[str] = []  # yt-dlp's screen lines (``to_screen`` goes to ``debug``), the first 200

    def debug(self, msg: str) -> None:
        log.debug("yt-dlp: %s", msg)
        if len(self.notes) < _MAX_LINES:
            self.notes.append(str(msg)[:_MAX_TEXT])

    def info(self, msg: str) -> None:
        log.debug("yt-dlp: %s", msg)

    def warning(self, msg: str) -> None:
        if len(self.warnings) < _MAX_WARNINGS:
            self.warnings.append(_clip(msg))

    def error(self, msg: str) -> None:
        self.warning(msg)


class YtDlpResolver(MediaResolver):
    """The released yt-dlp package: ``YoutubeDL(params).extract_info(url, download=False)``, then ``sanitize_info``.

    ``extractors``: InfoExtractor classes registered with ``add_info_extractor`` after yt-dlp's own (an extractor
    of the same key replaces yt-dlp's in that YoutubeDL only): stand-ins for the tests, never the network.
    """

    name = "yt-dlp"

    def __init__(self, *, socket_timeout_s: float = 10.0, proxy: str | None = None,
                 player_client: tuple[str, ...] = (), extractor_key: str = "youtube",
                 js_runtimes: dict | None = None, extractors: tuple[type, ...] = (),
                 cookies_file: str | None = None) -> None:
        self.socket_timeout_s = socket_timeout_s
        self.cookies_file = cookies_file
        self.proxy = proxy
        self.player_client = tuple(player_client)
        self.extractor_key = extractor_key
        self.js_runtimes = js_runtimes_param() if js_runtimes is None else js_runtimes
        self.extractors = tuple(extractors)
        self._environment: JsEnvironment | None = None

    @property
    def environment(self) -> JsEnvironment:
        """What yt-dlp detects of its JS runtime and EJS scripts with these parameters (asked once)."""
        if self._environment is None:
            self._environment = detect(self.js_runtimes)
        return self._environment

    def params(self, logger: _Collector, **extra: Any) -> dict[str, Any]:
        """The documented YoutubeDL parameters used for every call."""
        # verbose: yt-dlp's debug lines go to the logger (nothing is printed): they alone say which clients were
        # SABR-only or wanted a PO token (pytomo/services/ytclients.py)
        p: dict[str, Any] = {"logger": logger, "quiet": True, "verbose": True, "noprogress": True,
                             "skip_download": True,
                             "noplaylist": True, "socket_timeout": self.socket_timeout_s,
                             "ignore_no_formats_error": True,  # keeps the metadata; the reason is a warning
                             "js_runtimes": {k: dict(v) for k, v in self.js_runtimes.items()},
                             "remote_components": []}  # never fetch scripts from npm or GitHub
        p["proxy"] = self.proxy or ""  # "": direct, as our own HTTP client (never the environment's proxy)
        if self.cookies_file:
            p["cookiefile"] = self.cookies_file
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
            with yt_dlp.YoutubeDL(self.params(logger, **extra), auto_init="no_verbose_header") as ydl:
                for ie in self.extractors:
                    ydl.add_info_extractor(ie())
                info = ydl.extract_info(url, download=False)
                return ydl.sanitize_info(info) or {}
        except yt_dlp.utils.DownloadError as exc:
            message = re.sub(r"^ERROR:\s*", "", str(exc))
            raise ResolverError(message, resolver=self.name, version=ytdlp_version(), warnings=tuple(logger.warnings),
                                kind=error_kind(exc, message), runtime=self.environment.record(),
                                client_facts=self._facts(logger)) from exc

    def _facts(self, logger: _Collector) -> dict | None:
        """The client facts of the page just resolved (YouTube only)."""
        return client_facts(logger.notes, self.player_client or DEFAULT_CLIENTS, self.extractor_key == "youtube")

    def resolve(self, url: str) -> Resolved:
        """One video's info dict; ResolverError with yt-dlp's reason when it raised or gave no formats."""
        logger = _Collector()
        info = self._extract(url, logger)
        if info.get("_type") not in (None, "video"):
            raise ResolverError(f"{url} is a {info.get('_type')}, not a video", resolver=self.name,
                                version=ytdlp_version(), kind="unavailable")
        version = (info.get("_version") or {}).get("version") or ytdlp_version()
        runtime = self.environment.record()
        facts = self._facts(logger)
        check_formats(info, tuple(logger.warnings), resolver=self.name, version=version, runtime=runtime, facts=facts)
        return Resolved(info=info, resolver=self.name, version=version, player_client=self.player_client,
                        warnings=tuple(logger.warnings), runtime=runtime,
                        manifest_attempts=manifest_attempts(logger.notes), client_facts=facts)

    def listing(self, url: str, max_entries: int) -> list[dict]:
        """Flat entries of a search, playlist or channel (``extract_flat``), at most ``max_entries``."""
        logger = _Collector()
        info = self._extract(url, logger, extract_flat="in_playlist", noplaylist=False, playlistend=max_entries)
        return [e for e in (info.get("entries") or []) if isinstance(e, dict)][:max_entries]


def _is_youtube(url: str, info: dict) -> bool:
    """True for a YouTube page (its extractor, or its URL when the recording does not say)."""
    key = str(info.get("extractor_key") or info.get("extractor") or "").lower()
    return key.startswith("youtube") if key else "youtube.com/" in url or "youtu.be/" in url


class RecordedResolver(MediaResolver):
    """Recordings of yt-dlp's output served over HTTP: ``GET <source>?url=<page URL>`` answers
    ``{"info": {...}, "warnings": [...], "player_client": [...], "log": [...]}`` or ``{"error": "...",
    "warnings": [...]}``; ``log`` holds yt-dlp's screen lines (its logger's ``debug``), read as the package's are.
    """

    name = "recorded"

    def __init__(self, http: HttpClient, source_url: str, deadline_s: float) -> None:
        self.http = http
        self.source_url = source_url
        self.deadline_s = deadline_s  # of one recording's headers and body (request_deadline_s)

    def _fetch(self, url: str, **query: object) -> dict:
        sep = "&" if "?" in self.source_url else "?"
        target = f"{self.source_url}{sep}{urlencode({'url': url, **query})}"
        try:
            resp, text = self.http.get_text(target, deadline_s=self.deadline_s)
        except (*NETWORK_ERRORS, MeasurementError) as exc:  # the info source cannot be resolved or reached
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
                                version=data.get("ytdlp_version"), warnings=warnings,
                                runtime=data.get("js_runtime"))
        return data

    def resolve(self, url: str) -> Resolved:
        """The recorded info dict for ``url``."""
        data = self._fetch(url)
        info = data.get("info") or {}
        version = (info.get("_version") or {}).get("version") or data.get("ytdlp_version")
        warnings = tuple(_clip(w) for w in data.get("warnings") or ())
        runtime = data.get("js_runtime") if isinstance(data.get("js_runtime"), dict) else None
        notes = [str(line) for line in data.get("log") or () if isinstance(line, str)][:_MAX_LINES]
        asked = tuple(str(c) for c in data.get("player_client") or ())
        facts = client_facts(notes, asked or DEFAULT_CLIENTS, _is_youtube(url, info))
        if info.get("_type") in (None, "video"):
            check_formats(info, warnings, resolver=self.name, version=version, runtime=runtime, facts=facts)
        return Resolved(info=info, resolver=self.name, version=version, player_client=asked, warnings=warnings,
                        runtime=runtime, manifest_attempts=manifest_attempts(notes), client_facts=facts)

    def listing(self, url: str, max_entries: int) -> list[dict]:
        """The recorded flat entries for a search, playlist or channel URL."""
        info = self._fetch(url, flat=1).get("info") or {}
        return [e for e in (info.get("entries") or []) if isinstance(e, dict)][:max_entries]
