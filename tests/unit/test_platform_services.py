"""URL forms of the youtube and dailymotion plugins, and how extractor messages are classified."""

from __future__ import annotations

import pytest

from pytomo.services import for_url
from pytomo.services.dailymotion import DailymotionService, formats_from_api
from pytomo.services.formats import choose
from pytomo.services.generic import GenericService
from pytomo.services.resolver import YtDlpResolver, _Collector, classify, missing_format_warnings
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
    ("[youtube] abc: Private video. Sign in if you've been granted access to this video", "sign_in_required"),
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


def test_dailymotion_stream_fields_become_formats():
    formats = formats_from_api({"stream_hls_url": "http://x/m.m3u8", "stream_h264_url": "https://x/380.mp4",
                                "stream_h264_hd1080_url": "https://x/1080.mp4", "stream_h264_hd_url": None})
    assert [f["format_id"] for f in formats] == ["api-hls", "h264", "h264_hd1080"]
    assert choose(formats).format_id == "h264_hd1080"
    assert choose(formats, "480p").format_id == "h264"
