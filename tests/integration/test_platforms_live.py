"""The real platforms (internet needed): skipped unless PYTOMO_LIVE=1; never run on the project's test machines.

YouTube seeds need an API key in PYTOMO_YOUTUBE_API_KEY; the other tests need none.
"""

from __future__ import annotations

import os

import pytest

from pytomo import settings as settings_mod
from pytomo.engine.http import HttpClient
from pytomo.engine.resolve import DnsProbe, ResolverSpec, addresses
from pytomo.services.base import ServiceContext
from pytomo.services.dailymotion import DailymotionService
from pytomo.services.youtube import YouTubeService
from tests.conftest import connect, database_of, run_crawler

pytestmark = pytest.mark.live


@pytest.fixture
def ctx():
    dns = DnsProbe([ResolverSpec("system")])
    http = HttpClient(lambda host: addresses(dns.lookup(host)), timeout_s=10.0)
    s = settings_mod.build({}, {"youtube_api_key": os.environ.get("PYTOMO_YOUTUBE_API_KEY", ""), "related": True,
                                "max_per_page": 3})
    yield ServiceContext(http=http, settings=s)
    http.close()


def test_youtube_chart_with_a_key(ctx):
    if not ctx.settings.youtube_api_key:
        pytest.skip("set PYTOMO_YOUTUBE_API_KEY")
    svc = YouTubeService(ctx)
    urls = svc.seeds("today", 5)
    assert 1 <= len(urls) <= 5 and all(YouTubeService.suitable(u) for u in urls)
    assert svc.seed_source.startswith("youtube-api:chart=mostPopular")


def test_youtube_watch_page_resolves_through_ytdlp(ctx):
    desc = YouTubeService(ctx).resolve("https://www.youtube.com/watch?v=jNQXAC9IVRw")  # the first upload, 2005
    rec = desc.extra["extractor"]
    assert desc.video_id == "jNQXAC9IVRw" and desc.streams[0].url.startswith("https://")
    assert rec["resolver"] == "yt-dlp" and rec["ytdlp_version"] and rec["format_id"]


def test_dailymotion_seeds_and_resolution(ctx):
    svc = DailymotionService(ctx)
    urls = svc.seeds("today", 3)
    assert urls and all(DailymotionService.suitable(u) for u in urls)
    desc = svc.resolve(urls[0])
    assert desc.streams[0].kind in ("hls", "progressive")


def test_a_youtube_crawl_from_a_search(tmp_path):
    proc = run_crawler(["-s", "youtube", "-b", "-D", "5", "-n", "2", "-S", "0", "-P", "1",
                        "--youtube-search", "timelapse", "--database-dir", str(tmp_path)])
    conn = connect(database_of(proc))
    row = conn.execute("SELECT status, error_kind, extractor_json FROM videos").fetchone()
    assert row["extractor_json"] and (row["status"] == "ok" or row["error_kind"] in ("bot_check", "age_gate"))
