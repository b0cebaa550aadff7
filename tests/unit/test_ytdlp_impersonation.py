"""The impersonation yt-dlp uses, read from the installed release: the texts and order Pytomo relies on, yt-dlp's own
Dailymotion retry loop driven through the real YoutubeDL (its screen lines read back), and the retry state."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

yt_dlp = pytest.importorskip("yt_dlp")

from yt_dlp.extractor.dailymotion import DailymotionIE as YtDlpDailymotionIE  # noqa: E402
from yt_dlp.utils import ExtractorError  # noqa: E402

from pytomo.engine.impersonate import ORDER, Presenting, blocked, target_of  # noqa: E402
from pytomo.services.impersonation import YTDLP_M3U8_NOTES, manifest_attempts, succeeded_with  # noqa: E402
from pytomo.services.resolver import YtDlpResolver  # noqa: E402

YTDLP = Path(importlib.util.find_spec("yt_dlp").origin).parent


def _source(relative: str) -> str:
    return (YTDLP / relative).read_text(encoding="utf-8")


def test_dailymotion_asks_for_its_manifest_plain_then_as_chrome_then_as_firefox():
    source = _source("extractor/dailymotion.py")
    body = source[source.index("def _extract_dailymotion_m3u8_formats_and_subtitles"):]
    body = body[:body.index("\n    def ", 10)]
    at = [body.index(note) for note in YTDLP_M3U8_NOTES]
    assert at == sorted(at), "yt-dlp changed the order of its m3u8 attempts: update pytomo/engine/impersonate.py"
    targets = re.findall(r"'impersonate': '(\w+)',\s*'require_impersonation': True", body)
    assert tuple(targets) == tuple(t for t in YTDLP_M3U8_NOTES.values() if t) == ORDER[1:]
    assert "self._generate_blockbuster_headers()" in body  # the plain attempt: randomized headers, no impersonation


def test_a_formats_impersonate_field_reaches_the_download_request():
    assert "* impersonate  Impersonate target(s)" in _source("extractor/common.py")
    assert "a boolean value; True means any impersonate target is sufficient" in _source("extractor/common.py")
    http = _source("downloader/http.py")
    assert "impersonate_target = self._get_impersonate_target(info_dict)" in http
    assert "request_extensions['impersonate'] = impersonate_target" in http
    # "any target": curl_cffi's handler sorts Chrome first among clients, then the newest version
    assert "('tor', 'edge', 'firefox', 'safari', 'chrome').index(x[1].client)" in _source("networking/_curlcffi.py")


def test_youtube_impersonates_only_its_subtitles():
    video = _source("extractor/youtube/_video.py")
    assert video.count("'impersonate': True") == 1
    subtitles = video[video.index("def process_language"):]
    assert "'impersonate': True" in subtitles[:subtitles.index("\n        def ", 10)]
    assert "impersonat" not in _source("extractor/youtube/_base.py")


class DailymotionIE(YtDlpDailymotionIE):
    """yt-dlp's Dailymotion extractor with its own m3u8 retry loop; only the network is stood in for: the plain
    request is refused, the impersonated ones answer a master playlist. Same key as yt-dlp's: it replaces it in that
    YoutubeDL only."""

    IE_NAME = "dailymotion"
    _VALID_URL = r"https?://www\.dailymotion\.com/video/(?P<id>x\w+)"
    refuse = (None,)

    def _real_initialize(self):
        pass

    def _download_webpage(self, url_or_request, video_id, note=None, errnote=None, fatal=True, *args, **kwargs):
        self.report_download_webpage(video_id, note=note)  # what yt-dlp's _request_webpage says first
        if kwargs.get("impersonate") in self.refuse:
            raise ExtractorError(f"{errnote}: HTTP Error 403: Forbidden", expected=True)
        return "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360\nv1/index.m3u8\n"

    def _real_extract(self, url):
        video_id = self._match_id(url)
        formats, _subs, _error = self._extract_dailymotion_m3u8_formats_and_subtitles(
            "https://cdn.invalid/master.m3u8", video_id)
        return {"id": video_id, "title": "stand-in", "formats": formats}


def test_the_target_yt_dlp_succeeded_with_is_read_from_its_screen_lines():
    resolver = YtDlpResolver(extractor_key="dailymotion", extractors=(DailymotionIE,))
    resolved = resolver.resolve("https://www.dailymotion.com/video/x8stand")
    assert resolved.manifest_attempts == (None, "chrome")
    assert succeeded_with(resolved.manifest_attempts, resolved.info["formats"]) == (True, "chrome")
    DailymotionIE.refuse = (None, "chrome")
    try:
        again = resolver.resolve("https://www.dailymotion.com/video/x8stand")
    finally:
        DailymotionIE.refuse = (None,)
    assert again.manifest_attempts == (None, "chrome", "firefox")


def test_silence_or_no_hls_format_says_nothing():
    assert manifest_attempts(["[generic] x: Downloading webpage"]) == ()
    assert succeeded_with((), [{"protocol": "m3u8_native"}]) == (False, None)
    assert succeeded_with((None, "chrome"), [{"protocol": "https"}]) == (False, None)


def test_a_formats_field_gives_the_target():
    assert [target_of(v) for v in (True, "", "firefox", "chrome:windows-10", ["safari", "chrome"], None, False,
                                   "netscape", 3)] == ["chrome", "chrome", "firefox", "chrome", "safari",
                                                       None, None, None, None]


def test_a_refusal_moves_on_in_yt_dlps_order_and_says_what_was_tried():
    p = Presenting()
    assert p.target is None and p.answered(403, None) and p.target == "chrome"
    assert p.answered(403, "chrome152") and p.target == "firefox"
    assert not p.answered(403, "firefox155")  # nothing left to try
    assert p.refusals() == "403 with none, chrome152, firefox155"
    err = blocked(p, stage="download", status=403, url="https://cdn.invalid/m.m3u8")
    assert err.kind == "blocked_client" and str(err).endswith("(403 with none, chrome152, firefox155)")
    learned = Presenting("chrome")
    assert learned.target == "chrome" and not learned.answered(206, "chrome152") and learned.target == "chrome"
    assert learned.answered(403, "chrome152") and learned.target == "firefox"
    assert Presenting("firefox").order == ("firefox",) and Presenting("safari").order == ("safari", None, *ORDER[1:])
    without = Presenting(possible=False)
    assert without.target is None and not without.answered(403, None)
    assert "no impersonation: --http 1.1" in without.refusals()
    assert not Presenting().answered(404, None)  # only a 403 is a refused client
