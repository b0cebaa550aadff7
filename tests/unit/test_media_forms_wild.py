"""Media forms seen in the wild against ffprobe's packet table: QuickTime with PCM audio (a sample per audio frame),
Matroska from mkvmerge with B-frames, FLV with a key-frame index; each cut at many offsets, and whole."""

from __future__ import annotations

import shutil
import struct
import subprocess
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytomo.lab.media import ffmpeg_exe
from pytomo.lab.tools import ffprobe_exe
from pytomo.media.index import MediaIndexer
from pytomo.media.timeline import REORDER_PRIOR, TrackSamples, build_timeline
from tests.ffprobe_truth import ProbeTruth, probe_truth
from tests.unit.test_media_ffprobe import analysed, offsets_of, realmedia

TOLERANCE_S = 0.1
RATE_TOLERANCE = 0.01
CUTS = 200  # prefixes of each file, evenly spaced
_X264 = ["-c:v", "libx264", "-preset", "veryfast", "-x264-params", "threads=1:log-level=none", "-bf", "3"]
_VIDEO = ["-f", "lavfi", "-i", "testsrc2=size=160x96:rate=25"]
_AUDIO = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
_EXACT = ["-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact", "-threads", "1",
          "-map_metadata", "-1"]
_PCM = [*_VIDEO, "-t", "25", *_AUDIO, "-t", "25", *_X264, "-ac", "2", "-c:a", "pcm_s16le"]  # 1,200,000 frames
_H264_AAC = [*_VIDEO, "-t", "6", *_AUDIO, "-t", "6", *_X264, "-c:a", "aac"]
# name -> (encoders needed, ffmpeg arguments between the inputs and the output; for .mkv: of the file mkvmerge reads)
FORMS: dict[str, tuple[tuple[str, ...], list[str]]] = {
    "pcm_s16le.mov": (("libx264", "pcm_s16le"), [*_PCM, "-movflags", "+faststart"]),
    "pcm_s16le_moov_end.mov": (("libx264", "pcm_s16le"), _PCM),
    "mkvmerge_bframes.mkv": (("libx264", "aac"), _H264_AAC),
    "h264_keyframe_index.flv": (("libx264", "aac"), [*_H264_AAC, "-flvflags", "add_keyframe_index"]),
}
REAL = ("exo_sample-with-key-frame-index.flv",)  # B-frames, 24 fps: was 0.125 s ahead at most cuts
MOOV_END = ("pcm_s16le_moov_end.mov",)


def _require_ffprobe() -> None:
    if ffprobe_exe()[0] is None:
        pytest.skip(f"no ffprobe for the truth: {ffprobe_exe()[1]}")


def _ffmpeg(args: list[str], out: Path) -> None:
    subprocess.run([ffmpeg_exe(), "-nostdin", "-v", "error", "-y", *args, *_EXACT, str(out)], check=True,
                   timeout=300)


def make_form(name: str, folder: Path) -> Path:
    """Make one file of ``FORMS`` once per session; skip, saying why, without an encoder or mkvmerge."""
    path = folder / name
    if path.exists():
        return path
    needs, args = FORMS[name]
    listing = subprocess.run([ffmpeg_exe(), "-hide_banner", "-encoders"], capture_output=True, text=True,
                             check=True).stdout
    missing = [e for e in needs if f" {e} " not in listing]
    if missing:
        pytest.skip(f"imageio-ffmpeg's ffmpeg has no encoder {', '.join(missing)}")
    if path.suffix != ".mkv":
        _ffmpeg(args, path)
        return path
    mkvmerge = shutil.which("mkvmerge")
    if mkvmerge is None:
        pytest.skip("mkvmerge is not installed (Debian package mkvtoolnix)")
    source = folder / f"{path.stem}-source.mp4"
    _ffmpeg(args, source)
    subprocess.run([mkvmerge, "-q", "-o", str(path), str(source)], check=True, timeout=300)
    return path


@pytest.fixture(scope="session")
def forms_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media-forms-wild")


@pytest.fixture(params=[*(f"gen:{n}" for n in FORMS), *(f"real:{n}" for n in REAL)],
                ids=lambda p: p.split(":", 1)[1])
def form_path(request: pytest.FixtureRequest, forms_dir: Path) -> Path:
    _require_ffprobe()
    kind, name = request.param.split(":", 1)
    return realmedia(name) if kind == "real" else make_form(name, forms_dir)


_truths: dict[Path, ProbeTruth] = {}


def truth_of(path: Path) -> ProbeTruth:
    if path not in _truths:
        _truths[path] = probe_truth(path)
    return _truths[path]


def prefixes(data: bytes) -> Iterator[tuple[int, MediaIndexer]]:
    """(cut, indexer fed exactly ``data[:cut]``) at ``CUTS`` cuts evenly spaced, the whole file last."""
    indexer = MediaIndexer()
    fed = 0
    for k in range(1, CUTS + 1):
        cut = len(data) * k // CUTS
        indexer.feed(data[fed:cut])
        fed = cut
        if cut == len(data):
            indexer.end_of_file()
        yield cut, indexer


def test_prefix_playable_time_matches_ffprobe(form_path: Path) -> None:
    """Fed only the first bytes (200 cuts), the playable time at the cut is within 0.1 s of ffprobe's table.

    Frames not received yet must not stretch the listed ones: with B-frames a P-frame arrives before the frames
    shown ahead of it (mkvmerge, FLV of H.264).
    """
    data = form_path.read_bytes()
    truth = truth_of(form_path)
    curve = truth.playable_curve()
    errors: list[tuple[float, int]] = []
    for cut, indexer in prefixes(data):
        timeline = indexer.timeline()
        if timeline is None:  # the header not received yet, or a moov at the end (the pipeline fetches it)
            assert indexer.problem is not None
            assert form_path.name in MOOV_END or truth.playable_at(cut, curve) == 0.0, indexer.problem
            continue
        errors.append((timeline.time_at(cut) - truth.playable_at(cut, curve), cut))
    worst = max(errors, key=lambda e: abs(e[0]))
    assert abs(worst[0]) <= TOLERANCE_S, f"{worst[0]:+.3f} s at {worst[1]} bytes"


def test_whole_file_matches_ffprobe(form_path: Path) -> None:
    """A complete download: media (never 'not media'), duration within 0.1 s and encoding rate within 1 % of
    ffprobe's, and playable time within 0.1 s at 50 offsets."""
    data = form_path.read_bytes()
    truth = truth_of(form_path)
    a = analysed(data, len(data))
    assert not a.not_media, a.media_problem
    assert a.media_problem_kind is None, a.media_problem
    durations = [truth.packet_duration_s, *([truth.format_duration_s] if truth.format_duration_s else [])]
    assert a.media_duration_s is not None, a.media_problem
    assert min(abs(a.media_duration_s - d) for d in durations) <= TOLERANCE_S, (a.media_duration_s, durations)
    rates = [len(data) * 8 / d for d in durations]
    assert any(a.encoding_rate_bps == pytest.approx(r, rel=RATE_TOLERANCE) for r in rates), (a.encoding_rate_bps,
                                                                                            rates)
    indexer = MediaIndexer()
    indexer.feed(data)
    indexer.end_of_file()
    timeline = indexer.timeline()
    assert timeline is not None, indexer.problem
    curve = truth.playable_curve()
    off = [(x, timeline.time_at(x), truth.playable_at(x, curve)) for x in offsets_of(len(data))]
    assert [o for o in off if abs(o[1] - o[2]) > TOLERANCE_S] == []


def test_window_cut_is_media(form_path: Path) -> None:
    """Cut at half the file (an MP4 whose moov is at the end gets its tail): media time from the index."""
    data = form_path.read_bytes()
    a = analysed(data, len(data) // 2)
    assert not a.not_media, a.media_problem
    assert a.media_time_source in ("mp4-sample-table", "webm-blocks", "flv-tags"), a.media_problem


# --- the budget counts index entries, not audio frames ---------------------------------------------------------


def test_pcm_frames_are_indexed_in_runs(forms_dir: Path) -> None:
    """1,200,000 PCM frames fit a budget of 16,384 entries (1 MiB at 64 bytes an entry): one entry per run."""
    data = make_form("pcm_s16le.mov", forms_dir).read_bytes()
    indexer = MediaIndexer(box_limit_bytes=1 << 20)
    indexer.feed(data)
    indexer.end_of_file()
    assert indexer.problem is None, indexer.problem
    timeline = indexer.timeline()
    assert timeline is not None and timeline.end_s == pytest.approx(25.0, abs=TOLERANCE_S)


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, start, end) of every box below ``data[start:end]``, depth first (moov, trak and the like)."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        yield kind, pos, pos + size
        if kind in (b"moov", b"trak", b"mdia", b"minf", b"stbl"):
            yield from _boxes(data, pos + 8, pos + size)
        pos += size


def _hostile_pcm(data: bytes) -> bytes:
    """The PCM track's tables patched to 2^32 - 1 frames, 2^31 - 1 to a chunk: sizes unchanged."""
    out = bytearray(data)
    audio = False
    for kind, start, _ in _boxes(data, 0, len(data)):
        if kind == b"trak":
            audio = False
        elif kind == b"hdlr":
            audio = audio or data[start + 16:start + 20] == b"soun"
        elif audio and kind == b"stsz":
            struct.pack_into(">I", out, start + 16, 0xFFFFFFFF)
        elif audio and kind == b"stts":
            struct.pack_into(">I", out, start + 16, 0xFFFFFFFF)
        elif audio and kind == b"stsc":
            struct.pack_into(">I", out, start + 20, 0x7FFFFFFF)
    assert out != data
    return bytes(out)


def test_hostile_pcm_tables_are_bounded(forms_dir: Path) -> None:
    """A sample table declaring 4 billion fixed-size frames, 2 billion to a chunk: stopped by the budget at once."""
    data = _hostile_pcm(make_form("pcm_s16le.mov", forms_dir).read_bytes())
    tracemalloc.start()
    start = time.perf_counter()
    try:
        indexer = MediaIndexer()
        indexer.feed(data[:1 << 20])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert indexer.problem_kind == "too_many_samples", indexer.problem
    assert peak < 16 << 20
    assert time.perf_counter() - start < 5.0


# --- the listing of a file cut short ---------------------------------------------------------------------------


def _bframes(listed: int) -> TrackSamples:
    """The first ``listed`` frames (25 fps, as Matroska lists them: a default duration, no decode time) of
    I0 P4 B2 b1 b3 P8 B6 b5 b7 in decode order, 1000 bytes each."""
    track = TrackSamples("video", 25)
    track.reorder_min = REORDER_PRIOR
    for k, pts in enumerate([0, 4, 2, 1, 3, 8, 6, 5, 7][:listed]):
        track.add(1000 * (k + 1), pts, 1)
    return track


@pytest.mark.parametrize(("listed", "playable_s"), [(1, 0.04), (2, 0.04), (3, 0.04), (4, 0.12), (5, 0.2),
                                                    (6, 0.2), (7, 0.2), (8, 0.28), (9, 0.36)])
def test_frames_not_listed_yet_do_not_stretch_the_listed_ones(listed: int, playable_s: float) -> None:
    """Cut after a P-frame: the B-frames shown before it have not arrived, so playback stops at the first of them."""
    timeline = build_timeline("webm-blocks", [_bframes(listed)], None, open_ended=True)
    assert timeline.end_s == pytest.approx(playable_s)


def test_a_complete_listing_is_not_capped() -> None:
    timeline = build_timeline("webm-blocks", [_bframes(9)], None, last_end_s=0.36)
    assert timeline.end_s == pytest.approx(0.36)


def test_a_declared_track_with_no_frame_yet_holds_playback() -> None:
    """Video listed, the declared audio not yet: a player waits for it (up to 5 s of the other tracks)."""
    audio = TrackSamples("audio", 1000)
    video = TrackSamples("video", 1000)
    for k in range(10):
        video.add(100 * (k + 1), 40 * k)
    assert build_timeline("flv-tags", [audio, video], None, open_ended=True).end_s == 0.0
    assert build_timeline("flv-tags", [audio, video], None).end_s == pytest.approx(0.4)
    for k in range(10, 200):
        video.add(100 * (k + 1), 40 * k)
    assert build_timeline("flv-tags", [audio, video], None, open_ended=True).end_s > 5.0
