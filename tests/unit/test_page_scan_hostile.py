"""The page scan is linear on hostile markup, right on ordinary pages, and the generic service's page budget."""

from __future__ import annotations

import io
import time
from types import SimpleNamespace

import pytest

from pytomo.errors import PageError
from pytomo.services.base import ServiceContext
from pytomo.services.generic import GenericService
from pytomo.services.htmlscan import scan
from pytomo.settings import Settings

_2MB = 2 * 1024 * 1024

HOSTILE = ["<!--", "<a ", '<a href="', "<a x='", "<div>", "<video>", "<video src=v.mp4>", "<", "<![CDATA[", "<!",
           "&#", "<script>", "<title>", "<a b=", "<?", "</", "</a ", "&amp;", "<a" + " " * 1000, "<a/",
           "<script></script", "<title>x</title>", "<a href='&#" + "9" * 5000 + "'>", "<!--->", "<p><b><i>",
           "<table><tr><td>", "<a b c d e f g ", "<a b=\"\"", "<!doctype", "<video src='"]


@pytest.mark.parametrize("pattern", HOSTILE)
def test_two_megabytes_of_a_hostile_pattern_scan_in_linear_time(pattern):
    text = (pattern * (_2MB // len(pattern) + 1))[:_2MB]
    started = time.monotonic()
    scan(text, "http://h/p")
    assert time.monotonic() - started < 5.0


def test_an_ordinary_page():
    page = scan("""<!DOCTYPE html><html><head><title> A page &amp; its &quot;video&quot; </title>
        <script type="application/ld+json" id="meta">{"a": "<video src=no.mp4>"}</script>
        <script>var s = "<video src='no2.mp4'>";</script></head>
        <body><!-- <video src="commented.mp4"> -->
        <a href="/watch?v=1&amp;x=2">next</a><A HREF=other.html>other</A>
        <VIDEO SRC="clip.mp4" controls></VIDEO>
        <video controls><source src="b.webm" type="video/webm"><source src='c.mp4' type=video/mp4 /></video>
        <video src=""></video><source type="video/mp4">
        </body></html>""", "http://h/dir/page.html")
    assert page.title == 'A page & its "video"'
    assert page.sources == [("http://h/dir/clip.mp4", None), ("http://h/dir/b.webm", "video/webm"),
                            ("http://h/dir/c.mp4", "video/mp4")]
    assert page.links == ["http://h/watch?v=1&x=2", "http://h/dir/other.html"]
    assert page.json_blocks == {"meta": '{"a": "<video src=no.mp4>"}'}


@pytest.mark.parametrize(("text", "sources"), [
    ("<video src=a.mp4", []),  # a tag left open at the end of the page is dropped
    ("<video src='a.mp4>", []),  # an unclosed quote runs to the end
    ("<!-- <video src=a.mp4>", []),  # an unclosed comment runs to the end
    ("<!--><video src=a.mp4>", ["a.mp4"]),  # an abruptly closed empty comment
    ("<video src=a.mp4 src=b.mp4>", ["a.mp4"]),  # the first of duplicate attributes
    ("<video/src=a.mp4>", ["a.mp4"]),
    ("< video src=a.mp4>", []),  # '<' then a space is text
    ("<title><video src=a.mp4></title><video src=b.mp4>", ["b.mp4"]),  # a title is text
    ("<textarea><video src=a.mp4></textarea>", []),
    ("<video src='x&#" + "9" * 5000 + ";.mp4'>", ["x\ufffd.mp4"]),
    ("<video src='http://[::1'><a href='http://[::1'><source src=b.mp4>", ["b.mp4"]),  # found by the fuzz
])
def test_edge_cases_follow_html5_tokenization(text, sources):
    assert [s.rsplit("/", 1)[-1] for s, _ in scan(text, "http://h/").sources] == sources


class _Raw:
    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def read(self, n: int, decode_content: bool = False) -> bytes:
        return self._data.read(n)


def _service(body: bytes, limit: int) -> GenericService:
    def request(method, url, stream=False):
        return SimpleNamespace(is_redirect=False, headers={"Content-Type": "text/html"}, status_code=200,
                               raw=_Raw(body), encoding="utf-8", close=lambda: None)
    http = SimpleNamespace(request=request)
    return GenericService(ServiceContext(http=http, settings=Settings(page_limit_bytes=limit)))


def test_a_page_longer_than_the_budget_without_video_says_so():
    body = b"<!doctype html><p>" + b"x" * 5000 + b"<video src=late.mp4>"
    with pytest.raises(PageError) as info:
        _service(body, 1000).resolve("http://h/page.html")
    assert info.value.kind == "page_too_large" and "first 1000 bytes" in str(info.value)
    assert _service(body, len(body)).resolve("http://h/page.html").streams[0].url == "http://h/late.mp4"


def test_a_short_page_without_video_is_no_video_and_a_long_page_with_early_video_plays():
    with pytest.raises(PageError) as info:
        _service(b"<!doctype html><p>nothing", 1000).resolve("http://h/page.html")
    assert info.value.kind == "no_video"
    body = b"<!doctype html><video src=early.mp4>" + b"x" * 5000
    assert _service(body, 1000).resolve("http://h/page.html").streams[0].url == "http://h/early.mp4"
