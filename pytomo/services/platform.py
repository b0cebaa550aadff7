"""What the youtube and dailymotion plugins share: the resolver, the format choice and the extractor record."""

from __future__ import annotations

import logging
from typing import Any

from pytomo.errors import PageError
from pytomo.results import MediaDescriptor
from pytomo.services.base import Service, ServiceContext
from pytomo.services.formats import FormatChoice, NoFormat, choose
from pytomo.services.resolver import (
    MediaResolver,
    RecordedResolver,
    Resolved,
    ResolverError,
    YtDlpResolver,
    missing_format_warnings,
)
from pytomo.services.webapi import ApiError

log = logging.getLogger(__name__)

RESOLVER_TIMEOUT_S = 15.0


def lab_endpoints(ctx: ServiceContext) -> dict[str, str] | None:
    """The recorded platforms' base URLs when the lab runs in this process (``--lab`` or ``-s lab``)."""
    if ctx.lab is None:
        return None
    from pytomo.lab.platforms import endpoints

    return endpoints(ctx.lab)


def default_resolver(ctx: ServiceContext, extractor_key: str, player_client: tuple[str, ...] = ()) -> MediaResolver:
    """Recordings when an info source is set (or the lab runs), else the yt-dlp package."""
    s = ctx.settings
    lab = lab_endpoints(ctx)
    source = s.info_source_url or (lab["info_source"] if lab else "")
    if source:
        return RecordedResolver(ctx.http, source)
    return YtDlpResolver(socket_timeout_s=max(RESOLVER_TIMEOUT_S, s.http_timeout_s), proxy=s.http_proxy,
                         player_client=player_client, extractor_key=extractor_key)


def _format_facts(f: dict | None) -> dict | None:
    if f is None:
        return None
    keys = ("format_id", "protocol", "ext", "vcodec", "acodec", "width", "height", "fps", "tbr")
    return {k: f.get(k) for k in keys if f.get(k) is not None}


def extractor_record(*, resolver: str, version: str | None, player_client: tuple[str, ...],
                     warnings: tuple[str, ...], info: dict | None = None, choice: FormatChoice | None = None,
                     format_choice: str | None = None) -> dict[str, Any]:
    """The ``videos.extractor_json`` record: who resolved the page, with what, and which format was measured."""
    record: dict[str, Any] = {
        "resolver": resolver, "ytdlp_version": version, "warnings": list(warnings),
        "missing_formats": missing_format_warnings(warnings)}
    if resolver in ("yt-dlp", "recorded"):  # the clients asked of yt-dlp; "default": its own choice
        record["player_client"] = list(player_client) or ["default"]
    if info is not None:
        record["extractor"] = info.get("extractor_key") or info.get("extractor")
        record["formats_offered"] = len(info.get("formats") or [])
    if format_choice is not None:
        record["format_choice"] = format_choice
    if choice is not None:
        record.update(format_id=choice.format_id, format_rule=choice.rule, format=_format_facts(choice.primary),
                      audio_format=_format_facts(choice.audio))
    return record


class PlatformService(Service):
    """A plugin whose pages are resolved by a MediaResolver and whose media is chosen by ``formats.choose``."""

    EXTRACTOR_KEY = ""
    CANONICAL = ""  # format string with {id}

    def __init__(self, ctx: ServiceContext, resolver: MediaResolver | None = None) -> None:
        super().__init__(ctx)
        self.resolver = resolver or default_resolver(ctx, self.EXTRACTOR_KEY, self.player_client())

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
                                      warnings=exc.warnings)
            raise PageError(f"{self.NAME}: {exc}", kind=exc.kind, extractor=record) from exc

    def descriptor(self, page_url: str, resolved: Resolved, *, title: str | None = None,
                   duration_s: float | None = None, related: tuple[str, ...] = (),
                   related_source: str | None = None, related_error: str | None = None) -> MediaDescriptor:
        """Choose the format to measure and describe the video; PageError ``no_format`` when none fits."""
        info = resolved.info
        s = self.ctx.settings
        base = dict(resolver=resolved.resolver, version=resolved.version, player_client=resolved.player_client,
                    warnings=resolved.warnings, info=info, format_choice=s.media_format)
        try:
            choice = choose(info.get("formats") or [], s.media_format)
        except NoFormat as exc:
            raise PageError(f"{self.NAME}: {exc}", kind="no_format", extractor=extractor_record(**base)) from exc
        record = extractor_record(**base, choice=choice)
        if related_source:
            record["related_source"] = related_source
        if related_error:
            record["related_error"] = related_error
        duration = info.get("duration") if duration_s is None else duration_s
        return MediaDescriptor(
            page_url=page_url, video_id=str(info.get("id") or self.video_id(page_url) or ""),
            title=title if title is not None else info.get("title"), streams=choice.streams(),
            duration_s=float(duration) if isinstance(duration, (int, float)) else None, related=related,
            extra={"extractor": record})

    def related_or_note(self, fetch) -> tuple[tuple[str, ...], str | None]:
        """Run a related-videos lookup; its failure is logged and noted, never the video's outcome."""
        if not self.ctx.settings.related:
            return (), None
        try:
            return tuple(fetch()), None
        except (ApiError, ResolverError, PageError) as exc:
            log.warning("%s: related videos not available: %s", self.NAME, exc)
            return (), str(exc)
