"""Pages without media, as the installed yt-dlp reports them: its message table, and the real YoutubeDL driving
stand-in extractors that raise or warn exactly as its YouTube extractor does, stored by a crawl with their kinds."""

from __future__ import annotations

import importlib.util
import json
import sqlite3
import threading
from pathlib import Path

import pytest

yt_dlp = pytest.importorskip("yt_dlp")

from yt_dlp.extractor.youtube._base import YoutubeBaseInfoExtractor  # noqa: E402
from yt_dlp.networking import Response  # noqa: E402
from yt_dlp.networking.exceptions import HTTPError  # noqa: E402
from yt_dlp.utils import ExtractorError, clean_html, remove_end  # noqa: E402

from pytomo import settings as settings_mod  # noqa: E402
from pytomo.console import summary_table  # noqa: E402
from pytomo.crawl.loop import Crawler  # noqa: E402
from pytomo.engine.pipeline import Pipeline  # noqa: E402
from pytomo.services.base import ServiceContext  # noqa: E402
from pytomo.services.outcomes import _RELAY, KINDS, MESSAGES, classify, no_format_reason  # noqa: E402
from pytomo.services.resolver import ResolverError, YtDlpResolver  # noqa: E402
from pytomo.services.youtube import YouTubeService  # noqa: E402
from pytomo.storage.sink import DatabaseSink  # noqa: E402
from pytomo.storage.sqlite import RunDatabase  # noqa: E402

YTDLP_ROOT = Path(importlib.util.find_spec("yt_dlp").origin).parent.parent


# the table, read back from the installed release's source files
@pytest.mark.parametrize("entry", MESSAGES, ids=lambda m: f"{m.kind}:{m.needle}")
def test_every_message_of_the_table_is_in_the_installed_ytdlp_source(entry):
    source = (YTDLP_ROOT / entry.file).read_text(encoding="utf-8")
    assert entry.snippet in source, f"{entry.file} no longer says {entry.snippet!r}: update pytomo/services/outcomes.py"
    if not entry.relayed:  # yt-dlp's own words: the needle is in them (placeholders filled in)
        said = entry.snippet.replace("{response.status}", "429").lower()
        assert entry.needle in said
    else:  # YouTube's words, relayed: the snippet is the relaying code or yt-dlp's test naming the message
        assert entry.snippet == _RELAY or entry.needle.split()[0] in entry.snippet.lower()
    assert classify(entry.needle) == entry.kind  # no earlier kind takes the needle


def test_every_kind_has_a_cited_message():
    assert {m.kind for m in MESSAGES} == set(KINDS) - {"network"}


def test_the_most_specific_warning_names_the_outcome():
    warnings = ["[youtube] x: Sign in to confirm you’re not a bot. Use --cookies-from-browser or --cookies for "
                "the authentication.", "No video formats found!", "Requested format is not available"]
    assert no_format_reason(warnings) == ("bot_check", warnings[0])
    assert no_format_reason(warnings[1:]) == ("no_format", warnings[1])
    assert no_format_reason([])[0] == "no_format"


# stand-ins: the YouTube extractor's own handling of a player response without formats (_video.py, "if not
# formats:"), fed with the playability reasons YouTube gives
_PLAYABILITY = {
    "BotCheck001": ("Sign in to confirm you’re not a bot", "This helps protect our community. Learn more"),
    "RateLimit01": ("This content isn't available, try again later.", None),
    "AgeGate0001": ("Sign in to confirm your age", "This video may be inappropriate for some users."),
    "GeoBlock001": ("Video unavailable", "The uploader has not made this video available in your country"),
    "Private0001": ("Private video", "Sign in if you've been granted access to this video"),
    "Unavail0001": ("Video unavailable", "This video has been removed by the uploader"),
    "Members0001": ("Join this channel to get access to members-only content like this video, and other exclusive "
                    "perks.", None),
    "Captcha0001": ("Something went wrong", None),
    "DrmOnly0001": ("", None),
    "NoReason001": ("", None),
}
_WITH_FORMATS = "Playable001"


class YoutubeIE(YoutubeBaseInfoExtractor):
    """Stands in for yt-dlp's YouTube extractor (same key: it replaces it in that YoutubeDL only); no network."""

    IE_NAME = "youtube"
    _VALID_URL = r"https?://www\.youtube\.com/watch\?v=(?P<id>[\w-]{11})"

    def _real_initialize(self):
        pass  # no consent cookie, no login check: nothing to fetch

    def _real_extract(self, url):
        video_id = self._match_id(url)
        info = {"id": video_id, "title": f"stand-in {video_id}", "duration": 30, "formats": []}
        if video_id == "IpBlocked01":
            raise ExtractorError(
                'All player responses are invalid. Your IP is likely being blocked by Youtube', expected=True)
        if video_id == "TooMany0001":
            response = Response(fp=None, url=url, headers={}, status=429, reason="Too Many Requests")
            raise ExtractorError("Unable to download API page: HTTP Error 429: Too Many Requests",
                                 cause=HTTPError(response), video_id=video_id)
        if video_id == "GeoRaise001":  # another extractor's way: raised, in words of its own
            self.raise_geo_restricted("Not here", countries=["FR"])
        if video_id == _WITH_FORMATS:
            base = "http://127.0.0.1:9/videoplayback?expire=1&itag={}&c={}&mime=video%2Fmp4"
            info["formats"] = [
                {"format_id": "18", "url": base.format(18, "ANDROID_VR"), "ext": "mp4", "protocol": "https",
                 "vcodec": "avc1.42001E", "acodec": "mp4a.40.2", "height": 360, "tbr": 500},
                {"format_id": "137", "url": base.format(137, "WEB"), "ext": "mp4", "protocol": "https",
                 "vcodec": "avc1.640028", "acodec": "none", "height": 1080, "tbr": 4000},
                {"format_id": "140", "url": base.format(140, "WEB"), "ext": "m4a", "protocol": "https",
                 "vcodec": "none", "acodec": "mp4a.40.2", "abr": 128},
            ]
            return info
        playability = _PLAYABILITY.get(video_id) or _PLAYABILITY.get(video_id[:8] + "001", ("", None))
        self._no_formats(video_id, *playability)
        return info

    def _no_formats(self, video_id, reason, subreason):
        """The YouTube extractor's lines for a response without formats, reason and subreason as YouTube gives."""
        if video_id == "DrmOnly0001":
            self.report_drm(video_id)
        subreason = clean_html(subreason) if subreason else None
        if subreason:
            if subreason.startswith('The uploader has not made this video available in your country'):
                self.raise_geo_restricted(subreason, ["US"], metadata_available=True)
            if subreason != reason:
                reason += f'. {subreason}'
        if reason:
            if 'sign in' in reason.lower():
                reason = remove_end(reason, 'This helps protect our community. Learn more')
                reason = f'{remove_end(reason.strip(), ".")}. {self._youtube_login_hint}'
            elif video_id == "Captcha0001":
                reason += '. YouTube is requiring a captcha challenge before playback'
            elif "This content isn't available, try again later" in reason:
                reason = (
                    f'{remove_end(reason.strip(), ".")}. The current session '
                    f'has been rate-limited by YouTube for up to an hour. It is recommended to use `-t sleep` to add '
                    f'a delay between video requests to avoid exceeding the rate limit. For more information, refer '
                    f'to  https://github.com/yt-dlp/yt-dlp/wiki/Extractors#this-content-isnt-available-try-again-later'
                )
            self.raise_no_formats(reason, expected=True)


def _resolver() -> YtDlpResolver:
    return YtDlpResolver(extractors=(YoutubeIE,))


def _watch(video_id: str) -> str:
    return f"https://www.youtube.com/watch?v={video_id}"


@pytest.mark.parametrize("video_id, kind, raised", [
    ("BotCheck001", "bot_check", False), ("Captcha0001", "bot_check", False), ("RateLimit01", "rate_limited", False),
    ("AgeGate0001", "age_gate", False), ("GeoBlock001", "geo_blocked", False), ("Private0001", "private", False),
    ("Unavail0001", "unavailable", False), ("Members0001", "sign_in_required", False), ("DrmOnly0001", "drm", False),
    ("NoReason001", "no_format", False), ("IpBlocked01", "ip_blocked", True), ("TooMany0001", "rate_limited", True),
    ("GeoRaise001", "geo_blocked", True),
])
def test_the_real_youtubedl_reports_each_outcome_with_its_kind(video_id, kind, raised):
    with pytest.raises(ResolverError) as err:
        _resolver().resolve(_watch(video_id))
    assert (err.value.kind, err.value.raised) == (kind, raised), (str(err.value), err.value.warnings)
    if not raised:  # yt-dlp warned (ignore_no_formats_error): the reason is kept, word for word
        assert str(err.value) in err.value.warnings[0] or any(str(err.value) in w for w in err.value.warnings)
    assert err.value.runtime is not None and "js_runtime" in err.value.runtime


def test_the_resolver_passes_the_deno_it_found_and_no_remote_component():
    r = _resolver()
    params = r.params(None)
    assert params["remote_components"] == [] and params["ignore_no_formats_error"] is True
    assert set(params["js_runtimes"]) == {"deno"}
    path = params["js_runtimes"]["deno"].get("path")
    if path:  # the deno wheel is installed: yt-dlp runs that binary
        assert Path(path).is_file()
        assert r.environment.runtime and r.environment.runtime.startswith("deno ")
    with yt_dlp.YoutubeDL(params) as ydl:  # yt-dlp keeps our runtime and allows no remote component
        assert ydl.params["remote_components"] == set() and set(ydl.params["js_runtimes"]) == {"deno"}


def _ctx(tmp_path: Path, **overrides) -> ServiceContext:
    s = settings_mod.build({}, {"service": "youtube", "random_seed": 1, "delay_between_requests_s": 0.0,
                                "database_dir": str(tmp_path), **overrides})
    return ServiceContext(http=None, settings=s)


def test_the_clients_really_used_and_the_runtime_are_recorded(tmp_path):
    svc = YouTubeService(_ctx(tmp_path), resolver=_resolver())
    desc = svc.resolve(_watch(_WITH_FORMATS))
    record = desc.extra["extractor"]
    assert record["format_id"] == "137+140" and record["clients_used"] == ["WEB"]
    assert record["clients_offered"] == ["ANDROID_VR", "WEB"]
    assert record["ytdlp_version"] == yt_dlp.version.__version__ and isinstance(record["ytdlp_age_days"], int)
    assert "js_runtime" in record and "ejs_version" in record


def test_a_crawl_stores_each_outcome_with_its_kind_and_pauses_longer_after_bot_checks(tmp_path, caplog):
    ctx = _ctx(tmp_path, bot_check_pause_s=30.0, bot_check_max_pause_s=100.0)
    s = ctx.settings
    svc = YouTubeService(ctx, resolver=_resolver())
    db = RunDatabase.create(tmp_path, s, host_label="test")
    clock = [0.0]

    def wait(seconds: float) -> bool:
        clock[0] += seconds
        return False

    stop = threading.Event()
    pipeline = Pipeline(s, http=None, dns=None, primary_resolvers=set(), stop=stop)
    crawler = Crawler(s, ctx, svc, pipeline, [DatabaseSink(db)], stop, clock=lambda: clock[0], wait=wait)
    ids = ["BotCheck001", "RateLimit01", "AgeGate0001", "GeoBlock001", "Private0001", "BotCheck002", "Captcha0001",
           "BotCheck003"]
    with caplog.at_level("WARNING"):
        summary = crawler.run([(_watch(i), "input") for i in ids])
    db.finish("done", summary.stop_reason)
    conn = sqlite3.connect(db.path)
    rows = conn.execute("SELECT video_id, status, error_stage, error_kind, extractor_json FROM videos ORDER BY id")
    stored = {v: (st, stage, kind, json.loads(ex)) for v, st, stage, kind, ex in rows}
    conn.close()
    kinds = {v: stored[v][2] for v in ids}
    assert kinds == {"BotCheck001": "bot_check", "RateLimit01": "rate_limited", "AgeGate0001": "age_gate",
                     "GeoBlock001": "geo_blocked", "Private0001": "private", "BotCheck002": "bot_check",
                     "Captcha0001": "bot_check", "BotCheck003": "bot_check"}
    assert all(st == "error" and stage == "resolve_page" for st, stage, _k, _e in stored.values())
    record = stored["BotCheck001"][3]
    assert record["outcome"] == "warned, no formats" and "not a bot" in record["warnings"][0]
    # bot check, rate limit: 30, 60 s; pages that answer otherwise (no pause: -S 0); then 30, 60 s (none after
    # the last video, whose 100 s would have followed)
    assert list(crawler.waits_s) == [30.0, 60.0, 30.0, 60.0]
    assert "answered bot_check (1 in a row): pausing 30 s" in caplog.text
    assert "answered rate_limited (2 in a row): pausing 60 s" in caplog.text
    assert "answered bot_check (3 in a row): pausing 100 s" in caplog.text
    assert summary.slowdowns == {"bot_check": 4, "rate_limited": 1} and summary.longest_pause_s == 60.0
    out = []

    class _Out:
        def write(self, text):
            out.append(text)

    summary_table(summary, _Out())
    assert "the platform pushed back: 4 bot check, 1 rate limited; the crawl slowed down (longest pause 60 s)" in (
        "".join(out))
