"""URL forms of the youtube and dailymotion plugins, and how extractor messages are classified."""

from __future__ import annotations

import io
import json
import logging
from datetime import date

import pytest

from pytomo.errors import BLOCKED_STATUSES, BlockedClient, HttpStatusError
from pytomo.services import for_url
from pytomo.services.dailymotion import DailymotionService, formats_from_api
from pytomo.services.formats import choose
from pytomo.services.generic import GenericService
from pytomo.services.jsruntime import age_days, warn_if_stale
from pytomo.services.platform import clients_in
from pytomo.services.resolver import YtDlpResolver, _Collector, classify, missing_format_warnings
from pytomo.services.webapi import ApiError, QuotaExceeded, get_json
from pytomo.services.youtube import YouTubeService


@pytest.mark.parametrize("url", [
    "https://www.youtube.com/feed/trending",
    "https://www.youtube.com/watch?v=short",
    "https://www.youtube.com/watch?v=dQw4w9WgXcQQ",  # 12 characters
    "https://www.youtube.com.example.org/watch?v=dQw4w9WgXcQ",
    "https://www.youtube.com/channel/UCabcdefghijk/videos",
    "https://www.youtube.com/playlist?list=PL123",
])
def test_youtube_refuses_what_is_not_a_video_page(url):
    assert not YouTubeService.suitable(url)
    assert for_url(url) is GenericService


@pytest.mark.parametrize("url", ["https://www.dailymotion.com/user/xabc", "https://www.dailymotion.com/video/",
                                 "https://dailymotion.com.example.org/video/x8abcd1"])
def test_dailymotion_refuses_what_is_not_a_video_page(url):
    assert not DailymotionService.suitable(url)


def test_canonical_urls():
    assert YouTubeService.canonical_url(YouTubeService.video_id("https://youtu.be/dQw4w9WgXcQ")) == (
        "https://www.youtube.com/watch?v=dQw4w9WgXcQ")
    assert DailymotionService.canonical_url("x8abcd1") == "https://www.dailymotion.com/video/x8abcd1"


@pytest.mark.parametrize("message, kind", [
    ("[youtube] abc: Sign in to confirm you’re not a bot. Use --cookies-from-browser", "bot_check"),
    ("[youtube] abc: Sign in to confirm you're not a bot", "bot_check"),
    ("[youtube] abc: Sign in to confirm your age. This video may be inappropriate for some users.", "age_gate"),
    ("[dailymotion] x: This video is not available from your location due to geo restriction", "geo_blocked"),
    ("[youtube] abc: Private video. Sign in if you've been granted access to this video", "private"),
    ("[youtube] abc: All player responses are invalid. Your IP is likely being blocked by Youtube", "ip_blocked"),
    ("[youtube] abc: The uploader has not made this video available in your country", "geo_blocked"),
    ("[youtube] abc: This content isn't available, try again later. The current session has been rate-limited",
     "rate_limited"),
    ("[youtube] abc: This video is DRM protected", "drm"),
    ("[youtube] abc: Join this channel to get access to members-only content", "sign_in_required"),
    ("[youtube] abc: Video unavailable. This video has been removed by the uploader", "unavailable"),
    ("[youtube] abc: Requested format is not available", "no_format"),
    ("Unable to download API page: HTTP Error 429: Too Many Requests", "rate_limited"),
    ("Unable to download webpage: <urlopen error timed out>", "network"),
    ("Something new and unheard of", "extractor"),
])
def test_extractor_errors_are_classified(message, kind):
    assert classify(message) == kind


def test_missing_format_warnings_are_picked_out():
    warnings = ["[youtube] a: n challenge solving failed: Some formats may be missing. Ensure ...",
                "[youtube] a: Some web client https formats have been skipped as they are missing a url.",
                "[generic] Falling back on generic information extractor"]
    assert missing_format_warnings(warnings) == warnings[:2]


def test_ytdlp_parameters_are_the_documented_ones():
    p = YtDlpResolver(socket_timeout_s=7, proxy="http://127.0.0.1:3128", player_client=("tv", "web")).params(
        _Collector())
    assert p["socket_timeout"] == 7 and p["proxy"] == "http://127.0.0.1:3128"
    assert p["extractor_args"] == {"youtube": {"player_client": ["tv", "web"]}}
    assert p["noplaylist"] is True and p["skip_download"] is True and "format" not in p
    direct = YtDlpResolver().params(_Collector())
    assert "extractor_args" not in direct and direct["proxy"] == ""
    assert direct["remote_components"] == [] and set(direct["js_runtimes"]) == {"deno"}
    pinned = YtDlpResolver(js_runtimes={"deno": {"path": "/opt/deno"}}).params(_Collector())
    assert pinned["js_runtimes"] == {"deno": {"path": "/opt/deno"}}


def test_the_clients_really_used_come_from_the_media_urls():
    formats = [{"url": "https://r1.googlevideo.com/videoplayback?itag=18&c=WEB&n=x"},
               {"url": "https://r2.googlevideo.com/videoplayback?c=ANDROID_VR&itag=140"},
               {"manifest_url": "https://manifest.googlevideo.com/api/manifest/hls_variant/expire/1/c/IOS/id/x"},
               {"url": "https://cdn.example/v.mp4"}, None]
    assert clients_in(formats) == ["ANDROID_VR", "IOS", "WEB"]


def test_ytdlp_age_and_the_stale_warning(caplog):
    assert age_days("2026.10.26", date(2026, 12, 1)) == 36
    assert age_days("2026.08.19.232310", date(2026, 12, 1)) == 104
    assert age_days("unknown", date(2026, 12, 1)) is None
    with caplog.at_level(logging.WARNING):
        assert warn_if_stale("2026.10.26", date(2026, 12, 1)) == 36
        assert not caplog.records
        assert warn_if_stale("2026.08.19", date(2026, 12, 1)) == 104
    assert len(caplog.records) == 1 and "104 days old" in caplog.records[0].getMessage()


class _Raw(io.BytesIO):
    def read(self, n=-1, decode_content=True):
        return super().read(n)


class _Resp:
    def __init__(self, status: int, body: dict) -> None:
        self.status_code, self.encoding, self.raw = status, "utf-8", _Raw(json.dumps(body).encode())

    def close(self) -> None:
        pass


class _Http:
    """Answers every request with one recorded Data API answer; counts the requests."""

    def __init__(self, status: int, body: dict) -> None:
        self.status, self.body, self.calls = status, body, 0

    def request(self, method, url, **kw):
        self.calls += 1
        return _Resp(self.status, self.body)


_QUOTA = {"error": {"code": 403, "message": "The request cannot be completed because you have exceeded your "
                    "<a href=\"/youtube/v3/getting-started#quota\">quota</a>.",
                    "errors": [{"message": "quota", "domain": "youtube.quota", "reason": "quotaExceeded"}]}}


def test_quota_exceeded_is_its_own_api_error():
    with pytest.raises(QuotaExceeded) as err:
        get_json(_Http(403, _QUOTA), "https://api.example/youtube/v3", "/search", {"q": "x", "key": "SECRET"},
                 what="YouTube Data API")
    assert err.value.reason == "quotaExceeded" and "SECRET" not in str(err.value)
    forbidden = {"error": {"code": 403, "message": "no", "errors": [{"reason": "forbidden"}]}}
    with pytest.raises(ApiError) as err:
        get_json(_Http(403, forbidden), "https://api.example", "/videos", {}, what="API")
    assert not isinstance(err.value, QuotaExceeded)


def test_quota_exceeded_stops_related_lookups_for_the_run(tmp_path, caplog):
    from pytomo import settings as settings_mod
    from pytomo.services.base import ServiceContext

    http = _Http(403, _QUOTA)
    s = settings_mod.build({}, {"service": "youtube", "related": True, "youtube_api_key": "k",
                                "youtube_api_base_url": "https://api.example/youtube/v3"})
    svc = YouTubeService(ServiceContext(http=http, settings=s), resolver=YtDlpResolver())
    info = {"id": "abcdefghijk", "title": "t", "tags": ["a"]}
    with caplog.at_level(logging.WARNING):
        first = svc.related_or_note(lambda: svc._related(info, "abcdefghijk", "search"))
        second = svc.related_or_note(lambda: svc._related(info, "abcdefghijk", "search"))
    assert first == second and first[0] == () and first[1].startswith("quotaExceeded: related lookups stopped")
    assert http.calls == 1  # no request after the quota was hit
    assert len([r for r in caplog.records if "quota" in r.getMessage()]) == 1  # one line


def test_a_refusal_by_the_media_host_is_blocked_client():
    err = BlockedClient(stage="download", status=403, url="https://cdn.example/master.m3u8")
    assert isinstance(err, HttpStatusError) and err.kind == "blocked_client" and err.stage == "download"
    assert str(err) == "the media host refused the client: HTTP 403 from https://cdn.example/master.m3u8"
    assert err.fields["status"] == 403 and BLOCKED_STATUSES == (401, 403, 429)


def test_dailymotion_stream_fields_become_formats():
    formats = formats_from_api({"stream_hls_url": "http://x/m.m3u8", "stream_h264_url": "https://x/380.mp4",
                                "stream_h264_hd1080_url": "https://x/1080.mp4", "stream_h264_hd_url": None})
    assert [f["format_id"] for f in formats] == ["api-hls", "h264", "h264_hd1080"]
    assert choose(formats).format_id == "h264_hd1080"
    assert choose(formats, "480p").format_id == "h264"
