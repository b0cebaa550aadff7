"""The plugins' URL_PATTERNS against page URLs written here by hand, not derived from the patterns or the lab."""

from __future__ import annotations

import pytest

from pytomo.services.dailymotion import DailymotionService
from pytomo.services.lab import LabService
from pytomo.services.youtube import YouTubeService

ACCEPTED = [
    (YouTubeService, "https://www.youtube.com/watch?v=dQw4w9WgXcQ", "dQw4w9WgXcQ"),
    (YouTubeService, "https://youtube.com/watch?v=jNQXAC9IVRw", "jNQXAC9IVRw"),
    (YouTubeService, "http://www.youtube.com/watch?v=9bZkp7q19f0&list=PL1234&index=2", "9bZkp7q19f0"),
    (YouTubeService, "https://www.youtube.com/watch?app=desktop&v=kJQP7kiw5Fk", "kJQP7kiw5Fk"),
    (YouTubeService, "https://m.youtube.com/watch?v=OPf0YbXqDm0#comments", "OPf0YbXqDm0"),
    (YouTubeService, "https://music.youtube.com/watch?v=fJ9rUzIMcZQ", "fJ9rUzIMcZQ"),
    (YouTubeService, "https://youtu.be/dQw4w9WgXcQ", "dQw4w9WgXcQ"),
    (YouTubeService, "https://youtu.be/L_jWHffIx5E?si=AbCdEf123", "L_jWHffIx5E"),
    (YouTubeService, "https://www.youtube.com/shorts/Zi_XLOBDo_Y", "Zi_XLOBDo_Y"),
    (YouTubeService, "https://www.youtube.com/embed/M7lc1UVf-VE?rel=0", "M7lc1UVf-VE"),
    (YouTubeService, "https://www.youtube.com/live/5qap5aO4i9A", "5qap5aO4i9A"),
    (YouTubeService, "https://www.youtube-nocookie.com/embed/M7lc1UVf-VE", "M7lc1UVf-VE"),
    (DailymotionService, "https://www.dailymotion.com/video/x7tgad0", "x7tgad0"),
    (DailymotionService, "https://dailymotion.com/video/x8m8jtr", "x8m8jtr"),
    (DailymotionService, "http://www.dailymotion.com/video/x2jvvep_coffee-time_news", "x2jvvep"),
    (DailymotionService, "https://www.dailymotion.com/video/x7tgad0?playlist=x6hynp", "x7tgad0"),
    (DailymotionService, "https://www.dailymotion.com/embed/video/x7tgad0", "x7tgad0"),
    (DailymotionService, "https://touch.dailymotion.com/video/x7tgad0", "x7tgad0"),
    (DailymotionService, "https://dai.ly/x7tgad0", "x7tgad0"),
    (DailymotionService, "https://geo.dailymotion.com/player.html?video=x7tgad0", "x7tgad0"),
    (LabService, "http://www.lab.pytomo.test:41234/watch?v=lab-progressive", "lab-progressive"),
    (LabService, "http://www.lab.pytomo.test/watch?t=3&v=hls_1", "hls_1"),
]

REJECTED = [
    (YouTubeService, "https://www.youtube.com/watch?v=short"),  # ids have 11 characters
    (YouTubeService, "https://www.youtube.com/watch?v=dQw4w9WgXcQx"),  # 12
    (YouTubeService, "https://www.youtube.com/watch?list=PL1234"),  # no video
    (YouTubeService, "https://www.youtube.com/channel/UC38IQsAvIsxxjztdMZQtwHA"),
    (YouTubeService, "https://www.youtube.com.evil.example/watch?v=dQw4w9WgXcQ"),
    (YouTubeService, "https://evil.example/?u=https://youtu.be/dQw4w9WgXcQ"),
    (YouTubeService, "ftp://www.youtube.com/watch?v=dQw4w9WgXcQ"),
    (YouTubeService, "https://www.dailymotion.com/video/x7tgad0"),
    (DailymotionService, "https://www.dailymotion.com/user/someone"),
    (DailymotionService, "https://www.dailymotion.com/video/"),
    (DailymotionService, "https://www.dailymotion.com/video/12345"),  # ids start with x
    (DailymotionService, "https://www.dailymotion.com.evil.example/video/x7tgad0"),
    (DailymotionService, "https://www.youtube.com/watch?v=dQw4w9WgXcQ"),
    (LabService, "http://www.lab.pytomo.test/"),
    (LabService, "http://lab.pytomo.test/watch?v=abc"),
    (LabService, "https://www.youtube.com/watch?v=dQw4w9WgXcQ"),
]


@pytest.mark.parametrize(("service", "url", "video_id"), ACCEPTED, ids=[u for _, u, _ in ACCEPTED])
def test_a_plugin_accepts_its_page_urls_with_their_id(service, url: str, video_id: str) -> None:
    assert service.suitable(url)
    assert service.video_id(url) == video_id


@pytest.mark.parametrize(("service", "url"), REJECTED, ids=[u for _, u in REJECTED])
def test_a_plugin_rejects_other_urls(service, url: str) -> None:
    assert not service.suitable(url)
    assert service.video_id(url) is None
