"""The lab's segmented forms (ffmpeg's HLS and DASH, Shaka Packager's five) read by our parser, checked with
ffprobe, and served by byte range."""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

from pytomo.errors import LabError
from pytomo.lab import segmented
from pytomo.lab.http import CacheHandler, LabServer
from pytomo.lab.scenario import PACKAGINGS, ServerProfile
from pytomo.lab.segmented import SegmentedSpec, ensure_segmented
from pytomo.lab.tools import packager_exe
from tests.unit.test_manifest_forms import check_against_ffprobe, load, local_path, probe_interval, top_boxes

FORMS = [(protocol, packaging) for protocol, forms in PACKAGINGS.items() for packaging in forms]
LADDER = ((160, 150_000), (240, 300_000))
# ffmpeg's dash muxer cuts audio about 0.08 s before each nominal boundary its MPD's SegmentTemplate@duration
# states (measured with ffprobe: 1.92 s, 3.925 s...): for that one stream the manifest itself is 0.08 s off.
FFMPEG_DASH_AUDIO_TOLERANCE_S = 0.1


def _spec(protocol: str, packaging: str) -> SegmentedSpec:
    return SegmentedSpec(protocol, duration_s=8.0, segment_s=2.0, ladder=LADDER, packaging=packaging)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("lab-media")


def _media(protocol: str, packaging: str, cache: Path):
    if packaging != "ffmpeg" and packager_exe()[0] is None:
        pytest.skip(packager_exe()[1])
    return ensure_segmented(_spec(protocol, packaging), cache)


@pytest.mark.parametrize(("protocol", "packaging"), FORMS, ids=[f"{p}-{k}" for p, k in FORMS])
def test_lab_form_against_ffprobe(protocol, packaging, cache):
    media = _media(protocol, packaging, cache)
    manifest = media.root / media.manifest
    text = manifest.read_text()
    pres = load(manifest)
    assert len(pres.video) == len(LADDER) and len(pres.audio) == 1
    assert [t.height for t in pres.video] == [h for h, _b in LADDER]
    _check_form(packaging, text, media)
    referenced = {media.manifest}
    for track in pres.video + pres.audio:
        tolerance = FFMPEG_DASH_AUDIO_TOLERANCE_S if (protocol, packaging, track.stream) == (
            "dash", "ffmpeg", "audio") else 0.05
        check_against_ffprobe(track, tolerance)
        assert track.duration_s == pytest.approx(8.0, abs=0.1)
        if track.init_url:
            referenced.add(local_path(track.init_url).relative_to(media.root).as_posix())
        by_file: dict[Path, list[tuple[int, int]]] = {}
        for seg in track.segments:
            file = local_path(seg.url)
            referenced.add(file.relative_to(media.root).as_posix())
            data = file.read_bytes()
            if seg.byte_range is None:
                if file.suffix == ".ts":
                    assert data[0] == 0x47 and len(data) % 188 == 0
                else:
                    assert data[4:8] in (b"moof", b"styp"), seg.url
            else:
                by_file.setdefault(file, []).append(seg.byte_range)
        for file, ranges in by_file.items():
            _check_single_file(file, ranges, track.init_range)
    playlists = {name for name in media.sizes if name.endswith(".m3u8")}
    unreferenced = set(media.sizes) - referenced - playlists
    if (protocol, packaging) == ("dash", "ffmpeg"):
        # ffmpeg's dash muxer leaves the audio's last AAC frame (past the MPD's duration) in one more chunk
        for name in unreferenced:
            rep = name.split("-")[1]
            start_s, end_s = probe_interval((media.root / f"init-{rep}.m4s").read_bytes()
                                            + (media.root / name).read_bytes(), "a")
            assert start_s >= 8.0 - 0.05 and end_s - start_s < 0.05, name
    else:
        assert not unreferenced  # every file is the manifest, a playlist, an init or a segment


def _check_form(packaging: str, text: str, media) -> None:
    """The manifest is the form asked for, as Shaka Packager (or ffmpeg) wrote it."""
    sub = "\n".join((media.root / name).read_text() for name in media.sizes if name.endswith(".m3u8"))
    if packaging == "shaka-cmaf":
        assert "#EXT-X-MAP:URI=" in sub and "#EXT-X-BYTERANGE" not in sub and ".m4s" in sub
    elif packaging == "shaka-byterange":
        assert "#EXT-X-BYTERANGE:" in sub and 'BYTERANGE="' in sub
    elif packaging == "shaka-number":
        assert "$Number$" in text and "$Time$" not in text
    elif packaging == "shaka-time":
        assert "$Time$" in text and "<SegmentTimeline>" in text
    elif packaging == "shaka-segmentbase":
        assert "<SegmentBase" in text and "indexRange=" in text and "SegmentTemplate" not in text
    elif text.startswith("<?xml"):
        assert "$Number%05d$" in text
    else:
        assert ".ts" in sub


def _check_single_file(file: Path, ranges: list[tuple[int, int]], init_range: tuple[int, int] | None) -> None:
    """The byte ranges are the file's media, exactly: every moof (or styp) to the last mdat, nothing twice."""
    boxes = top_boxes(file.read_bytes())
    media_boxes = [b for b in boxes if b[0] in (b"styp", b"moof", b"mdat")]
    starts = {first for kind, first, _last in media_boxes if kind in (b"moof", b"styp")}
    assert ranges == sorted(ranges)
    assert ranges[0][0] == media_boxes[0][1] and ranges[-1][1] == media_boxes[-1][2] == file.stat().st_size - 1
    for (_a, b), (c, _d) in zip(ranges, ranges[1:]):
        assert c == b + 1
    assert all(first in starts for first, _last in ranges)
    head = [kind for kind, first, _last in boxes if first < media_boxes[0][1]]
    assert head[:2] == [b"ftyp", b"moov"] and set(head[2:]) <= {b"sidx", b"free"}
    assert init_range is not None
    moov = next(b for b in boxes if b[0] == b"moov")
    assert init_range == (0, moov[2])


def test_without_the_packager_a_shaka_form_is_one_lab_error(tmp_path, monkeypatch):
    monkeypatch.setattr(segmented, "packager_exe", lambda: (None, "no packager here"))
    reason = segmented.unavailable(_spec("dash", "shaka-time"), tmp_path)
    assert reason == "dash shaka-time lab media needs Shaka Packager: no packager here"
    assert segmented.unavailable(_spec("dash", "ffmpeg"), tmp_path) is None
    with pytest.raises(LabError) as err:
        ensure_segmented(_spec("dash", "shaka-time"), tmp_path)
    assert str(err.value) == reason
    assert not any(p for p in tmp_path.iterdir() if not p.name.startswith("."))


def test_packaging_is_part_of_the_spec():
    with pytest.raises(LabError, match="packaging"):
        SegmentedSpec("hls", packaging="shaka-time")
    assert segmented._key(_spec("dash", "shaka-time")) != segmented._key(_spec("dash", "shaka-number"))


def test_cache_server_answers_byte_ranges(cache):
    media = _media("dash", "shaka-segmentbase", cache)
    pres = load(media.root / media.manifest)
    seg = pres.video[0].segments[1]
    relative = local_path(seg.url).relative_to(media.root).as_posix()
    video = SimpleNamespace(id="sb", server="cache-a")
    records: list[dict] = []
    lab = SimpleNamespace(scenario=SimpleNamespace(video=lambda vid: video if vid == "sb" else None, videos=()),
                          media_dir=None, segmented={"sb": media}, truth_record=lambda v, p: {"range": None},
                          truth=SimpleNamespace(add=records.append))
    profile = ServerProfile(name="cache-a", host="cache-a.test", ip="127.0.0.1")
    server = LabServer("127.0.0.1", CacheHandler, lab, profile)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.port}/s/sb/{relative}"
    data = (media.root / relative).read_bytes()
    try:
        first, last = seg.byte_range
        req = urllib.request.Request(url, headers={"Range": f"bytes={first}-{last}"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 206
            assert resp.headers["Content-Range"] == f"bytes {first}-{last}/{len(data)}"
            body = resp.read()
        assert body == data[first:last + 1] and body[4:8] in (b"moof", b"styp")
        _wait_for(records, 1)
        assert records[-1]["range"] == f"bytes={first}-{last}" and records[-1]["status"] == 206
        assert records[-1]["bytes_sent"] == last - first + 1
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert resp.status == 200 and resp.read() == data
        _wait_for(records, 2)
        assert records[-1]["range"] is None and records[-1]["status"] == 200
        req = urllib.request.Request(url, headers={"Range": f"bytes={len(data) + 5}-"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=10)
        assert err.value.code == 416
        _wait_for(records, 3)
        assert records[-1]["status"] == 416
    finally:
        server.shutdown()
        server.server_close()


def _wait_for(records: list[dict], count: int) -> None:
    """The server adds its truth record after the last byte: wait for it."""
    deadline = time.monotonic() + 5.0
    while len(records) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(records) == count


def test_a_cached_shaka_form_needs_no_packager(cache, monkeypatch):
    media = _media("hls", "shaka-cmaf", cache)
    monkeypatch.setattr(segmented, "packager_exe", lambda: (None, "no packager here"))
    assert segmented.unavailable(_spec("hls", "shaka-cmaf"), cache) is None
    assert ensure_segmented(_spec("hls", "shaka-cmaf"), cache) == media
