"""Format choice over yt-dlp-shaped lists: the lab's recordings and small hand-made lists."""

from __future__ import annotations

import pytest

from pytomo.lab.platforms import recordings
from pytomo.services.formats import NoFormat, choose, delivery, usable


def _recorded(video_id: str) -> list[dict]:
    for name in ("youtube", "dailymotion"):
        for v in recordings(name)["videos"]:
            if v["id"] == video_id:
                return v["ytdlp"]["info"]["formats"]
    raise KeyError(video_id)


def test_player_pairs_the_best_1080p_video_with_audio_of_its_container():
    c = choose(_recorded("LabSunrise1"))
    # 2160p is above the cap; at 1080p the avc1 video wins over vp9; m4a goes with mp4
    assert c.format_id == "137+140"
    assert [s.kind for s in c.streams()] == ["video", "audio"]
    assert c.streams()[0].url == "{media:lab-unlimited}"
    assert c.streams()[0].bitrate_bps == pytest.approx(4_012_700)


def test_player_cap_best_worst_and_progressive():
    formats = _recorded("LabSunrise1")
    assert choose(formats, "720p").format_id == "18"  # the only format at or under 720p
    assert choose(formats, "best").format_id == "313+251"  # webm video: webm audio
    assert choose(formats, "worst").format_id == "18"
    assert choose(formats, "progressive").format_id == "18"
    assert choose(formats, "248+251").format_id == "248+251"
    assert choose(formats, "144p").rule.endswith("(none fits: the smallest)")


def test_progressive_only_list_picks_the_highest_muxed_file():
    c = choose(_recorded("LabCityTL02"))
    assert c.format_id == "22" and c.audio is None
    assert c.streams()[0].kind == "progressive" and c.streams()[0].container == "mp4"


def test_hls_only_gives_the_master_playlist():
    c = choose(_recorded("LabHlsOnl05"))
    (stream,) = c.streams()
    assert c.format_id == "94"
    assert stream.kind == "hls" and stream.url == "{cache:lab-hls}"


def test_direct_formats_are_preferred_to_manifests():
    assert choose(_recorded("x8lab02")).format_id == "http-380-0"
    assert choose(_recorded("x8lab01")).streams()[0].kind == "hls"


def test_drm_storyboards_and_unknown_protocols_are_not_measurable():
    with pytest.raises(NoFormat, match="no measurable format"):
        choose(_recorded("LabDrmOnl06"))
    odd = [{"format_id": "sb", "protocol": "mhtml", "ext": "mhtml", "url": "u"},
           {"format_id": "i", "protocol": "ism", "url": "u"},
           {"format_id": "dashy", "protocol": "http_dash_segments", "url": "u", "fragments": [{"url": "a"}]}]
    assert usable(odd) == []
    with pytest.raises(NoFormat, match="not offered"):
        choose(_recorded("LabSunrise1"), "999")


def test_unknown_codecs_count_as_muxed_and_audio_only_lists_have_no_video():
    generic = [{"format_id": "mp4", "protocol": "http", "url": "http://x/v.mp4", "ext": "mp4"}]
    assert choose(generic).streams()[0].kind == "progressive"
    audio = [{"format_id": "140", "protocol": "https", "url": "u", "vcodec": "none", "acodec": "mp4a.40.2"}]
    with pytest.raises(NoFormat, match="no format with video"):
        choose(audio)
    video_only = [{"format_id": "137", "protocol": "https", "url": "u", "vcodec": "avc1", "acodec": "none"}]
    with pytest.raises(NoFormat):
        choose(video_only)  # a player cannot play video without its audio


def test_delivery_of_dash_needs_an_mpd():
    assert delivery({"protocol": "http_dash_segments", "manifest_url": "http://x/m.mpd"}) == "dash"
    assert delivery({"protocol": "http_dash_segments", "url": "http://x/v"}) is None
    assert delivery({"protocol": "m3u8_native", "url": "http://x/v.m3u8"}) == "hls"
