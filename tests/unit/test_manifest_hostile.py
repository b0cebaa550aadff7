"""Hostile HLS playlists and DASH MPDs: every bad value, loop, XML hazard and oversized input is a ManifestError."""

from __future__ import annotations

import time

import pytest

from pytomo.errors import ManifestError
from pytomo.media.manifest import MAX_PLAYLISTS, parse_dash, parse_hls

_MEDIA = "#EXTM3U\n#EXTINF:2,\ns.ts\n"
_MASTER = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1000\nv.m3u8\n"
_4MB = 4 * 1024 * 1024


def _mpd(body: str, duration: str = "PT8S", head: str = "") -> str:
    return f'{head}<MPD mediaPresentationDuration="{duration}"><Period>{body}</Period></MPD>'


def _video(info: str = '<SegmentTemplate duration="2" media="$Number$.m4s"/>', rep: str = 'id="v" bandwidth="1"',
           aset: str = 'contentType="video"') -> str:
    return f"<AdaptationSet {aset}><Representation {rep}>{info}</Representation></AdaptationSet>"


def _hls(media: str, master: str = _MASTER):
    return parse_hls("http://h/m.m3u8", master, lambda u: media)


def _timed(fn, limit_s: float = 5.0):
    started = time.monotonic()
    with pytest.raises(ManifestError) as info:
        fn()
    assert time.monotonic() - started < limit_s
    return info.value


_DIGITS_5000 = "9" * 5000

BAD_HLS = [  # (master, media, what the message names)
    (_MASTER, "#EXTM3U\n#EXTINF:-5,\ns.ts\n", "EXTINF"),
    ("#EXTM3U\n#EXT-X-STREAM-INF:RESOLUTION=1x1\nv.m3u8\n", _MEDIA, "BANDWIDTH"),
    ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=x\nv.m3u8\n", _MEDIA, "BANDWIDTH"),
    (f"#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH={_DIGITS_5000}\nv.m3u8\n", _MEDIA, "BANDWIDTH"),
    ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=1x²\nv.m3u8\n", _MEDIA, "RESOLUTION"),
    ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,FRAME-RATE=nan\nv.m3u8\n", _MEDIA, "FRAME-RATE"),
    ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,FRAME-RATE=inf\nv.m3u8\n", _MEDIA, "FRAME-RATE"),
    ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nhttp://[::1\n", _MEDIA, "URI"),
    ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n", _MEDIA, "URI"),
    ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n#EXT-X-STREAM-INF:BANDWIDTH=2\nv.m3u8\n", _MEDIA, "URI"),
    ('#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,CODECS="avc1\nv.m3u8\n', _MEDIA, "attribute list"),
    (_MASTER, "#EXTM3U\n#EXTINF:nan,\ns.ts\n", "EXTINF"),
    (_MASTER, "#EXTM3U\n#EXTINF:inf,\ns.ts\n", "EXTINF"),
    (_MASTER, "#EXTM3U\n#EXTINF:1e999,\ns.ts\n", "EXTINF"),
    (_MASTER, f"#EXTM3U\n#EXTINF:{_DIGITS_5000},\ns.ts\n", "EXTINF"),
    (_MASTER, "#EXTM3U\n#EXTINF:1_0,\ns.ts\n", "EXTINF"),
    (_MASTER, "#EXTM3U\n#EXTINF:99999999999,\ns.ts\n", "EXTINF"),
    (_MASTER, "#EXTM3U\n#EXTINF:2,\n", "URI"),
    (_MASTER, "#EXTM3U\n#EXTINF:2,\nhttp://[::1\n", "URI"),
    (_MASTER, f"#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:{_DIGITS_5000}\n#EXTINF:2,\ns.ts\n", "MEDIA-SEQUENCE"),
    (_MASTER, "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:-1\n#EXTINF:2,\ns.ts\n", "MEDIA-SEQUENCE"),
    (_MASTER, "#EXTM3U\n#EXTINF:2,\n#EXT-X-BYTERANGE:10@9223372036854775807\ns.mp4\n", "BYTERANGE"),
    (_MASTER, "#EXTM3U\n#EXTINF:2,\n#EXT-X-BYTERANGE:99999999999999999999@0\ns.mp4\n", "BYTERANGE"),
    (_MASTER, "#EXTM3U\n#EXTINF:2,\n#EXT-X-BYTERANGE:0@0\ns.mp4\n", "BYTERANGE"),
    (_MASTER, '#EXTM3U\n#EXT-X-MAP:BYTERANGE="1@0"\n#EXTINF:2,\ns.mp4\n', "EXT-X-MAP"),
    (_MASTER, '#EXTM3U\n#EXT-X-MAP:URI="http://[::1"\n#EXTINF:2,\ns.mp4\n', "URI"),
    (_MASTER, "", "EXTM3U"),
    (_MASTER, "#EXTM3U\n", "no segment"),
    (_MASTER, "\x00\x01\xff garbage \ufffd\n\x89PNG", "EXTM3U"),
    (_MASTER, "\ufffd\ufffd#\x00E\x00X\x00T\x00M\x003\x00U\x00\n", "EXTM3U"),  # UTF-16 read as UTF-8
    ("", _MEDIA, "EXTM3U"),
]


@pytest.mark.parametrize(("master", "media", "name"), BAD_HLS)
def test_bad_hls_values_are_manifest_errors_naming_them(master, media, name):
    err = _timed(lambda: _hls(media, master), 1.0)
    assert name in str(err) and err.kind == "bad_manifest" and err.stage == "media"


_SEG = '<SegmentTemplate duration="2" media="$Number$.m4s"/>'
BAD_DASH = [  # (MPD, what the message names)
    (_mpd(_video(rep='id="v" bandwidth="x"')), "bandwidth"),
    (_mpd(_video(rep=f'id="v" bandwidth="{_DIGITS_5000}"')), "bandwidth"),
    (_mpd(_video(rep='id="v" bandwidth="-1"')), "bandwidth"),
    (_mpd(_video(rep='id="v" bandwidth="1" width="²"')), "width"),
    (_mpd(_video('<SegmentTemplate duration="2" startNumber="3.5" media="$Number$.m4s"/>')), "startNumber"),
    (_mpd(_video('<SegmentTemplate duration="2" timescale="0" media="$Number$.m4s"/>')), "timescale"),
    (_mpd(_video('<SegmentTemplate duration="0" media="$Number$.m4s"/>')), "duration"),
    (_mpd(_video('<SegmentTemplate duration="-2" media="$Number$.m4s"/>')), "duration"),
    (_mpd(_video(rep='id="v" bandwidth="1" frameRate="30000/0"')), "frameRate"),
    (_mpd(_video(rep='id="v" bandwidth="1" frameRate="nan"')), "frameRate"),
    (_mpd(_video(rep='id="v" bandwidth="1" frameRate="1e999"')), "frameRate"),
    (_mpd(f"<BaseURL>http://[::1</BaseURL>{_video()}"), "BaseURL"),
    (_mpd(_video('<SegmentTemplate duration="2" media="http://[::1/$Number$"/>')), "media"),
    (_mpd(_video('<SegmentTemplate duration="2" media="$Number%0999999999d$"/>')), "media"),
    (_mpd(_video('<SegmentTemplate duration="2" media="$Bandwidth%05d$"/>', rep='id="v"')), "media"),
    (_mpd(_video('<SegmentTemplate media="$Time$"><SegmentTimeline><S d="1" r="2000000000"/></SegmentTimeline>'
                 "</SegmentTemplate>")), "100000"),
    (_mpd(_video('<SegmentTemplate media="$Time$"><SegmentTimeline><S d="1" r="x"/></SegmentTimeline>'
                 "</SegmentTemplate>")), "r="),
    (_mpd(_video('<SegmentTemplate media="$Time$"><SegmentTimeline><S t="-1" d="1"/></SegmentTimeline>'
                 "</SegmentTemplate>")), "t="),
    (_mpd(_video('<SegmentTemplate media="$Time$"><SegmentTimeline><S t="1"/></SegmentTimeline>'
                 "</SegmentTemplate>")), " d"),
    (_mpd(_video(), duration="P99999D"), "mediaPresentationDuration"),
    (_mpd(_video(), duration="-PT1S"), "mediaPresentationDuration"),
    (_mpd(_video(), duration="PT1.2.3S"), "mediaPresentationDuration"),
    (_mpd(_video(), duration=f"PT{_DIGITS_5000}S"), "mediaPresentationDuration"),
    (_mpd(_video('<SegmentList duration="1"><SegmentURL media="a" mediaRange="99999999999999999999-1"/>'
                 "</SegmentList>")), "mediaRange"),
    (_mpd(_video('<SegmentBase indexRange="5-1"/>')), "indexRange"),
    (_mpd(_video("<SegmentTemplate duration=\"2\"/>")), "media"),
    ("", "XML"),
    ("\x00\x01garbage\xff", "XML"),
    ("<MPD><Period>", "XML"),
    ("<NotMPD/>", "MPD"),
    ("<MPD/>", "Period"),
    (_mpd('<AdaptationSet contentType="text"><Representation id="t" bandwidth="1"/></AdaptationSet>'), "video"),
]


@pytest.mark.parametrize(("text", "name"), BAD_DASH)
def test_bad_dash_values_are_manifest_errors_naming_them(text, name):
    err = _timed(lambda: parse_dash("http://h/m.mpd", text, lambda u, a, b: b""), 1.0)
    assert name in str(err) and err.kind == "bad_manifest"


def test_a_master_whose_variant_is_itself_is_refused():
    _timed(lambda: parse_hls("http://h/m.m3u8", _MASTER.replace("v.m3u8", "m.m3u8"), lambda u: _MASTER), 1.0)


def test_a_master_whose_variants_are_masters_never_loops():
    fetched = []

    def fetch(u: str) -> str:  # every playlist answers with the same master, pointing onwards
        fetched.append(u)
        return _MASTER.replace("v.m3u8", f"v{len(fetched)}.m3u8")

    err = _timed(lambda: parse_hls("http://h/m.m3u8", _MASTER, fetch), 1.0)
    assert "master" in str(err) and len(fetched) == 1


def test_a_master_listing_too_many_playlists_is_refused():
    master = "#EXTM3U\n" + "".join(f"#EXT-X-STREAM-INF:BANDWIDTH=1\nv{i}.m3u8\n" for i in range(MAX_PLAYLISTS + 1))
    err = _timed(lambda: parse_hls("http://h/m.m3u8", master, lambda u: _MEDIA))
    assert str(MAX_PLAYLISTS) in str(err)


def test_max_segments_is_a_parameter():
    media = "#EXTM3U\n" + "#EXTINF:1,\ns.ts\n" * 11
    with pytest.raises(ManifestError, match="10 allowed"):
        parse_hls("http://h/v.m3u8", media, lambda u: "", max_segments=10)
    assert len(parse_hls("http://h/v.m3u8", media, lambda u: "", max_segments=11).video[0].segments) == 11
    with pytest.raises(ManifestError, match="3 allowed"):
        parse_dash("http://h/m.mpd", _mpd(_video()), max_segments=3)
    assert len(parse_dash("http://h/m.mpd", _mpd(_video()), max_segments=4).video[0].segments) == 4


_LAUGHS = ('<?xml version="1.0"?><!DOCTYPE MPD [<!ENTITY a "aaaaaaaaaa">'
           + "".join(f'<!ENTITY {n} "{("&" + p + ";") * 10}">' for p, n in zip("abcdefgh", "bcdefghi"))
           + ']><MPD mediaPresentationDuration="PT8S" x="&i;"><Period/></MPD>')


@pytest.mark.parametrize("text", [
    _LAUGHS,
    '<?xml version="1.0"?><!DOCTYPE MPD [<!ENTITY a "' + "a" * 100_000 + '">]><MPD x="' + "&a;" * 40 + '"/>',
    '<?xml version="1.0"?><!DOCTYPE MPD [<!ENTITY x SYSTEM "file:///etc/passwd">]><MPD>&x;</MPD>',
    '<?xml version="1.0"?><!DOCTYPE MPD SYSTEM "http://127.0.0.1:9/mpd.dtd"><MPD/>',
    '<?xml version="1.0"?><!DOCTYPE MPD [<!ENTITY % p SYSTEM "http://127.0.0.1:9/p">%p;]><MPD/>',
])
def test_entities_and_dtds_are_refused_not_expanded(text):
    err = _timed(lambda: parse_dash("http://h/m.mpd", text), 1.0)
    assert "DTD" in str(err) or "XML" in str(err)


@pytest.mark.parametrize("text", [
    _mpd("<a/>" * (_4MB // 4)),  # a million elements
    _mpd("<a>" * 400_000 + "</a>" * 400_000),  # nested 400,000 deep
    _mpd('<AdaptationSet contentType="video"><SegmentTemplate duration="2" media="$Number$"/>'
         + '<Representation id="v" bandwidth="1"/>' * 100_000 + "</AdaptationSet>", duration="PT1000S"),
    _mpd('<AdaptationSet contentType="video"><SegmentTemplate media="$Time$"><SegmentTimeline>'
         + '<S t="0" d="1" r="-1"/>' * 100_000 + "</SegmentTimeline></SegmentTemplate>"
         + '<Representation id="v" bandwidth="1"/>' * 50_000 + "</AdaptationSet>"),
    _mpd('<AdaptationSet contentType="video"><SegmentTemplate duration="1" media="' + "x" * 8000 + '$Number$"/>'
         + '<Representation id="v" bandwidth="1"/>' * 100 + "</AdaptationSet>", duration="PT99999S"),
])
def test_large_mpds_fail_in_bounded_time(text):
    _timed(lambda: parse_dash("http://h/m.mpd", text), 10.0)


@pytest.mark.parametrize("master", [
    "#EXTM3U\n" + "#EXT-X-STREAM-INF:BANDWIDTH=1\n" * (_4MB // 30),
    "#EXTM3U\n#EXT-X-STREAM-INF:" + "A" * _4MB + "\nv.m3u8\n",
    '#EXTM3U\n#EXT-X-STREAM-INF:CODECS="' + "a" * _4MB + "\nv.m3u8\n",
    "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1 " + " " * _4MB + '"\nv.m3u8\n',  # was quadratic (regex backtracking)
    "#EXTM3U\n" + "".join(f'#EXT-X-MEDIA:TYPE=AUDIO,URI="a{i}.m3u8"\n' for i in range(100_000)),
])
def test_large_masters_fail_in_bounded_time(master):
    _timed(lambda: parse_hls("http://h/m.m3u8", master, lambda u: _MEDIA))


def test_long_attribute_lists_are_linear():
    master = "#EXTM3U\n#EXT-X-STREAM-INF:" + "A=1," * (_4MB // 4) + "BANDWIDTH=1\nv.m3u8\n"
    started = time.monotonic()
    assert parse_hls("http://h/m.m3u8", master, lambda u: _MEDIA).video[0].bandwidth_bps == 1
    assert time.monotonic() - started < 5.0


def test_a_utf8_byte_order_mark_is_accepted():
    assert parse_hls("http://h/v.m3u8", "\ufeff" + _MEDIA, lambda u: "").video[0].segments[0].url == "http://h/s.ts"
    assert parse_dash("http://h/m.mpd", "\ufeff" + _mpd(_video())).video[0].segments[0].url == "http://h/1.m4s"
