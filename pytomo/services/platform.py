"""What the youtube and dailymotion plugins share: the resolver, the format choice and the extractor record."""

from __future__ import annotations

import dataclasses
import functools
import logging
import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pytomo.errors import PageError
from pytomo.results import MediaDescriptor
from pytomo.services.base import Service, ServiceContext
from pytomo.services.formats import FormatChoice, NoFormat, choose
from pytomo.services.impersonation import succeeded_with
from pytomo.services.jsruntime import age_days, warn_if_stale
from pytomo.services.resolver import (
    MediaResolver,
    RecordedResolver,
    Resolved,
    ResolverError,
    YtDlpResolver,
    missing_format_warnings,
    ytdlp_version,
)
from pytomo.services.webapi import ApiError, QuotaExceeded
from pytomo.services.ytclients import url_facts

log = logging.getLogger(__name__)

RESOLVER_TIMEOUT_S = 15.0


def default_resolver(ctx: ServiceContext, extractor_key: str, player_client: tuple[str, ...] = ()) -> MediaResolver:
    """Recordings when an info source is set (the lab's, when it runs), else the yt-dlp package."""
    s = ctx.settings
    if s.info_source_url:
        return RecordedResolver(ctx.http, s.info_source_url, s.request_deadline_s)
    _warn_once_if_stale()
    return YtDlpResolver(socket_timeout_s=max(RESOLVER_TIMEOUT_S, s.http_timeout_s), proxy=s.http_proxy,
                         player_client=player_client, extractor_key=extractor_key, cookies_file=s.cookies_file)


_STALE_WARNED: list[bool] = []


def _warn_once_if_stale() -> None:
    """At the start of a crawl through the yt-dlp package: one warning line when it is older than 60 days."""
    if not _STALE_WARNED:
        _STALE_WARNED.append(True)
        warn_if_stale(ytdlp_version())


_CLIENT_IN_PATH = re.compile(r"/c/([A-Za-z0-9_]+)(?:/|$)")


def clients_in(formats: list[dict | None]) -> list[str]:
    """The player clients that really got these formats: the ``c=`` of their media URLs (``/c/X/`` in manifests)."""
    found: list[str] = []
    for f in formats:
        if not isinstance(f, dict):
            continue
        for url in (f.get("url"), f.get("manifest_url")):
            if not isinstance(url, str):
                continue
            parts = urlsplit(url)
            values = parse_qs(parts.query).get("c") or _CLIENT_IN_PATH.findall(parts.path)
            found += [v for v in values if v not in found]
    return sorted(found)


def _format_facts(f: dict | None) -> dict | None:
    if f is None:
        return None
    keys = ("format_id", "protocol", "ext", "vcodec", "acodec", "width", "height", "fps", "tbr")
    return {k: f.get(k) for k in keys if f.get(k) is not None}


def youtube_clients(facts: dict | None, choice: FormatChoice | None) -> dict | None:
    """YouTube's client facts with those of the measured URL: the client it was made for (its ``c``), whether it
    carries a PO token, and the headers sent with it (the format's own ``http_headers``, as yt-dlp gives them)."""
    if facts is None:
        return None
    out = dict(facts)
    if choice is not None:
        url = url_facts(choice.primary.get("url"))
        headers = choice.primary.get("http_headers")
        out.update(measured_client=url["client"], measured_po_token=url["po_token"],
                   measured_headers=dict(headers) if isinstance(headers, dict) else None)
    return out


def extractor_record(*, resolver: str, version: str | None, player_client: tuple[str, ...],
                     warnings: tuple[str, ...], info: dict | None = None, choice: FormatChoice | None = None,
                     format_choice: str | None = None, runtime: dict | None = None,
                     client_facts: dict | None = None) -> dict[str, Any]:
    """The ``videos.extractor_json`` record: who resolved the page, with what, and which format was measured."""
    record: dict[str, Any] = {
        "resolver": resolver, "ytdlp_version": version, "warnings": list(warnings),
        "missing_formats": missing_format_warnings(warnings)}
    if resolver in ("yt-dlp", "recorded"):  # the clients asked of yt-dlp; "default": its own choice
        record["player_client"] = list(player_client) or ["default"]
        record["ytdlp_age_days"] = age_days(version)
        # the JS runtime and EJS scripts yt-dlp detected (None: unknown, e.g. a recording that does not say)
        record.update(runtime or {"js_runtime": None, "ejs_version": None})
    if info is not None:
        record["extractor"] = info.get("extractor_key") or info.get("extractor")
        record["formats_offered"] = len(info.get("formats") or [])
        record["clients_offered"] = clients_in(info.get("formats") or [])
    if format_choice is not None:
        record["format_choice"] = format_choice
    if choice is not None:
        record.update(format_id=choice.format_id, format_rule=choice.rule, format=_format_facts(choice.primary),
                      audio_format=_format_facts(choice.audio), clients_used=clients_in([choice.primary, choice.audio]))
    youtube = youtube_clients(client_facts, choice)
    if youtube is not None:
        record["youtube_clients"] = youtube
    return record


def _drm_only(formats: list) -> bool:
    """True when every format (storyboards aside) is DRM protected, as yt-dlp marks them (``has_drm``)."""
    media = [f for f in formats if isinstance(f, dict) and f.get("ext") != "mhtml"]
    return bool(media) and all(f.get("has_drm") for f in media)


class PlatformService(Service):
    """A plugin whose pages are resolved by a MediaResolver and whose media is chosen by ``formats.choose``."""

    EXTRACTOR_KEY = ""
    CANONICAL = ""  # format string with {id}

    def __init__(self, ctx: ServiceContext, resolver: MediaResolver | None = None) -> None:
        super().__init__(ctx)
        self.resolver = resolver or default_resolver(ctx, self.EXTRACTOR_KEY, self.player_client())
        self.quota_stop: str | None = None  # set at the API's quotaExceeded: related lookups stop for the run

    def player_client(self) -> tuple[str, ...]:
        """Clients asked of the extractor (none: its default)."""
        return ()

    @classmethod
    def canonical_url(cls, video_id: str) -> str:
        """The plain watch URL of a video id."""
        return cls.CANONICAL.format(id=video_id)

    def resolve_info(self, page_url: str) -> Resolved:
        """The info dict of a page, or PageError with the extractor's kind (bot_check, age_gate, ...)."""
        vid = self.video_id(page_url) or ""
        try:
            return self.resolver.resolve(self.canonical_url(vid) if vid else page_url)
        except ResolverError as exc:
            record = extractor_record(resolver=exc.resolver, version=exc.version, player_client=self.player_client(),
                                      warnings=exc.warnings, runtime=exc.runtime, client_facts=exc.client_facts)
            record["outcome"] = "raised" if exc.raised else "warned, no formats"  # how yt-dlp reported it
            raise PageError(f"{self.NAME}: {exc}", kind=exc.kind, extractor=record) from exc

    def descriptor(self, page_url: str, resolved: Resolved, *, title: str | None = None,
                   duration_s: float | None = None, related: tuple[str, ...] = (),
                   related_source: str | None = None, related_error: str | None = None) -> MediaDescriptor:
        """Choose the format to measure and describe the video; PageError ``no_format`` when none fits."""
        info = resolved.info
        s = self.ctx.settings
        record_of = functools.partial(extractor_record, resolver=resolved.resolver, version=resolved.version,
                                      player_client=resolved.player_client, warnings=resolved.warnings, info=info,
                                      format_choice=s.media_format, runtime=resolved.runtime,
                                      client_facts=resolved.client_facts)
        try:
            choice = choose(info.get("formats") or [], s.media_format)
        except NoFormat as exc:
            kind = "drm" if _drm_only(info.get("formats") or []) else "no_format"
            raise PageError(f"{self.NAME}: {exc}", kind=kind, extractor=record_of()) from exc
        record = record_of(choice=choice)
        if related_source:
            record["related_source"] = related_source
        if related_error:
            record["related_error"] = related_error
        streams = choice.streams()
        known, learned = succeeded_with(resolved.manifest_attempts, info.get("formats") or [])
        if known:  # the manifest is asked first as yt-dlp's own request succeeded (its log says how)
            record["ytdlp_manifest_requests"] = [t or "none" for t in resolved.manifest_attempts]
            streams = tuple(dataclasses.replace(x, impersonate=x.impersonate or learned) if x.kind == "hls" else x
                            for x in streams)
        duration = info.get("duration") if duration_s is None else duration_s
        return MediaDescriptor(
            page_url=page_url, video_id=str(info.get("id") or self.video_id(page_url) or ""),
            title=title if title is not None else info.get("title"), streams=streams,
            duration_s=float(duration) if isinstance(duration, (int, float)) else None, related=related,
            extra={"extractor": record})

    def related_or_note(self, fetch: Callable[[], Iterable[str]]) -> tuple[tuple[str, ...], str | None]:
        """Run a related-videos lookup; its failure is logged and noted, never the video's outcome.

        After the API's ``quotaExceeded`` no related lookup is made for the rest of the run: one warning line,
        and every later video notes why (``related_error``).
        """
        if not self.ctx.settings.related:
            return (), None
        if self.quota_stop:
            return (), self.quota_stop
        try:
            return tuple(fetch()), None
        except QuotaExceeded as exc:
            self.quota_stop = f"quotaExceeded: related lookups stopped for this run ({exc})"
            log.warning("%s: the API quota is exceeded: no more related lookups in this run (%s)", self.NAME, exc)
            return (), self.quota_stop
        except (ApiError, ResolverError, PageError) as exc:
            log.warning("%s: related videos not available: %s", self.NAME, exc)
            return (), str(exc)
