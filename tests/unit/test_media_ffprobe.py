"""The streaming media index and the media figures against ffprobe's packet table: real, generated and lab files."""

from __future__ import annotations

import random
import subprocess
from array import array
from datetime import UTC, datetime
from itertools import cycle
from pathlib import Path

import pytest

from pytomo.engine.analysis import analyse
from pytomo.lab.media import CONTAINERS, MediaSpec, ensure_media, ffmpeg_exe
from pytomo.media.index import MediaIndexer
from pytomo.results import DownloadAnalysis, PlayoutParams, Transfer
from tests.ffprobe_truth import ProbeTruth, probe_truth

REALMEDIA = Path(__file__).resolve().parents[3] / "shared" / "realmedia"
PROGRESSIVE = (
    "moviepy_smpte-2997.mp4", "moviepy_long_example.mp4", "flv2fmp4_333_hevc.mp4", "mp4ff_prog_8s.mp4",
    "exo_increasing_timestamps_360p.mp4", "moviepy_chaplin.mp4", "mp4ff_bbb_prog_10s.mp4", "shaka_small.mp4",
    "moviepy_video_with_failing_audio.mp4", "mp4ff_prog_8s_dec_dashinit.mp4", "mp4ff_bbb5s_aac_sidx.mp4",
    "mp4ff_v300_multiple_segments.mp4", "exo_partially_fragmented.mp4", "mediaelement_echo-hereweare.webm",
    "moviepy_big_buck_bunny_0_30.webm", "moviepy_no_duration.webm", "exo_bear-vp9.webm", "moviepy_transparent.webm",
    "exo_sample.mkv", "membrane_bun33s.flv", "moviepy_clip1024_vp6.flv", "flv2fmp4_test.flv",
    "membrane_bun33s_audio.flv", "exo_sample-with-key-frame-index.flv", "shaka_video.ts",
)
_X264 = ["-c:v", "libx264", "-preset", "veryfast", "-x264-params", "threads=1:log-level=none"]
_VIDEO = ["-f", "lavfi", "-i", "testsrc2=size=160x96:rate=25"]
_AUDIO = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
_EXACT = ["-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact", "-threads", "1",
          "-map_metadata", "-1"]
# name -> (encoders needed, ffmpeg arguments between the inputs and the output)
GENERATED: dict[str, tuple[tuple[str, ...], list[str]]] = {
    "h264_bframes_editlist.mp4": (("libx264", "aac"), [*_VIDEO, "-t", "4", *_AUDIO, "-t", "4", *_X264, "-bf", "3",
                                                       "-g", "50", "-c:a", "aac", "-movflags", "+faststart"]),
    "h264_vfr.mp4": (("libx264", "aac"), ["-f", "lavfi", "-i", "testsrc2=size=160x96:rate=30", "-t", "5", *_AUDIO,
                                          "-t", "5", "-vf", "select='not(between(mod(n\\,30)\\,10\\,19))'",
                                          "-fps_mode", "vfr", *_X264, "-bf", "2", "-c:a", "aac"]),
    "h264_long_gop_10s.mp4": (("libx264", "aac"), [*_VIDEO, "-t", "12", *_AUDIO, "-t", "12", *_X264, "-g", "250",
                                                   "-keyint_min", "250", "-sc_threshold", "0", "-c:a", "aac"]),
    "h264_moov_end.mp4": (("libx264", "aac"), [*_VIDEO, "-t", "4", *_AUDIO, "-t", "4", *_X264, "-c:a", "aac"]),
    "two_audio_tracks.mp4": (("libx264", "aac"), [*_VIDEO, "-t", "4", *_AUDIO, "-t", "4", "-f", "lavfi", "-i",
                                                  "sine=frequency=880:sample_rate=44100", "-t", "4", "-map", "0",
                                                  "-map", "1", "-map", "2", *_X264, "-c:a", "aac"]),
    "audio_only.m4a": (("aac",), [*_AUDIO, "-t", "4", "-c:a", "aac"]),
    "video_only.mp4": (("libx264",), [*_VIDEO, "-t", "4", *_X264]),
    "hevc.mp4": (("libx265", "aac"), [*_VIDEO, "-t", "3", *_AUDIO, "-t", "3", "-c:v", "libx265", "-preset",
                                      "ultrafast", "-x265-params", "log-level=none:pools=1:frame-threads=1",
                                      "-tag:v", "hvc1", "-c:a", "aac"]),
    "vp9_opus.webm": (("libvpx-vp9", "libopus"), [*_VIDEO, "-t", "3", *_AUDIO, "-t", "3", "-c:v", "libvpx-vp9",
                                                  "-deadline", "realtime", "-cpu-used", "8", "-b:v", "200k",
                                                  "-c:a", "libopus"]),
    "av1_opus.webm": (("libaom-av1", "libopus"), [*_VIDEO, "-t", "2", *_AUDIO, "-t", "2", "-c:v", "libaom-av1",
                                                  "-cpu-used", "8", "-usage", "realtime", "-b:v", "100k",
                                                  "-c:a", "libopus"]),
    "vp8_vorbis_no_cues.webm": (("libvpx", "libvorbis"), [*_VIDEO, "-t", "4", *_AUDIO, "-t", "4", "-c:v", "libvpx",
                                                          "-deadline", "realtime", "-cpu-used", "8", "-b:v", "200k",
                                                          "-c:a", "libvorbis", "-live", "1"]),
    "h264_aac.ts": (("libx264", "aac"), [*_VIDEO, "-t", "4", *_AUDIO, "-t", "4", *_X264, "-bf", "2", "-c:a", "aac",
                                         "-f", "mpegts"]),
}
HEAD_BYTES = 2 * 1024 * 1024  # what the pipeline keeps for MediaInfo (settings.media_head_bytes)
CHUNKS = (7, 4096, 1 << 20, 1, 65536 + 3, 188 * 5 + 1)  # varied chunk sizes, cycled
TIME_TOLERANCE_S = 0.1
RATE_TOLERANCE = 0.01
OFFSETS = 50
# Files whose duration no header declares: cut by the window, their duration and rate must be NULL with a reason.
NO_DECLARED_DURATION = ("moviepy_no_duration.webm", "mp4ff_v300_multiple_segments.mp4",
                        "exo_partially_fragmented.mp4", "shaka_video.ts", "h264_aac.ts", "vp8_vorbis_no_cues.webm")
_FFPROBE_CODECS = {"hevc": "h265", "vp6f": "vp6"}


def realmedia(name: str) -> Path:
    """A corpus file; the test fails when the shared corpus is not beside the checkout."""
    if not (REALMEDIA / "SOURCES.md").is_file():
        pytest.fail(f"the real-media corpus is missing: expected it in {REALMEDIA} (beside the repository)")
    return REALMEDIA / "progressive" / name


@pytest.fixture(scope="session")
def generated_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session folder for the files made by ffmpeg."""
    return tmp_path_factory.mktemp("ffprobe-media")


def _encoders() -> str:
    done = subprocess.run([ffmpeg_exe(), "-hide_banner", "-encoders"], capture_output=True, text=True, check=True)
    return done.stdout


def generated(name: str, folder: Path) -> Path:
    """Make a generated file (deterministic, a few seconds, 160x96) once per session; skip without its encoders."""
    path = folder / name
    if path.exists():
        return path
    needs, args = GENERATED[name]
    listing = _encoders()
    missing = [e for e in needs if f" {e} " not in listing]
    if missing:
        pytest.skip(f"imageio-ffmpeg's ffmpeg has no encoder {', '.join(missing)}")
    subprocess.run([ffmpeg_exe(), "-nostdin", "-v", "error", "-y", *args, *_EXACT, str(path)], check=True,
                   timeout=300)
    return path


@pytest.fixture(params=[*(f"real:{n}" for n in PROGRESSIVE), *(f"gen:{n}" for n in GENERATED),
                        *(f"lab:{c}" for c in CONTAINERS)],
                ids=lambda p: p.replace(":", "-") if p.startswith("lab:") else p.split(":", 1)[1])
def media_path(request: pytest.FixtureRequest, generated_dir: Path) -> Path:
    kind, name = request.param.split(":", 1)
    if kind == "lab":  # the lab's own files, as its cache servers serve them (10 s, to stay quick)
        return ensure_media(MediaSpec(name, duration_s=10.0)).path
    return realmedia(name) if kind == "real" else generated(name, generated_dir)


_truths: dict[Path, ProbeTruth] = {}


def truth_of(path: Path) -> ProbeTruth:
    if path not in _truths:
        _truths[path] = probe_truth(path)
    return _truths[path]


def feed(data: bytes, cut: int, *, fetch_tail: bool = True) -> tuple[MediaIndexer, tuple[int, bytes] | None]:
    """Feed ``data[:cut]`` in chunks of varied sizes; then, as the pipeline does, the tail the indexer asks for."""
    indexer = MediaIndexer()
    sizes = cycle(CHUNKS)
    pos = 0
    while pos < cut:
        step = min(next(sizes), cut - pos)
        indexer.feed(data[pos:pos + step])
        pos += step
    tail = None
    need = indexer.tail_request()
    if fetch_tail and need is not None:
        offset, _ = need
        tail = (offset, data[offset:])
        indexer.feed_tail(*tail)
    return indexer, tail


def offsets_of(size_bytes: int, limit: int | None = None) -> list[int]:
    """``OFFSETS`` evenly spaced byte counts up to ``limit`` (default: the whole file), the end included."""
    end = size_bytes if limit is None else limit
    return sorted({round(end * k / OFFSETS) for k in range(1, OFFSETS + 1)})


def analysed(data: bytes, cut: int) -> DownloadAnalysis:
    """The analysis of a download of ``data`` stopped after ``cut`` bytes (the window) or complete."""
    indexer, tail = feed(data, cut)
    whole = cut == len(data)
    transfer = Transfer(url="http://127.0.0.1/media", address="127.0.0.1", started_at=datetime.now(UTC),
                        window_s=5.0, bin_s=0.1, status=200, content_length_bytes=len(data), headers_s=0.0,
                        first_byte_s=0.01, last_byte_s=1.0, bytes_total=cut, ended_by="eof" if whole else "window",
                        head=data[:min(cut, HEAD_BYTES)], event_t_s=array("d", [0.01, 1.0]),
                        event_bytes=array("q", [min(cut, 1000), cut]))
    return analyse(transfer, indexer, PlayoutParams(), tail)


def _mismatches(indexer: MediaIndexer, truth: ProbeTruth, offsets: list[int]) -> list[str]:
    timeline = indexer.timeline()
    assert timeline is not None, indexer.problem
    curve = truth.playable_curve() if truth.exact_ends else None
    out = []
    for x in offsets:
        ours, expected = timeline.time_at(x), truth.playable_at(x, curve)
        if abs(ours - expected) > TIME_TOLERANCE_S:
            out.append(f"at {x} bytes: ours {ours:.3f} s, ffprobe {expected:.3f} s")
    return out


def test_playable_time_matches_ffprobe(media_path: Path) -> None:
    """Fed the whole file in chunks of varied sizes, the timeline is within 0.1 s of ffprobe at 50 offsets."""
    data = media_path.read_bytes()
    truth = truth_of(media_path)
    indexer, _ = feed(data, len(data))
    indexer.end_of_file()
    assert indexer.problem is None
    assert _mismatches(indexer, truth, offsets_of(len(data))) == []


def test_window_cut_then_tail_matches_ffprobe(media_path: Path) -> None:
    """Cut at half the file; an MP4 whose moov is at the end then gets its tail, as the pipeline fetches it."""
    data = media_path.read_bytes()
    truth = truth_of(media_path)
    cut = len(data) // 2
    indexer, tail = feed(data, cut)
    if indexer.timeline() is None:  # a moov at the end that the tail brings, or nothing to index: must say why
        assert tail is None and indexer.problem
        return
    assert _mismatches(indexer, truth, offsets_of(len(data), cut)) == []


def test_chunking_does_not_change_the_timeline(media_path: Path) -> None:
    """The same bytes fed 7 at a time (the first 64 KiB) or at once give the same timeline."""
    data = media_path.read_bytes()[:256 * 1024]
    small = MediaIndexer()
    for pos in range(0, 65536, 7):
        small.feed(data[pos:min(pos + 7, 65536)])
    small.feed(data[65536:])
    whole = MediaIndexer()
    whole.feed(data)
    assert small.problem == whole.problem
    assert small.timeline() == whole.timeline()


def _close_to_one(value: float | None, candidates: list[float], rel: float) -> bool:
    return value is not None and any(value == pytest.approx(c, rel=rel) for c in candidates)


def test_encoding_rate_and_codecs_match_ffprobe(media_path: Path) -> None:
    """A whole download: encoding rate within 1 % of ffprobe's size * 8 / duration; codecs found.

    ffprobe gives two durations, and the rate must match one of them: the packet-derived one (latest presentation
    end minus the common start) and the format one (what the header declares). They differ by a frame where a
    header counts to the start of the last frame (exo_bear-vp9.webm: 2.703 s, its packets end at 2.736 s, 1.2 %
    on a 2.7 s clip) or where FLV metadata rounds; the format duration alone is no truth for
    mp4ff_v300_multiple_segments.mp4 (tfdt far from 0: ffprobe says 3900 s).
    """
    data = media_path.read_bytes()
    truth = truth_of(media_path)
    a = analysed(data, len(data))
    durations = [truth.packet_duration_s, *([truth.format_duration_s] if truth.format_duration_s else [])]
    rates = [len(data) * 8 / d for d in durations]
    assert a.encoding_rate_bps is not None, a.media_problem
    assert _close_to_one(a.encoding_rate_bps, rates, RATE_TOLERANCE), (a.encoding_rate_bps, rates,
                                                                       a.encoding_rate_source)
    assert _close_to_one(a.media_duration_s, durations, RATE_TOLERANCE), (a.media_duration_s, durations)
    assert a.media is not None, a.media_problem
    kinds = set(truth.streams.values())
    assert (a.media.video_codec is not None) == ("video" in kinds)
    assert (a.media.audio_codec is not None) == ("audio" in kinds)
    ours = {a.media.video_codec, a.media.audio_codec}
    for index, kind in truth.streams.items():
        name = _FFPROBE_CODECS.get(truth.codecs[index], truth.codecs[index])
        if kind == "video" or index == min(i for i, k in truth.streams.items() if k == "audio"):
            assert name in ours, (truth.codecs, ours)


def test_window_cut_never_guesses_the_duration(media_path: Path) -> None:
    """Cut at half the file: the duration is ffprobe's when a header declares it, else NULL with the reason."""
    data = media_path.read_bytes()
    truth = truth_of(media_path)
    a = analysed(data, len(data) // 2)
    if media_path.name in NO_DECLARED_DURATION:
        assert a.media_duration_s is None and a.encoding_rate_bps is None
        assert a.media_problem and "duration" in a.media_problem
    elif a.media_duration_s is not None:
        durations = [truth.packet_duration_s, *([truth.format_duration_s] if truth.format_duration_s else [])]
        assert _close_to_one(a.media_duration_s, durations, RATE_TOLERANCE), (a.media_duration_s, durations)
        assert _close_to_one(a.encoding_rate_bps, [len(data) * 8 / d for d in durations], RATE_TOLERANCE)
    else:
        assert a.media_problem


@pytest.mark.parametrize("name", ["shaka_video.ts", "mp4ff_prog_8s_dec_dashinit.mp4", "moviepy_no_duration.webm",
                                  "membrane_bun33s_audio.flv"])
def test_corrupted_bytes_only_set_a_problem(name: str) -> None:
    """Bytes of a real file flipped at random: the indexer either copes or states a problem; it never raises."""
    data = realmedia(name).read_bytes()[:200_000]
    rng = random.Random(name)
    for _ in range(40):
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 30)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        indexer, _ = feed(bytes(mutated), len(mutated), fetch_tail=False)
        indexer.end_of_file()
        timeline = indexer.timeline()
        assert timeline is not None or indexer.problem
        if timeline is not None:
            assert all(b >= a for a, b in zip(timeline.times_s, timeline.times_s[1:]))
