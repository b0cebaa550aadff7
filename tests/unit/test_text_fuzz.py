"""Fuzzing of every text parser: HLS, DASH and the page scan fail only with MeasurementError, and quickly."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytomo.errors import MeasurementError
from pytomo.media.manifest import parse_dash, parse_hls
from pytomo.services.htmlscan import scan

REALMEDIA = Path(__file__).resolve().parents[2].parent / "shared" / "realmedia"


def _corpus(pattern: str) -> list[str]:
    """The real manifests (read in place, never copied), or a small stand-in when the corpus is missing."""
    return sorted(p.read_text("utf-8", errors="replace") for p in REALMEDIA.glob(pattern))


_HLS = _corpus("hls/*/*.m3u8") or ["#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n", "#EXTM3U\n#EXTINF:1,\ns.ts\n"]
_DASH = _corpus("dash/*/*.mpd") or ['<MPD mediaPresentationDuration="PT8S"><Period><AdaptationSet contentType="video">'
                                    '<SegmentTemplate duration="2" media="$Number$"/><Representation id="v" '
                                    'bandwidth="1"/></AdaptationSet></Period></MPD>']
_PAGE = ['<!doctype html><html><head><title>T &amp; t</title><script type="application/json" id="c">{"a": 1}'
         '</script></head><body><!-- c --><a href="/n">n</a><video controls><source src="a.mp4" type="video/mp4">'
         "</video></body></html>"]

_TOKENS = {
    "hls": ["#EXTM3U", "#EXTINF:", "#EXT-X-STREAM-INF:", "#EXT-X-MEDIA:", "#EXT-X-MAP:", "#EXT-X-BYTERANGE:",
            "#EXT-X-MEDIA-SEQUENCE:", "BANDWIDTH=", "RESOLUTION=", "FRAME-RATE=", "URI=", 'URI="', "TYPE=AUDIO",
            "AUDIO=", "GROUP-ID=", "BYTERANGE=", ",", "@", '"', "\n", "-", "1", "9" * 30, "nan", "inf", "1e999", ".",
            "x", "http://[::1", "m.m3u8", "\ufeff", "\x00", " "],
    "dash": ["<", ">", "/>", "</", '"', "=", " ", "MPD", "Period", "AdaptationSet", "Representation",
             "SegmentTemplate", "SegmentTimeline", "SegmentList", "SegmentURL", "SegmentBase", "S", "BaseURL",
             ' t="', ' d="', ' r="', ' duration="', ' timescale="', ' startNumber="', ' media="', ' bandwidth="',
             ' mediaRange="', ' indexRange="', ' frameRate="', "$Number$", "$Time$", "$Number%05d$", "$$",
             "$Bandwidth$", "$RepresentationID$", "PT", "P", "D", "S", "-1", "0", "1", "9" * 30, "/", "-", "nan",
             "<!DOCTYPE", "<!ENTITY", "&", ";", "http://[::1", "\ufeff"],
    "page": ["<", ">", "/", "<!--", "-->", "<!", "<?", "<video", "<source", " src=", " type=", "<a", " href=",
             "<title>", "</title>", "<script", "</script>", ' type="application/json"', '"', "'", "=", "&", "&#",
             "&#x", "9" * 30, ";", " ", "\n", "x", "\x00", "\ufffd"],
}


_VALUES = ["", "0", "1", "-1", "-5", "3.5", "1e999", "nan", "inf", "-inf", "9" * 5000, "18446744073709551616",
           "2000000000", "30000/0", "30000/1001", "1x1", "x", "P99999D", "PT1S", "PT", "P1Y2M3W4DT5H6M7.5S", "0-1",
           "5-1", "10@5", "http://[::1", "a b", "$Number%099d$", "$Time$", "\ufeff", "\x00"]
_SLOTS = {"hls": r'(?<=[:=])[^,\n"]*|(?<=")[^"\n]*(?=")', "dash": r'(?<==")[^"]*(?=")|(?<=>)[^<]+(?=<)',
          "page": r'(?<==")[^"]*(?=")|(?<=>)[^<]+(?=<)'}


@st.composite
def _mutated(draw, kind: str, seeds: list[str]) -> str:
    """A real document with a few splices: cut, duplicate, or insert tokens or random text at random places."""
    text = draw(st.sampled_from(seeds))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["value", "value", "insert", "delete", "duplicate", "text"]))
        slots = [m.span() for m in re.finditer(_SLOTS[kind], text)] if op == "value" else []
        if slots:  # a value of an attribute, tag or element replaced by a hostile one: the text stays well-formed
            first, last = draw(st.sampled_from(slots))
            text = text[:first] + draw(st.sampled_from(_VALUES) | st.text(max_size=10)) + text[last:]
        elif op == "insert":
            text = text[:at] + draw(st.sampled_from(_TOKENS[kind])) + text[at:]
        elif op == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 40)):]
        elif op == "duplicate":
            end = draw(st.integers(at, min(len(text), at + 200)))
            text = text[:end] + text[at:end] * draw(st.integers(1, 50)) + text[end:]
        else:
            text = text[:at] + draw(st.text(max_size=20)) + text[at:]
    return text


def _tokens(kind: str):
    return st.lists(st.sampled_from(_TOKENS[kind]) | st.text(max_size=8), max_size=60).map("".join)


_SETTINGS = settings(max_examples=2000, deadline=timedelta(seconds=2), derandomize=True,
                     suppress_health_check=[HealthCheck.too_slow])


def _hls(text: str) -> None:
    try:
        parse_hls("http://h/a/m.m3u8", text, lambda u: text if u.endswith("m.m3u8") else text.replace("STREAM", ""))
    except MeasurementError:
        pass


def _dash(text: str) -> None:
    try:
        parse_dash("http://h/a/m.mpd", text, lambda u, a, b: b"\x00\x00\x00\x08sidx")
    except MeasurementError:
        pass


@_SETTINGS
@given(st.one_of(_mutated("hls", _HLS), _tokens("hls"), st.text(max_size=200)))
def test_fuzz_hls(text):
    _hls(text)


@_SETTINGS
@given(st.one_of(_mutated("dash", _DASH), _tokens("dash"), st.text(max_size=200)))
def test_fuzz_dash(text):
    _dash(text)


@_SETTINGS
@given(st.one_of(_mutated("page", _PAGE), _tokens("page"), st.text(max_size=200)))
def test_fuzz_page_scan(text):
    page = scan(text, "http://h/a/p.html")
    assert all(isinstance(src, str) for src, _ in page.sources)


@_SETTINGS
@given(st.binary(max_size=300))
def test_fuzz_bytes_decoded_as_the_player_and_service_do(data):
    text = data.decode("utf-8", errors="replace")
    _hls(text)
    _dash(text)
    scan(text, "http://h/")
