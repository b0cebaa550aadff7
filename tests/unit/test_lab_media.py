"""Lab media generation: ffmpeg's own facts, container layout, determinism, caching, near-constant bitrate."""

from __future__ import annotations

import hashlib
import os
import struct
import subprocess
from pathlib import Path

import pytest

import pytomo.lab.media as lab_media_module
from pytomo.errors import LabError
from pytomo.lab.media import CONTAINERS, LabMedia, MediaSpec, ensure_media, ffmpeg_exe
from tests.unit.media_fixtures import TEST_DURATION_S, ffmpeg_playable_s, lab_media, media_cache  # noqa: F401

EXPECTED_CODECS = {"mp4": ("h264", "aac"), "mp4-moov-end": ("h264", "aac"), "fmp4": ("h264", "aac"),
                   "webm": ("vp8", "opus"), "flv": ("h264", "aac")}
EXPECTED_MIME = {"mp4": "video/mp4", "mp4-moov-end": "video/mp4", "fmp4": "video/mp4", "webm": "video/webm",
                 "flv": "video/x-flv"}


def top_level_boxes(data: bytes) -> list[bytes]:
    """Types of the top-level boxes of an MP4 file, walked by their sizes."""
    kinds, pos = [], 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, pos)
        if size == 1:
            size = struct.unpack_from(">Q", data, pos + 8)[0]
        kinds.append(kind)
        if size < 8:
            break
        pos += size
    return kinds


def test_facts_are_what_ffmpeg_reports(lab_media: LabMedia, media_cache: Path) -> None:  # noqa: F811
    spec = lab_media.spec
    assert lab_media.path.parent == media_cache / "lab-media"
    assert lab_media.size_bytes == lab_media.path.stat().st_size
    assert lab_media.duration_s == pytest.approx(spec.duration_s, rel=0.02)
    assert lab_media.bitrate_bps == pytest.approx(lab_media.size_bytes * 8 / lab_media.duration_s)
    assert lab_media.bitrate_bps == pytest.approx(spec.bitrate_bps, rel=0.05)
    assert (lab_media.video_codec, lab_media.audio_codec) == EXPECTED_CODECS[spec.container]
    assert lab_media.mime_type == EXPECTED_MIME[spec.container]


def test_container_layout(lab_media: LabMedia) -> None:  # noqa: F811
    data = lab_media.path.read_bytes()
    container = lab_media.spec.container
    if container == "webm":
        assert data[:4] == b"\x1a\x45\xdf\xa3"
        assert b"\x1f\x43\xb6\x75" in data  # a Cluster
    elif container == "flv":
        assert data[:4] == b"FLV\x01"
    else:
        kinds = top_level_boxes(data)
        assert kinds[0] == b"ftyp"
        if container == "mp4":
            assert kinds.index(b"moov") < kinds.index(b"mdat")
        elif container == "mp4-moov-end":
            assert kinds.index(b"mdat") < kinds.index(b"moov")
        else:
            assert kinds.index(b"moov") < kinds.index(b"sidx") < kinds.index(b"moof")
            assert kinds.count(b"moof") == pytest.approx(TEST_DURATION_S / 2, abs=1)  # a fragment per 2 s GOP


def test_bytes_are_nearly_linear_in_media_time(lab_media: LabMedia, tmp_path: Path) -> None:  # noqa: F811
    """ffmpeg decoding a cut-off copy plays within 10% of B*8/bitrate seconds (past the first second)."""
    if lab_media.spec.container == "mp4-moov-end":
        pytest.skip("a cut-off copy has no moov; the encoding is the same as mp4")
    data = lab_media.path.read_bytes()
    for fraction in (0.15, 0.4, 0.65, 0.9):
        cut = int(len(data) * fraction)
        (tmp_path / "cut").write_bytes(data[:cut])
        linear_s = cut * 8 / lab_media.bitrate_bps
        assert linear_s > 1.0
        assert ffmpeg_playable_s(tmp_path / "cut") == pytest.approx(linear_s, rel=0.10)


@pytest.mark.parametrize("container", CONTAINERS)
def test_same_spec_gives_same_bytes(container: str, tmp_path: Path) -> None:
    spec = MediaSpec(container, duration_s=2.0, bitrate_bps=500_000, width=320, height=180)
    first = ensure_media(spec, tmp_path / "a")
    second = ensure_media(spec, tmp_path / "b")
    assert first.path.name == second.path.name
    assert hashlib.sha256(first.path.read_bytes()).digest() == hashlib.sha256(second.path.read_bytes()).digest()
    assert first.duration_s == second.duration_s == pytest.approx(2.0, rel=0.05)


def test_reuse_reads_the_cache_without_ffmpeg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = MediaSpec("webm", duration_s=1.0, bitrate_bps=400_000, width=160, height=90, audio=False)
    made = ensure_media(spec, tmp_path)
    assert made.audio_codec is None
    assert made.size_bytes == made.path.stat().st_size
    mtime = made.path.stat().st_mtime_ns

    def no_ffmpeg(*args: object, **kwargs: object) -> None:
        raise AssertionError("ffmpeg was run again")

    monkeypatch.setattr(lab_media_module, "_run_ffmpeg", no_ffmpeg)
    again = ensure_media(spec, tmp_path)
    assert again == made
    assert again.path.stat().st_mtime_ns == mtime
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([made.path.name, made.path.name + ".json"])


def test_default_folder_is_the_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTOMO_CACHE_DIR", str(tmp_path))
    made = ensure_media(MediaSpec("flv", duration_s=1.0, bitrate_bps=400_000, width=160, height=90))
    assert made.path.parent == tmp_path / "lab-media"
    assert made.path.read_bytes()[:3] == b"FLV"


def test_ffmpeg_failure_is_a_lab_error_with_its_last_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = [ffmpeg_exe(), "-nostdin", "-v", "error", "-f", "lavfi", "-i", "no_such_source_xyz", "-f", "null", "-"]
    expected = subprocess.run(bad, capture_output=True, text=True, check=False).stderr.strip().splitlines()[-1]
    monkeypatch.setattr(lab_media_module, "_command", lambda spec, output: bad)
    with pytest.raises(LabError) as caught:
        ensure_media(MediaSpec("mp4", duration_s=1.0), tmp_path)
    assert expected.strip() in str(caught.value)
    assert os.listdir(tmp_path) == []  # no half-written file left behind


@pytest.mark.parametrize("fields", [
    {"container": "avi"},
    {"container": "mp4", "width": 641},
    {"container": "mp4", "duration_s": 0},
    {"container": "mp4", "bitrate_bps": 60_000},
])
def test_invalid_spec_is_refused(fields: dict) -> None:
    with pytest.raises(LabError):
        MediaSpec(**fields)
