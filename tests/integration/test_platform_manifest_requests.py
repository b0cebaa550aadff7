"""A platform's HLS format (Dailymotion's, as yt-dlp returns it) fetched with the format's headers; a refusal by the
platform's CDN is stored as ``blocked_client`` with its status, not as a generic HTTP error."""

from __future__ import annotations

import threading

import pytest

from pytomo.engine.http import HttpClient
from pytomo.engine.pipeline import Pipeline
from pytomo.engine.resolve import DnsProbe
from pytomo.lab.segmented import SegmentedSpec, ensure_segmented
from pytomo.results import MediaDescriptor, MediaStream
from pytomo.settings import build
from tests.scripted_http import Request, ScriptedServer, response

AGENT = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0 (as yt-dlp's std_headers)"
HEADERS = (("User-Agent", AGENT), ("Origin", "https://www.dailymotion.com"), ("Referer", "https://www.dailymotion.com/"))


class _FormatService:
    """A stand-in plugin whose page resolves to one HLS format with the platform's headers."""

    NAME, LABEL = "stand-in", "Dailymotion"

    def __init__(self, url: str) -> None:
        self.url = url

    @staticmethod
    def video_id(page_url: str) -> str:
        return "x8test"

    def resolve(self, page_url: str) -> MediaDescriptor:
        return MediaDescriptor(page_url=page_url, video_id="x8test", title="t",
                               streams=(MediaStream(url=self.url, kind="hls", http_headers=HEADERS),))


@pytest.fixture(scope="module")
def package():
    return ensure_segmented(SegmentedSpec("hls", duration_s=6.0, segment_s=2.0))


def _server(package, *, refuse_segments: bool) -> ScriptedServer:
    def route_for(name: str):
        body = package.path(name).read_bytes()
        ctype = "application/vnd.apple.mpegurl" if name.endswith(".m3u8") else "video/mp2t"

        def route(req: Request):
            if req.headers.get("user-agent") != AGENT or req.headers.get("origin") != dict(HEADERS)["Origin"]:
                return response("403 Forbidden", {"Content-Length": "0"})
            if refuse_segments and name.endswith(".ts"):
                return response("403 Forbidden", {"Content-Length": "0"})
            return response("200 OK", {"Content-Type": ctype, "Content-Length": str(len(body))},
                            b"" if req.method == "HEAD" else body)
        return route
    return ScriptedServer({f"/{name}": route_for(name) for name in package.sizes})


def _measure(url: str):
    settings = build(overrides={"download_time_s": 3.0, "ping_count": 1, "allow_private_targets": True})
    http = HttpClient(lambda host: ["127.0.0.1"], timeout_s=5.0)
    dns = DnsProbe([], getaddrinfo_fallback=True)
    pipeline = Pipeline(settings, http, dns, set(), threading.Event())
    try:
        return pipeline.measure(_FormatService(url), "https://www.dailymotion.com/video/x8test")
    finally:
        http.close()


def test_manifest_and_segments_are_fetched_with_the_formats_headers(package):
    with _server(package, refuse_segments=False) as srv:
        m = _measure(f"{srv.base}/{package.manifest}")
        seen = list(srv.requests)
    assert m.status == "ok", (m.error_kind, m.error_message)
    assert seen and all(r.headers.get("user-agent") == AGENT for r in seen)
    assert all(r.method == "GET" for r in seen)  # the walk asks its first byte, never a HEAD
    media = [r for r in m.downloads[0].segments if r.kind == "media" and r.complete]
    assert len(media) >= 2


def test_a_refusal_by_the_platforms_cdn_is_blocked_client(package):
    with _server(package, refuse_segments=True) as srv:
        m = _measure(f"{srv.base}/{package.manifest}")
    assert (m.status, m.error_stage, m.error_kind) == ("error", "download", "blocked_client")
    assert "HTTP 403" in m.error_message
