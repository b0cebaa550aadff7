"""The ``dailymotion`` service: seeds and related videos from the public REST API, media (HLS) through yt-dlp."""

from __future__ import annotations

import logging
from urllib.parse import quote

from pytomo.errors import PageError, UsageError
from pytomo.results import MediaDescriptor
from pytomo.services.platform import PlatformService
from pytomo.services.resolver import Resolved
from pytomo.services.webapi import ApiError, QuotaExceeded, get_json
from pytomo.settings import DailymotionSettings

log = logging.getLogger(__name__)

API_LIMIT_MAX = 100  # the API's largest ``limit``
SORT_BY_FRAME = {"today": "visited-today", "week": "visited-week", "month": "visited-month", "all_time": "visited"}
# stream fields of the video object (partner access) and the picture height their names stand for
STREAM_FIELDS = (("stream_h264_ld_url", 240), ("stream_h264_url", 380), ("stream_h264_hq_url", 480),
                 ("stream_h264_hd_url", 720), ("stream_h264_hd1080_url", 1080))
_ID = r"(?P<id>x[a-z0-9]{4,})"


def video_url(video_id: str) -> str:
    """The canonical page URL of a video id."""
    return f"https://www.dailymotion.com/video/{video_id}"


def formats_from_api(video: dict) -> list[dict]:
    """The stream fields of an API video object as yt-dlp-shaped formats (for ``formats.choose``)."""
    out: list[dict] = []
    hls = video.get("stream_hls_url")
    if isinstance(hls, str) and hls:
        out.append({"format_id": "api-hls", "protocol": "m3u8_native", "url": hls, "manifest_url": hls, "ext": "mp4"})
    for name, height in STREAM_FIELDS:
        url = video.get(name)
        if isinstance(url, str) and url:
            out.append({"format_id": name.removeprefix("stream_").removesuffix("_url"),
                        "protocol": "https" if url.startswith("https:") else "http", "url": url, "ext": "mp4",
                        "vcodec": "avc1", "acodec": "mp4a", "height": height})
    return out


class DailymotionService(PlatformService):
    """Dailymotion video pages (``/video/ID``, ``/embed/video/ID``, ``dai.ly/ID``, the geo player's ``video=``)."""

    NAME = "dailymotion"
    LABEL = "Dailymotion"
    EXTRACTOR_KEY = "dailymotion"
    SETTINGS = DailymotionSettings
    CANONICAL = "https://www.dailymotion.com/video/{id}"
    URL_PATTERNS = (
        rf"^https?://(?:www\.|touch\.)?dailymotion\.com/(?:embed/)?video/{_ID}(?![a-z0-9])",
        rf"^https?://dai\.ly/{_ID}(?![a-z0-9])",
        rf"^https?://geo\.dailymotion\.com/player(?:/\w+)?\.html\?(?:[^#]*&)?video={_ID}(?![a-z0-9])",
    )
    TESTS = (("https://www.dailymotion.com/video/x8abcd1", "x8abcd1"),
             ("http://www.dailymotion.com/video/x2b4f6h_some-title_news", "x2b4f6h"),
             ("https://www.dailymotion.com/embed/video/x8abcd1?autoplay=1", "x8abcd1"),
             ("https://dai.ly/x8abcd1", "x8abcd1"),
             ("https://geo.dailymotion.com/player/xabc.html?video=x8abcd1", "x8abcd1"))

    @property
    def api_base(self) -> str:
        """The REST API base URL (the lab's recording when the lab runs)."""
        return self.ctx.settings.dailymotion_api_base_url

    def _api(self, path: str, **params: object) -> dict:
        token = self.ctx.settings.dailymotion_access_token
        headers = {"Authorization": f"Bearer {token}"} if token else None
        return get_json(self.ctx.http, self.api_base, path, params, what="Dailymotion API", headers=headers)

    def _list_ids(self, path: str, wanted: int, **params: object) -> list[str]:
        """Video ids over the API's pages (``page``/``has_more``) until ``wanted`` are found."""
        ids: list[str] = []
        page = 1
        while len(ids) < wanted:
            data = self._api(path, fields="id", limit=min(API_LIMIT_MAX, wanted), page=page, **params)
            ids += [str(v["id"]) for v in data.get("list") or () if isinstance(v, dict) and v.get("id")
                    and str(v["id"]) not in ids]
            if not data.get("has_more") or not data.get("list"):
                break
            page += 1
        return ids[:wanted]

    def _seeds(self, time_frame: str, max_results: int) -> list[str]:
        sort = self.ctx.settings.dailymotion_sort or SORT_BY_FRAME[time_frame]
        try:
            ids = self._list_ids("/videos", max_results, sort=sort)
        except ApiError as exc:
            if exc.status == 400:
                raise UsageError(f"the Dailymotion API refused the list: {exc}") from exc
            kind = "quota_exceeded" if isinstance(exc, QuotaExceeded) else "api"
            raise PageError(f"cannot get the Dailymotion seeds: {exc}", stage="seeds", kind=kind) from exc
        self.seed_source = f"chart:dailymotion-api:sort={sort}"
        log.info("dailymotion seeds: %d videos sorted by %s", len(ids), sort)
        return [video_url(i) for i in ids]

    def _resolve(self, page_url: str) -> MediaDescriptor:
        vid = self.video_id(page_url) or ""
        if self.ctx.settings.dailymotion_media == "api":
            resolved = self._from_api(vid)
        else:
            resolved = self.resolve_info(page_url)
        related, error = self.related_or_note(lambda: self._related(vid))
        return self.descriptor(page_url, resolved, related=related, related_error=error,
                               related_source="dailymotion-api" if self.ctx.settings.related else None)

    def _from_api(self, vid: str) -> Resolved:
        fields = ["id", "title", "duration", "stream_hls_url", *(name for name, _h in STREAM_FIELDS)]
        try:
            video = self._api(f"/video/{quote(vid)}", fields=",".join(fields))
        except ApiError as exc:
            kind = {403: "sign_in_required", 404: "unavailable"}.get(exc.status or 0, "api")
            raise PageError(f"{self.NAME}: {exc}", kind=kind) from exc
        info = {"id": video.get("id") or vid, "title": video.get("title"), "duration": video.get("duration"),
                "extractor_key": "DailymotionAPI", "formats": formats_from_api(video)}
        return Resolved(info=info, resolver="dailymotion-api", version=None)

    def _related(self, vid: str) -> list[str]:
        wanted = self.ctx.settings.max_per_page
        if wanted <= 0 or not vid:
            return []
        return [video_url(i) for i in self._list_ids(f"/video/{quote(vid)}/related", wanted) if i != vid]
