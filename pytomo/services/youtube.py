"""The ``youtube`` service: watch URLs resolved through yt-dlp (or its recordings); seeds from the Data API v3."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from pytomo.errors import PageError, UsageError
from pytomo.results import MediaDescriptor, utc_now
from pytomo.services.platform import PlatformService
from pytomo.services.resolver import ResolverError
from pytomo.services.webapi import ApiError, QuotaExceeded, get_json
from pytomo.settings import YouTubeSettings

log = logging.getLogger(__name__)

API_PAGE_MAX = 50  # maxResults of videos.list, search.list and playlistItems.list
FRAME_DAYS = {"today": 1, "week": 7, "month": 30, "all_time": None}
_ID = r"(?P<id>[\w-]{11})"
_KEY_REASONS = ("keyInvalid", "keyExpired", "API_KEY_INVALID", "accessNotConfigured", "forbidden")


def watch_url(video_id: str) -> str:
    """The canonical watch URL of a video id."""
    return f"https://www.youtube.com/watch?v={video_id}"


class YouTubeService(PlatformService):
    """YouTube watch pages in their usual forms (watch?v=, youtu.be/, shorts/, embed/, live/, m. and music.)."""

    NAME = "youtube"
    LABEL = "YouTube"
    EXTRACTOR_KEY = "youtube"
    SETTINGS = YouTubeSettings
    CANONICAL = "https://www.youtube.com/watch?v={id}"
    URL_PATTERNS = (
        rf"^https?://(?:www\.|m\.|music\.)?youtube\.com/watch/?\?(?:[^#]*&)?v={_ID}(?![\w-])",
        rf"^https?://youtu\.be/{_ID}(?![\w-])",
        rf"^https?://(?:www\.|m\.)?youtube\.com/(?:shorts|embed|live|v)/{_ID}(?![\w-])",
        rf"^https?://(?:www\.)?youtube-nocookie\.com/embed/{_ID}(?![\w-])",
    )
    TESTS = (("https://www.youtube.com/watch?v=dQw4w9WgXcQ", "dQw4w9WgXcQ"),
             ("https://www.youtube.com/watch?feature=share&v=a_b-c1d2e3f&t=10", "a_b-c1d2e3f"),
             ("http://youtu.be/dQw4w9WgXcQ?si=x", "dQw4w9WgXcQ"),
             ("https://m.youtube.com/shorts/AbCdEfGhIj0", "AbCdEfGhIj0"),
             ("https://www.youtube.com/embed/AbCdEfGhIj0?autoplay=1", "AbCdEfGhIj0"),
             ("https://www.youtube-nocookie.com/embed/AbCdEfGhIj0", "AbCdEfGhIj0"),
             ("https://music.youtube.com/watch?v=AbCdEfGhIj0&list=RD", "AbCdEfGhIj0"))

    def player_client(self) -> tuple[str, ...]:
        """The yt-dlp ``player_client`` extractor argument (``--youtube-client``)."""
        return tuple(self.ctx.settings.youtube_player_client)

    # endpoints
    @property
    def api_base(self) -> str:
        """The Data API v3 base URL (the lab's recording when the lab runs)."""
        return self.ctx.settings.youtube_api_base_url

    @property
    def api_key(self) -> str:
        """The Data API key, empty when none is configured."""
        return self.ctx.settings.youtube_api_key

    def _api(self, path: str, **params: object) -> dict:
        return get_json(self.ctx.http, self.api_base, path, {**params, "key": self.api_key},
                        what="YouTube Data API")

    def _api_ids(self, path: str, wanted: int, pick: Callable[[dict], str | None], **params: object) -> list[str]:
        """Video ids over the result pages (``nextPageToken``) until ``wanted`` are found."""
        ids: list[str] = []
        token = None
        while len(ids) < wanted:
            data = self._api(path, maxResults=min(API_PAGE_MAX, wanted - len(ids)), pageToken=token, **params)
            ids += [i for i in (pick(item) for item in data.get("items") or ()) if i and i not in ids]
            token = data.get("nextPageToken")
            if not token or not data.get("items"):
                break
        return ids[:wanted]

    # seeds
    def _seeds(self, time_frame: str, max_results: int) -> list[str]:
        s = self.ctx.settings
        try:
            ids, source = self._seed_ids(time_frame, max_results)
        except ApiError as exc:
            if exc.status in (400, 401, 403) and exc.reason in _KEY_REASONS:
                raise UsageError(f"the YouTube Data API refused the key: {exc}") from exc
            kind = "quota_exceeded" if isinstance(exc, QuotaExceeded) else "api"
            raise PageError(f"cannot get the YouTube seeds: {exc}", stage="seeds", kind=kind) from exc
        self.seed_source = source
        log.info("youtube seeds: %d videos from %s (time frame %s, region %s)", len(ids), source, time_frame,
                 s.youtube_region or "-")
        return [watch_url(i) for i in ids]

    def _seed_ids(self, time_frame: str, n: int) -> tuple[list[str], str]:
        s = self.ctx.settings
        if s.youtube_playlist:
            if self.api_key:
                ids = self._api_ids("/playlistItems", n, lambda it: (it.get("contentDetails") or {}).get("videoId"),
                                    part="contentDetails", playlistId=s.youtube_playlist)
                return ids, f"playlist:youtube-api:{s.youtube_playlist}"
            url = f"https://www.youtube.com/playlist?list={s.youtube_playlist}"
            return self._flat_ids(url, n), f"playlist:yt-dlp:{s.youtube_playlist}"
        if self.api_key and not s.youtube_search and time_frame == "today":
            ids = self._api_ids("/videos", n, lambda it: it.get("id"), part="id", chart="mostPopular",
                                regionCode=s.youtube_region, videoCategoryId=s.youtube_category or None)
            return ids, ("chart:youtube-api:mostPopular" + (f":{s.youtube_region}" if s.youtube_region else "")
                         + (f":category={s.youtube_category}" if s.youtube_category else ""))
        if self.api_key:
            days = FRAME_DAYS[time_frame]
            after = (utc_now() - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ") if days else None
            ids = self._api_ids("/search", n, lambda it: (it.get("id") or {}).get("videoId"), part="id",
                                type="video", order="viewCount", q=s.youtube_search, publishedAfter=after,
                                regionCode=s.youtube_region)
            return ids, f"search:youtube-api:order=viewCount:{time_frame}" + (
                f":{s.youtube_search}" if s.youtube_search else "")
        if s.youtube_search:
            return self._flat_ids(f"ytsearch{n}:{s.youtube_search}", n), f"search:yt-dlp:{s.youtube_search}"
        raise UsageError("YouTube has no public popular list any more: set an API key (--youtube-api-key or "
                         "PYTOMO_YOUTUBE_API_KEY) for videos.list?chart=mostPopular, or --youtube-search QUERY, or "
                         "--youtube-playlist ID, or give watch URLs")

    def _flat_ids(self, url: str, n: int) -> list[str]:
        try:
            entries = self.resolver.listing(url, n)
        except ResolverError as exc:
            raise PageError(f"cannot list {url}: {exc}", stage="seeds", kind=exc.kind) from exc
        ids = []
        for e in entries:
            vid = e.get("id") if isinstance(e.get("id"), str) else self.video_id(str(e.get("url") or ""))
            if vid and self.suitable(watch_url(vid)) and vid not in ids:
                ids.append(vid)
        return ids

    # pages
    def _resolve(self, page_url: str) -> MediaDescriptor:
        resolved = self.resolve_info(page_url)
        info = resolved.info
        vid = str(info.get("id") or self.video_id(page_url))
        how = self.ctx.settings.youtube_related
        related, error = self.related_or_note(lambda: self._related(info, vid, how))
        source = None if how == "none" or not self.ctx.settings.related else (
            f"{how}:{'api' if self.api_key else self.resolver.name}")
        return self.descriptor(page_url, resolved, related=related, related_source=source, related_error=error)

    def _related(self, info: dict, vid: str, how: str) -> list[str]:
        """Related videos from what the data still offers: a search by tags or title, or the channel's uploads."""
        wanted = self.ctx.settings.max_per_page
        if how == "none" or wanted <= 0:
            return []
        if how == "channel":
            channel = info.get("channel_id")
            if not channel:
                return []
            if self.api_key:
                data = self._api("/channels", part="contentDetails", id=channel)
                uploads = next((((it.get("contentDetails") or {}).get("relatedPlaylists") or {}).get("uploads")
                                for it in data.get("items") or ()), None)
                ids = self._api_ids("/playlistItems", wanted + 1,
                                    lambda it: (it.get("contentDetails") or {}).get("videoId"),
                                    part="contentDetails", playlistId=uploads) if uploads else []
            else:
                ids = self._flat_ids(f"https://www.youtube.com/channel/{channel}/videos", wanted + 1)
        else:
            tags = [t for t in info.get("tags") or () if isinstance(t, str)][:3]
            query = " ".join(tags) or str(info.get("title") or "")
            if not query:
                return []
            if self.api_key:
                ids = self._api_ids("/search", wanted + 1, lambda it: (it.get("id") or {}).get("videoId"),
                                    part="id", type="video", q=query, regionCode=self.ctx.settings.youtube_region)
            else:
                ids = self._flat_ids(f"ytsearch{wanted + 1}:{query}", wanted + 1)
        return [watch_url(i) for i in ids if i != vid][:wanted]
