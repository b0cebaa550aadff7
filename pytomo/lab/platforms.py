"""Recorded platforms in the lab: the YouTube Data API v3, the Dailymotion REST API and a yt-dlp info source.

Served from hand-written recordings (``pytomo/lab/recordings/*.json``) on one loopback host, with the media URLs
filled in to point at the lab's own redirectors and cache servers, so that ``-s youtube --lab`` and
``-s dailymotion --lab`` measure real media end to end without the internet. Routes (``PLATFORMS_HOST``):

  /youtube/v3/videos?chart=mostPopular|id=...   /youtube/v3/search?q=&order=&publishedAfter=
  /youtube/v3/playlistItems?playlistId=          /youtube/v3/channels?id=
  /dailymotion/videos?sort=&fields=&limit=&page= /dailymotion/video/ID?fields=  /dailymotion/video/ID/related
  /ytdlp/info?url=PAGE_OR_LISTING_URL[&flat=1]   (a recording of what yt-dlp returned, logged or raised)
"""

from __future__ import annotations

import json
import math
import re
import time
from datetime import timedelta
from typing import Any
from urllib.parse import SplitResult, parse_qs

from pytomo.lab.http import PARTS, _Handler, part_path
from pytomo.lab.recorded import recordings
from pytomo.results import utc_now

Lab = Any  # the running pytomo.lab.runtime.Lab, not imported: the runtime imports this module

PLATFORMS_IP = "127.77.0.5"
PLATFORMS_HOST = "platforms.lab.pytomo.test"
# {media:V} {cache:V} {segment:V:PATH} {video-part:V} {audio-part:V} {available_in:V:SECONDS}
_PLACEHOLDER = re.compile(r"\{(media|cache|segment|video-part|audio-part):([\w-]+)(?::([\w./-]+))?\}"
                          r"|\{(available_in):([\w-]+):(\d+)\}")
_YT_SEARCH = re.compile(r"^ytsearch(\d*):(.*)$", re.S)
# Page URLs as yt-dlp takes them, parsed here on purpose without the plugins' URL_PATTERNS: the lab must not agree
# with a plugin by construction (tests/unit/test_services.py checks the patterns against written examples).
_YT_PAGE = re.compile(r"^https?://(?:(?:www|m|music)\.)?youtube\.com/watch\?(?:[^#]*&)?v=([A-Za-z0-9_-]{11})(?:[&#]|$)"
                      r"|^https?://youtu\.be/([A-Za-z0-9_-]{11})(?:[?#]|$)")
_DM_PAGE = re.compile(r"^https?://(?:www\.)?dailymotion\.com/video/(x[a-z0-9]+)(?:[_?#/]|$)")
_DM_FIELDS = ("id", "title", "owner", "channel", "tags", "duration", "created_time", "url", "views_total",
              "views_last_day", "views_last_week", "views_last_month")
_DM_SORTS = {"visited-today": "views_last_day", "visited-week": "views_last_week",
             "visited-month": "views_last_month", "visited": "views_total"}


def dns_records() -> dict[str, list[str]]:
    """The lab DNS records of the recorded platforms' host."""
    return {PLATFORMS_HOST: [PLATFORMS_IP]}


def endpoints(lab: Lab) -> dict[str, str]:
    """Base URLs of the recorded APIs and of the info source in a running lab."""
    base = f"http://{PLATFORMS_HOST}:{lab.platforms.port}"
    return {"youtube_api": f"{base}/youtube/v3", "dailymotion_api": f"{base}/dailymotion",
            "info_source": f"{base}/ytdlp/info"}


class UnknownLabVideo(KeyError):
    """A recording points at a lab video that the running scenario does not have."""


def fill(value: Any, lab: Lab, *, serving: bool = False) -> Any:
    """A recording with its placeholders replaced by this lab's URLs and times (see recordings/youtube.json).

    ``{available_in:V:S}`` becomes the UNIX time ``ceil(now) + S`` (a number when it is the whole string); when
    ``serving`` (the recording is given out), V's cache server refuses V until then."""
    now_s = time.time()

    def sub(m: re.Match) -> str:
        return str(_filled(m, lab, now_s, serving))

    def walk(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        if not isinstance(v, str):
            return v
        whole = _PLACEHOLDER.fullmatch(v)
        if whole and whole.group(4) == "available_in":
            return _filled(whole, lab, now_s, serving)
        return _PLACEHOLDER.sub(sub, v)

    return walk(value)


def _filled(m: re.Match, lab: Lab, now_s: float, serving: bool) -> str | int:
    kind, vid, rest = m.groups()[:3] if m.group(1) else m.groups()[3:]
    video = lab.scenario.video(vid)
    if video is None:
        raise UnknownLabVideo(vid)
    if kind == "media":
        return lab.media_url(vid)
    if kind == "available_in":
        at_s = math.ceil(now_s) + int(rest or 0)  # as yt-dlp computes it: ceil(now) + the ad's length, in s
        if serving and video.server in lab.caches:
            lab.caches[video.server].available.set(vid, at_s)
        return at_s
    cache_url = lab.cache_url(video)
    if kind == "cache":
        return cache_url
    if kind in ("video-part", "audio-part"):
        part = kind.removesuffix("-part")
        if not video.pair or part not in PARTS:
            raise UnknownLabVideo(vid)
        scheme, _, netloc = cache_url.split("/", 3)[:3]
        return f"{scheme}//{netloc}{part_path(video, part)}"
    return cache_url.rsplit("/", 1)[0] + f"/{rest}"


def playable(entry: dict, lab: Lab) -> bool:
    """True when every lab video the entry's recording points at is in the running scenario."""
    try:
        fill(entry.get("ytdlp") or {}, lab)
        fill(entry.get("streams") or {}, lab)
    except UnknownLabVideo:
        return False
    return True


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


def _yt_matches(entry: dict, query: str) -> int:
    sn = entry["snippet"]
    hay = _words(" ".join([sn.get("title", ""), sn.get("description", ""), *sn.get("tags", [])]))
    return len(_words(query) & hay)


def _published(hours: float) -> str:
    return (utc_now() - timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _yt_video_resource(entry: dict, parts: set[str]) -> dict:
    out: dict[str, Any] = {"kind": "youtube#video", "etag": f"lab-{entry['id']}", "id": entry["id"]}
    if "snippet" in parts:
        out["snippet"] = {**entry["snippet"], "publishedAt": _published(entry["published_hours_ago"]),
                          "channelTitle": recordings("youtube")["channels"][entry["snippet"]["channelId"]]["title"]}
    if "contentDetails" in parts:
        out["contentDetails"] = entry["contentDetails"]
    if "statistics" in parts:
        out["statistics"] = {"viewCount": str(entry["views"])}
    return out


class PlatformsHandler(_Handler):
    """The recorded platforms (see the module docstring)."""

    def _json(self, status: int, data: dict) -> None:
        self._send(status, "application/json; charset=utf-8", json.dumps(data, ensure_ascii=False).encode())

    def route(self, url: SplitResult) -> None:
        q = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        path = url.path
        if path.startswith("/youtube/v3/"):
            return self._youtube(path.removeprefix("/youtube/v3/"), q)
        if path.startswith("/dailymotion/"):
            return self._dailymotion(path.removeprefix("/dailymotion"), q)
        if path == "/ytdlp/info":
            return self._info(q.get("url", ""), flat=q.get("flat") == "1")
        self._not_found()

    # YouTube Data API v3
    def _yt_error(self, status: int, reason: str, message: str) -> None:
        self._json(status, {"error": {"code": status, "message": message,
                                      "errors": [{"message": message, "domain": "global", "reason": reason}]}})

    def _youtube(self, method: str, q: dict[str, str]) -> None:
        rec = recordings("youtube")
        lab = self.server.lab
        if not q.get("key"):
            return self._yt_error(403, "forbidden", "The request is missing a valid API key.")
        if q["key"] != rec["api_key"]:
            return self._yt_error(400, "keyInvalid", "API key not valid. Please pass a valid API key.")
        try:
            limit = max(0, min(50, int(q.get("maxResults") or 5)))
            offset = int(q.get("pageToken") or 0)
        except ValueError:
            return self._yt_error(400, "invalidParameter", "maxResults and pageToken must be numbers.")
        videos = [v for v in rec["videos"] if playable(v, lab)]
        listed = [v for v in videos if not v.get("unlisted")]  # unlisted: only by id and in explicit playlists
        listing = self._yt_listing(method, q, rec, videos, listed)
        if listing is None:
            return None
        items, kind = listing
        page = items[offset:offset + limit]
        body: dict[str, Any] = {"kind": kind, "etag": "lab", "items": page,
                                "pageInfo": {"totalResults": len(items), "resultsPerPage": limit}}
        if offset + limit < len(items):
            body["nextPageToken"] = str(offset + limit)
        self._json(200, body)

    def _yt_listing(self, method: str, q: dict[str, str], rec: dict, videos: list[dict],
                    listed: list[dict]) -> tuple[list[dict], str] | None:
        """The items of one Data API list method and the response's kind; None when an error was answered."""
        if method == "videos":
            return self._yt_videos(q, videos, listed)
        if method == "search":
            return _yt_search(q, listed), "youtube#searchListResponse"
        if method == "playlistItems":
            return self._yt_playlist_items(q, rec, videos, listed)
        if method == "channels":
            items = [{"kind": "youtube#channel", "etag": f"lab-c-{c}", "id": c,
                      "contentDetails": {"relatedPlaylists": {"uploads": f"UU{c[2:]}"}}}
                     for c in (q.get("id") or "").split(",") if c in rec["channels"]]
            return items, "youtube#channelListResponse"
        self._not_found()
        return None

    def _yt_videos(self, q: dict[str, str], videos: list[dict],
                   listed: list[dict]) -> tuple[list[dict], str] | None:
        parts = set((q.get("part") or "").split(","))
        if q.get("chart") == "mostPopular":
            region = (q.get("regionCode") or "US").upper()
            category = q.get("videoCategoryId")
            charted = [v for v in listed if region in v["chart"]
                       and (not category or v["snippet"].get("categoryId") == category)]
            chosen = sorted(charted, key=lambda v: -v["views"])
        elif q.get("id"):
            ids = q["id"].split(",")
            chosen = [v for v in videos if v["id"] in ids]
        else:
            self._yt_error(400, "missingRequiredParameter", "No filter selected.")
            return None
        return [_yt_video_resource(v, parts) for v in chosen], "youtube#videoListResponse"

    def _yt_playlist_items(self, q: dict[str, str], rec: dict, videos: list[dict],
                           listed: list[dict]) -> tuple[list[dict], str] | None:
        pid = q.get("playlistId", "")
        if pid in rec["playlists"]:
            ids = rec["playlists"][pid]
        elif pid.startswith("UU") and f"UC{pid[2:]}" in rec["channels"]:  # a channel's uploads
            ids = [v["id"] for v in sorted(listed, key=lambda v: v["published_hours_ago"])
                   if v["snippet"]["channelId"] == f"UC{pid[2:]}"]
        else:
            self._yt_error(404, "playlistNotFound", "The playlist identified with the request's "
                           "playlistId parameter cannot be found.")
            return None
        known = {v["id"] for v in videos}
        items = [{"kind": "youtube#playlistItem", "etag": f"lab-p-{i}", "id": f"{pid}.{n}",
                  "contentDetails": {"videoId": i}} for n, i in enumerate(ids) if i in known]
        return items, "youtube#playlistItemListResponse"

    # Dailymotion REST API
    def _dm_error(self, status: int, kind: str, message: str) -> None:
        self._json(status, {"error": {"code": status, "message": message, "type": kind}})

    def _dm_object(self, entry: dict, fields: list[str], authorised: bool) -> dict | None:
        lab = self.server.lab
        out: dict[str, Any] = {}
        for f in fields:
            if f.startswith("stream_"):
                if not authorised:
                    return None
                out[f] = fill(entry.get("streams", {}).get(f), lab)
            elif f == "created_time":
                out[f] = int((utc_now() - timedelta(hours=entry["created_hours_ago"])).timestamp())
            elif f == "url":
                out[f] = f"https://www.dailymotion.com/video/{entry['id']}"
            elif f in _DM_FIELDS:
                out[f] = entry.get(f)
        return out

    def _dailymotion(self, path: str, q: dict[str, str]) -> None:
        rec = recordings("dailymotion")
        lab = self.server.lab
        fields = [f for f in (q.get("fields") or "id").split(",") if f]
        bad = [f for f in fields if f not in _DM_FIELDS and not f.startswith("stream_")]
        if bad:
            return self._dm_error(400, "invalid_parameter", f"`fields' parameter: unknown field: {bad[0]}")
        authorised = self.headers.get("Authorization", "") == f"Bearer {rec['access_token']}"
        videos = [v for v in rec["videos"] if playable(v, lab)]
        by_id = {v["id"]: v for v in videos}
        if m := re.fullmatch(r"/video/(\w+)", path):
            return self._dm_video(by_id.get(m.group(1)), m.group(1), fields, authorised)
        if m := re.fullmatch(r"/video/(\w+)/related", path):
            entry = by_id.get(m.group(1))
            if entry is None:
                return self._dm_error(404, "not_found", f"Object not found: video {m.group(1)}")
            chosen = [by_id[r] for r in entry.get("related", ()) if r in by_id]
        elif path == "/videos":
            found = self._dm_sorted(q, videos)
            if found is None:
                return None
            chosen = found
        else:
            return self._not_found()
        try:
            limit = max(1, min(100, int(q.get("limit") or 10)))
            page = max(1, int(q.get("page") or 1))
        except ValueError:
            return self._dm_error(400, "invalid_parameter", "`limit' and `page' must be numbers")
        objs = [self._dm_object(v, fields, authorised) for v in chosen]
        if any(o is None for o in objs):
            return self._dm_error(403, "access_forbidden", "Access to stream fields requires partner access.")
        start = (page - 1) * limit
        self._json(200, {"page": page, "limit": limit, "explicit": False, "total": len(objs),
                         "has_more": start + limit < len(objs), "list": objs[start:start + limit]})

    def _dm_video(self, entry: dict | None, video_id: str, fields: list[str], authorised: bool) -> None:
        """One video object (``/video/<id>``)."""
        if entry is None:
            return self._dm_error(404, "not_found", f"Object not found: video {video_id}")
        obj = self._dm_object(entry, fields, authorised)
        if obj is None:
            return self._dm_error(403, "access_forbidden", "Access to stream fields requires partner access.")
        return self._json(200, obj)

    def _dm_sorted(self, q: dict[str, str], videos: list[dict]) -> list[dict] | None:
        """The videos of ``/videos`` in the asked order; None when the order is refused (answered)."""
        sort = q.get("sort") or "recent"
        if sort in _DM_SORTS:
            return sorted(videos, key=lambda v: -v[_DM_SORTS[sort]])
        if sort == "trending":
            return sorted(videos, key=lambda v: v["trending_rank"])
        if sort == "recent":
            return sorted(videos, key=lambda v: v["created_hours_ago"])
        self._dm_error(400, "invalid_parameter", f"`sort' parameter: invalid value: {sort}")
        return None

    # yt-dlp info source
    def _info(self, url: str, *, flat: bool) -> None:
        yt, dm = recordings("youtube"), recordings("dailymotion")
        lab = self.server.lab
        yt_videos = [v for v in yt["videos"] if playable(v, lab)]
        yt_listed = [v for v in yt_videos if not v.get("unlisted")]
        entries: list[dict] | None = None
        listing_id = url
        if m := _YT_SEARCH.match(url):
            n = int(m.group(1) or 1)
            query = m.group(2)
            found = sorted((v for v in yt_listed if _yt_matches(v, query)), key=lambda v: -_yt_matches(v, query))
            entries, listing_id = [_flat(v) for v in found[:n]], query
        elif m := re.match(r"^https://www\.youtube\.com/playlist\?list=([\w-]+)$", url):
            ids = yt["playlists"].get(m.group(1))
            if ids is not None:
                entries = [_flat(v) for i in ids for v in yt_videos if v["id"] == i]
        elif m := re.match(r"^https://www\.youtube\.com/channel/([\w-]+)/videos$", url):
            if m.group(1) in yt["channels"]:
                entries = [_flat(v) for v in sorted(yt_listed, key=lambda v: v["published_hours_ago"])
                           if v["snippet"]["channelId"] == m.group(1)]
        if entries is not None:
            return self._json(200, {"ytdlp_version": yt["ytdlp_version"], "warnings": [], "info": {
                "_type": "playlist", "id": listing_id, "title": listing_id, "entries": entries,
                "_version": {"version": yt["ytdlp_version"]}}})
        if flat:
            return self._json(404, {"error": f"ERROR: [lab] no recorded listing for {url}"})
        vid = _page_id(_YT_PAGE, url)
        if vid is not None:
            entry = next((v for v in yt_videos if v["id"] == vid), None)
            if entry is not None:
                return self._recording(entry, _yt_info_defaults(entry, _watch_url(vid)), yt["ytdlp_version"])
        vid = _page_id(_DM_PAGE, url)
        if vid is not None:
            entry = next((v for v in dm["videos"] if v["id"] == vid and playable(v, lab)), None)
            if entry is not None:
                return self._recording(entry, _dm_info_defaults(entry), dm["ytdlp_version"])
        self._json(404, {"error": f"ERROR: Unsupported URL: {url}"})

    def _recording(self, entry: dict, defaults: dict, version: str) -> None:
        rec = fill(entry["ytdlp"], self.server.lab, serving=True)
        out = {"ytdlp_version": version, "player_client": rec.get("player_client", []),
               "warnings": rec.get("warnings", [])}
        if rec.get("log"):  # yt-dlp's screen lines (its logger's debug), as the resolver reads them
            out["log"] = rec["log"]
        if rec.get("error"):
            out["error"] = rec["error"]
        else:
            out["info"] = {**defaults, "_version": {"version": version, "repository": "yt-dlp/yt-dlp"},
                           **rec["info"]}
        self._json(200, out)


def _page_id(pattern: re.Pattern[str], url: str) -> str | None:
    """The video id in a page URL, or None."""
    m = pattern.match(url)
    return next((g for g in m.groups() if g), None) if m else None


def _watch_url(video_id: str) -> str:
    return f"https://www.youtube.com/watch?v={video_id}"


def _seconds(iso_duration: str) -> float | None:
    """An ISO 8601 duration of the Data API (``PT1H2M3S``) in seconds."""
    m = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?", iso_duration)
    return None if not m else sum(int(x or 0) * f for x, f in zip(m.groups(), (3600, 60, 1)))


def _flat(entry: dict) -> dict:
    vid = entry["id"]
    return {"_type": "url", "ie_key": "Youtube", "id": vid, "url": _watch_url(vid),
            "title": entry["snippet"]["title"]}


def _yt_info_defaults(entry: dict, page_url: str) -> dict:
    sn = entry["snippet"]
    return {"_type": "video", "id": entry["id"], "title": sn["title"], "tags": sn.get("tags", []),
            "channel_id": sn["channelId"], "channel_url": f"https://www.youtube.com/channel/{sn['channelId']}",
            "webpage_url": page_url, "duration": _seconds(entry["contentDetails"]["duration"]),
            "extractor": "youtube", "extractor_key": "Youtube"}


def _dm_info_defaults(entry: dict) -> dict:
    return {"_type": "video", "id": entry["id"], "title": entry["title"], "tags": entry.get("tags", []),
            "duration": entry.get("duration"), "webpage_url": f"https://www.dailymotion.com/video/{entry['id']}",
            "extractor": "dailymotion", "extractor_key": "Dailymotion"}


def _yt_search(q: dict[str, str], listed: list[dict]) -> list[dict]:
    """The search results (``search.list``) among the listed videos."""
    chosen = listed
    if q.get("q"):
        chosen = [v for v in chosen if _yt_matches(v, q["q"])]
    if q.get("publishedAfter"):
        chosen = [v for v in chosen if _published(v["published_hours_ago"]) >= q["publishedAfter"]]
    if q.get("order") == "viewCount":
        chosen = sorted(chosen, key=lambda v: -v["views"])
    elif q.get("q"):
        chosen = sorted(chosen, key=lambda v: -_yt_matches(v, q["q"]))
    return [{"kind": "youtube#searchResult", "etag": f"lab-s-{v['id']}",
             "id": {"kind": "youtube#video", "videoId": v["id"]}} for v in chosen]
