"""YouTube's clients as yt-dlp reports them: the texts read back from the installed release's source, and the real
YoutubeDL (verbose, into our logger) driving a stand-in extractor that writes those lines as its YouTube extractor
does: clients asked and answered, SABR-only and PO-token-gated clients, and their own outcomes when nothing is left."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

yt_dlp = pytest.importorskip("yt_dlp")

from yt_dlp.extractor.youtube._base import YoutubeBaseInfoExtractor  # noqa: E402
from yt_dlp.extractor.youtube._video import YoutubeIE as RealYoutubeIE  # noqa: E402

from pytomo.services.resolver import ResolverError, YtDlpResolver  # noqa: E402
from pytomo.services.ytclients import (  # noqa: E402
    DEFAULT_CLIENTS,
    DEFAULT_CLIENTS_SNIPPET,
    LINES,
    YT,
    no_format_kind,
    read_lines,
    url_facts,
)

YTDLP_ROOT = Path(importlib.util.find_spec("yt_dlp").origin).parent.parent


@pytest.mark.parametrize("line", LINES, ids=lambda x: x.fact)
def test_every_text_read_is_in_the_installed_ytdlp_source(line):
    source = (YTDLP_ROOT / line.file).read_text(encoding="utf-8")
    assert line.snippet in source, f"{line.file} no longer says {line.snippet!r}: update pytomo/services/ytclients.py"


def test_the_default_clients_are_the_installed_ytdlp_s():
    assert DEFAULT_CLIENTS_SNIPPET in (YTDLP_ROOT / YT).read_text(encoding="utf-8")
    assert tuple(RealYoutubeIE._DEFAULT_CLIENTS) == DEFAULT_CLIENTS


class YoutubeIE(YoutubeBaseInfoExtractor):
    """Stands in for yt-dlp's YouTube extractor (same key): writes its client lines as _video.py does, no network."""

    IE_NAME = "youtube"
    _VALID_URL = r"https?://www\.youtube\.com/watch\?v=(?P<id>[\w-]{11})"

    def _real_initialize(self):
        pass

    def _real_extract(self, url):
        video_id = self._match_id(url)
        self.to_screen(f"{video_id}: Downloading webpage")
        for client in ("tv_samsung", "visionos"):
            self.to_screen(f"{video_id}: " + "Downloading {} player API JSON".format(client.replace("_", " ").strip()))
        # the web client: YouTube forcing SABR streaming (a debug line, as for web and web_safari)
        self.write_debug("{}Some {} client https formats have been skipped as they are missing a URL. {}. See  "
                         "https://github.com/yt-dlp/yt-dlp/issues/12482  for more details".format(
                             f"{video_id}: ", "web", "YouTube is forcing SABR streaming for this client"),
                         only_once=True)
        # tv_samsung: a default client whose formats want a GVS PO token (a debug line for default clients)
        self.write_debug(f"{video_id}: tv_samsung client https formats require a GVS PO Token which was not provided. "
                         "They will be skipped as they may yield HTTP Error 403.", only_once=True)
        info = {"id": video_id, "title": f"stand-in {video_id}", "duration": 30, "formats": []}
        if video_id == "VisionOk001":  # visionos answered with URLs, without a PO token
            info["formats"] = [{"format_id": "18", "ext": "mp4", "protocol": "https", "vcodec": "avc1.42001E",
                                "acodec": "mp4a.40.2", "height": 360, "tbr": 500,
                                "url": "http://127.0.0.1:9/videoplayback?itag=18&c=VISIONOS&expire=1",
                                "http_headers": {"User-Agent": "visionos-ua"}}]
        else:  # visionos unplayable this time: nothing is left
            self.write_debug(f"{video_id}: visionos player response playability status: UNPLAYABLE")
            self.raise_no_formats("No video formats found!", expected=True)
        return info


def _resolver() -> YtDlpResolver:
    return YtDlpResolver(extractors=(YoutubeIE,))


def test_clients_asked_answered_sabr_only_and_po_token_from_the_real_ytdlp_s_lines():
    resolved = _resolver().resolve("https://www.youtube.com/watch?v=VisionOk001")
    facts = resolved.client_facts
    assert facts["clients_asked"] == list(DEFAULT_CLIENTS)
    assert facts["clients_fetched"] == ["tv_samsung", "visionos", "web"]
    assert facts["clients_answered"] == ["tv_samsung", "visionos", "web"]
    assert facts["clients_sabr_only"] == ["web"] and facts["po_token_skipped"] == ["tv_samsung:https"]
    assert no_format_kind(facts) is None  # visionos answered with URLs


def test_a_page_whose_every_client_was_skipped_has_its_own_outcome():
    with pytest.raises(ResolverError) as raised:
        _resolver().resolve("https://www.youtube.com/watch?v=Gated000001")
    err = raised.value
    assert err.kind == "po_token_required" and not err.raised
    assert "tv_samsung:https" in str(err)
    assert err.client_facts["clients_unplayable"] == {"visionos": "UNPLAYABLE"}
    assert err.client_facts["clients_answered"] == ["tv_samsung", "web"]


def test_the_kind_of_a_page_without_formats():
    assert no_format_kind({"clients_answered": ["web"], "clients_sabr_only": ["web"]}) == "sabr_only"
    assert no_format_kind({"clients_answered": ["web", "tv"], "clients_sabr_only": ["web"],
                           "po_token_skipped": ["tv:https"]}) == "po_token_required"
    assert no_format_kind({"clients_answered": ["web", "visionos"], "clients_sabr_only": ["web"]}) is None
    assert no_format_kind({"clients_sabr_only": ["web"]}) == "sabr_only"  # no fetch lines: what was skipped
    assert no_format_kind({}) is None


def test_lines_of_other_kinds_and_other_extractors_say_nothing():
    facts = read_lines(["[dailymotion] x8lab01: Downloading media JSON metadata", "[debug] Encodings: utf-8"],
                       ("web",))
    assert facts == {"clients_fetched": None, "clients_answered": None, "clients_unplayable": {},
                     "clients_sabr_only": [], "po_token_skipped": []}
    assert set(read_lines([], ("web",)).values()) == {None}  # no line kept at all: nothing is known


def test_what_a_googlevideo_url_says_of_itself():
    assert url_facts("https://rr1.googlevideo.com/videoplayback?itag=18&c=WEB&pot=abc") == {
        "client": "WEB", "po_token": True}
    assert url_facts("https://rr1.googlevideo.com/videoplayback?itag=18") == {"client": None, "po_token": False}
    assert url_facts(None) == {"client": None, "po_token": None}
