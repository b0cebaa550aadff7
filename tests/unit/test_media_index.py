"""The streaming media index against ffmpeg's own account of the lab videos, and the timeline arithmetic."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest

import pytomo.media.index as index_module
from pytomo.lab.media import LabMedia
from pytomo.media.index import MediaIndexer
from pytomo.media.timeline import MediaTimeline, TrackSamples, build_timeline
from tests.unit.media_fixtures import (  # noqa: F401
    ffmpeg_playable_s,
    index_bytes,
    lab_media,
    media_cache,
)

EXPECTED_SOURCE = {"mp4": "mp4-sample-table", "mp4-moov-end": "mp4-sample-table", "fmp4": "mp4-fragments",
                   "webm": "webm-blocks", "flv": "flv-tags"}


def assert_well_formed(timeline: MediaTimeline) -> None:
    offsets, times = timeline.offsets_bytes, timeline.times_s
    assert all(a < b for a, b in zip(offsets, offsets[1:]))
    assert all(a <= b for a, b in zip(times, times[1:]))
    assert all(t > 0 for t in times)


def full_timeline(media: LabMedia) -> MediaTimeline:
    indexer = index_bytes(media.path.read_bytes())
    assert indexer.problem is None
    timeline = indexer.timeline()
    assert timeline is not None
    return timeline


# --- whole files -------------------------------------------------------------------------------------------


def test_whole_file_plays_for_the_ffmpeg_duration(lab_media: LabMedia) -> None:  # noqa: F811
    timeline = full_timeline(lab_media)
    assert timeline.source == EXPECTED_SOURCE[lab_media.spec.container]
    assert_well_formed(timeline)
    assert timeline.duration_s == pytest.approx(lab_media.duration_s, rel=0.01)
    assert timeline.time_at(lab_media.size_bytes) == pytest.approx(lab_media.duration_s, rel=0.01)
    assert timeline.offsets_bytes[-1] <= lab_media.size_bytes
    assert timeline.bytes_for(timeline.end_s) == timeline.offsets_bytes[-1]
    assert timeline.bytes_for(lab_media.duration_s * 1.02) is None


def test_container_is_sniffed(lab_media: LabMedia) -> None:  # noqa: F811
    indexer = index_bytes(lab_media.path.read_bytes()[:64])
    assert indexer.container == {"mp4-moov-end": "mp4", "fmp4": "mp4"}.get(lab_media.spec.container,
                                                                          lab_media.spec.container)


def test_mid_file_is_close_to_the_average_bitrate(lab_media: LabMedia) -> None:  # noqa: F811
    timeline = full_timeline(lab_media)
    for fraction in (0.25, 0.5, 0.75):
        received = int(lab_media.size_bytes * fraction)
        linear_s = received * 8 / lab_media.bitrate_bps
        assert timeline.time_at(received) == pytest.approx(linear_s, rel=0.10)


def test_playable_time_matches_ffmpeg_on_cut_off_copies(lab_media: LabMedia, tmp_path: Path) -> None:  # noqa: F811
    """What ffmpeg decodes from the first B bytes (min over audio and video) is what the timeline says."""
    if lab_media.spec.container == "mp4-moov-end":
        pytest.skip("ffmpeg cannot read a cut-off copy without its moov")
    data = lab_media.path.read_bytes()
    timeline = full_timeline(lab_media)
    for fraction in (0.05, 0.3, 0.55, 0.8):
        received = int(len(data) * fraction)
        (tmp_path / "cut").write_bytes(data[:received])
        # ffmpeg keeps each stream's start offset (up to 0.1 s here); the timeline starts every track at 0.
        assert timeline.time_at(received) == pytest.approx(ffmpeg_playable_s(tmp_path / "cut"), abs=0.15)


def test_parser_work_follows_frames_not_bytes(lab_media: LabMedia, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """Parser steps are bounded by the number of frames and do not change with the chunk size."""
    steps = []
    original = index_module._Pump._step

    def counting(pump: object, value: bytes | None) -> int:
        steps.append(1)
        return original(pump, value)

    monkeypatch.setattr(index_module._Pump, "_step", counting)
    data = lab_media.path.read_bytes()
    counts = []
    for chunk in (4096, 1 << 20):
        steps.clear()
        index_bytes(data, chunk)
        counts.append(len(steps))
    spec = lab_media.spec
    frames = spec.duration_s * (spec.fps + 50)  # video frames plus at most 50 audio frames per second
    assert counts[0] == counts[1]
    assert counts[0] <= 6 * frames + 100


# --- chunking, truncation, moov at the end --------------------------------------------------------------


def chunked(data: bytes, sizes: list[int]) -> MediaIndexer:
    indexer = MediaIndexer()
    pos, i = 0, 0
    while pos < len(data):
        size = sizes[i % len(sizes)]
        indexer.feed(memoryview(data)[pos:pos + size])
        pos += size
        i += 1
    return indexer


def test_timeline_does_not_depend_on_chunk_boundaries(lab_media: LabMedia) -> None:  # noqa: F811
    data = lab_media.path.read_bytes()
    reference = full_timeline(lab_media)
    rng = random.Random(7)
    plans = {
        "7": [7],
        "4096": [4096],
        "1MiB": [1 << 20],
        "random": [rng.randint(1, 200_000) for _ in range(500)],
    }
    for name, sizes in plans.items():
        assert chunked(data, sizes).timeline() == reference, name
    byte_by_byte = MediaIndexer()
    for i in range(32 * 1024):
        byte_by_byte.feed(data[i:i + 1])
    byte_by_byte.feed(data[32 * 1024:])
    assert byte_by_byte.timeline() == reference


def test_truncated_download_is_valid_up_to_the_bytes_received(lab_media: LabMedia, tmp_path: Path) -> None:  # noqa: F811
    if lab_media.spec.container == "mp4-moov-end":
        pytest.skip("covered by the tail request test")
    data = lab_media.path.read_bytes()
    received = int(len(data) * 0.4) + 123
    indexer = index_bytes(data[:received], 65_536)
    assert indexer.problem is None
    timeline = indexer.timeline()
    assert timeline is not None
    assert_well_formed(timeline)
    (tmp_path / "cut").write_bytes(data[:received])
    assert timeline.time_at(received) == pytest.approx(ffmpeg_playable_s(tmp_path / "cut"), abs=0.15)
    reference = full_timeline(lab_media)
    for b in range(0, received + 1, 10_007):
        assert timeline.time_at(b) == pytest.approx(reference.time_at(b), abs=0.05)


def test_moov_at_the_end_comes_from_the_tail_request(media_cache: Path) -> None:  # noqa: F811
    from pytomo.lab.media import MediaSpec, ensure_media

    end = ensure_media(MediaSpec("mp4-moov-end", duration_s=10.0))
    front = ensure_media(MediaSpec("mp4", duration_s=10.0))
    data = end.path.read_bytes()
    moov_at = data.rindex(b"moov") - 4
    indexer = index_bytes(data[:len(data) // 3])
    assert indexer.timeline() is None
    assert indexer.problem == "moov box not received"
    assert indexer.tail_request() == (moov_at, None)
    tail = data[moov_at:]
    indexer.feed_tail(moov_at, tail[:100])
    indexer.feed_tail(moov_at + 100, tail[100:])
    assert indexer.tail_request() is None
    timeline = indexer.timeline()
    assert timeline == index_bytes(data).timeline()
    # Same encoding as the moov-first file: same times, offsets shifted by where the mdat payload starts.
    reference = full_timeline(front)
    shift = data.index(b"mdat") - front.path.read_bytes().index(b"mdat")
    assert timeline.times_s == reference.times_s
    assert [o - shift for o in timeline.offsets_bytes] == list(reference.offsets_bytes)


def test_tail_must_be_contiguous(media_cache: Path) -> None:  # noqa: F811
    from pytomo.lab.media import MediaSpec, ensure_media

    data = ensure_media(MediaSpec("mp4-moov-end", duration_s=10.0)).path.read_bytes()
    indexer = index_bytes(data[:100_000])
    offset, _ = indexer.tail_request()
    indexer.feed_tail(offset, data[offset:offset + 10])
    with pytest.raises(ValueError):
        indexer.feed_tail(offset + 20, data[offset + 20:])


# --- not media ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("page", [
    b"<!DOCTYPE html><html><head><title>Not found</title></head></html>",
    b"\xef\xbb\xbf\r\n   <html lang='en'><body>sign in</body></html>",
])
def test_html_is_named(page: bytes) -> None:
    indexer = MediaIndexer()
    for i in range(len(page)):
        indexer.feed(page[i:i + 1])
    assert indexer.problem == "HTML page where media was expected"
    assert indexer.container is None
    assert indexer.timeline() is None
    assert indexer.tail_request() is None


def test_random_bytes_are_an_unknown_container() -> None:
    data = random.Random(3).randbytes(100_000)
    indexer = index_bytes(data, 4096)
    assert indexer.problem == f"unknown container (first bytes {data[:4].hex()})"
    assert indexer.timeline() is None


def test_nothing_received_is_a_problem() -> None:
    indexer = MediaIndexer()
    assert indexer.problem == "no bytes received"
    indexer.feed(b"\x00\x00")
    assert indexer.problem == "too few bytes to recognise the container (2 received)"
    assert indexer.timeline() is None


@pytest.mark.parametrize(("data", "container"), [
    (struct.pack(">I4s4s", 16, b"ftyp", b"isom") + b"\x00" * 4 + struct.pack(">I4s", 4, b"free"), "mp4"),
    (b"\x1a\x45\xdf\xa3\x80" + b"\x00" * 16, "webm"),
    (b"FLV\x01\x05\x00\x00\x00\x03" + b"\x00" * 16, "flv"),
])
def test_malformed_headers_are_a_problem(data: bytes, container: str) -> None:
    indexer = index_bytes(data, 3)
    assert indexer.container == container
    assert indexer.problem is not None and indexer.problem.startswith(f"malformed {container} data")
    assert indexer.timeline() is None


def test_garbage_after_a_valid_start_never_raises(lab_media: LabMedia) -> None:  # noqa: F811
    data = bytearray(lab_media.path.read_bytes()[:200_000])
    rng = random.Random(11)
    for trial in range(20):
        start = rng.randrange(16, len(data) - 5000)
        mangled = bytearray(data)
        mangled[start:start + 5000] = rng.randbytes(5000)
        indexer = index_bytes(bytes(mangled), 997)
        timeline = indexer.timeline()
        assert (indexer.problem is None) or (timeline is None), trial
        if timeline is not None:
            assert_well_formed(timeline)


# --- timeline arithmetic (worked by hand) ------------------------------------------------------------------


def test_reordered_frames_play_only_once_every_earlier_frame_arrived() -> None:
    # Decode order I P B B (presentation 0 3 1 2, 1 s each) ending at bytes 10 20 30 40; audio 0.5 s
    # samples ending at bytes 5, 15, ..., 75. Playable = min(video, audio).
    video = TrackSamples("video", 1)
    for end, pts in zip((10, 20, 30, 40), (0, 3, 1, 2)):
        video.add(end, pts, 1)
    audio = TrackSamples("audio", 2)
    for k in range(8):
        audio.add(5 + 10 * k, k, 1)
    timeline = build_timeline("mp4-sample-table", [video, audio], 4.0)
    # bytes: 5 -> audio .5, video 0; 10 -> video 1, audio .5; 15 -> 1; 20 -> video 1 (P waits for B);
    # 30 -> video 2, audio 1.5; 35 -> audio 2; 40 -> video 4, audio 2; 45..75 -> audio 2.5 .. 4.
    expected = {4: 0.0, 5: 0.0, 10: 0.5, 15: 1.0, 20: 1.0, 25: 1.0, 30: 1.5, 35: 2.0, 40: 2.0, 45: 2.5,
                55: 3.0, 65: 3.5, 75: 4.0, 10**9: 4.0}
    assert {b: timeline.time_at(b) for b in expected} == expected
    assert timeline.bytes_for(3.0) == 55
    assert timeline.bytes_for(0) == 0
    assert timeline.bytes_for(4.5) is None


def test_missing_durations_come_from_the_next_decode_time() -> None:
    track = TrackSamples("audio", 1000)
    for end, ms in ((100, 0), (200, 20), (300, 40), (400, 60)):
        track.add(end, ms)
    assert build_timeline("flv-tags", [track], None).times_s == (0.02, 0.04, 0.06, 0.08)
    assert build_timeline("webm-blocks", [track], None, last_end_s=0.1).times_s == (0.02, 0.04, 0.06, 0.1)


def test_average_bitrate_fallback() -> None:
    timeline = MediaTimeline.from_average_bitrate(1_000_000, total_bytes=1_250_100, duration_s=None,
                                                  header_bytes=100)
    assert timeline.source == "average-bitrate"
    assert timeline.duration_s == pytest.approx(10.0)
    assert timeline.time_at(100 + 625_000) == pytest.approx(5.0)
    assert timeline.time_at(100 + 624_999) == pytest.approx(4.9)
    assert timeline.time_at(1_250_100) == pytest.approx(10.0)
    assert timeline.bytes_for(2.0) == 100 + 250_000
    by_duration = MediaTimeline.from_average_bitrate(800_000, total_bytes=None, duration_s=3.0)
    assert by_duration.time_at(300_000) == pytest.approx(3.0)
    assert by_duration.bytes_for(3.0) == 300_000
    with pytest.raises(ValueError):
        MediaTimeline.from_average_bitrate(1e6, None, None)
