"""Every HLS and DASH form read by pytomo.media.manifest, checked against ffprobe on the real packages."""

from __future__ import annotations

import json
import struct
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from pytomo.errors import MediaError
from pytomo.lab.tools import ffprobe_exe
from pytomo.media.manifest import MAX_SEGMENTS, parse_dash, parse_hls
from pytomo.media.sidx import find_sidx, parse_sidx
from pytomo.results import Presentation, Segment, Track

REPO = Path(__file__).resolve().parents[2]
REALMEDIA = REPO.parent / "shared" / "realmedia"
TOLERANCE_S = 0.05


# ---------------------------------------------------------------- helpers shared with the integration tests

def realmedia() -> Path:
    """The real-media corpus (never copied into the project); the test fails when it is missing."""
    if not (REALMEDIA / "SOURCES.md").is_file():
        pytest.fail(f"the real-media corpus is missing: expected {REALMEDIA} with its SOURCES.md")
    return REALMEDIA


def local_path(url: str) -> Path:
    return Path(unquote(urlsplit(url).path))


def read_text(url: str) -> str:
    return local_path(url).read_text()


def read_range(url: str, first: int, last: int) -> bytes:
    with open(local_path(url), "rb") as fh:
        fh.seek(first)
        return fh.read(last - first + 1)


def read_bytes(url: str, byte_range: tuple[int, int] | None) -> bytes:
    return local_path(url).read_bytes() if byte_range is None else read_range(url, *byte_range)


def load(manifest: Path) -> Presentation:
    """A manifest on disk, its playlists and index ranges read from the files beside it."""
    url = manifest.as_uri()
    if manifest.suffix == ".m3u8":
        return parse_hls(url, manifest.read_text(), read_text)
    return parse_dash(url, manifest.read_text(), read_range)


def ffprobe() -> str:
    exe, why = ffprobe_exe()
    if exe is None:
        pytest.skip(why)
    return exe


def probe_interval(data: bytes, stream: str) -> tuple[float, float]:
    """ffprobe's first presentation time and end (last pts + duration) of the packets of ``stream`` (a, v)."""
    with tempfile.NamedTemporaryFile(suffix=".media") as fh:
        fh.write(data)
        fh.flush()
        out = subprocess.run([ffprobe(), "-v", "error", "-select_streams", f"{stream}:0", "-show_entries",
                              "packet=pts_time,duration_time", "-of", "json", fh.name],
                             capture_output=True, text=True, check=True, timeout=60).stdout
    packets = [p for p in json.loads(out).get("packets", []) if p.get("pts_time") not in (None, "N/A")]
    assert packets, "ffprobe found no packet"
    starts = [float(p["pts_time"]) for p in packets]
    ends = [float(p["pts_time"]) + float(p.get("duration_time") or 0) for p in packets]
    return min(starts), max(ends)


def segment_bytes(track: Track, seg: Segment) -> bytes:
    init = read_bytes(track.init_url, track.init_range) if track.init_url else b""
    return init + read_bytes(seg.url, seg.byte_range)


def check_against_ffprobe(track: Track, tolerance_s: float = TOLERANCE_S) -> None:
    """Each segment's start (relative to the first) and duration, and their sum, as ffprobe measures them."""
    stream = "a" if track.stream == "audio" else "v"
    truth = [probe_interval(segment_bytes(track, seg), stream) for seg in track.segments]
    first_s = truth[0][0]
    for seg, (start_s, end_s) in zip(track.segments, truth):
        where = f"{track.stream} {track.rendition_id} segment {seg.number}"
        assert seg.start_s - track.segments[0].start_s == pytest.approx(start_s - first_s, abs=tolerance_s), where
        assert seg.duration_s == pytest.approx(end_s - start_s, abs=tolerance_s), where
    urls = list(dict.fromkeys(s.url for s in track.segments))
    if all(s.byte_range for s in track.segments) and len(urls) == 1:
        whole = local_path(urls[0]).read_bytes()  # one file per rendition: ffprobe reads it as it is
    else:
        whole = b"".join([read_bytes(track.init_url, track.init_range) if track.init_url else b""]
                         + [read_bytes(s.url, s.byte_range) for s in track.segments])
    start_s, end_s = probe_interval(whole, stream)
    assert track.duration_s == pytest.approx(end_s - start_s, abs=tolerance_s), f"{track.stream} total"


def top_boxes(data: bytes) -> list[tuple[bytes, int, int]]:
    """(type, first byte, last byte) of the top-level ISO BMFF boxes."""
    out, pos = [], 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, pos)
        if size == 1:
            size = struct.unpack_from(">Q", data, pos + 8)[0]
        elif size == 0:
            size = len(data) - pos
        assert size >= 8, f"bad box at {pos}"
        out.append((kind, pos, pos + size - 1))
        pos += size
    assert pos == len(data), "trailing bytes after the last box"
    return out


# ---------------------------------------------------------------- (a) the real packages

REAL_PACKAGES = [  # manifest, then from SOURCES.md: video (or muxed) segments per rendition, audio segments
    ("hls/shaka_hls-ts-muxed-aac-h264/playlist.m3u8", [6], []),
    ("hls/shaka_hls-ts-h264/prog_index.m3u8", [6], []),
    ("hls/shaka_hls-svta-2053-2/main.m3u8", [5], []),
    ("hls/shaka_hls-sample-aes/index.m3u8", [10], []),
    ("dash/livesim2_testpic_2s/Manifest.mpd", [4], [4]),
    ("dash/livesim2_bbb_hevc_ac3_8s/manifest.mpd", [4], [4]),
    ("dash/shaka_dash-clearkey/dash.mpd", [5], []),
    ("dash/shaka_6339/master.mpd", [5], [12]),
]


def test_every_real_package_is_listed():
    root = realmedia()
    found = {p.relative_to(root).parts[:2] for p in [*root.glob("hls/*/*"), *root.glob("dash/*/*")]}
    assert found == {tuple(m.split("/")[:2]) for m, _v, _a in REAL_PACKAGES}


@pytest.mark.parametrize(("manifest", "video_counts", "audio_counts"), REAL_PACKAGES,
                         ids=[m.split("/")[1] for m, _v, _a in REAL_PACKAGES])
def test_real_package(manifest, video_counts, audio_counts):
    path = realmedia() / manifest
    pres = load(path)
    assert [len(t.segments) for t in pres.video] == video_counts
    assert [len(t.segments) for t in pres.audio] == audio_counts
    referenced = {path.name}
    for track in pres.video + pres.audio:
        for seg in track.segments:
            file = local_path(seg.url)
            assert file.is_file()
            referenced.add(file.name)
            if seg.byte_range:
                assert 0 <= seg.byte_range[0] <= seg.byte_range[1] < file.stat().st_size
                assert read_bytes(seg.url, seg.byte_range)[4:8] in (b"moof", b"styp")
        if track.init_url:
            referenced.add(local_path(track.init_url).name)
        check_against_ffprobe(track)
    # every file of the package is the manifest, a playlist, an init or a segment
    files = {p.name for p in path.parent.rglob("*") if p.is_file()}
    assert files - referenced <= {p.name for p in path.parent.rglob("*.m3u8")}


def test_real_byterange_playlist_continues_offsets():
    pres = load(realmedia() / "hls/shaka_hls-sample-aes/index.m3u8")
    track = pres.video[0]
    assert track.init_range == (0, 1018)  # BYTERANGE="1019@0"
    assert track.segments[0].byte_range == (1171, 1171 + 136434 - 1)  # 136434@1171
    for a, b in zip(track.segments, track.segments[1:]):
        assert b.byte_range[0] == a.byte_range[1] + 1
    size = local_path(track.segments[0].url).stat().st_size
    assert track.segments[-1].byte_range[1] == size - 1
    assert track.duration_s == pytest.approx(60.0, abs=0.01)


def test_real_segment_list_with_media_ranges():
    pres = load(realmedia() / "dash/shaka_6339/master.mpd")
    video = pres.video[0]
    assert video.init_range == (36, 745) and video.init_url.endswith("/v.mp4")
    assert video.segments[0].byte_range == (746, 18481)
    assert video.frame_rate == 24.0


def test_sidx_of_a_real_file_matches_ffprobe():
    path = realmedia() / "progressive/mp4ff_bbb5s_aac_sidx.mp4"
    data = path.read_bytes()
    offset, sidx = find_sidx(data)
    ranges = sidx.ranges(offset)
    assert ranges[-1][1] == len(data) - 1
    boxes = [b for b in top_boxes(data) if b[0] in (b"moof", b"mdat", b"styp")]
    assert ranges[0][0] == boxes[0][1]
    init = data[:offset]
    truth = [probe_interval(init + data[first:last + 1], "a") for first, last in ranges]
    for (first, _last), start_s, duration_s, (t0, t1) in zip(ranges, sidx.starts_s(), sidx.durations_s(), truth):
        assert data[first + 4:first + 8] in (b"moof", b"styp")
        assert start_s - sidx.starts_s()[0] == pytest.approx(t0 - truth[0][0], abs=TOLERANCE_S)
        assert duration_s == pytest.approx(t1 - t0, abs=TOLERANCE_S)
    total = sum(sidx.durations_s())
    assert total == pytest.approx(5.0, abs=0.1)  # SOURCES.md: 5 s


def test_segment_base_on_a_real_file(tmp_path):
    """An on-demand MPD written here around a real file with a sidx: segments come from its index."""
    media = realmedia() / "progressive/mp4ff_bbb5s_aac_sidx.mp4"
    data = media.read_bytes()
    offset, sidx = find_sidx(data)
    mpd = tmp_path / "od.mpd"
    mpd.write_text(f"""<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT5S">
<Period><AdaptationSet contentType="audio"><Representation id="a" bandwidth="64000">
<BaseURL>{media.as_uri()}</BaseURL>
<SegmentBase indexRange="{offset}-{offset + sidx.box_size_bytes - 1}"><Initialization range="0-{offset - 1}"/>
</SegmentBase></Representation></AdaptationSet>
<AdaptationSet contentType="video"><Representation id="v" bandwidth="1"><BaseURL>{media.as_uri()}</BaseURL>
<SegmentBase indexRange="{offset}-{offset + sidx.box_size_bytes - 1}"/></Representation></AdaptationSet>
</Period></MPD>""")
    pres = load(mpd)
    audio = pres.audio[0]
    assert audio.init_url == media.as_uri() and audio.init_range == (0, offset - 1)
    assert [s.byte_range for s in audio.segments] == sidx.ranges(offset)
    check_against_ffprobe(audio)
    assert pres.video[0].init_range == (0, offset - 1)  # no Initialization: what precedes the index
    whole = parse_dash(mpd.as_uri(), mpd.read_text(), lambda u, a, b: local_path(u).read_bytes())
    assert whole.audio == pres.audio  # a server that ignores Range sends the whole file: same segments
    with pytest.raises(MediaError, match="byte range"):
        parse_dash(mpd.as_uri(), mpd.read_text())  # no fetch_range


# ---------------------------------------------------------------- forms the corpus does not have

def _mpd(body: str, duration: str = "PT8S", extra: str = "") -> str:
    return (f'<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="{duration}" '
            f'{extra}><Period>{body}</Period></MPD>')


def _video(segment_info: str, rep_attrs: str = 'id="v" bandwidth="1000"', aset_attrs: str = "") -> str:
    return (f'<AdaptationSet contentType="video" {aset_attrs}><Representation {rep_attrs}>{segment_info}'
            "</Representation></AdaptationSet>")


def test_template_number_with_printf_width_and_a_short_last_segment():
    pres = parse_dash("http://h/a/m.mpd", _mpd(_video(
        '<SegmentTemplate timescale="1000" duration="3000" startNumber="7" initialization="i-$RepresentationID$.mp4" '
        'media="c-$RepresentationID$-$Number%05d$.m4s"/>')))
    segs = pres.video[0].segments
    assert [s.url for s in segs] == [f"http://h/a/c-v-{n:05d}.m4s" for n in (7, 8, 9)]
    assert [s.duration_s for s in segs] == [3.0, 3.0, 2.0]
    assert pres.video[0].init_url == "http://h/a/i-v.mp4"


def test_timeline_with_time_repeat_to_period_end_and_offset():
    pres = parse_dash("http://h/m.mpd", _mpd(_video(
        '<SegmentTemplate timescale="10" presentationTimeOffset="100" media="$Time$.m4s">'
        '<SegmentTimeline><S t="100" d="20" r="1"/><S d="15" r="-1"/></SegmentTimeline></SegmentTemplate>'),
        duration="PT10S"))
    segs = pres.video[0].segments
    assert [s.url.rsplit("/", 1)[1] for s in segs] == ["100.m4s", "120.m4s", "140.m4s", "155.m4s", "170.m4s",
                                                      "185.m4s"]
    assert [s.start_s for s in segs] == [0.0, 2.0, 4.0, 5.5, 7.0, 8.5]
    assert segs[0].number == 1


def test_timeline_repeat_up_to_the_next_t():
    pres = parse_dash("http://h/m.mpd", _mpd(_video(
        '<SegmentTemplate media="$Number$.m4s"><SegmentTimeline><S t="0" d="2" r="-1"/><S t="6" d="1"/>'
        "</SegmentTimeline></SegmentTemplate>")))
    assert [(s.start_s, s.duration_s) for s in pres.video[0].segments] == [(0, 2), (2, 2), (4, 2), (6, 1)]


def test_base_urls_at_every_level():
    text = ('<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" mediaPresentationDuration="PT2S"><BaseURL>http://cdn/x/'
            '</BaseURL><Period><BaseURL>p/</BaseURL><AdaptationSet contentType="video"><BaseURL>s/</BaseURL>'
            '<Representation id="r" bandwidth="1"><BaseURL>r/</BaseURL>'
            '<SegmentTemplate duration="2" media="$Number$.m4s" initialization="init.mp4"/></Representation>'
            "</AdaptationSet></Period></MPD>")
    track = parse_dash("http://origin/m.mpd", text).video[0]
    assert track.init_url == "http://cdn/x/p/s/r/init.mp4"
    assert track.segments[0].url == "http://cdn/x/p/s/r/1.m4s"


def test_template_inherited_from_the_adaptation_set_and_period():
    text = _mpd('<SegmentTemplate timescale="1000" duration="4000"/><AdaptationSet contentType="video">'
                '<SegmentTemplate media="$RepresentationID$_$Number$.m4s"/>'
                '<Representation id="lo" bandwidth="100"/><Representation id="hi" bandwidth="900"/></AdaptationSet>')
    pres = parse_dash("http://h/m.mpd", text)
    assert [t.rendition_id for t in pres.video] == ["lo", "hi"]
    assert [s.url for s in pres.video[1].segments] == ["http://h/hi_1.m4s", "http://h/hi_2.m4s"]


def test_images_and_text_are_not_renditions():
    body = (_video('<SegmentTemplate duration="2" media="v$Number$.m4s"/>', 'id="v" bandwidth="500000"')
            + '<AdaptationSet contentType="image" mimeType="image/jpeg"><Representation id="thumbs" bandwidth="1">'
              '<SegmentTemplate duration="2" media="t$Number$.jpg"/></Representation></AdaptationSet>'
            + '<AdaptationSet mimeType="image/png"><Representation id="thumbs2" bandwidth="2">'
              '<SegmentTemplate duration="2" media="t$Number$.png"/></Representation></AdaptationSet>'
            + '<AdaptationSet mimeType="application/mp4" codecs="stpp"><Representation id="subs" bandwidth="3">'
              '<SegmentTemplate duration="2" media="s$Number$.mp4"/></Representation></AdaptationSet>'
            + '<AdaptationSet contentType="text"><Representation id="vtt" bandwidth="4" mimeType="text/vtt">'
              "<BaseURL>s.vtt</BaseURL></Representation></AdaptationSet>")
    pres = parse_dash("http://h/m.mpd", _mpd(body))
    assert [t.rendition_id for t in pres.video] == ["v"] and pres.audio == ()


def test_segment_list_with_timeline():
    pres = parse_dash("http://h/m.mpd", _mpd(_video(
        '<SegmentList timescale="2"><Initialization sourceURL="f.mp4" range="0-99"/>'
        '<SegmentTimeline><S t="0" d="4"/><S d="6"/></SegmentTimeline>'
        '<SegmentURL media="f.mp4" mediaRange="100-199"/><SegmentURL media="f.mp4" mediaRange="200-299"/>'
        "</SegmentList>"), duration="PT5S"))
    track = pres.video[0]
    assert track.init_range == (0, 99)
    assert [(s.start_s, s.duration_s, s.byte_range) for s in track.segments] == [(0, 2, (100, 199)),
                                                                                (2, 3, (200, 299))]


def _sidx(version: int, refs: list[tuple[int, int]], timescale: int = 1000, earliest: int = 0,
          first_offset: int = 0) -> bytes:
    body = struct.pack(">II", 1, timescale)
    body += struct.pack(">II" if version == 0 else ">QQ", earliest, first_offset)
    body += struct.pack(">HH", 0, len(refs))
    for size, duration in refs:
        body += struct.pack(">III", size, duration, 0x90000000)
    payload = bytes([version, 0, 0, 0]) + body
    return struct.pack(">I4s", 8 + len(payload), b"sidx") + payload


@pytest.mark.parametrize("version", [0, 1])
def test_sidx_versions(version):
    box = _sidx(version, [(1000, 2000), (1500, 1900)], earliest=500, first_offset=10)
    sidx = parse_sidx(box)
    assert sidx.version == version and sidx.timescale == 1000 and sidx.earliest_presentation_time == 500
    assert sidx.ranges(100) == [(100 + len(box) + 10, 100 + len(box) + 1009),
                                (100 + len(box) + 1010, 100 + len(box) + 2509)]
    assert sidx.durations_s() == [2.0, 1.9] and sidx.starts_s() == [0.5, 2.5]
    assert all(r.starts_with_sap and r.sap_type == 1 for r in sidx.references)


def test_sidx_truncated_and_bad():
    box = _sidx(0, [(1000, 2000)])
    with pytest.raises(MediaError, match="truncated"):
        parse_sidx(box[:-4])
    with pytest.raises(MediaError, match="timescale"):
        parse_sidx(_sidx(0, [(1, 1)], timescale=0))


def test_hls_byterange_forms():
    media = ("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MAP:URI=\"f.mp4\",BYTERANGE=\"700\"\n"
             "#EXTINF:4,\n#EXT-X-BYTERANGE:100@800\nf.mp4\n#EXTINF:4,\n#EXT-X-BYTERANGE:50\nf.mp4\n"
             "#EXTINF:2,\n#EXT-X-BYTERANGE:10@0\ng.mp4\n#EXTINF:2,\nh.ts\n#EXT-X-ENDLIST\n")
    master = ('#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",NAME="en",URI="a.m3u8"\n'
              '#EXT-X-STREAM-INF:BANDWIDTH=900,RESOLUTION=640x360,FRAME-RATE=25,AUDIO="a",CODECS="avc1,mp4a"\n'
              "v.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=300,AUDIO=\"a\"\nv.m3u8\n")
    pres = parse_hls("http://h/m.m3u8", master, lambda u: media)
    assert [t.bandwidth_bps for t in pres.video] == [300, 900]
    top = pres.video[1]
    assert (top.stream, top.width, top.height, top.frame_rate) == ("video", 640, 360, 25.0)
    assert top.init_url == "http://h/f.mp4" and top.init_range == (0, 699)
    assert [s.byte_range for s in top.segments] == [(800, 899), (900, 949), (0, 9), None]
    assert [s.start_s for s in top.segments] == [0, 4, 8, 10]
    assert pres.audio[0].rendition_id == "en"


# ---------------------------------------------------------------- (d) malformed values

@pytest.mark.parametrize(("name", "value"), [("timescale", "0"), ("timescale", "x"), ("startNumber", "3.5"),
                                             ("presentationTimeOffset", "-1"), ("duration", "0")])
def test_malformed_template_attributes(name, value):
    attrs = {"duration": "2", "media": "$Number$.m4s", name: value}
    text = _mpd(_video("<SegmentTemplate " + " ".join(f'{k}="{v}"' for k, v in attrs.items()) + "/>"))
    with pytest.raises(MediaError, match=f"{name}='{value}'"):
        parse_dash("http://h/m.mpd", text)


@pytest.mark.parametrize(("rep_attrs", "aset_attrs", "name"), [
    ('id="v" bandwidth="x"', "", "bandwidth"),
    ('id="v" bandwidth="1" width="wide"', "", "width"),
    ('id="v" bandwidth="1"', 'frameRate="30000/0"', "frameRate"),
    ('id="v" bandwidth="1" frameRate="fast"', "", "frameRate"),
])
def test_malformed_representation_attributes(rep_attrs, aset_attrs, name):
    text = _mpd(_video('<SegmentTemplate duration="2" media="$Number$.m4s"/>', rep_attrs, aset_attrs))
    with pytest.raises(MediaError, match=name):
        parse_dash("http://h/m.mpd", text)


@pytest.mark.parametrize(("timeline", "name"), [('<S t="0" d="0"/>', "d"), ('<S t="-3" d="2"/>', "t"),
                                                ('<S d="2" r="x"/>', "r"), ('<S t="0"/>', "no d")])
def test_malformed_timeline(timeline, name):
    text = _mpd(_video(f'<SegmentTemplate media="$Time$.m4s"><SegmentTimeline>{timeline}</SegmentTimeline>'
                       "</SegmentTemplate>"))
    with pytest.raises(MediaError, match=name):
        parse_dash("http://h/m.mpd", text)


@pytest.mark.parametrize(("text", "name"), [
    (_mpd(_video('<SegmentTemplate duration="2" media="$Number$.m4s"/>'), duration="soon"),
     "mediaPresentationDuration"),
    (_mpd(_video('<SegmentList duration="1"><SegmentURL media="a" mediaRange="9-2"/></SegmentList>')), "mediaRange"),
    (_mpd(_video('<SegmentBase indexRange="1-x"/>')), "indexRange"),
    ("<MPD><Period", "XML"),
])
def test_malformed_manifests(text, name):
    with pytest.raises(MediaError, match=name):
        parse_dash("http://h/m.mpd", text, lambda u, a, b: b"")


@pytest.mark.parametrize("text", [
    _mpd(_video('<SegmentTemplate media="$Time$.m4s"><SegmentTimeline><S t="0" d="1" r="2000000000"/>'
                "</SegmentTimeline></SegmentTemplate>")),
    _mpd(_video('<SegmentTemplate duration="2" media="$Number$.m4s"/>'), duration="P99999D"),
    _mpd(_video('<SegmentTemplate timescale="1000000" media="$Time$.m4s"><SegmentTimeline><S t="0" d="1" r="-1"/>'
                "</SegmentTimeline></SegmentTemplate>"), duration="PT60S"),
])
def test_hostile_segment_counts_are_refused_quickly(text):
    started = time.monotonic()
    with pytest.raises(MediaError, match=f"{MAX_SEGMENTS}|mediaPresentationDuration"):
        parse_dash("http://h/m.mpd", text)
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize(("master", "media", "name"), [
    ("#EXTM3U\n#EXT-X-STREAM-INF:RESOLUTION=1x1\nv.m3u8\n", "", "BANDWIDTH"),
    ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=fast\nv.m3u8\n", "", "BANDWIDTH"),
    ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,RESOLUTION=big\nv.m3u8\n", "", "RESOLUTION"),
    ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n", "#EXTM3U\n#EXTINF:-5,\ns.ts\n", "EXTINF"),
    ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n", "#EXTM3U\n#EXTINF:abc,\ns.ts\n", "EXTINF"),
    ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n", "#EXTM3U\n#EXTINF:2,\n#EXT-X-BYTERANGE:10\ns.mp4\n",
     "BYTERANGE"),
    ("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n", "#EXTM3U\n#EXTINF:2,\n#EXT-X-BYTERANGE:x@1\ns.mp4\n",
     "BYTERANGE"),
])
def test_malformed_hls(master, media, name):
    with pytest.raises(MediaError, match=name):
        parse_hls("http://h/m.m3u8", master, lambda u: media)


def test_hostile_hls_segment_count_is_refused():
    media = "#EXTM3U\n" + "#EXTINF:1,\ns.ts\n" * (MAX_SEGMENTS + 1)
    with pytest.raises(MediaError, match=str(MAX_SEGMENTS)):
        parse_hls("http://h/v.m3u8", media, lambda u: "")
