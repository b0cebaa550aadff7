"""The youtube and dailymotion plugins against the lab's recorded platforms: seeding, related videos, resolution,
format choice and error outcomes, without the internet; and the real yt-dlp package on lab media."""

from __future__ import annotations

import pytest

from pytomo import settings as settings_mod
from pytomo.engine.http import HttpClient
from pytomo.engine.resolve import DnsProbe, ResolverSpec, addresses
from pytomo.errors import PageError, UsageError
from pytomo.lab.platforms import endpoints
from pytomo.services.base import ServiceContext
from pytomo.services.dailymotion import DailymotionService
from pytomo.services.resolver import YtDlpResolver
from pytomo.services.webapi import ApiError, get_json
from pytomo.services.youtube import YouTubeService, watch_url


@pytest.fixture(scope="module")
def http(lab):
    dns = DnsProbe([ResolverSpec("lab", lab.dns.host, lab.dns.port)], getaddrinfo_fallback=False)
    client = HttpClient(lambda host: addresses(dns.lookup(host)), timeout_s=5.0)
    yield client
    client.close()


def _ctx(lab, http, **overrides) -> ServiceContext:
    return ServiceContext(http=http, settings=lab.layer(settings_mod.build({}, overrides)))


def _ids(urls):
    return [YouTubeService.video_id(u) or DailymotionService.video_id(u) for u in urls]


# the recorded APIs answer in their documented shapes
def test_youtube_api_errors_and_pages(lab, http):
    base = endpoints(lab)["youtube_api"]
    with pytest.raises(ApiError) as missing:
        get_json(http, base, "/videos", {"part": "id", "chart": "mostPopular"}, what="api")
    assert missing.value.status == 403 and missing.value.reason == "forbidden"
    with pytest.raises(ApiError) as bad:
        get_json(http, base, "/videos", {"part": "id", "chart": "mostPopular", "key": "wrong-key"}, what="api")
    assert bad.value.reason == "keyInvalid" and "wrong-key" not in str(bad.value) and "key=..." in str(bad.value)
    page = get_json(http, base, "/videos", {"part": "snippet,statistics", "chart": "mostPopular",
                                            "regionCode": "US", "maxResults": 2, "key": "lab-key"}, what="api")
    assert page["kind"] == "youtube#videoListResponse" and page["pageInfo"]["totalResults"] == 4
    assert page["nextPageToken"] and len(page["items"]) == 2
    views = [int(i["statistics"]["viewCount"]) for i in page["items"]]
    assert views == sorted(views, reverse=True) and page["items"][0]["snippet"]["channelTitle"]


def test_dailymotion_api_lists_and_errors(lab, http):
    base = endpoints(lab)["dailymotion_api"]
    week = get_json(http, base, "/videos", {"sort": "visited-week", "fields": "id,views_last_week", "limit": 2},
                    what="api")
    assert set(week) >= {"page", "limit", "total", "has_more", "list"} and week["has_more"] is True
    assert [v["views_last_week"] for v in week["list"]] == sorted((v["views_last_week"] for v in week["list"]),
                                                                  reverse=True)
    with pytest.raises(ApiError) as bad_sort:
        get_json(http, base, "/videos", {"sort": "loudest"}, what="api")
    assert bad_sort.value.status == 400 and bad_sort.value.reason == "invalid_parameter"
    with pytest.raises(ApiError) as forbidden:
        get_json(http, base, "/video/x8lab01", {"fields": "id,stream_hls_url"}, what="api")
    assert forbidden.value.status == 403


# youtube: seeds
def test_chart_with_a_key(lab, http):
    svc = YouTubeService(_ctx(lab, http, youtube_api_key="lab-key"))
    assert _ids(svc.seeds("today", 3)) == ["LabSunrise1", "LabCityTL02", "LabBotChk03"]
    assert svc.seed_source == "chart:youtube-api:mostPopular"
    fr = YouTubeService(_ctx(lab, http, youtube_api_key="lab-key", youtube_region="FR"))
    assert _ids(fr.seeds("today", 10)) == ["LabSunrise1", "LabHlsOnl05"]
    assert fr.seed_source.endswith(":FR")
    # a category of the chart (videoCategoryId), stored with the seed
    autos = YouTubeService(_ctx(lab, http, youtube_api_key="lab-key", youtube_category="19"))
    assert _ids(autos.seeds("today", 10)) == ["LabCityTL02", "LabThrott07"]
    assert autos.seed_source == "chart:youtube-api:mostPopular:category=19"


def test_other_time_frames_search_by_view_count_after_a_date(lab, http):
    svc = YouTubeService(_ctx(lab, http, youtube_api_key="lab-key"))
    week = _ids(svc.seeds("week", 10))  # published within 7 days (168 h): 5, 30 and 50 hours ago
    assert week == ["LabSunrise1", "LabCityTL02", "LabBotChk03"]
    assert svc.seed_source == "search:youtube-api:order=viewCount:week"
    assert len(svc.seeds("all_time", 10)) == 7
    assert len(svc.seeds("all_time", 3)) == 3  # pages of the API (nextPageToken) stop at the count asked


def test_playlist_and_search_without_a_key_go_through_the_resolver(lab, http):
    svc = YouTubeService(_ctx(lab, http, youtube_playlist="PLpytomoLabMixed0001"))
    assert _ids(svc.seeds("today", 10)) == ["LabThrott07", "LabSunrise1", "LabHlsOnl05"]
    assert svc.seed_source == "playlist:yt-dlp:PLpytomoLabMixed0001"
    keyed = YouTubeService(_ctx(lab, http, youtube_playlist="PLpytomoLabMixed0001", youtube_api_key="lab-key"))
    assert _ids(keyed.seeds("today", 2)) == ["LabThrott07", "LabSunrise1"]
    assert keyed.seed_source.startswith("playlist:youtube-api:")
    search = YouTubeService(_ctx(lab, http, youtube_search="city timelapse"))
    assert _ids(search.seeds("today", 2)) == ["LabCityTL02", "LabSunrise1"]  # two words match, then one
    assert search.seed_source == "search:yt-dlp:city timelapse"


def test_seed_errors(lab, http):
    with pytest.raises(UsageError, match="refused the key"):
        YouTubeService(_ctx(lab, http, youtube_api_key="not-the-key")).seeds("today", 3)
    with pytest.raises(UsageError, match="no public popular list"):
        YouTubeService(_ctx(lab, http)).seeds("today", 3)
    with pytest.raises(UsageError, match="refused the list"):
        DailymotionService(_ctx(lab, http, dailymotion_sort="loudest")).seeds("today", 3)


# youtube: pages
def test_resolution_chooses_the_format_and_records_the_extractor(lab, http):
    svc = YouTubeService(_ctx(lab, http))
    desc = svc.resolve("https://youtu.be/LabSunrise1")
    assert desc.video_id == "LabSunrise1" and desc.title.startswith("Sunrise") and desc.duration_s == 30
    assert desc.streams[0].url == lab.media_url("lab-unlimited") and desc.streams[0].kind == "video"
    assert desc.streams[1].url == lab.media_url("lab-slow-start") and desc.streams[1].kind == "audio"
    rec = desc.extra["extractor"]
    assert rec["format_id"] == "137+140" and rec["format"]["height"] == 1080 and rec["ytdlp_version"]
    assert rec["resolver"] == "recorded" and rec["player_client"] == ["default"] and rec["formats_offered"] == 7
    city = svc.resolve(watch_url("LabCityTL02")).extra["extractor"]
    assert city["player_client"] == ["tv"] and "n challenge" in city["missing_formats"][0]
    progressive = YouTubeService(_ctx(lab, http, media_format="18")).resolve(watch_url("LabSunrise1"))
    assert progressive.streams[0].url == lab.media_url("lab-40m") and progressive.streams[0].kind == "progressive"
    hls = svc.resolve("https://www.youtube.com/shorts/LabHlsOnl05")
    assert hls.streams[0].kind == "hls" and hls.streams[0].url == lab.cache_url(lab.scenario.video("lab-hls"))


@pytest.mark.parametrize("video_id, kind", [("LabBotChk03", "bot_check"), ("LabAgeGat04", "age_gate"),
                                            ("LabDrmOnl06", "drm"), ("NotInTheLab", "extractor")])
def test_pages_that_give_no_media_are_stored_as_their_outcome(lab, http, video_id, kind):
    with pytest.raises(PageError) as err:
        YouTubeService(_ctx(lab, http)).resolve(watch_url(video_id))
    assert err.value.kind == kind and err.value.stage == "resolve_page"
    assert err.value.fields["extractor"]["resolver"] == "recorded"


def test_related_videos_by_search_or_channel(lab, http):
    by_tags = YouTubeService(_ctx(lab, http, related=True, max_per_page=3)).resolve(watch_url("LabCityTL02"))
    # tags lab, city, timelapse: LabSunrise1 and LabThrott07 share two words (in recording order), the others one
    assert _ids(by_tags.related) == ["LabSunrise1", "LabThrott07", "LabBotChk03"]
    assert by_tags.extra["extractor"]["related_source"] == "search:recorded"
    channel = YouTubeService(_ctx(lab, http, related=True, youtube_related="channel", youtube_api_key="lab-key"))
    desc = channel.resolve(watch_url("LabSunrise1"))
    assert _ids(desc.related) == ["LabCityTL02", "LabHlsOnl05", "LabThrott07"]  # channel A's uploads, newest first
    assert desc.extra["extractor"]["related_source"] == "channel:api"
    assert YouTubeService(_ctx(lab, http)).resolve(watch_url("LabSunrise1")).related == ()  # without -R: no calls


# dailymotion
def test_dailymotion_seeds_by_time_frame_and_trending(lab, http):
    svc = DailymotionService(_ctx(lab, http))
    assert _ids(svc.seeds("today", 3)) == ["x8lab01", "x8lab02", "x8lab03"]
    assert svc.seed_source == "chart:dailymotion-api:sort=visited-today"
    assert _ids(svc.seeds("month", 1)) == ["x8lab03"]
    assert _ids(svc.seeds("all_time", 2)) == ["x8lab03", "x8lab02"]
    trending = DailymotionService(_ctx(lab, http, dailymotion_sort="trending"))
    assert _ids(trending.seeds("today", 3)) == ["x8lab02", "x8lab01", "x8lab03"]


def test_dailymotion_resolution_related_and_errors(lab, http):
    svc = DailymotionService(_ctx(lab, http, related=True))
    desc = svc.resolve("https://dai.ly/x8lab01")
    assert desc.streams[0].kind == "hls" and desc.title == "Lab news in HLS"
    assert _ids(desc.related) == ["x8lab02", "x8lab03"]
    assert desc.extra["extractor"]["related_source"] == "dailymotion-api"
    with pytest.raises(PageError) as geo:
        svc.resolve("https://www.dailymotion.com/video/x8lab03")
    assert geo.value.kind == "geo_blocked"


def test_dailymotion_api_stream_fields_need_the_partner_token(lab, http):
    with pytest.raises(PageError) as forbidden:
        DailymotionService(_ctx(lab, http, dailymotion_media="api")).resolve(
            "https://www.dailymotion.com/video/x8lab02")
    assert forbidden.value.kind == "sign_in_required"
    svc = DailymotionService(_ctx(lab, http, dailymotion_media="api", dailymotion_access_token="lab-token"))
    desc = svc.resolve("https://www.dailymotion.com/video/x8lab02")
    assert desc.extra["extractor"]["format_id"] == "h264_hq" and desc.streams[0].url == lab.media_url("lab-40m")
    assert desc.extra["extractor"]["resolver"] == "dailymotion-api"


# the real yt-dlp package, through the same boundary, on the lab's media (generic extractor, loopback only)
def test_ytdlp_resolver_on_lab_media(lab):
    def by_ip(video_id: str) -> str:
        video = lab.scenario.video(video_id)
        profile = lab.scenario.server(video.server)
        return lab.cache_url(video).replace(profile.host, profile.ip)

    from pytomo.services.formats import choose

    resolver = YtDlpResolver(socket_timeout_s=5)
    hls = resolver.resolve(by_ip("lab-hls"))
    assert hls.resolver == "yt-dlp" and hls.version and hls.info["extractor_key"] == "Generic"
    chosen = choose(hls.info["formats"])
    assert chosen.streams()[0].kind == "hls" and chosen.primary["height"] == 480
    dash = choose(resolver.resolve(by_ip("lab-dash")).info["formats"])
    assert dash.streams()[0].kind == "dash" and dash.streams()[0].url.endswith("manifest.mpd")
    mp4 = choose(resolver.resolve(by_ip("lab-unlimited")).info["formats"])
    assert mp4.streams()[0].kind == "progressive" and mp4.streams()[0].url.endswith("/v/lab-unlimited.mp4")
